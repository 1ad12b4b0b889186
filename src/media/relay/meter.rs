//! What a relay worker measures of itself for placement and `/metrics`: the share of one CPU
//! its thread uses and the readiness reports it serves between ticks, and whether its loop
//! still runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::media::stats::{MediaStats, WorkerLoad};

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

/// Marks worker `index` stopped in the engine's counters when dropped: at the end of the
/// worker's loop, and when a panic unwinds the thread.
pub(super) struct StopMark {
    stats: Arc<MediaStats>,
    index: usize,
}

impl StopMark {
    pub(super) fn new(stats: Arc<MediaStats>, index: usize) -> Self {
        StopMark { stats, index }
    }
}

impl Drop for StopMark {
    fn drop(&mut self) {
        if let Some(load) = self.stats.workers().get(self.index) {
            load.mark_stopped();
        }
    }
}
