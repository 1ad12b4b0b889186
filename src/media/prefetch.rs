//! Asks the CPU to bring a value into cache before it is read.
//!
//! A stream's state is cold when its next packet arrives (every 20 ms, with hundreds of other
//! streams in between), and reading it costs a handful of cache misses one after another. The
//! relay names the lines a packet will touch before it enters the receive system call, so they
//! load while the kernel copies the datagram. Measured in BENCHMARKS.md ("The userspace relay
//! against the bare relay, third round").

/// Starts loading the cache line holding the start of `value`; never faults, never blocks.
#[inline(always)]
pub(crate) fn prefetch<T: ?Sized>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let address = std::ptr::from_ref(value).cast::<i8>();
        // SAFETY: SSE, which `_mm_prefetch` needs, is part of the x86_64 baseline; a prefetch
        // is a hint that reads nothing architecturally visible and never faults, whatever the
        // address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(address) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
