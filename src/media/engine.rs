//! The media engine: binds stream sockets from the port pool, hands each stream to a relay
//! worker and forwards the SIP core's instructions to it.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::debug;

use crate::base::Leg;
use crate::media::activity::CallActivity;
use crate::media::config::{MediaConfig, MediaError};
use crate::media::fastpath::FastPath;
use crate::media::inspect::{InspectorConfig, InspectorFactory};
use crate::media::ports::{PortPair, PortPool};
use crate::media::relay::{Control, RelayContext, RelayWorkers, StreamControl};
use crate::media::sockets::StreamSockets;
use crate::media::stats::MediaStats;
use crate::media::{CallKey, MediaControl, MediaEvent, StreamPorts};
use crate::sdp::Direction as SdpDirection;

/// Receive buffer asked for on each RTP socket.
const RTP_RECV_BUFFER: usize = 256 * 1024;

/// Anchors the media of every call: owns the port pool and a handle to each running stream.
/// Dropping it stops the relay workers and closes every stream's sockets.
pub struct MediaEngine {
    config: MediaConfig,
    pool: PortPool,
    calls: HashMap<CallKey, CallMedia>,
    events: mpsc::Sender<MediaEvent>,
    inspector: Option<InspectorFactory>,
    stats: Arc<MediaStats>,
    workers: RelayWorkers,
    clock: Instant,
    /// The kernel fast path streams hand their latched flows to, when there is one.
    fastpath: Option<Arc<FastPath>>,
}

/// The media of one call: its streams and its shared timeout state.
#[derive(Default)]
struct CallMedia {
    activity: Arc<CallActivity>,
    streams: HashMap<usize, StreamHandle>,
    /// The stream sounds play on (the first audio one, as the core says); else the lowest.
    audio: Option<usize>,
    /// An attended transfer's consultation: the stream it runs on and its ports.
    consult: Option<(usize, PortPair)>,
    /// The relay worker all the call's streams run on, chosen for its first one.
    worker: Option<usize>,
}

impl CallMedia {
    /// The stream sounds and consultations act on.
    fn audio_index(&self) -> Option<usize> {
        match self.audio {
            Some(index) if self.streams.contains_key(&index) => Some(index),
            _ => self.streams.keys().min().copied(),
        }
    }
}

/// What the engine keeps of a running stream: its ports, the way to reach its relay (dropping
/// it stops the stream) and the direction each leg's latest SDP gave it.
struct StreamHandle {
    ports: StreamPorts,
    control: StreamControl,
    /// Per leg (a, b); `sendrecv` until the core says otherwise.
    directions: [SdpDirection; 2],
}

impl StreamHandle {
    /// A stream is on hold when either leg declared anything but `sendrecv`: then at most one
    /// way carries RTP, often neither.
    fn is_held(&self) -> bool {
        self.directions.iter().any(|d| *d != SdpDirection::SendRecv)
    }
}

impl CallMedia {
    /// The call is on hold when every stream is: a stream still meant to flow both ways must
    /// carry RTP, so the normal timeout keeps guarding it.
    fn is_held(&self) -> bool {
        !self.streams.is_empty() && self.streams.values().all(StreamHandle::is_held)
    }
}

/// The two sockets of one endpoint, bound together.
struct BoundPair {
    rtp: std::net::UdpSocket,
    rtcp: std::net::UdpSocket,
}

impl MediaEngine {
    /// Creates the engine and starts its relay workers (`config.workers`, at least one); events
    /// (timeouts, inspector findings) are offered to `events` without waiting.
    pub fn new(
        config: MediaConfig,
        events: mpsc::Sender<MediaEvent>,
        inspector: Option<InspectorFactory>,
    ) -> Result<Self, MediaError> {
        let pool = PortPool::new(config.port_min, config.port_max)?;
        let clock = Instant::now();
        let stats = Arc::new(MediaStats::with_workers(config.workers.max(1)));
        let workers = RelayWorkers::start(config.workers, clock, Arc::clone(&stats))?;
        Ok(Self {
            config,
            pool,
            calls: HashMap::new(),
            events,
            inspector,
            stats,
            workers,
            clock,
            fastpath: None,
        })
    }

    /// Lets the streams started from now on hand their latched flows to the kernel.
    pub fn set_fastpath(&mut self, fastpath: Arc<FastPath>) {
        self.fastpath = Some(fastpath);
    }

    /// The relay counters, for the metrics endpoint.
    pub fn stats(&self) -> Arc<MediaStats> {
        Arc::clone(&self.stats)
    }

    /// The address media sockets bind to, to be written into rewritten SDP.
    pub fn media_ip(&self) -> IpAddr {
        self.config.media_ip
    }

    /// Allocates a pair from the pool and binds it, skipping pairs another process holds.
    fn bind_next_pair(&mut self) -> Result<(PortPair, BoundPair), MediaError> {
        let mut unusable = Vec::new();
        let outcome = loop {
            let pair = match self.pool.allocate() {
                Ok(pair) => pair,
                Err(err) => break Err(err),
            };
            match bind_pair(self.config.media_ip, pair) {
                Ok(bound) => break Ok((pair, bound)),
                Err(err) => {
                    debug!(rtp = pair.rtp, %err, "media port pair unusable, skipped");
                    unusable.push(pair);
                }
            }
        };
        for pair in unusable {
            self.pool.release(pair);
        }
        outcome
    }

    fn stream(&self, call: CallKey, index: usize) -> Option<&StreamHandle> {
        self.calls.get(&call)?.streams.get(&index)
    }

    fn send_control(&self, call: CallKey, index: usize, msg: Control) {
        match self.stream(call, index) {
            Some(stream) => {
                if stream.control.send(msg).is_err() {
                    debug!(call, index, "media relay of stream already stopped");
                }
            }
            None => debug!(call, index, "no media stream allocated"),
        }
    }

    /// Sends an instruction built by `msg` to every stream of `call`.
    fn send_to_streams(&self, call: CallKey, msg: impl Fn() -> Control) {
        let Some(call_media) = self.calls.get(&call) else {
            debug!(call, "no media for call");
            return;
        };
        for (index, stream) in &call_media.streams {
            if stream.control.send(msg()).is_err() {
                debug!(call, index, "media relay of stream already stopped");
            }
        }
    }

    /// Sends `msg` to the call's audio stream (the one the modules speak on); false when there
    /// is none or its relay has stopped.
    fn send_to_audio_stream(&self, call: CallKey, msg: Control) -> bool {
        let Some(call_media) = self.calls.get(&call) else {
            debug!(call, "no media for call");
            return false;
        };
        let first = match call_media.audio {
            Some(index) => call_media.streams.get_key_value(&index),
            None => call_media.streams.iter().min_by_key(|(index, _)| **index),
        };
        let Some((index, stream)) = first else {
            return false;
        };
        let sent = stream.control.send(msg).is_ok();
        if !sent {
            debug!(call, index, "media relay of stream already stopped");
        }
        sent
    }

    /// Milliseconds on the engine clock, the one the relays' ticks read.
    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn publish_ports(&self) {
        self.stats.set_ports_in_use(self.pool.ports_in_use());
    }
}

fn bind_pair(ip: IpAddr, pair: PortPair) -> io::Result<BoundPair> {
    let rtp = std::net::UdpSocket::bind(SocketAddr::new(ip, pair.rtp))?;
    let rtcp = std::net::UdpSocket::bind(SocketAddr::new(ip, pair.rtcp))?;
    rtp.set_nonblocking(true)?;
    rtcp.set_nonblocking(true)?;
    // Room for a burst while the worker is busy with other streams (the kernel caps it at
    // net.core.rmem_max); best effort.
    let _ = socket2::SockRef::from(&rtp).set_recv_buffer_size(RTP_RECV_BUFFER);
    Ok(BoundPair { rtp, rtcp })
}

impl MediaControl for MediaEngine {
    fn allocate_stream(&mut self, call: CallKey, index: usize) -> Result<StreamPorts, MediaError> {
        if let Some(stream) = self.stream(call, index) {
            return Ok(stream.ports);
        }
        let (a_pair, a_bound) = self.bind_next_pair()?;
        let (b_pair, b_bound) = match self.bind_next_pair() {
            Ok(bound) => bound,
            Err(err) => {
                self.pool.release(a_pair);
                return Err(err);
            }
        };
        let sockets = StreamSockets {
            a_rtp: a_bound.rtp,
            a_rtcp: a_bound.rtcp,
            b_rtp: b_bound.rtp,
            b_rtcp: b_bound.rtcp,
        };
        let call_media = self.calls.entry(call).or_default();
        let worker = *call_media
            .worker
            .get_or_insert_with(|| self.workers.place());
        let ctx = RelayContext {
            call,
            stream: index,
            events: self.events.clone(),
            stats: Arc::clone(&self.stats),
            activity: Arc::clone(&call_media.activity),
            clock: self.clock,
            media_timeout: self.config.media_timeout,
            media_timeout_hold: self.config.media_timeout_hold,
            latch: self.config.latch,
            fastpath: self.fastpath.clone(),
        };
        let inspector = self.inspector.as_ref().map(|factory| factory(call, index));
        let control = match self.workers.spawn(worker, sockets, ctx, inspector) {
            Ok(control) => control,
            Err(_) => {
                self.pool.release(a_pair);
                self.pool.release(b_pair);
                return Err(MediaError::Socket(io::Error::other(
                    "the media relay workers are stopping",
                )));
            }
        };
        let ports = StreamPorts {
            a: a_pair,
            b: b_pair,
        };
        call_media.streams.insert(
            index,
            StreamHandle {
                ports,
                control,
                directions: [SdpDirection::SendRecv; 2],
            },
        );
        self.publish_ports();
        debug!(
            call,
            index,
            a_rtp = a_pair.rtp,
            b_rtp = b_pair.rtp,
            "media stream allocated"
        );
        Ok(ports)
    }

    fn set_remote(
        &mut self,
        call: CallKey,
        index: usize,
        leg: Leg,
        rtp: SocketAddr,
        rtcp: SocketAddr,
    ) {
        self.send_control(call, index, Control::SetRemote { leg, rtp, rtcp });
    }

    fn configure_inspector(
        &mut self,
        call: CallKey,
        index: usize,
        from: Leg,
        cfg: InspectorConfig,
    ) {
        self.send_control(call, index, Control::ConfigureInspector { from, cfg });
    }

    fn leg_replaced(&mut self, call: CallKey, leg: Leg) {
        self.send_to_streams(call, || Control::LegReplaced { leg });
    }

    fn discard_held(&mut self, call: CallKey, leg: Leg) {
        self.send_to_streams(call, || Control::DiscardHeld { leg });
    }

    fn release_held(&mut self, call: CallKey, leg: Leg, digits: &str) {
        self.send_to_streams(call, || Control::ReleaseHeld {
            leg,
            digits: digits.to_owned(),
        });
    }

    fn set_tap(&mut self, call: CallKey, tap: Option<crate::media::SharedTap>) {
        self.send_to_streams(call, || Control::SetTap(tap.clone()));
    }

    fn set_audio_stream(&mut self, call: CallKey, index: usize) {
        if let Some(call_media) = self.calls.get_mut(&call) {
            call_media.audio = Some(index);
        }
    }

    fn play(&mut self, call: CallKey, to: Leg, playback: crate::media::playout::Playback) -> bool {
        let playback = Box::new(playback);
        self.send_to_audio_stream(call, Control::Play { to, playback })
    }

    fn stop_playback(&mut self, call: CallKey, to: Leg, id: Option<crate::base::PlaybackId>) {
        self.send_to_audio_stream(call, Control::StopPlayback { to, id });
    }

    fn set_hold(&mut self, call: CallKey, to: Leg, held: bool) {
        self.send_to_audio_stream(call, Control::Hold { to, held });
    }

    fn set_gain(
        &mut self,
        call: CallKey,
        to: Leg,
        gain: crate::base::Gain,
        map: crate::media::playout::G711Map,
    ) {
        self.send_to_audio_stream(call, Control::Gain { to, gain, map });
    }

    fn set_direction(&mut self, call: CallKey, index: usize, leg: Leg, direction: SdpDirection) {
        let now_ms = self.now_ms();
        let Some(call_media) = self.calls.get_mut(&call) else {
            debug!(call, "no media for call");
            return;
        };
        let Some(stream) = call_media.streams.get_mut(&index) else {
            debug!(call, index, "no media stream allocated");
            return;
        };
        let slot = match leg {
            Leg::A => &mut stream.directions[0],
            Leg::B => &mut stream.directions[1],
        };
        *slot = direction;
        let held = call_media.is_held();
        call_media.activity.set_held(held, now_ms);
        debug!(call, index, ?leg, ?direction, held, "media direction");
    }

    fn arm_timeout(&mut self, call: CallKey) {
        let now_ms = self.now_ms();
        self.calls.entry(call).or_default().activity.arm(now_ms);
    }

    fn open_consult(&mut self, call: CallKey, talker: Leg) -> Result<PortPair, MediaError> {
        let index = self
            .calls
            .get(&call)
            .and_then(CallMedia::audio_index)
            .ok_or(MediaError::NoStream)?;
        self.close_consult(call);
        let (pair, bound) = self.bind_next_pair()?;
        let msg = Control::Consult {
            talker,
            rtp: bound.rtp,
            rtcp: bound.rtcp,
        };
        self.send_control(call, index, msg);
        if let Some(call_media) = self.calls.get_mut(&call) {
            call_media.consult = Some((index, pair));
        }
        self.publish_ports();
        debug!(call, index, rtp = pair.rtp, ?talker, "consultation opened");
        Ok(pair)
    }

    fn set_consult_remote(&mut self, call: CallKey, rtp: SocketAddr, rtcp: SocketAddr) {
        if let Some((index, _)) = self.calls.get(&call).and_then(|c| c.consult) {
            self.send_control(call, index, Control::ConsultRemote { rtp, rtcp });
        }
    }

    fn close_consult(&mut self, call: CallKey) {
        let Some((index, pair)) = self.calls.get_mut(&call).and_then(|c| c.consult.take()) else {
            return;
        };
        self.send_control(call, index, Control::CloseConsult);
        self.pool.release(pair);
        self.publish_ports();
    }

    fn consult_takes(&mut self, call: CallKey, leg: Leg) {
        let Some(call_media) = self.calls.get_mut(&call) else {
            return;
        };
        let Some((index, pair)) = call_media.consult.take() else {
            return;
        };
        let Some(stream) = call_media.streams.get_mut(&index) else {
            self.pool.release(pair);
            return;
        };
        let old = match leg {
            Leg::A => std::mem::replace(&mut stream.ports.a, pair),
            Leg::B => std::mem::replace(&mut stream.ports.b, pair),
        };
        if stream.control.send(Control::ConsultTakes { leg }).is_err() {
            debug!(call, index, "media relay of stream already stopped");
        }
        // The call's other streams (video) carried no consultation: the departed party's
        // source is refused there from now on, as when a placed call takes a leg.
        for (other, stream) in &call_media.streams {
            if *other != index && stream.control.send(Control::LegReplaced { leg }).is_err() {
                debug!(call, index = other, "media relay of stream already stopped");
            }
        }
        self.pool.release(old);
        self.publish_ports();
    }

    fn release_call(&mut self, call: CallKey) {
        let Some(call_media) = self.calls.remove(&call) else {
            return;
        };
        if let Some((_, pair)) = call_media.consult {
            self.pool.release(pair);
        }
        // Dropping each stream's control handle stops its relay, which closes the sockets.
        for stream in call_media.streams.into_values() {
            self.pool.release(stream.ports.a);
            self.pool.release(stream.ports.b);
        }
        self.publish_ports();
        debug!(call, "media released");
    }

    fn ports_in_use(&self) -> usize {
        self.pool.ports_in_use()
    }
}
