//! The end-of-run summary: loss per direction, added latency against the direct baseline, the
//! proxy's CPU per relayed packet and memory per call, and DTMF-to-action latency.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::histogram::Histogram;
use crate::tally::{Direction, Path, Tally};

/// Quantiles reported for one-way latency.
const QUANTILES: [(f64, &str); 3] = [(0.5, "p50"), (0.99, "p99"), (0.999, "p99.9")];

/// Readings of the proxy process over the media phase (all optional: it may run elsewhere).
#[derive(Default)]
pub(crate) struct ProxyReadings {
    /// CPU seconds (user + system) the proxy spent during the media phase.
    pub cpu_seconds: Option<f64>,
    /// Wall time of the media phase.
    pub wall: Duration,
    /// Increase of metaflow_proxy_rtp_packets_total{kind="rtp"} over the media phase.
    pub relayed: u64,
    /// Proxied packets this tool received over the same window.
    pub received_in_window: u64,
    /// CPU seconds of the `--direct-via` relay over the same window, if its pid was given.
    pub baseline_cpu_seconds: Option<f64>,
    /// Baseline packets this tool received over the same window.
    pub baseline_received_in_window: u64,
    /// Busy CPU seconds of the whole machine (every process and the kernel's softirq work)
    /// during the media phase.
    pub machine_cpu_seconds: Option<f64>,
    /// VmRSS before any call, KiB.
    pub rss_before_kib: Option<u64>,
    /// Highest VmRSS seen during the media phase, KiB.
    pub rss_media_kib: Option<u64>,
}

/// Everything the summary prints.
pub(crate) struct Summary<'a> {
    /// Calls asked for.
    pub calls_wanted: u32,
    /// Calls that carried media.
    pub calls_up: u32,
    /// Caller-side end states, named, with counts.
    pub call_states: BTreeMap<String, u32>,
    /// Direct baseline pairs.
    pub direct_pairs: u32,
    /// The relay the baseline pairs went through (`--direct-via`), if not direct.
    pub direct_via: Option<std::net::SocketAddr>,
    /// Media counters.
    pub tally: &'a Tally,
    /// Proxy-side readings.
    pub proxy: ProxyReadings,
    /// DTMF-to-action results, one per measured span (empty without a DTMF phase).
    pub dtmf: Vec<DtmfOutcome>,
}

/// What the DTMF phase measured for one span (code-completing packet to one message).
pub(crate) struct DtmfOutcome {
    /// What the span covers, e.g. "`*0` to BYE at the caller".
    pub label: &'static str,
    /// The message that ends the span, e.g. "BYE".
    pub awaited: &'static str,
    /// Time from the code-completing packet to the message, per call.
    pub latencies: Vec<Duration>,
    /// Calls that pressed the code but never saw the message.
    pub missing: usize,
    /// Calls whose message came before the code was complete.
    pub early: usize,
}

fn micros(nanos: u64) -> f64 {
    nanos as f64 / 1000.0
}

fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::AToB => "a->b",
        Direction::BToA => "b->a",
    }
}

fn quantiles(histogram: &Histogram) -> [Option<u64>; 3] {
    QUANTILES.map(|(q, _)| histogram.quantile(q))
}

fn fmt_us(value: Option<u64>) -> String {
    value.map_or("n/a".into(), |v| format!("{:.1} us", micros(v)))
}

/// Prints the summary to stdout.
pub(crate) fn print(summary: &Summary<'_>) {
    println!("== mfp-load summary ==");
    println!(
        "calls: {} wanted, {} carried media; caller end states: {:?}",
        summary.calls_wanted, summary.calls_up, summary.call_states
    );
    match summary.direct_via {
        None => println!(
            "direct baseline: {} endpoint pairs sending concurrently without the proxy",
            summary.direct_pairs
        ),
        Some(via) => println!(
            "baseline (\"direct\" below): {} endpoint pairs sending concurrently through the \
             relay at {via} (mfp-plain-relay, or rtpengine with --direct-via-rtpengine)",
            summary.direct_pairs
        ),
    }
    print_loss(summary.tally);
    print_latency(summary.tally);
    print_proxy(&summary.proxy, summary.calls_up);
    if summary.direct_via.is_some() {
        print_baseline_relay(&summary.proxy);
    }
    for outcome in &summary.dtmf {
        print_dtmf(outcome);
    }
}

fn print_loss(tally: &Tally) {
    println!("packets:");
    for path in [Path::Proxied, Path::Direct] {
        for direction in [Direction::AToB, Direction::BToA] {
            let flow = tally.flow(path, direction);
            let sent = flow.sent.load(Ordering::Relaxed);
            let received = flow.received.load(Ordering::Relaxed);
            let lost = sent.saturating_sub(received);
            let share = if sent == 0 {
                0.0
            } else {
                100.0 * lost as f64 / sent as f64
            };
            println!(
                "  {:<7} {}: sent {sent}, received {received}, lost {lost} ({share:.3} %)",
                path_name(path),
                direction_name(direction)
            );
        }
    }
    let errors = tally.send_errors.load(Ordering::Relaxed);
    let strays = tally.strays.load(Ordering::Relaxed);
    println!("  send errors {errors}, stray packets {strays}");
}

fn path_name(path: Path) -> &'static str {
    match path {
        Path::Proxied => "proxied",
        Path::Direct => "direct",
    }
}

fn print_latency(tally: &Tally) {
    println!("one-way latency (send stamp to receive, same clock):");
    for direction in [Direction::AToB, Direction::BToA] {
        let proxied = quantiles(&tally.flow(Path::Proxied, direction).latency);
        let direct = quantiles(&tally.flow(Path::Direct, direction).latency);
        for (((_, name), p), d) in QUANTILES.iter().zip(proxied).zip(direct) {
            let added = match (p, d) {
                (Some(p), Some(d)) => format!("{:+.1} us", micros(p) - micros(d)),
                _ => "n/a".into(),
            };
            let ratio = match (p, d) {
                (Some(p), Some(d)) if d > 0 => format!("x{:.2}", p as f64 / d as f64),
                _ => "n/a".into(),
            };
            println!(
                "  {} {name:<5}: proxied {:>12}  direct {:>12}  added {added} ({ratio})",
                direction_name(direction),
                fmt_us(p),
                fmt_us(d)
            );
        }
    }
}

fn print_proxy(proxy: &ProxyReadings, calls_up: u32) {
    let wall = proxy.wall.as_secs_f64();
    println!("proxy over the media phase ({wall:.1} s):");
    println!(
        "  relayed RTP packets (metrics delta): {} ({:.0} pps)",
        proxy.relayed,
        proxy.relayed as f64 / wall.max(f64::EPSILON)
    );
    match proxy.cpu_seconds {
        Some(cpu) => {
            let per_packet = fmt_per_packet(micros_per_packet(cpu, proxy.relayed));
            let per_received = fmt_per_packet(micros_per_packet(cpu, proxy.received_in_window));
            println!(
                "  CPU: {cpu:.2} s ({:.2} cores); per relayed packet {per_packet} (metrics), \
                 {per_received} per packet received by this tool in the window ({})",
                cpu / wall.max(f64::EPSILON),
                proxy.received_in_window
            );
        }
        None => println!("  CPU: n/a (proxy process not found)"),
    }
    if let Some(machine) = proxy.machine_cpu_seconds {
        let packets = proxy.received_in_window + proxy.baseline_received_in_window;
        println!(
            "  whole machine: {machine:.2} s busy CPU ({:.2} cores), {} per packet received by \
             this tool (proxied and baseline, {packets}); compare runs of the same load to \
             price a relay, the kernel path included",
            machine / wall.max(f64::EPSILON),
            fmt_per_packet(micros_per_packet(machine, packets)),
        );
    }
    match (proxy.rss_before_kib, proxy.rss_media_kib) {
        (Some(before), Some(during)) => {
            let per_call = during.saturating_sub(before) as f64 / f64::from(calls_up.max(1));
            println!(
                "  VmRSS: {before} KiB before calls, {during} KiB peak during media; \
                 {per_call:.1} KiB per call"
            );
        }
        _ => println!("  VmRSS: n/a (proxy process not found)"),
    }
}

/// CPU microseconds per packet, if any packet was counted.
fn micros_per_packet(cpu_seconds: f64, packets: u64) -> Option<f64> {
    (packets > 0).then(|| cpu_seconds * 1e6 / packets as f64)
}

fn fmt_per_packet(micros: Option<f64>) -> String {
    micros.map_or("n/a".into(), |v| format!("{v:.2} us"))
}

/// CPU per packet of the `--direct-via` relay, and the proxy's as a multiple of it.
fn print_baseline_relay(proxy: &ProxyReadings) {
    let Some(cpu) = proxy.baseline_cpu_seconds else {
        println!("baseline relay: CPU n/a (give --direct-via-pid)");
        return;
    };
    let relay = micros_per_packet(cpu, proxy.baseline_received_in_window);
    let ours = proxy
        .cpu_seconds
        .and_then(|cpu| micros_per_packet(cpu, proxy.received_in_window));
    let ratio = match (ours, relay) {
        (Some(o), Some(r)) if r > 0.0 => format!("x{:.2}", o / r),
        _ => "n/a".into(),
    };
    println!(
        "baseline relay over the same window: CPU {cpu:.2} s for {} packets received by this tool, \
         {} per packet; proxy {} per packet received ({ratio})",
        proxy.baseline_received_in_window,
        fmt_per_packet(relay),
        fmt_per_packet(ours)
    );
}

fn print_dtmf(outcome: &DtmfOutcome) {
    let mut sorted: Vec<Duration> = outcome.latencies.clone();
    sorted.sort();
    let awaited = outcome.awaited;
    let pick = |q: f64| -> String {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
        sorted
            .get(rank - 1)
            .map_or("n/a".into(), |d| format!("{:.2} ms", d.as_secs_f64() * 1e3))
    };
    println!(
        "DTMF {}: {} calls measured, {} without {awaited}, {} {awaited} before the code was \
         complete; p50 {}, p99 {}, max {}",
        outcome.label,
        sorted.len(),
        outcome.missing,
        outcome.early,
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
}

/// Caller-side summary of one progress interval.
pub(crate) struct Progress {
    /// Seconds since the media phase started.
    pub second: u64,
    /// Packets sent per second over the last interval, both paths.
    pub sent_pps: u64,
    /// Packets received per second over the last interval, both paths.
    pub received_pps: u64,
    /// Proxied packets sent but not (yet) received, so far.
    pub proxied_outstanding: u64,
    /// Direct packets sent but not (yet) received, so far.
    pub direct_outstanding: u64,
}

/// Prints one progress line.
pub(crate) fn print_progress(p: &Progress) {
    eprintln!(
        "[{:>3}s] sent {} pps, received {} pps; not received so far: proxied {}, direct {}",
        p.second, p.sent_pps, p.received_pps, p.proxied_outstanding, p.direct_outstanding
    );
}

/// The hold phase next to the relay phase of the same run: the proxy's CPU per packet it sent
/// (relayed in the first, music it made in the second, while dropping what the endpoints sent).
pub(crate) fn print_hold(relay: &ProxyReadings, held: &ProxyReadings, music_received: u64) {
    let per_packet = |r: &ProxyReadings| {
        r.cpu_seconds
            .filter(|_| r.relayed > 0)
            .map(|cpu| cpu * 1e6 / r.relayed as f64)
    };
    println!("hold phase (music on hold both ways, the endpoints' audio dropped):");
    println!(
        "  packets the proxy sent: relay phase {}, hold phase {}; music packets the endpoints received: {}",
        relay.relayed, held.relayed, music_received
    );
    match (per_packet(relay), per_packet(held)) {
        (Some(r), Some(h)) => println!(
            "  proxy CPU per packet sent: relay {r:.2} µs, hold {h:.2} µs (hold/relay {:.2})",
            h / r
        ),
        _ => println!("  proxy CPU per packet sent: unknown (no proxy pid or no packets)"),
    }
}
