//! The per-stream relay task: owns the four sockets of one media stream and moves packets
//! between them.
//!
//! The task waits on the readiness of its four sockets, its control channel and a periodic tick.
//! A ready socket is drained in bounded bursts into one receive buffer allocated when the task
//! starts, so the per-packet path allocates nothing, takes no lock and logs at trace level only.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tracing::{debug, trace};

use crate::media::activity::CallActivity;
use crate::media::inspect::{InspectorConfig, InspectorEvent, PacketInspector, Verdict};
use crate::media::latch::{Latch, LatchDecision};
use crate::media::stats::{Direction, DropReason, LocalCounters, MediaStats, PacketKind};
use crate::media::{CallKey, MediaEvent};
use crate::metaflow::Leg;

/// How often a relay task publishes counters and activity and runs timeouts.
const TICK: Duration = Duration::from_millis(100);
/// Largest datagram relayed intact; RTP and RTCP stay far below it.
const RECV_BUFFER_LEN: usize = 8192;
/// Packets taken from one socket before the task looks at its other sockets again.
const BURST: usize = 64;

/// Instructions from the engine to a running relay task.
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
}

/// The four bound, non-blocking sockets of a stream, still in their std form so that they can
/// be created from synchronous code and registered with the reactor inside the task.
#[derive(Debug)]
pub(crate) struct StreamSockets {
    /// RTP socket advertised to the a-leg.
    pub a_rtp: std::net::UdpSocket,
    /// RTCP socket advertised to the a-leg.
    pub a_rtcp: std::net::UdpSocket,
    /// RTP socket advertised to the b-leg.
    pub b_rtp: std::net::UdpSocket,
    /// RTCP socket advertised to the b-leg.
    pub b_rtcp: std::net::UdpSocket,
}

/// Everything a relay task needs besides its sockets and control channel.
pub(crate) struct RelayContext {
    /// Call the stream belongs to, for events and logs.
    pub call: CallKey,
    /// The stream's m= line index, for events and logs.
    pub stream: usize,
    /// Where timeouts and inspector findings are offered (never awaited).
    pub events: mpsc::Sender<MediaEvent>,
    /// Engine-wide counters the task flushes its tallies into.
    pub stats: Arc<MediaStats>,
    /// Timeout state shared with the call's other streams.
    pub activity: Arc<CallActivity>,
    /// Inspector of this stream's RTP, if the engine has one.
    pub inspector: Option<Box<dyn PacketInspector>>,
    /// Engine clock origin, shared by all tasks so inspector times are comparable.
    pub clock: Instant,
    /// Zero disables the media timeout.
    pub media_timeout: Duration,
}

/// Which of the four sockets a packet arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Port {
    ARtp,
    ARtcp,
    BRtp,
    BRtcp,
}

impl Port {
    /// The leg that sends to this socket.
    fn sender(self) -> Leg {
        match self {
            Port::ARtp | Port::ARtcp => Leg::A,
            Port::BRtp | Port::BRtcp => Leg::B,
        }
    }

    fn kind(self) -> PacketKind {
        match self {
            Port::ARtp | Port::BRtp => PacketKind::Rtp,
            Port::ARtcp | Port::BRtcp => PacketKind::Rtcp,
        }
    }

    /// The socket that relays this socket's packets towards the other leg.
    fn peer(self) -> Port {
        match self {
            Port::ARtp => Port::BRtp,
            Port::ARtcp => Port::BRtcp,
            Port::BRtp => Port::ARtp,
            Port::BRtcp => Port::ARtcp,
        }
    }
}

struct AsyncSockets {
    a_rtp: UdpSocket,
    a_rtcp: UdpSocket,
    b_rtp: UdpSocket,
    b_rtcp: UdpSocket,
}

impl AsyncSockets {
    fn register(sockets: StreamSockets) -> io::Result<Self> {
        Ok(Self {
            a_rtp: UdpSocket::from_std(sockets.a_rtp)?,
            a_rtcp: UdpSocket::from_std(sockets.a_rtcp)?,
            b_rtp: UdpSocket::from_std(sockets.b_rtp)?,
            b_rtcp: UdpSocket::from_std(sockets.b_rtcp)?,
        })
    }

    fn get(&self, port: Port) -> &UdpSocket {
        match port {
            Port::ARtp => &self.a_rtp,
            Port::ARtcp => &self.a_rtcp,
            Port::BRtp => &self.b_rtp,
            Port::BRtcp => &self.b_rtcp,
        }
    }
}

/// Latches of both legs' RTP and RTCP flows.
#[derive(Default)]
struct StreamLatches {
    a_rtp: Latch,
    a_rtcp: Latch,
    b_rtp: Latch,
    b_rtcp: Latch,
}

impl StreamLatches {
    fn get_mut(&mut self, leg: Leg, kind: PacketKind) -> &mut Latch {
        match (leg, kind) {
            (Leg::A, PacketKind::Rtp) => &mut self.a_rtp,
            (Leg::A, PacketKind::Rtcp) => &mut self.a_rtcp,
            (Leg::B, PacketKind::Rtp) => &mut self.b_rtp,
            (Leg::B, PacketKind::Rtcp) => &mut self.b_rtcp,
        }
    }
}

/// Decrements the active-stream gauge however the task ends.
struct ActiveStreamGuard(Arc<MediaStats>);

impl Drop for ActiveStreamGuard {
    fn drop(&mut self) {
        self.0.stream_stopped();
    }
}

/// Runs the relay of one stream until its control channel closes (call released or engine
/// dropped).
pub(crate) async fn run_stream(
    sockets: StreamSockets,
    ctx: RelayContext,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    ctx.stats.stream_started();
    let _guard = ActiveStreamGuard(Arc::clone(&ctx.stats));
    let sockets = match AsyncSockets::register(sockets) {
        Ok(sockets) => sockets,
        Err(err) => {
            debug!(call = ctx.call, stream = ctx.stream, %err, "media sockets not registered");
            return;
        }
    };
    let mut buf = vec![0u8; RECV_BUFFER_LEN];
    let mut relay = Relay {
        ctx,
        latches: StreamLatches::default(),
        counters: LocalCounters::default(),
        saw_rtp: false,
    };
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let ready = tokio::select! {
            msg = control.recv() => match msg {
                Some(msg) => {
                    relay.apply(msg);
                    continue;
                }
                None => break,
            },
            _ = tick.tick() => {
                relay.on_tick();
                continue;
            }
            ready = sockets.a_rtp.readable() => ready.map(|()| Port::ARtp),
            ready = sockets.b_rtp.readable() => ready.map(|()| Port::BRtp),
            ready = sockets.a_rtcp.readable() => ready.map(|()| Port::ARtcp),
            ready = sockets.b_rtcp.readable() => ready.map(|()| Port::BRtcp),
        };
        match ready {
            Ok(port) => {
                // Instructions sent before these packets arrived must apply to them.
                while let Ok(msg) = control.try_recv() {
                    relay.apply(msg);
                }
                relay.drain(&sockets, port, &mut buf);
            }
            Err(err) => {
                debug!(call = relay.ctx.call, stream = relay.ctx.stream, %err, "media socket failed");
                break;
            }
        }
    }
    relay.counters.flush_into(&relay.ctx.stats);
    trace!(
        call = relay.ctx.call,
        stream = relay.ctx.stream,
        "media relay stopped"
    );
}

/// Per-stream relay state, separate from the sockets and buffer so they can be borrowed apart.
struct Relay {
    ctx: RelayContext,
    latches: StreamLatches,
    counters: LocalCounters,
    /// Whether RTP arrived since the last tick.
    saw_rtp: bool,
}

impl Relay {
    fn apply(&mut self, msg: Control) {
        match msg {
            Control::SetRemote { leg, rtp, rtcp } => {
                self.latches
                    .get_mut(leg, PacketKind::Rtp)
                    .set_signalled(rtp);
                self.latches
                    .get_mut(leg, PacketKind::Rtcp)
                    .set_signalled(rtcp);
            }
            Control::ConfigureInspector { from, cfg } => {
                if let Some(inspector) = self.ctx.inspector.as_mut() {
                    inspector.configure(from, cfg);
                }
            }
        }
    }

    /// Relays what is waiting on `port`, at most `BURST` packets.
    fn drain(&mut self, sockets: &AsyncSockets, port: Port, buf: &mut [u8]) {
        let socket = sockets.get(port);
        for _ in 0..BURST {
            match socket.try_recv_from(buf) {
                Ok((len, source)) => {
                    if let Some(packet) = buf.get(..len) {
                        self.relay_packet(sockets, port, source, packet);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) => trace!(%err, "media receive failed"),
            }
        }
    }

    fn relay_packet(
        &mut self,
        sockets: &AsyncSockets,
        port: Port,
        source: SocketAddr,
        packet: &[u8],
    ) {
        let from = port.sender();
        let kind = port.kind();
        if self.latches.get_mut(from, kind).on_packet(source) == LatchDecision::Reject {
            trace!(%source, "media from unlatched source dropped");
            self.counters.dropped(DropReason::UnlatchedSource);
            return;
        }
        if kind == PacketKind::Rtp {
            self.saw_rtp = true;
            if let Some(inspector) = self.ctx.inspector.as_mut() {
                let now_us = micros_since(self.ctx.clock);
                let (events, stats) = (&self.ctx.events, &self.ctx.stats);
                let (call, stream) = (self.ctx.call, self.ctx.stream);
                let mut emit = |event| publish(events, stats, call, stream, event);
                if inspector.inspect(from, packet, now_us, &mut emit) == Verdict::Drop {
                    self.counters.dropped(DropReason::Inspector);
                    return;
                }
            }
        }
        let (to, direction) = match from {
            Leg::A => (Leg::B, Direction::AToB),
            Leg::B => (Leg::A, Direction::BToA),
        };
        let Some(destination) = self.latches.get_mut(to, kind).destination() else {
            self.counters.dropped(DropReason::NoDestination);
            return;
        };
        match sockets.get(port.peer()).try_send_to(packet, destination) {
            Ok(_) => self.counters.relayed(direction, kind, packet.len()),
            Err(err) => {
                trace!(%destination, %err, "media send failed");
                self.counters.dropped(DropReason::SendError);
            }
        }
    }

    fn on_tick(&mut self) {
        let elapsed = self.ctx.clock.elapsed();
        let now_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let activity = &self.ctx.activity;
        if std::mem::take(&mut self.saw_rtp) {
            activity.note_rtp(now_ms);
        }
        let timeout_ms = u64::try_from(self.ctx.media_timeout.as_millis()).unwrap_or(u64::MAX);
        if timeout_ms > 0 && activity.claim_timeout(now_ms, timeout_ms) {
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
        if let Some(inspector) = self.ctx.inspector.as_mut() {
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
