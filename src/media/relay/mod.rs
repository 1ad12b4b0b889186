//! The relay of one media stream: the state that moves packets between its four sockets, and
//! the worker threads that run it ([`worker`]).
//!
//! A worker's epoll loop hands each readiness report of a stream's socket to [`Relay`], which
//! receives one datagram into the worker's buffer, checks its source against the flow's latch,
//! inspects it and sends it on; instructions, the periodic tick and the injection timer reach it
//! from the same loop. The per-packet path allocates nothing, takes no lock and logs at trace
//! level only (at debug only when a flow latches, and for the first packet its latch refuses).
//!
//! With the kernel fast path (`kernel`), the flows that qualify are handed to the kernel once
//! latched and come back whenever they stop qualifying; only what the kernel leaves reaches the
//! sockets.

mod consult;
mod kernel;
mod meter;
mod placement;
mod worker;

pub(crate) use worker::{RelayWorkers, StreamControl};

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, trace};

use crate::base::{Gain, Leg, PlaybackId};
use crate::media::SharedTap;
use crate::media::activity::{CallActivity, Limits};
use crate::media::fastpath::{FastPath, KernelRoutes};
use crate::media::inspect::{InspectorConfig, InspectorEvent, PacketInspector, Verdict};
use crate::media::latch::{LatchDecision, LatchPolicy, Refusal};
use crate::media::playout::{G711Map, Outbound, PACKET_BUFFER_LEN, Playback};
use crate::media::prefetch::prefetch;
use crate::media::sockets::{Port, RelaySockets, StreamLatches};
use crate::media::stats::{Direction, DropReason, LocalCounters, MediaStats, PacketKind};
use crate::media::{CallKey, MediaEvent};

/// How often a stream publishes counters and activity and runs timeouts. Kept coarse: each
/// tick is a pass over every stream of a worker.
const TICK: Duration = Duration::from_millis(500);
/// Largest datagram relayed intact; RTP and RTCP stay far below it.
const RECV_BUFFER_LEN: usize = 8192;
/// Largest packet an inspector may synthesize (an RTP header plus a telephone-event is 16).
const INJECTION_BUFFER_LEN: usize = 64;

/// Instructions from the engine to a running stream's relay.
#[derive(Debug)]
pub(crate) enum Control {
    /// The SDP of `leg` announced where it receives RTP and RTCP.
    SetRemote {
        leg: Leg,
        rtp: SocketAddr,
        rtcp: SocketAddr,
    },
    /// The inspector's settings for packets sent by `from`.
    ConfigureInspector { from: Leg, cfg: InspectorConfig },
    /// The events withheld from `leg` were a code: forget them.
    DiscardHeld { leg: Leg },
    /// Another party took `leg`: its latched source is refused from now on.
    LegReplaced { leg: Leg },
    /// The events withheld from `leg` were no code: deliver `digits` to the other leg.
    ReleaseHeld { leg: Leg, digits: String },
    /// Copy every packet of both legs to a recorder (or stop copying).
    SetTap(Option<SharedTap>),
    /// Play a sound towards `to`, replacing what played there.
    Play { to: Leg, playback: Box<Playback> },
    /// Stop what plays towards `to` (only playback `id` when given).
    StopPlayback { to: Leg, id: Option<PlaybackId> },
    /// Forward nothing relayed towards `to` (or forward again).
    Hold { to: Leg, held: bool },
    /// Change the volume of what goes towards `to`.
    Gain { to: Leg, gain: Gain, map: G711Map },
    /// A third party joins (attended transfer): `talker` hears it through `rtp`/`rtcp`, the
    /// other leg is parked.
    Consult {
        talker: Leg,
        rtp: std::net::UdpSocket,
        rtcp: std::net::UdpSocket,
    },
    /// The consulted party's SDP announced where it receives.
    ConsultRemote { rtp: SocketAddr, rtcp: SocketAddr },
    /// The consulted party is gone: two parties again.
    CloseConsult,
    /// The consulted party takes `leg`'s place.
    ConsultTakes { leg: Leg },
}

/// Everything a stream's relay needs besides its sockets.
pub(crate) struct RelayContext {
    /// Call the stream belongs to, for events and logs.
    pub call: CallKey,
    /// The stream's m= line index, for events and logs.
    pub stream: usize,
    /// Where timeouts and inspector findings are offered (never awaited).
    pub events: mpsc::Sender<MediaEvent>,
    /// Engine-wide counters the relay flushes its tallies into.
    pub stats: Arc<MediaStats>,
    /// Timeout state shared with the call's other streams.
    pub activity: Arc<CallActivity>,
    /// Engine clock origin, shared by every stream so inspector times are comparable.
    pub clock: Instant,
    /// Zero disables the media timeout.
    pub media_timeout: Duration,
    /// The media timeout while every stream of the call is on hold; zero disables it.
    pub media_timeout_hold: Duration,
    /// Which sources each leg's packets are accepted from.
    pub latch: LatchPolicy,
    /// The kernel fast path, when the engine has one.
    pub fastpath: Option<Arc<FastPath>>,
}

impl Relay {
    /// The state of a stream about to be relayed: nothing latched, nothing connected.
    fn new(ctx: RelayContext, inspector: Option<Box<dyn PacketInspector>>) -> Self {
        let kernel = ctx.fastpath.as_deref().and_then(|fastpath| {
            KernelRoutes::new(fastpath)
                .map(Box::new)
                .map_err(
                    |err| debug!(%err, "kernel routes unavailable; this stream stays in userspace"),
                )
                .ok()
        });
        Relay {
            inspector,
            kernel,
            event_pt: [None; 2],
            inband: [false; 2],
            kernel_refused: [false; 4],
            dst_local: [None; 2],
            consult: None,
            last_event_ts: [None; 2],
            latches: StreamLatches::new(ctx.latch),
            ctx,
            counters: LocalCounters::default(),
            saw_media: false,
            tap: None,
            connected: [None; 4],
            refusal_logged: [false; 4],
            outbound: [
                Outbound::new(fastrand::u64(..)),
                Outbound::new(fastrand::u64(..)),
            ],
        }
    }
}

/// Per-stream relay state, separate from the sockets and the worker's buffer so they can be
/// borrowed apart.
///
/// `repr(C)` keeps the declared order: what every packet reads comes first, so that it sits in
/// a few neighbouring cache lines (a stream's state is cold when its next packet arrives, and
/// each line is a miss; see `media::prefetch`). What only a consultation or the kernel path
/// uses is boxed, out of the way.
#[repr(C)]
struct Relay {
    /// Inspector of this stream's RTP, if the engine has one.
    inspector: Option<Box<dyn PacketInspector>>,
    /// The third party an attended transfer consults, while it does.
    consult: Option<Box<consult::Consult>>,
    /// The flows the kernel forwards, when the engine has a fast path.
    kernel: Option<Box<KernelRoutes>>,
    /// Where copies of the packets go while the call is recorded.
    tap: Option<SharedTap>,
    /// Per sending leg: the RTP timestamp of its latest telephone-event, so the rest of the key
    /// press that started a consultation does not reach the consulted party.
    last_event_ts: [Option<u32>; 2],
    /// Whether RTP or RTCP the latch accepted arrived since the last tick.
    saw_media: bool,
    /// Per sending leg (a, b): the telephone-event payload type its RTP carries (those packets
    /// stay here, for the inspector), from the inspector's configuration.
    event_pt: [Option<u8>; 2],
    /// Per sending leg: whether its audio is listened to for tones (then it stays here).
    inband: [bool; 2],
    /// Whether a refusal was logged on each socket's flow since its latch last changed: the
    /// first one is logged at debug, the rest (a spray) at trace only.
    refusal_logged: [bool; 4],
    /// Per flow: the kernel found no route for it; it stays here for the stream's life.
    kernel_refused: [bool; 4],
    counters: LocalCounters,
    /// The peer each socket (in `Port::index` order) is connected to: the source its leg
    /// latched for good, never a source still being learnt (a stranger connected to would
    /// lock the real leg out). Connected sockets send without a per-packet route lookup and
    /// leave packets from other sources to the kernel to drop.
    connected: [Option<SocketAddr>; 4],
    latches: StreamLatches,
    /// What goes towards each leg (a-leg first) besides relayed packets: sounds, hold, volume,
    /// and the renumbering that keeps it one stream.
    outbound: [Outbound; 2],
    /// Per receiving leg: its address and whether it is one of this host's (cached: finding
    /// out costs a syscall).
    dst_local: [Option<(std::net::IpAddr, bool)>; 2],
    ctx: RelayContext,
}

impl Relay {
    fn apply(
        &mut self,
        msg: Control,
        sockets: &mut RelaySockets,
        registrar: &worker::Registrar<'_>,
    ) {
        match msg {
            Control::SetRemote { leg, rtp, rtcp } => {
                for (kind, addr) in [(PacketKind::Rtp, rtp), (PacketKind::Rtcp, rtcp)] {
                    let latch = self.latches.get_mut(leg, kind);
                    latch.set_signalled(addr);
                    if !latch.is_latched() {
                        let port = Port::of(leg, kind);
                        self.unconnect(sockets, port);
                        self.refusal_logged[port.index()] = false;
                    }
                }
            }
            Control::ConfigureInspector { from, cfg } => {
                let slot = leg_slot(from);
                self.event_pt[slot] = cfg.event_payload_type.map(|(pt, _)| pt);
                self.inband[slot] = cfg.inband.is_some();
                if let Some(inspector) = self.inspector.as_mut() {
                    inspector.configure(from, cfg);
                }
            }
            Control::LegReplaced { leg } => {
                for kind in [PacketKind::Rtp, PacketKind::Rtcp] {
                    self.latches.get_mut(leg, kind).depart();
                    let port = Port::of(leg, kind);
                    self.unconnect(sockets, port);
                    self.refusal_logged[port.index()] = false;
                }
            }
            Control::DiscardHeld { leg } => {
                if let Some(inspector) = self.inspector.as_mut() {
                    inspector.discard_held(leg);
                }
            }
            Control::ReleaseHeld { leg, digits } => {
                // The released digits continue the stream the kernel may have been forwarding.
                self.kernel_catch_up(Port::of(leg, PacketKind::Rtp));
                let now_us = micros_since(self.ctx.clock);
                if let Some(inspector) = self.inspector.as_mut() {
                    inspector.release_held(leg, &digits, now_us);
                }
            }
            Control::SetTap(tap) => self.tap = tap,
            Control::Play { to, playback } => {
                let now_us = micros_since(self.ctx.clock);
                self.outbound_mut(to).play(*playback, now_us);
            }
            Control::StopPlayback { to, id } => {
                self.outbound_mut(to).stop(id);
            }
            Control::Hold { to, held } => self.outbound_mut(to).set_held(held),
            Control::Gain { to, gain, map } => self.outbound_mut(to).set_gain(gain, map),
            Control::Consult { talker, rtp, rtcp } => {
                self.open_consult(talker, rtp, rtcp, registrar)
            }
            Control::ConsultRemote { rtp, rtcp } => self.consult_remote(rtp, rtcp),
            Control::CloseConsult => self.close_consult(),
            Control::ConsultTakes { leg } => self.consult_takes(sockets, leg, registrar),
        }
        self.sync_kernel(sockets);
    }

    fn outbound_mut(&mut self, to: Leg) -> &mut Outbound {
        match to {
            Leg::A => &mut self.outbound[0],
            Leg::B => &mut self.outbound[1],
        }
    }

    /// Reports the playbacks towards `to` that ended by themselves; what the event queue cannot
    /// take now stays for the next tick (a module waits for it).
    fn report_ended(&mut self, to: Leg) {
        while let Some((id, end)) = self.outbound_mut(to).next_ended() {
            let event = MediaEvent::Playback {
                call: self.ctx.call,
                to,
                id,
                end,
            };
            match self.ctx.events.try_send(event) {
                Ok(()) => self.outbound_mut(to).ended_sent(),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.ctx.stats.event_dropped();
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
    }

    /// Starts loading what relaying a packet that arrived on `port` reads, before the receive
    /// system call (see `media::prefetch`).
    fn prefetch(&self, port: Port) {
        let from = port.sender();
        prefetch(self.latches.get(from, port.kind()));
        // Where it goes: the other leg's latch, and whether the sending socket is connected.
        prefetch(self.latches.get(from.other(), port.kind()));
        prefetch(&self.connected[port.peer().index()]);
        prefetch(&self.counters);
        prefetch(&self.outbound[leg_slot(from.other())]);
        if let Some(inspector) = self.inspector.as_deref() {
            inspector.prefetch(from);
        }
    }

    /// Relays one datagram waiting on `port` (the worker's epoll reports the socket again
    /// while more wait).
    fn relay_one(&mut self, sockets: &RelaySockets, port: Port, buf: &mut [u8]) {
        self.prefetch(port);
        match sockets.recv_from(port, buf) {
            Ok((len, source)) => {
                if let Some(packet) = buf.get_mut(..len) {
                    self.relay_packet(sockets, port, source, packet);
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => trace!(%err, "media receive failed"),
        }
    }

    fn relay_packet(
        &mut self,
        sockets: &RelaySockets,
        port: Port,
        source: SocketAddr,
        packet: &mut [u8],
    ) {
        let from = port.sender();
        let kind = port.kind();
        let now_us = micros_since(self.ctx.clock);
        match self.latches.get_mut(from, kind).on_packet(source, now_us) {
            LatchDecision::Accept => {}
            LatchDecision::Latched => {
                debug!(
                    call = self.ctx.call,
                    stream = self.ctx.stream,
                    leg = ?from,
                    ?kind,
                    %source,
                    "media source latched"
                );
                self.refusal_logged[port.index()] = false;
                self.connect(sockets, port, source);
            }
            LatchDecision::Refuse(refusal) => {
                self.refused(port, source, refusal);
                return;
            }
        }
        if let Some(tap) = self.tap.as_ref() {
            let local = sockets.local_addr(port);
            tap.offer(from, kind, source, local, packet, now_us);
        }
        // RTCP counts too: a phone on hold sends no RTP but keeps reporting.
        self.saw_media = true;
        if self.parked(from) {
            // An attended transfer's transferee: it hears music, and nobody hears it.
            self.counters.dropped(DropReason::Parked);
            return;
        }
        if kind == PacketKind::Rtp && self.kernel_forwards(port) {
            // A telephone-event (or anything the kernel left) on a flow the kernel forwards:
            // the inspector continues the stream the kernel sent.
            self.kernel_catch_up(port);
        }
        if kind == PacketKind::Rtp
            && let Some(inspector) = self.inspector.as_mut()
        {
            let (events, stats) = (&self.ctx.events, &self.ctx.stats);
            let (call, stream) = (self.ctx.call, self.ctx.stream);
            let mut emit = |event| publish(events, stats, call, stream, event);
            if inspector.inspect(from, packet, now_us, &mut emit) == Verdict::Drop {
                self.counters.dropped(DropReason::Inspector);
                return;
            }
        }
        if kind == PacketKind::Rtp
            && let Some(ts) = self.event_timestamp(from, packet)
        {
            self.last_event_ts[leg_slot(from)] = Some(ts);
        }
        if self.talks_to_consult(from) {
            if kind == PacketKind::Rtp && self.is_consult_opening_press(from, packet) {
                self.counters.dropped(DropReason::Inspector);
                return;
            }
            self.send_to_consult(kind, packet);
            return;
        }
        if kind == PacketKind::Rtp {
            let verdict = self.outbound_mut(from.other()).on_relayed(packet, now_us);
            self.report_ended(from.other());
            if verdict == Verdict::Drop {
                self.counters.dropped(DropReason::Replaced);
                return;
            }
        }
        self.send_towards(sockets, port.peer(), from.other(), kind, packet);
    }

    /// Counts a packet the latch of `port`'s flow refused; logs the first refusal since the
    /// latch last changed at debug and the rest at trace, so a spray cannot flood the log.
    fn refused(&mut self, port: Port, source: SocketAddr, refusal: Refusal) {
        self.counters.dropped(DropReason::from(refusal));
        let logged = &mut self.refusal_logged[port.index()];
        if *logged {
            trace!(%source, ?refusal, "media packet refused");
        } else {
            *logged = true;
            debug!(
                call = self.ctx.call,
                stream = self.ctx.stream,
                leg = ?port.sender(),
                kind = ?port.kind(),
                %source,
                ?refusal,
                "media packet refused by the latch (further refusals on this flow at trace)"
            );
        }
    }

    /// Sends `packet` from our socket `via` to where media towards leg `to` goes.
    fn send_towards(
        &mut self,
        sockets: &RelaySockets,
        via: Port,
        to: Leg,
        kind: PacketKind,
        packet: &[u8],
    ) {
        let direction = match to {
            Leg::B => Direction::AToB,
            Leg::A => Direction::BToA,
        };
        let Some(destination) = self.latches.get_mut(to, kind).destination() else {
            self.counters.dropped(DropReason::NoDestination);
            return;
        };
        let sent = if self.connected[via.index()] == Some(destination) {
            sockets.send(via, packet)
        } else {
            sockets.send_to(via, packet, destination)
        };
        match sent {
            Ok(_) => self.counters.relayed(direction, kind, packet.len()),
            Err(err) => {
                trace!(%destination, %err, "media send failed");
                self.counters.dropped(DropReason::SendError);
            }
        }
    }

    /// Connects `port` to the source its leg just latched for good (best effort: unconnected
    /// sockets work the same, only dearer).
    fn connect(&mut self, sockets: &RelaySockets, port: Port, source: SocketAddr) {
        match sockets.connect(port, source) {
            Ok(()) => self.connected[port.index()] = Some(source),
            Err(err) => {
                debug!(call = self.ctx.call, %source, %err, "media socket not connected");
                self.unconnect(sockets, port);
            }
        }
    }

    /// Lets `port` receive from any source again, after its leg's latch was forgotten.
    fn unconnect(&mut self, sockets: &RelaySockets, port: Port) {
        if self.connected[port.index()].take().is_none() {
            return;
        }
        if let Err(err) = sockets.disconnect(port) {
            // Not seen in practice (UDP disconnect cannot fail on Linux); the leg's new source
            // would stay filtered, so say so loudly.
            tracing::warn!(call = self.ctx.call, %err, "media socket could not be disconnected");
        }
    }

    /// When the inspector or a playing sound next has a packet to send (engine clock, µs).
    fn injection_due(&self) -> Option<u64> {
        let inspector = self.inspector.as_ref().and_then(|i| i.next_injection_us());
        [
            inspector,
            self.outbound[0].next_due_us(),
            self.outbound[1].next_due_us(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Sends every synthesized packet due by now (and at least those due at `due_us`, which the
    /// timer just reached), each towards the other leg of the stream it continues, from the
    /// socket that leg receives that stream on.
    fn inject_due(&mut self, sockets: &RelaySockets, due_us: u64) {
        let now_us = micros_since(self.ctx.clock).max(due_us);
        self.play_due(sockets, now_us);
        let mut buf = [0u8; INJECTION_BUFFER_LEN];
        loop {
            let Some(inspector) = self.inspector.as_mut() else {
                return;
            };
            let Some(injection) = inspector.take_injection(now_us, &mut buf) else {
                return;
            };
            let Some(packet) = buf.get_mut(..injection.len) else {
                return;
            };
            let verdict = self
                .outbound_mut(injection.from.other())
                .on_injected(packet, now_us);
            if verdict == Verdict::Drop {
                self.counters.dropped(DropReason::Replaced);
                continue;
            }
            let via = Port::of(injection.from, PacketKind::Rtp).peer();
            self.send_towards(
                sockets,
                via,
                injection.from.other(),
                PacketKind::Rtp,
                packet,
            );
        }
    }

    /// Sends the sounds' packets due by `now_us`, each from the socket its leg receives the
    /// other leg's media on.
    fn play_due(&mut self, sockets: &RelaySockets, now_us: u64) {
        let mut buf = [0u8; PACKET_BUFFER_LEN];
        for to in [Leg::A, Leg::B] {
            while let Some(len) = self.outbound_mut(to).poll_packet(now_us, &mut buf) {
                let Some(packet) = buf.get(..len) else {
                    break;
                };
                let via = Port::of(to.other(), PacketKind::Rtp).peer();
                self.send_towards(sockets, via, to, PacketKind::Rtp, packet);
            }
            self.report_ended(to);
        }
    }

    fn on_tick(&mut self) {
        self.report_ended(Leg::A);
        self.report_ended(Leg::B);
        let elapsed = self.ctx.clock.elapsed();
        let now_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let activity = &self.ctx.activity;
        if std::mem::take(&mut self.saw_media) {
            activity.note_packet(now_ms);
        }
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let limits = Limits {
            normal_ms: millis(self.ctx.media_timeout),
            hold_ms: millis(self.ctx.media_timeout_hold),
        };
        if activity.claim_timeout(now_ms, limits) {
            let event = MediaEvent::Timeout {
                call: self.ctx.call,
            };
            match self.ctx.events.try_send(event) {
                Ok(()) => debug!(call = self.ctx.call, "media timeout"),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // Report again on a later tick rather than lose the hangup trigger.
                    activity.unclaim_timeout();
                    self.ctx.stats.event_dropped();
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        if let Some(inspector) = self.inspector.as_mut() {
            let now_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
            let (events, stats) = (&self.ctx.events, &self.ctx.stats);
            let (call, stream) = (self.ctx.call, self.ctx.stream);
            inspector.on_tick(now_us, &mut |event| {
                publish(events, stats, call, stream, event)
            });
        }
        self.counters.flush_into(&self.ctx.stats);
    }
}

/// The next instant on the engine-wide tick grid: a multiple of [`TICK`] after `clock`.
fn next_tick(clock: Instant) -> Instant {
    let tick_ns = TICK.as_nanos();
    let phase = clock.elapsed().as_nanos() % tick_ns;
    let wait = u64::try_from(tick_ns - phase).unwrap_or(0);
    Instant::now() + Duration::from_nanos(wait)
}

impl Relay {
    /// The RTP timestamp of `packet` when it is a telephone-event of `from` (its payload type
    /// from the inspector's configuration): one byte compared for every other packet.
    fn event_timestamp(&self, from: Leg, packet: &[u8]) -> Option<u32> {
        let pt = self.event_pt[leg_slot(from)]?;
        let header = packet.get(..8)?;
        if header[1] & 0x7f != pt {
            return None;
        }
        Some(u32::from_be_bytes([
            header[4], header[5], header[6], header[7],
        ]))
    }
}

/// Index of `leg` in the per-leg arrays (a first).
fn leg_slot(leg: Leg) -> usize {
    match leg {
        Leg::A => 0,
        Leg::B => 1,
    }
}

fn micros_since(clock: Instant) -> u64 {
    u64::try_from(clock.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Hands an inspector event to the application without ever waiting for it.
fn publish(
    events: &mpsc::Sender<MediaEvent>,
    stats: &MediaStats,
    call: CallKey,
    stream: usize,
    event: InspectorEvent,
) {
    if events
        .try_send(MediaEvent::Inspector {
            call,
            stream,
            event,
        })
        .is_err()
    {
        trace!(call, stream, "media event dropped");
        stats.event_dropped();
    }
}
