//! Counters of the media relay and their Prometheus rendering.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::media::latch::Refusal;

/// Direction a relayed packet travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the a-leg (caller) towards the b-leg (PBX).
    AToB,
    /// From the b-leg (PBX) towards the a-leg (caller).
    BToA,
}

/// Which of the two flows of a media stream a packet belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    /// Media packets, on the even port.
    Rtp,
    /// Control packets, on the odd port.
    Rtcp,
}

/// Why the relay did not forward a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The leg's source is settled (latched, or in strict mode its SDP address) and the packet
    /// came from elsewhere. Counts what reached the relay: once a flow is latched its socket is
    /// connected to the latched source and the kernel drops other sources' datagrams itself.
    ForeignSource,
    /// The packet came from a source other than the leg's SDP address while the flow was still
    /// learning (held back until that source may latch, or refused for good).
    Learning,
    /// The leg had announced no SDP address yet, so no source could be checked.
    Unsignalled,
    /// The packet inspector asked for the packet to be swallowed (or it continued the key press
    /// that started an attended transfer's consultation, which the target must not hear).
    Inspector,
    /// The operating system refused to send the packet.
    SendError,
    /// No address of the other leg is known yet.
    NoDestination,
    /// The leg it was going to is held, or hears a sound the proxy plays instead.
    Replaced,
    /// It came from the leg an attended transfer parks while the transferor consults the
    /// target: nobody hears the transferee meanwhile.
    Parked,
}

impl From<Refusal> for DropReason {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::ForeignSource => DropReason::ForeignSource,
            Refusal::Learning => DropReason::Learning,
            Refusal::Unsignalled => DropReason::Unsignalled,
        }
    }
}

/// Packet and byte counters of one (direction, kind) flow.
#[derive(Debug, Default)]
struct FlowCounters {
    packets: AtomicU64,
    bytes: AtomicU64,
}

/// Engine-wide relay counters, shared with the metrics endpoint. Stream relays add their own
/// tallies here in batches (every tick), so the per-packet path touches no shared memory.
#[derive(Debug, Default)]
pub struct MediaStats {
    a_to_b_rtp: FlowCounters,
    a_to_b_rtcp: FlowCounters,
    b_to_a_rtp: FlowCounters,
    b_to_a_rtcp: FlowCounters,
    dropped_foreign_source: AtomicU64,
    dropped_learning: AtomicU64,
    dropped_unsignalled: AtomicU64,
    dropped_inspector: AtomicU64,
    dropped_send_error: AtomicU64,
    dropped_no_destination: AtomicU64,
    dropped_replaced: AtomicU64,
    dropped_parked: AtomicU64,
    events_dropped: AtomicU64,
    /// Of the relayed packets, those the kernel fast path forwarded.
    kernel_packets: AtomicU64,
    /// Packets the kernel fast path matched but left to the socket (no route).
    kernel_declined: AtomicU64,
    ports_in_use: AtomicU64,
    streams_active: AtomicU64,
    /// One per relay worker thread, in worker order (empty for stats without workers).
    workers: Box<[WorkerLoad]>,
}

/// What one relay worker thread carries: published by the worker at each tick and by the
/// engine as it places streams. The engine places new calls by it (`relay::placement`), and
/// `/metrics` shows it so an operator can see how the media load spreads over threads.
#[derive(Debug, Default)]
pub struct WorkerLoad {
    /// Share of one CPU the thread used over its last tick, in millionths.
    cpu_ppm: AtomicU32,
    /// Streams the worker ran when it measured `cpu_ppm`.
    measured_streams: AtomicU32,
    /// Readiness reports (about one per packet received) a second over the same tick.
    packet_rate: AtomicU32,
    /// Streams placed on the worker and not yet stopped (the engine's count, current at once).
    placed: AtomicU32,
    /// The worker thread has left its loop (an error or a bug): it takes no new calls.
    stopped: AtomicBool,
}

impl WorkerLoad {
    /// Share of one CPU the worker used over its last tick (0.0 to 1.0).
    pub fn cpu_share(&self) -> f64 {
        f64::from(self.cpu_ppm.load(Ordering::Relaxed)) / 1e6
    }

    /// Streams the worker ran when it last measured its CPU share.
    pub fn measured_streams(&self) -> u32 {
        self.measured_streams.load(Ordering::Relaxed)
    }

    /// Packets a second the worker received over its last tick.
    pub fn packet_rate(&self) -> u32 {
        self.packet_rate.load(Ordering::Relaxed)
    }

    /// Streams placed on the worker and not yet stopped.
    pub fn placed(&self) -> u32 {
        self.placed.load(Ordering::Relaxed)
    }

    /// Whether the worker thread has left its loop.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// The worker thread left its loop.
    pub(crate) fn mark_stopped(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// The worker's measurement at a tick: `cpu_share` of one CPU with `streams` running and
    /// `packet_rate` packets a second received.
    pub(crate) fn publish(&self, cpu_share: f64, streams: usize, packet_rate: f64) {
        let ppm = (cpu_share.clamp(0.0, 1.0) * 1e6).round() as u32;
        self.cpu_ppm.store(ppm, Ordering::Relaxed);
        let streams = u32::try_from(streams).unwrap_or(u32::MAX);
        self.measured_streams.store(streams, Ordering::Relaxed);
        // Float to integer casts saturate: a negative or NaN rate is 0.
        self.packet_rate
            .store(packet_rate.round() as u32, Ordering::Relaxed);
    }

    /// A stream was placed on the worker.
    pub(crate) fn stream_placed(&self) {
        self.placed.fetch_add(1, Ordering::Relaxed);
    }

    /// A stream placed on the worker stopped (saturating, like the engine-wide gauge).
    pub(crate) fn stream_removed(&self) {
        let _ = self
            .placed
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
    }
}

impl MediaStats {
    /// Counters for an engine with `workers` relay threads.
    pub fn with_workers(workers: usize) -> Self {
        Self {
            workers: (0..workers).map(|_| WorkerLoad::default()).collect(),
            ..Self::default()
        }
    }

    /// The load of each relay worker, in worker order.
    pub fn workers(&self) -> &[WorkerLoad] {
        &self.workers
    }

    /// Packets relayed so far in `direction` for `kind`.
    pub fn packets(&self, direction: Direction, kind: PacketKind) -> u64 {
        self.flow(direction, kind).packets.load(Ordering::Relaxed)
    }

    /// Bytes (UDP payload) relayed so far in `direction` for `kind`.
    pub fn bytes(&self, direction: Direction, kind: PacketKind) -> u64 {
        self.flow(direction, kind).bytes.load(Ordering::Relaxed)
    }

    /// Packets dropped so far for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drop_counter(reason).load(Ordering::Relaxed)
    }

    /// Media events lost because the application's event channel was full.
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped.load(Ordering::Relaxed)
    }

    /// UDP ports currently held by the engine.
    pub fn ports_in_use(&self) -> u64 {
        self.ports_in_use.load(Ordering::Relaxed)
    }

    /// Relay tasks currently running (one per media stream).
    pub fn streams_active(&self) -> u64 {
        self.streams_active.load(Ordering::Relaxed)
    }

    /// Appends the counters in Prometheus text exposition format.
    pub fn render_prometheus(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP metaflow_proxy_rtp_packets_total Packets relayed by the media proxy.\n\
             # TYPE metaflow_proxy_rtp_packets_total counter"
        );
        for (direction, kind, label_dir, label_kind) in FLOWS {
            let value = self.packets(direction, kind);
            let _ = writeln!(
                out,
                "metaflow_proxy_rtp_packets_total{{direction=\"{label_dir}\",kind=\"{label_kind}\"}} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP metaflow_proxy_rtp_bytes_total UDP payload bytes relayed by the media proxy.\n\
             # TYPE metaflow_proxy_rtp_bytes_total counter"
        );
        for (direction, kind, label_dir, label_kind) in FLOWS {
            let value = self.bytes(direction, kind);
            let _ = writeln!(
                out,
                "metaflow_proxy_rtp_bytes_total{{direction=\"{label_dir}\",kind=\"{label_kind}\"}} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP metaflow_proxy_rtp_dropped_total Packets not relayed, by reason.\n\
             # TYPE metaflow_proxy_rtp_dropped_total counter"
        );
        for (reason, label) in DROP_REASONS {
            let value = self.dropped(reason);
            let _ = writeln!(
                out,
                "metaflow_proxy_rtp_dropped_total{{reason=\"{label}\"}} {value}"
            );
        }
        let gauges = [
            (
                "metaflow_proxy_media_events_dropped_total",
                "counter",
                "Media events lost because the event channel was full.",
                self.events_dropped(),
            ),
            (
                "metaflow_proxy_rtp_kernel_packets_total",
                "counter",
                "Of the packets relayed, those the kernel fast path forwarded (media-fastpath).",
                self.kernel_packets(),
            ),
            (
                "metaflow_proxy_rtp_kernel_declined_total",
                "counter",
                "Packets the kernel fast path matched but left to the userspace relay (no route to the destination).",
                self.kernel_declined(),
            ),
            (
                "metaflow_proxy_ports_in_use",
                "gauge",
                "UDP ports held for media.",
                self.ports_in_use(),
            ),
            (
                "metaflow_proxy_streams_active",
                "gauge",
                "Media streams being relayed.",
                self.streams_active(),
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        self.render_workers(out);
    }

    fn render_workers(&self, out: &mut String) {
        self.render_per_worker(
            out,
            "metaflow_proxy_media_worker_cpu_ratio",
            "Share of one CPU each relay worker thread used over its last tick (500 ms).",
            |load| load.cpu_share().to_string(),
        );
        self.render_per_worker(
            out,
            "metaflow_proxy_media_worker_streams",
            "Media streams placed on each relay worker (one its worker could not start counts until its call ends).",
            |load| load.placed().to_string(),
        );
    }

    /// One gauge with a `worker` label per relay worker (nothing without workers).
    fn render_per_worker(
        &self,
        out: &mut String,
        name: &str,
        help: &str,
        value: impl Fn(&WorkerLoad) -> String,
    ) {
        if self.workers.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (index, load) in self.workers.iter().enumerate() {
            let _ = writeln!(out, "{name}{{worker=\"{index}\"}} {}", value(load));
        }
    }

    /// Of the packets relayed, how many the kernel fast path forwarded.
    pub fn kernel_packets(&self) -> u64 {
        self.kernel_packets.load(Ordering::Relaxed)
    }

    /// Packets the kernel fast path matched but left to the socket for want of a route.
    pub fn kernel_declined(&self) -> u64 {
        self.kernel_declined.load(Ordering::Relaxed)
    }

    /// Adds what the kernel path did for one flow since it was last read.
    pub(crate) fn kernel_counted(&self, packets: u64, declined: u64) {
        if packets != 0 {
            self.kernel_packets.fetch_add(packets, Ordering::Relaxed);
        }
        if declined != 0 {
            self.kernel_declined.fetch_add(declined, Ordering::Relaxed);
        }
    }

    pub(crate) fn set_ports_in_use(&self, ports: usize) {
        let ports = u64::try_from(ports).unwrap_or(u64::MAX);
        self.ports_in_use.store(ports, Ordering::Relaxed);
    }

    pub(crate) fn stream_started(&self) {
        self.streams_active.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stream_stopped(&self) {
        // Saturating: never wraps even if starts and stops were ever mismatched.
        let _ = self
            .streams_active
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
    }

    pub(crate) fn event_dropped(&self) {
        self.events_dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn flow(&self, direction: Direction, kind: PacketKind) -> &FlowCounters {
        match (direction, kind) {
            (Direction::AToB, PacketKind::Rtp) => &self.a_to_b_rtp,
            (Direction::AToB, PacketKind::Rtcp) => &self.a_to_b_rtcp,
            (Direction::BToA, PacketKind::Rtp) => &self.b_to_a_rtp,
            (Direction::BToA, PacketKind::Rtcp) => &self.b_to_a_rtcp,
        }
    }

    fn drop_counter(&self, reason: DropReason) -> &AtomicU64 {
        match reason {
            DropReason::ForeignSource => &self.dropped_foreign_source,
            DropReason::Learning => &self.dropped_learning,
            DropReason::Unsignalled => &self.dropped_unsignalled,
            DropReason::Inspector => &self.dropped_inspector,
            DropReason::SendError => &self.dropped_send_error,
            DropReason::NoDestination => &self.dropped_no_destination,
            DropReason::Replaced => &self.dropped_replaced,
            DropReason::Parked => &self.dropped_parked,
        }
    }
}

const FLOWS: [(Direction, PacketKind, &str, &str); 4] = [
    (Direction::AToB, PacketKind::Rtp, "a_to_b", "rtp"),
    (Direction::AToB, PacketKind::Rtcp, "a_to_b", "rtcp"),
    (Direction::BToA, PacketKind::Rtp, "b_to_a", "rtp"),
    (Direction::BToA, PacketKind::Rtcp, "b_to_a", "rtcp"),
];

const DROP_REASONS: [(DropReason, &str); 8] = [
    (DropReason::ForeignSource, "foreign_source"),
    (DropReason::Learning, "learning"),
    (DropReason::Unsignalled, "unsignalled"),
    (DropReason::Inspector, "inspector"),
    (DropReason::SendError, "send_error"),
    (DropReason::NoDestination, "no_destination"),
    (DropReason::Replaced, "replaced"),
    (DropReason::Parked, "parked"),
];

/// Plain (non-atomic) tallies kept by one stream's relay and added to `MediaStats` in batches.
#[derive(Debug, Default)]
pub(crate) struct LocalCounters {
    /// Packets and bytes per flow, in `FLOWS` order.
    relayed: [(u64, u64); 4],
    /// Drops per reason, in `DROP_REASONS` order.
    dropped: [u64; 8],
    /// Whether anything was counted since the last flush.
    dirty: bool,
}

impl LocalCounters {
    /// Counts one relayed packet of `len` bytes.
    pub(crate) fn relayed(&mut self, direction: Direction, kind: PacketKind, len: usize) {
        self.relayed_many(direction, kind, 1, u64::try_from(len).unwrap_or(0));
    }

    /// Counts `packets` packets of `bytes` payload bytes in all relayed in `direction` (the
    /// kernel path's counts, read every tick).
    pub(crate) fn relayed_many(
        &mut self,
        direction: Direction,
        kind: PacketKind,
        packets: u64,
        bytes: u64,
    ) {
        let slot = match (direction, kind) {
            (Direction::AToB, PacketKind::Rtp) => &mut self.relayed[0],
            (Direction::AToB, PacketKind::Rtcp) => &mut self.relayed[1],
            (Direction::BToA, PacketKind::Rtp) => &mut self.relayed[2],
            (Direction::BToA, PacketKind::Rtcp) => &mut self.relayed[3],
        };
        slot.0 += packets;
        slot.1 += bytes;
        self.dirty = true;
    }

    /// Counts one packet dropped for `reason`.
    pub(crate) fn dropped(&mut self, reason: DropReason) {
        let slot = match reason {
            DropReason::ForeignSource => &mut self.dropped[0],
            DropReason::Learning => &mut self.dropped[1],
            DropReason::Unsignalled => &mut self.dropped[2],
            DropReason::Inspector => &mut self.dropped[3],
            DropReason::SendError => &mut self.dropped[4],
            DropReason::NoDestination => &mut self.dropped[5],
            DropReason::Replaced => &mut self.dropped[6],
            DropReason::Parked => &mut self.dropped[7],
        };
        *slot += 1;
        self.dirty = true;
    }

    /// Adds the tallies to the shared counters and starts over from zero.
    pub(crate) fn flush_into(&mut self, stats: &MediaStats) {
        if !self.dirty {
            return;
        }
        for ((direction, kind, _, _), (packets, bytes)) in FLOWS.iter().zip(self.relayed) {
            let flow = stats.flow(*direction, *kind);
            flow.packets.fetch_add(packets, Ordering::Relaxed);
            flow.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        for ((reason, _), count) in DROP_REASONS.iter().zip(self.dropped) {
            stats
                .drop_counter(*reason)
                .fetch_add(count, Ordering::Relaxed);
        }
        *self = Self::default();
    }
}

impl crate::metrics::MetricsSource for MediaStats {
    fn render_prometheus(&self, out: &mut String) {
        MediaStats::render_prometheus(self, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_tallies_reach_the_shared_counters_and_render() {
        let stats = MediaStats::default();
        let mut local = LocalCounters::default();
        local.relayed(Direction::AToB, PacketKind::Rtp, 172);
        local.relayed(Direction::AToB, PacketKind::Rtp, 172);
        local.relayed(Direction::BToA, PacketKind::Rtcp, 80);
        local.dropped(DropReason::ForeignSource);
        local.dropped(DropReason::Learning);
        local.dropped(DropReason::Learning);
        assert_eq!(stats.packets(Direction::AToB, PacketKind::Rtp), 0);
        local.flush_into(&stats);
        local.flush_into(&stats);
        assert_eq!(stats.packets(Direction::AToB, PacketKind::Rtp), 2);
        assert_eq!(stats.bytes(Direction::AToB, PacketKind::Rtp), 344);
        assert_eq!(stats.packets(Direction::BToA, PacketKind::Rtcp), 1);
        assert_eq!(stats.dropped(DropReason::ForeignSource), 1);
        assert_eq!(stats.dropped(DropReason::Learning), 2);
        assert_eq!(stats.dropped(DropReason::Unsignalled), 0);
        stats.set_ports_in_use(8);

        let mut text = String::new();
        stats.render_prometheus(&mut text);
        assert!(
            text.contains(
                "metaflow_proxy_rtp_packets_total{direction=\"a_to_b\",kind=\"rtp\"} 2\n"
            )
        );
        assert!(
            text.contains(
                "metaflow_proxy_rtp_bytes_total{direction=\"b_to_a\",kind=\"rtcp\"} 80\n"
            )
        );
        assert!(text.contains("metaflow_proxy_rtp_dropped_total{reason=\"foreign_source\"} 1\n"));
        assert!(text.contains("metaflow_proxy_rtp_dropped_total{reason=\"learning\"} 2\n"));
        assert!(text.contains("metaflow_proxy_rtp_dropped_total{reason=\"unsignalled\"} 0\n"));
        assert!(text.contains("metaflow_proxy_rtp_dropped_total{reason=\"send_error\"} 0\n"));
        assert!(text.contains("metaflow_proxy_ports_in_use 8\n"));
        assert!(text.contains("# TYPE metaflow_proxy_streams_active gauge\n"));
    }

    #[test]
    fn stream_gauge_never_wraps_below_zero() {
        let stats = MediaStats::default();
        stats.stream_started();
        stats.stream_stopped();
        stats.stream_stopped();
        assert_eq!(stats.streams_active(), 0);
    }
}
