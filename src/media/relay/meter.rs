//! What a relay worker measures of itself for placement and `/metrics`: the share of one CPU
//! its thread uses and the readiness reports it serves between ticks.

use std::time::{Duration, Instant};

use crate::media::stats::WorkerLoad;

/// Measures what the worker thread does between ticks: the share of one CPU it uses (its CPU
/// time over the wall time: one `clock_gettime` a tick, nothing per packet) and the readiness
/// reports it serves (counted per batch).
pub(super) struct CpuMeter {
    cpu: Duration,
    wall: Instant,
    /// Readiness reports taken since the last tick: about one per packet received.
    pub(super) reports: usize,
}

impl CpuMeter {
    pub(super) fn start() -> Self {
        CpuMeter {
            cpu: thread_cpu_time(),
            wall: Instant::now(),
            reports: 0,
        }
    }

    /// Publishes the share and the packet rate since the last call, with `streams` running.
    pub(super) fn publish(&mut self, load: &WorkerLoad, streams: usize) {
        let (cpu, wall) = (thread_cpu_time(), Instant::now());
        let elapsed = wall.saturating_duration_since(self.wall).as_secs_f64();
        if elapsed > 0.0 {
            let used = cpu.saturating_sub(self.cpu).as_secs_f64();
            load.publish(used / elapsed, streams, self.reports as f64 / elapsed);
        }
        *self = CpuMeter {
            cpu,
            wall,
            reports: 0,
        };
    }
}

/// CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(now.tv_nsec).unwrap_or(0);
    Duration::new(secs, nanos)
}
