//! The media phase: builds the paced streams of every set-up call plus the direct baseline pairs,
//! runs them for the configured duration with a progress line per second, and reads the proxy's
//! CPU, memory and packet counters around it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::endpoints::{Endpoint, Endpoints};
use crate::error::LoadError;
use crate::probe;
use crate::report::{Progress, ProxyReadings, print_progress};
use crate::rtp::{PACKET_INTERVAL, Pacing, SendStream, start_senders};
use crate::tally::{Direction, Path, Tally};
use crate::uac::{CallState, Uac};

/// Time given to packets still in flight after the last send.
const DRAIN: Duration = Duration::from_millis(500);
/// Delay between building the streams and the first packet.
const LEAD_IN: Duration = Duration::from_millis(100);

/// The streams of a run and the path and direction of each.
pub(crate) struct Plan {
    /// Streams in index order.
    pub streams: Vec<SendStream>,
    /// Path and direction of each stream index.
    pub table: Vec<(Path, Direction)>,
    /// Calls with both directions planned.
    pub calls_up: u32,
}

/// Where baseline pair `index` sends: straight to the other endpoint, or (with `via`) to the
/// plain relay's socket for that side of the pair (a side PORT+2i, b side PORT+2i+1).
pub(crate) fn baseline_destinations(
    endpoints: &Endpoints,
    via: Option<SocketAddr>,
    rtpengine: Option<SocketAddr>,
) -> Result<Vec<(SocketAddr, SocketAddr)>, LoadError> {
    if let Some(control) = rtpengine {
        return endpoints
            .direct
            .iter()
            .enumerate()
            .map(|(index, (a, b))| crate::ng::set_up_pair(control, index, a.addr, b.addr))
            .collect();
    }
    endpoints
        .direct
        .iter()
        .enumerate()
        .map(|(index, (a, b))| match via {
            None => Ok((b.addr, a.addr)),
            Some(via) => {
                let port = |side: usize| {
                    u16::try_from(index * 2 + side)
                        .ok()
                        .and_then(|offset| via.port().checked_add(offset))
                        .map(|port| SocketAddr::new(via.ip(), port))
                        .ok_or(LoadError::ViaPorts(via))
                };
                Ok((port(0)?, port(1)?))
            }
        })
        .collect()
}

/// Plans a→b and b→a streams for each call set up on both sides, then every baseline pair,
/// sending to `baseline[i]` (a side's destination, b side's destination).
pub(crate) fn plan(
    endpoints: &Endpoints,
    uac: &Uac,
    pbx_media: &[Option<SocketAddr>],
    baseline: &[(SocketAddr, SocketAddr)],
) -> Result<Plan, LoadError> {
    let mut plan = Plan {
        streams: Vec::new(),
        table: Vec::new(),
        calls_up: 0,
    };
    for (index, call) in uac.calls.iter().enumerate() {
        let anchors = (call.proxy_media, pbx_media.get(index).copied().flatten());
        let (CallState::Established, (Some(a_anchor), Some(b_anchor))) = (&call.state, anchors)
        else {
            continue;
        };
        let (Some(caller), Some(pbx)) = (endpoints.caller.get(index), endpoints.pbx.get(index))
        else {
            continue;
        };
        let call_index = u32::try_from(index).ok();
        plan.push(call_index, caller, a_anchor, Path::Proxied, Direction::AToB)?;
        plan.push(call_index, pbx, b_anchor, Path::Proxied, Direction::BToA)?;
        plan.calls_up += 1;
    }
    for ((a, b), (a_dest, b_dest)) in endpoints.direct.iter().zip(baseline) {
        plan.push(None, a, *a_dest, Path::Direct, Direction::AToB)?;
        plan.push(None, b, *b_dest, Path::Direct, Direction::BToA)?;
    }
    Ok(plan)
}

impl Plan {
    fn push(
        &mut self,
        call: Option<u32>,
        endpoint: &Endpoint,
        dest: SocketAddr,
        path: Path,
        direction: Direction,
    ) -> Result<(), LoadError> {
        let id = self.streams.len() as u32;
        self.streams.push(SendStream {
            id,
            call,
            socket: endpoint.socket.try_clone()?,
            group: endpoint.group,
            dest,
            path,
            direction,
            rtp_seq: fastrand::u16(..),
            rtp_timestamp: fastrand::u32(..),
            sent: 0,
        });
        self.table.push((path, direction));
        Ok(())
    }
}

/// What the media phase needs besides the streams.
pub(crate) struct MediaRun<'a> {
    /// Seconds of media.
    pub duration: u64,
    /// Sender threads.
    pub sender_threads: usize,
    /// Whether streams share sockets, so sends go out in batches.
    pub batched: bool,
    /// The tool's clock origin.
    pub epoch: Instant,
    /// Proxy process, if known.
    pub pid: Option<u32>,
    /// The baseline relay's process (`--direct-via-pid`), if any.
    pub baseline_pid: Option<u32>,
    /// Proxy API address.
    pub api: SocketAddr,
    /// Counters shared with the receivers.
    pub tally: &'a Arc<Tally>,
}

/// Runs the media phase; returns the streams (for the DTMF phase) and the proxy readings.
pub(crate) fn run(
    run: &MediaRun<'_>,
    streams: Vec<SendStream>,
    uac: &mut Uac,
) -> Result<(Vec<SendStream>, ProxyReadings), LoadError> {
    let ticks_per_second = probe::clock_ticks_per_second() as f64;
    let mut readings = ProxyReadings {
        rss_media_kib: None,
        ..ProxyReadings::default()
    };
    let relayed_before = probe::relayed_rtp_packets(run.api)?;
    let received_before = run.tally.totals(Path::Proxied).1;
    let baseline_received_before = run.tally.totals(Path::Direct).1;
    let cpu_before = run.pid.and_then(probe::cpu_ticks);
    let machine_before = probe::machine_busy_ticks();
    let baseline_cpu_before = run.baseline_pid.and_then(probe::cpu_ticks);
    let start = Instant::now() + LEAD_IN;
    let pacing = Pacing {
        epoch: run.epoch,
        start,
        packets: u32::try_from(run.duration * 1000 / PACKET_INTERVAL.as_millis() as u64)
            .unwrap_or(u32::MAX),
    };
    let handles = start_senders(streams, run.sender_threads, run.batched, &pacing, run.tally)?;
    let mut last = (0u64, 0u64);
    let mut second = 0u64;
    while handles.iter().any(|h| !h.is_finished()) {
        second += 1;
        uac.poll(start + Duration::from_secs(second));
        let (ps, pr) = run.tally.totals(Path::Proxied);
        let (ds, dr) = run.tally.totals(Path::Direct);
        let (sent, received) = (ps + ds, pr + dr);
        print_progress(&Progress {
            second,
            sent_pps: sent - last.0,
            received_pps: received.saturating_sub(last.1),
            proxied_outstanding: ps.saturating_sub(pr),
            direct_outstanding: ds.saturating_sub(dr),
        });
        last = (sent, received);
        if let Some(rss) = run.pid.and_then(probe::rss_kib) {
            readings.rss_media_kib = Some(readings.rss_media_kib.map_or(rss, |m| m.max(rss)));
        }
    }
    let mut streams = Vec::new();
    for handle in handles {
        if let Ok(share) = handle.join() {
            streams.extend(share);
        }
    }
    uac.poll(Instant::now() + DRAIN);
    readings.wall = start.elapsed();
    readings.received_in_window = run.tally.totals(Path::Proxied).1 - received_before;
    readings.baseline_received_in_window =
        run.tally.totals(Path::Direct).1 - baseline_received_before;
    let cpu_after = run.pid.and_then(probe::cpu_ticks);
    let machine_after = probe::machine_busy_ticks();
    let baseline_cpu_after = run.baseline_pid.and_then(probe::cpu_ticks);
    readings.relayed = probe::relayed_rtp_packets(run.api)?.saturating_sub(relayed_before);
    let seconds = |before: Option<u64>, after: Option<u64>| {
        before
            .zip(after)
            .map(|(b, a)| a.saturating_sub(b) as f64 / ticks_per_second)
    };
    readings.cpu_seconds = seconds(cpu_before, cpu_after);
    readings.machine_cpu_seconds = seconds(machine_before, machine_after);
    readings.baseline_cpu_seconds = seconds(baseline_cpu_before, baseline_cpu_after);
    streams.sort_by_key(|s| s.id);
    Ok((streams, readings))
}
