//! The route array mapped into the process (`BPF_F_MMAPABLE`), read-only: the stream relays read
//! the kernel's per-flow counters from memory every tick instead of one `bpf()` system call per
//! flow (at 500 calls that was 4,000 calls a second and half a microsecond per relayed packet).
//! Routes are still written through the map's system call, which the kernel orders with its
//! readers; only counters, which tolerate a read racing an increment, are read here.

use std::os::fd::AsRawFd;
use std::ptr::NonNull;

use super::route::Route;

/// Slots of the array (one per UDP port), as `max_entries` in `bpf/fastpath.bpf.c`.
pub(crate) const SLOTS: usize = 65536;

/// A read-only view of the kernel's route array.
pub(crate) struct MappedRoutes {
    base: NonNull<Route>,
    len: usize,
}

// SAFETY: the mapping is read-only shared memory that lives until `Drop`; reads are volatile
// copies of plain integers, valid whatever the kernel writes concurrently.
unsafe impl Send for MappedRoutes {}
// SAFETY: as above: no interior mutability through this view.
unsafe impl Sync for MappedRoutes {}

impl MappedRoutes {
    /// Maps the array behind `fd` (a map created with `BPF_F_MMAPABLE`).
    pub(crate) fn map(fd: &impl AsRawFd) -> std::io::Result<Self> {
        let bytes = SLOTS * std::mem::size_of::<Route>();
        // SAFETY: a fresh shared read-only mapping of a BPF array map; the kernel checks the
        // descriptor, the length and the flags, and the result is checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base = NonNull::new(ptr.cast::<Route>()).ok_or_else(std::io::Error::last_os_error)?;
        Ok(Self { base, len: SLOTS })
    }

    /// The slot's current content (counters possibly mid-update, each one whole).
    pub(crate) fn read(&self, slot: u32) -> Option<Route> {
        let index = usize::try_from(slot).ok().filter(|&i| i < self.len)?;
        // SAFETY: `index` is within the mapping, which is aligned for `Route` (page-aligned
        // base, 8-byte multiple elements) and stays mapped until `Drop`.
        Some(unsafe { self.base.as_ptr().add(index).read_volatile() })
    }
}

impl Drop for MappedRoutes {
    fn drop(&mut self) {
        // SAFETY: exactly the region mapped in `map`, unmapped once.
        unsafe {
            libc::munmap(
                self.base.as_ptr().cast(),
                self.len * std::mem::size_of::<Route>(),
            );
        }
    }
}
