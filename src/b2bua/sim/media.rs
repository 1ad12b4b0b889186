//! A fake media plane: hands out port pairs like the real engine and writes down every request
//! the core makes, so tests can check what the core asked of the relay without sockets.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::base::{CallKey, Gain, Leg, PlaybackId};
use crate::media::{
    InspectorConfig, MediaControl, MediaError, PortPair, SdpDirection, SharedTap, StreamPorts,
};

/// First RTP port handed out; each stream takes four ports (RTP and RTCP per leg).
const FIRST_PORT: u16 = 40000;

/// Everything the core asked of the media plane, in order.
#[derive(Debug, Default)]
pub(in crate::b2bua) struct MediaLog {
    /// Next free port: allocation is deterministic so SDP bodies are reproducible.
    next_port: u16,
    /// Every call that ever got a stream, in order: the public way for a test to learn the
    /// key the core chose for its first, second... call.
    pub(super) calls: Vec<CallKey>,
    /// Streams currently bound, with their ports, in allocation order.
    pub(super) streams: Vec<((CallKey, usize), StreamPorts)>,
    /// Every `set_remote`: where the core says a leg's media lives (call, stream, leg, RTP).
    pub(in crate::b2bua) remotes: Vec<(CallKey, usize, Leg, SocketAddr)>,
    /// Every inspector configuration (call, stream, sending leg, settings).
    pub(in crate::b2bua) inspectors: Vec<(CallKey, usize, Leg, InspectorConfig)>,
    /// Every tap change: (call, attached?) — recording attaches and detaches taps.
    pub(super) taps: Vec<(CallKey, bool)>,
    /// Legs another party took (call, leg): their latched sources are refused from then on.
    pub(in crate::b2bua) replaced: Vec<(CallKey, Leg)>,
    /// Suppression: codes whose withheld digits were discarded (call, leg).
    pub(super) discarded: Vec<(CallKey, Leg)>,
    /// Suppression: withheld digits released to the other leg (call, leg, digits).
    pub(super) released_digits: Vec<(CallKey, Leg, String)>,
    /// Every `set_direction`: the direction a leg's SDP gave a stream (call, stream, leg).
    pub(super) directions: Vec<(CallKey, usize, Leg, SdpDirection)>,
    /// Calls whose media timeout was armed (when the caller's ACK confirmed the call).
    pub(in crate::b2bua) armed: Vec<CallKey>,
    /// Every playback started (call, leg it plays to, id, looped).
    pub(in crate::b2bua) plays: Vec<(CallKey, Leg, PlaybackId, bool)>,
    /// Every `set_audio_stream` (call, stream index).
    pub(in crate::b2bua) audio_streams: Vec<(CallKey, usize)>,
    /// The format of each playback in `plays`, in the same order.
    pub(in crate::b2bua) play_formats: Vec<crate::media::playout::PlayFormat>,
    /// Every playback stopped (call, leg, id if only that one).
    pub(in crate::b2bua) stops: Vec<(CallKey, Leg, Option<PlaybackId>)>,
    /// Every hold change (call, leg that stops or resumes hearing the other, held).
    pub(in crate::b2bua) holds: Vec<(CallKey, Leg, bool)>,
    /// Every volume change (call, leg whose audio changes, gain).
    pub(in crate::b2bua) gains: Vec<(CallKey, Leg, Gain)>,
    /// Calls whose media was released (at the end of the call).
    pub(in crate::b2bua) released: Vec<CallKey>,
    /// Every consultation request, in order (attended transfers).
    pub(in crate::b2bua) consults: Vec<ConsultOp>,
    /// When true every allocation fails, as when the port range is exhausted.
    pub(super) exhausted: bool,
}

/// What the core asked of a consultation (see `MediaControl::open_consult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::b2bua) enum ConsultOp {
    /// Opened for the call with this talker; the pair it got.
    Open(CallKey, Leg, PortPair),
    /// The consulted party's RTP address.
    Remote(CallKey, SocketAddr),
    /// Closed without the consulted party.
    Close(CallKey),
    /// The consulted party took this leg.
    Takes(CallKey, Leg),
}

/// The fake, shared between the core (which owns a clone) and the test.
#[derive(Clone, Debug, Default)]
pub(in crate::b2bua) struct FakeMedia(Arc<Mutex<MediaLog>>);

impl FakeMedia {
    /// The log, locked.
    pub(in crate::b2bua) fn log(&self) -> MutexGuard<'_, MediaLog> {
        self.0.lock().unwrap()
    }

    /// The key of the latest call that got media: the public way to learn the `CallKey` that
    /// `Input::Digit` and friends need.
    pub(super) fn last_call(&self) -> CallKey {
        *self.log().calls.last().unwrap()
    }

    /// The ports of stream 0 of `call`, as advertised to the phone (a) and the PBX (b).
    pub(super) fn ports(&self, call: CallKey) -> StreamPorts {
        let log = self.log();
        log.streams
            .iter()
            .find(|((c, i), _)| *c == call && *i == 0)
            .map(|(_, p)| *p)
            .unwrap()
    }
}

impl MediaControl for FakeMedia {
    fn allocate_stream(&mut self, call: CallKey, index: usize) -> Result<StreamPorts, MediaError> {
        let mut log = self.log();
        if log.exhausted {
            return Err(MediaError::PortsExhausted);
        }
        if let Some((_, ports)) = log.streams.iter().find(|(k, _)| *k == (call, index)) {
            return Ok(*ports);
        }
        if log.next_port == 0 {
            log.next_port = FIRST_PORT;
        }
        let base = log.next_port;
        log.next_port += 4;
        let ports = StreamPorts {
            a: PortPair {
                rtp: base,
                rtcp: base + 1,
            },
            b: PortPair {
                rtp: base + 2,
                rtcp: base + 3,
            },
        };
        log.streams.push(((call, index), ports));
        if !log.calls.contains(&call) {
            log.calls.push(call);
        }
        Ok(ports)
    }

    fn set_remote(
        &mut self,
        call: CallKey,
        index: usize,
        leg: Leg,
        rtp: SocketAddr,
        _rtcp: SocketAddr,
    ) {
        self.log().remotes.push((call, index, leg, rtp));
    }

    fn configure_inspector(
        &mut self,
        call: CallKey,
        index: usize,
        from: Leg,
        cfg: InspectorConfig,
    ) {
        self.log().inspectors.push((call, index, from, cfg));
    }

    fn discard_held(&mut self, call: CallKey, leg: Leg) {
        self.log().discarded.push((call, leg));
    }

    fn leg_replaced(&mut self, call: CallKey, leg: Leg) {
        self.log().replaced.push((call, leg));
    }

    fn release_held(&mut self, call: CallKey, leg: Leg, digits: &str) {
        self.log()
            .released_digits
            .push((call, leg, digits.to_string()));
    }

    fn set_direction(&mut self, call: CallKey, index: usize, leg: Leg, direction: SdpDirection) {
        self.log().directions.push((call, index, leg, direction));
    }

    fn arm_timeout(&mut self, call: CallKey) {
        self.log().armed.push(call);
    }

    fn set_audio_stream(&mut self, call: CallKey, index: usize) {
        self.log().audio_streams.push((call, index));
    }

    fn play(&mut self, call: CallKey, to: Leg, playback: crate::media::playout::Playback) -> bool {
        let mut log = self.log();
        log.plays.push((call, to, playback.id, playback.looped));
        log.play_formats.push(playback.format);
        log.streams.iter().any(|((c, _), _)| *c == call)
    }

    fn stop_playback(&mut self, call: CallKey, to: Leg, id: Option<PlaybackId>) {
        self.log().stops.push((call, to, id));
    }

    fn set_hold(&mut self, call: CallKey, to: Leg, held: bool) {
        self.log().holds.push((call, to, held));
    }

    fn set_gain(
        &mut self,
        call: CallKey,
        to: Leg,
        gain: Gain,
        _map: crate::media::playout::G711Map,
    ) {
        self.log().gains.push((call, to, gain));
    }

    fn set_tap(&mut self, call: CallKey, tap: Option<SharedTap>) {
        self.log().taps.push((call, tap.is_some()));
    }

    fn open_consult(&mut self, call: CallKey, talker: Leg) -> Result<PortPair, MediaError> {
        let mut log = self.log();
        if log.exhausted {
            return Err(MediaError::PortsExhausted);
        }
        if !log.streams.iter().any(|((c, _), _)| *c == call) {
            return Err(MediaError::NoStream);
        }
        let base = log.next_port;
        log.next_port += 2;
        let pair = PortPair {
            rtp: base,
            rtcp: base + 1,
        };
        log.consults.push(ConsultOp::Open(call, talker, pair));
        Ok(pair)
    }

    fn set_consult_remote(&mut self, call: CallKey, rtp: SocketAddr, _rtcp: SocketAddr) {
        self.log().consults.push(ConsultOp::Remote(call, rtp));
    }

    fn close_consult(&mut self, call: CallKey) {
        self.log().consults.push(ConsultOp::Close(call));
    }

    fn consult_takes(&mut self, call: CallKey, leg: Leg) {
        let mut log = self.log();
        let opened = log.consults.iter().rev().find_map(|op| match op {
            ConsultOp::Open(c, _, pair) if *c == call => Some(*pair),
            _ => None,
        });
        if let Some(pair) = opened
            && let Some((_, ports)) = log
                .streams
                .iter_mut()
                .find(|((c, i), _)| *c == call && *i == 0)
        {
            match leg {
                Leg::A => ports.a = pair,
                Leg::B => ports.b = pair,
            }
        }
        log.consults.push(ConsultOp::Takes(call, leg));
    }

    fn release_call(&mut self, call: CallKey) {
        let mut log = self.log();
        log.released.push(call);
        log.streams.retain(|((c, _), _)| *c != call);
    }

    fn ports_in_use(&self) -> usize {
        self.log().streams.len() * 4
    }
}

/// A tap that drops every packet: the core only attaches and detaches taps, it never looks
/// inside, so the tests need no recorder behind one.
#[derive(Debug)]
pub(super) struct NullTap;

impl crate::media::PacketTap for NullTap {
    fn offer(
        &self,
        _from: Leg,
        _kind: crate::media::PacketKind,
        _src: SocketAddr,
        _dst: SocketAddr,
        _packet: &[u8],
        _arrival_us: u64,
    ) {
    }
}

/// A fresh shared tap for `Input::RecordingReady`.
pub(super) fn null_tap() -> SharedTap {
    Arc::new(NullTap)
}
