//! The standard `process_*` series (CPU, memory, file descriptors, start time, threads), read
//! from `/proc/self` at scrape time. Linux only: elsewhere the collector writes nothing.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// What one scrape read about the process; a field is `None` when its file could not be read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessSnapshot {
    /// User plus system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident set size, bytes.
    pub resident_bytes: Option<u64>,
    /// Virtual memory size, bytes.
    pub virtual_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<u64>,
    /// Start time since the Unix epoch, seconds.
    pub start_time_seconds: Option<f64>,
    /// OS threads.
    pub threads: Option<u64>,
}

/// Fields of `/proc/self/stat` after the command name, parsed from the text; see proc(5).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct StatFields {
    /// utime + stime, clock ticks.
    pub cpu_ticks: u64,
    /// num_threads.
    pub threads: u64,
    /// starttime, clock ticks after boot.
    pub start_ticks: u64,
    /// vsize, bytes.
    pub virtual_bytes: u64,
    /// rss, pages.
    pub rss_pages: u64,
}

/// Parses `/proc/self/stat`. The command name (field 2) may hold spaces and parentheses, so
/// the fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<StatFields> {
    let rest = text.get(text.rfind(')')? + 1..)?;
    // After ")" comes field 3 (state); field n is at index n - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n.checked_sub(3)?)?.parse().ok() };
    Some(StatFields {
        cpu_ticks: field(14)?.checked_add(field(15)?)?,
        threads: field(20)?,
        start_ticks: field(22)?,
        virtual_bytes: field(23)?,
        rss_pages: field(24)?,
    })
}

/// Reads `btime` (boot time, seconds since the epoch) from `/proc/stat`.
pub fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime ")?.trim().parse().ok())
}

/// Reads the soft `Max open files` limit from `/proc/self/limits`.
pub fn parse_max_fds(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(target_os = "linux")]
fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf only reads a configuration value; it has no memory-safety preconditions.
    let value = unsafe { libc::sysconf(name) };
    u64::try_from(value).ok().filter(|v| *v > 0)
}

/// Reads `/proc/self` now.
#[cfg(target_os = "linux")]
pub fn snapshot() -> ProcessSnapshot {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|text| parse_stat(&text));
    let ticks = sysconf(libc::_SC_CLK_TCK).map(|t| t as f64);
    let page = sysconf(libc::_SC_PAGESIZE);
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|text| parse_boot_time(&text));
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|dir| dir.count() as u64);
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| parse_max_fds(&text));
    ProcessSnapshot {
        cpu_seconds: stat.zip(ticks).map(|(s, t)| s.cpu_ticks as f64 / t),
        resident_bytes: stat.zip(page).and_then(|(s, p)| s.rss_pages.checked_mul(p)),
        virtual_bytes: stat.map(|s| s.virtual_bytes),
        open_fds,
        max_fds,
        start_time_seconds: stat
            .zip(ticks)
            .zip(boot)
            .map(|((s, t), b)| b as f64 + s.start_ticks as f64 / t),
        threads: stat.map(|s| s.threads),
    }
}

/// Reads nothing where there is no `/proc`.
#[cfg(not(target_os = "linux"))]
pub fn snapshot() -> ProcessSnapshot {
    ProcessSnapshot::default()
}

/// The collector registered at the root of the registry (no prefix: `process_*` are the names
/// every Prometheus client library uses).
#[derive(Debug, Default)]
pub struct ProcessCollector;

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: Option<f64>,
) -> Result<(), std::fmt::Error> {
    if let Some(value) = value {
        let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        ConstGauge::new(value).encode(metric)?;
    }
    Ok(())
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = snapshot();
        if let Some(cpu) = now.cpu_seconds {
            let help = "Total user and system CPU time spent in seconds";
            let metric = encoder.encode_descriptor(
                "process_cpu_seconds",
                help,
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(cpu).encode(metric)?;
        }
        let as_f64 = |v: Option<u64>| v.map(|v| v as f64);
        let e = &mut encoder;
        gauge(
            e,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            as_f64(now.resident_bytes),
        )?;
        gauge(
            e,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            as_f64(now.virtual_bytes),
        )?;
        gauge(
            e,
            "process_open_fds",
            "Number of open file descriptors",
            as_f64(now.open_fds),
        )?;
        gauge(
            e,
            "process_max_fds",
            "Maximum number of open file descriptors",
            as_f64(now.max_fds),
        )?;
        gauge(
            e,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            now.start_time_seconds,
        )?;
        gauge(
            e,
            "process_threads",
            "Number of OS threads in the process",
            as_f64(now.threads),
        )
    }
}
