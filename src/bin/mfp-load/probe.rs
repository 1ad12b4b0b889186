//! Readings taken from outside the proxy: its CPU time and resident memory from /proc, and its
//! relayed-packet counters from GET /metrics.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::error::LoadError;

/// Name the proxy's process has in /proc/<pid>/comm.
const PROXY_COMM: &str = "metaflow-proxy";
/// Connect, read and write limit for the metrics request.
const HTTP_TIMEOUT: Duration = Duration::from_secs(3);

/// Finds the proxy: `explicit` if given, else the single process named `metaflow-proxy`.
pub(crate) fn find_proxy_pid(explicit: Option<u32>) -> Result<u32, String> {
    if let Some(pid) = explicit {
        return if std::path::Path::new(&format!("/proc/{pid}/stat")).exists() {
            Ok(pid)
        } else {
            Err(format!("no process {pid} in /proc"))
        };
    }
    let mut found = Vec::new();
    let entries = std::fs::read_dir("/proc").map_err(|e| format!("cannot list /proc: {e}"))?;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == PROXY_COMM {
            found.push(pid);
        }
    }
    match found.as_slice() {
        [pid] => Ok(*pid),
        [] => Err(format!("no process named {PROXY_COMM}; give --proxy-pid")),
        many => Err(format!(
            "several processes named {PROXY_COMM} {many:?}; give --proxy-pid"
        )),
    }
}

/// Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`, else Linux's 100).
pub(crate) fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks: &u64| ticks > 0)
        .unwrap_or(100)
}

/// User plus system CPU time of `pid` so far, in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name start at field 3 (state); utime is 14.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Busy CPU time of the whole machine so far (every CPU: user, nice, system, irq, softirq,
/// steal), in clock ticks, from /proc/stat. Work the kernel does in softirq context (a packet
/// forwarded by the kernel fast path) is charged to no process of its own, so only the machine's
/// total shows what a relay costs there.
pub(crate) fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
    let busy = [0usize, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| fields.get(i))
        .sum();
    Some(busy)
}

/// Resident memory of `pid` in KiB (VmRSS).
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Fetches /metrics and sums `metaflow_proxy_rtp_packets_total` samples with `kind="rtp"`.
pub(crate) fn relayed_rtp_packets(api: SocketAddr) -> Result<u64, LoadError> {
    let text = fetch_metrics(api).map_err(|reason| LoadError::Metrics { addr: api, reason })?;
    Ok(sum_rtp_packets(&text))
}

fn fetch_metrics(api: SocketAddr) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&api, HTTP_TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(HTTP_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(HTTP_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    // HTTP/1.0 so the body is delimited by the connection close, never chunked.
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {api}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&reply).into_owned();
    let status_ok = text
        .lines()
        .next()
        .is_some_and(|line| line.split_whitespace().nth(1) == Some("200"));
    if status_ok {
        Ok(text)
    } else {
        Err(format!(
            "unexpected reply `{}`",
            text.lines().next().unwrap_or("")
        ))
    }
}

/// Sums the RTP (not RTCP) packet counters over both directions.
fn sum_rtp_packets(text: &str) -> u64 {
    text.lines()
        .filter(|line| line.starts_with("metaflow_proxy_rtp_packets_total{"))
        .filter(|line| line.contains("kind=\"rtp\""))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_rtp_counters_of_both_directions_only() {
        let text = "# TYPE metaflow_proxy_rtp_packets_total counter\n\
            metaflow_proxy_rtp_packets_total{direction=\"a_to_b\",kind=\"rtp\"} 10\n\
            metaflow_proxy_rtp_packets_total{direction=\"b_to_a\",kind=\"rtp\"} 7\n\
            metaflow_proxy_rtp_packets_total{direction=\"a_to_b\",kind=\"rtcp\"} 3\n\
            metaflow_proxy_rtp_bytes_total{direction=\"a_to_b\",kind=\"rtp\"} 999\n";
        assert_eq!(sum_rtp_packets(text), 17);
    }

    #[test]
    fn reads_this_process_from_proc() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_some());
        assert!(rss_kib(pid).unwrap() > 0);
    }
}
