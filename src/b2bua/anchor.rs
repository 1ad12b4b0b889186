//! SDP anchoring: allocate relay ports for every stream an SDP describes, tell the media engine
//! where the sending leg's media lives, and rewrite the SDP for the receiving leg.

use std::net::{IpAddr, SocketAddr};

use crate::media::{InspectorConfig, MediaControl, MediaError};
use crate::sdp::{Anchor, Direction, MediaDesc, Sdp};

use super::{CallKey, Leg};

/// Why an SDP could not be anchored.
#[derive(Debug, thiserror::Error)]
pub(super) enum AnchorError {
    /// The body is not parseable SDP.
    #[error("unparseable SDP: {0}")]
    Sdp(#[from] crate::sdp::SdpError),
    /// No relay ports left.
    #[error("media: {0}")]
    Media(#[from] MediaError),
}

/// What the SDPs of a call declared, kept for the relay's decoders and the recorder.
#[derive(Debug, Default)]
pub(super) struct SdpState {
    /// Telephone-event payload types per stream and leg.
    pub event_pts: EventPts,
    /// Audio codecs of each leg's first audio stream.
    pub codecs: crate::modules::record::LegCodecs,
    /// Binding digit whose press starts holding back a leg's digits (suppression mode).
    pub suppress: [Option<char>; 2],
    /// The `a=ptime` of each leg's first audio stream (a-leg first): the packet time a sound the
    /// proxy plays to that leg starts at.
    pub ptime_ms: [Option<u32>; 2],
    /// When the relay listens for DTMF tones in each leg's audio (from the call's metaflows;
    /// `off` on a leg no metaflow listens to).
    pub inband: [crate::metaflow::InbandMode; 2],
    /// The latest SDP body each leg sent (a-leg first): a call the proxy places in one leg's
    /// place offers the other leg's, so the party that stays keeps its codecs and addresses.
    pub bodies: [Option<Vec<u8>>; 2],
}

impl SdpState {
    /// The suppression binding digit for digits sent by `leg`.
    pub(super) fn suppress_binding(&self, leg: Leg) -> Option<char> {
        let [a, b] = self.suppress;
        match leg {
            Leg::A => a,
            Leg::B => b,
        }
    }
}

/// The telephone-event payload type (and clock) each leg's latest SDP declared, per stream.
///
/// A sender uses the payload type numbers of the SDP that describes what the *receiver* takes
/// (RFC 3264 §5.1), so events from the a-leg are decoded with the b-leg's declaration; the
/// sender's own declaration stands in until the receiver's SDP is known. Once both sides have
/// spoken, telephone-event counts only if both declared it (an answer cannot add a format the
/// offer lacked), so events on a payload type one side never agreed to are never digits.
#[derive(Debug, Default)]
pub(super) struct EventPts {
    /// Per stream, per leg (a, b): `None` until that leg's SDP was seen, then its declaration.
    per_stream: Vec<[Option<EventPt>; 2]>,
}

/// A telephone-event payload type and clock rate, if declared.
type EventPt = Option<(u8, u32)>;

/// The telephone-event config for packets sent by a leg that declared `sender` to a leg that
/// declared `receiver` (outer `None`: that SDP not seen yet).
fn negotiated(sender: Option<EventPt>, receiver: Option<EventPt>) -> EventPt {
    match (sender, receiver) {
        (Some(Some(_)), Some(Some(r))) => Some(r),
        (Some(_), Some(_)) => None,
        (Some(s), None) => s,
        (None, Some(r)) => r,
        (None, None) => None,
    }
}

impl EventPts {
    /// Records what `leg` declared for stream `index`; returns the config for packets sent by
    /// the a-leg and by the b-leg.
    fn declare(&mut self, index: usize, leg: Leg, te: Option<(u8, u32)>) -> (EventPt, EventPt) {
        if self.per_stream.len() <= index {
            self.per_stream.resize(index + 1, [None, None]);
        }
        let Some(slot) = self.per_stream.get_mut(index) else {
            return (te, te);
        };
        match leg {
            Leg::A => slot[0] = Some(te),
            Leg::B => slot[1] = Some(te),
        }
        let [a, b] = *slot;
        (negotiated(a, b), negotiated(b, a))
    }
}

impl super::B2bua {
    /// Anchors an SDP of leg `from` of an existing call (see [`anchor_sdp`]).
    pub(super) fn anchor(
        &mut self,
        key: CallKey,
        from: Leg,
        body: &[u8],
    ) -> Result<Vec<u8>, AnchorError> {
        let media_ip = self.cfg.media_ip;
        let mut detached = SdpState::default();
        let state = match self.calls.get_mut(&key) {
            Some(call) => &mut call.sdp_state,
            None => &mut detached,
        };
        anchor_sdp(self.media.as_mut(), media_ip, key, from, body, state)
    }
}

/// The direction a stream's SDP gives it for the media timeout: its attribute (media-level,
/// else session-level, else `sendrecv`), with the RFC 3264 §8.4 old-style hold folded in: a
/// `c=0.0.0.0` address asks for no media towards the leg, so `sendrecv` becomes `sendonly` and
/// `recvonly` becomes `inactive`.
pub(super) fn hold_direction(m: &MediaDesc) -> Direction {
    let declared = m.direction.unwrap_or(Direction::SendRecv);
    if !m.connection.is_some_and(|addr| addr.is_unspecified()) {
        return declared;
    }
    match declared {
        Direction::SendRecv => Direction::SendOnly,
        Direction::RecvOnly => Direction::Inactive,
        other => other,
    }
}

/// Anchors the SDP `body` sent by leg `from` for call `call`, returning the body to send to
/// the other leg, whose media will then flow through `media_ip`.
pub(super) fn anchor_sdp(
    media: &mut dyn MediaControl,
    media_ip: IpAddr,
    call: CallKey,
    from: Leg,
    body: &[u8],
    state: &mut SdpState,
) -> Result<Vec<u8>, AnchorError> {
    let sdp = Sdp::parse(body)?;
    crate::modules::record::remember_codecs(&mut state.codecs, from, &sdp);
    let slot = match from {
        Leg::A => &mut state.bodies[0],
        Leg::B => &mut state.bodies[1],
    };
    *slot = Some(body.to_vec());
    let audio_stream = sdp
        .media()
        .iter()
        .position(|m| m.kind == "audio" && m.port != 0);
    if let Some(audio) = audio_stream.and_then(|index| sdp.media().get(index)) {
        let slot = match from {
            Leg::A => &mut state.ptime_ms[0],
            Leg::B => &mut state.ptime_ms[1],
        };
        *slot = audio.ptime_ms;
    }
    let mut anchors = Vec::with_capacity(sdp.media().len());
    for (index, m) in sdp.media().iter().enumerate() {
        if m.port == 0 {
            // A disabled stream carries nothing: if it was ever allocated it must not keep the
            // call from counting as on hold (see `MediaControl::set_direction`).
            media.set_direction(call, index, from, Direction::Inactive);
            anchors.push(None);
            continue;
        }
        let ports = media.allocate_stream(call, index)?;
        if let Some(addr) = m.connection.or(sdp.session_connection())
            && !addr.is_unspecified()
        {
            let rtcp_port = m
                .rtcp
                .map(|(p, _)| p)
                .unwrap_or_else(|| m.port.saturating_add(1));
            let rtcp_addr = m.rtcp.and_then(|(_, a)| a).unwrap_or(addr);
            media.set_remote(
                call,
                index,
                from,
                SocketAddr::new(addr, m.port),
                SocketAddr::new(rtcp_addr, rtcp_port),
            );
        }
        media.set_direction(call, index, from, hold_direction(m));
        let (from_a, from_b) = state.event_pts.declare(index, from, m.telephone_event());
        for (leg, event_payload_type) in [(Leg::A, from_a), (Leg::B, from_b)] {
            let suppress_binding = state.suppress_binding(leg);
            let mode = match leg {
                Leg::A => state.inband[0],
                Leg::B => state.inband[1],
            };
            let listens = m.kind == "audio" && mode.listens(event_payload_type.is_some());
            let inband = listens.then(|| g711_map(&state.codecs));
            media.configure_inspector(
                call,
                index,
                leg,
                InspectorConfig {
                    event_payload_type,
                    suppress_binding,
                    inband,
                },
            );
        }
        let towards = match from {
            Leg::A => ports.b,
            Leg::B => ports.a,
        };
        anchors.push(Some(Anchor {
            addr: media_ip,
            rtp_port: towards.rtp,
            rtcp_port: towards.rtcp,
        }));
    }
    if let Some(index) = audio_stream {
        media.set_audio_stream(call, index);
    }
    Ok(crate::sdp::rewrite(body, &anchors)?)
}

/// The G.711 payload types the legs' SDPs map (static 0 and 8 unless remapped).
pub(super) fn g711_map(
    codecs: &crate::modules::record::LegCodecs,
) -> crate::media::playout::G711Map {
    use crate::modules::record::Codec;
    let find = |wanted: &Codec| {
        codecs
            .a
            .iter()
            .chain(codecs.b.iter())
            .find(|(_, c)| c == wanted)
            .map(|(pt, _)| *pt)
    };
    let defaults = crate::media::playout::G711Map::default();
    crate::media::playout::G711Map {
        pcmu: find(&Codec::Pcmu).or(defaults.pcmu),
        pcma: find(&Codec::Pcma).or(defaults.pcma),
    }
}
