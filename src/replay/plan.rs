//! The replay plan: what a capture says each end of its call offered and sent, and when. Pure
//! functions from capture bytes to a [`Plan`], so that the live part only has to follow it.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::capture::{AnalyzeOptions, Segments, Transport, analyze};
use crate::rtp::{RtpView, is_rtcp};
use crate::sdp::Sdp;
use crate::sip::{Method, SipMessage, StartLine};

use super::ReplayError;
use super::offer::Offer;

/// One side of the replayed call: the caller (a-leg) or the callee standing in for the PBX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The party that sent the INVITE (the proxy's a-leg).
    Caller,
    /// The party that answered it (the PBX, the proxy's b-leg).
    Callee,
}

impl Side {
    /// The name used in reports and expectation files.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Caller => "caller",
            Side::Callee => "callee",
        }
    }
}

/// What one planned step sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// An RTP packet, bytes exactly as captured.
    Rtp(Vec<u8>),
    /// An in-dialog SIP INFO: its Content-Type and body as captured.
    Info {
        /// Content-Type of the captured INFO.
        content_type: String,
        /// Its body.
        body: Vec<u8>,
    },
    /// The side hangs up, as the capture's BYE did.
    Bye,
}

/// One thing a side sends, `at_us` after the start of the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Microseconds after the first step, as captured (before `--speed`).
    pub at_us: u64,
    /// Who sends it.
    pub from: Side,
    /// What is sent.
    pub payload: Payload,
}

/// Everything the live replay needs from a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// What the caller offers in its INVITE.
    pub caller_offer: Offer,
    /// What the callee answers with.
    pub callee_answer: Offer,
    /// Whether the offers came from the capture's SIP (false: defaults or inferred from RTP).
    pub from_sip: bool,
    /// Steps in time order.
    pub steps: Vec<Step>,
}

impl Plan {
    /// RTP packets each side sends: (caller, callee).
    pub fn rtp_counts(&self) -> (u64, u64) {
        let count = |side| {
            self.steps
                .iter()
                .filter(|s| s.from == side && matches!(s.payload, Payload::Rtp(_)))
                .count() as u64
        };
        (count(Side::Caller), count(Side::Callee))
    }
}

/// The dialog the capture's call ran in: its Call-ID, the caller's From tag and transport
/// addresses, the SDP each side sent.
#[derive(Debug, Default)]
struct Dialog {
    call_id: String,
    caller_tag: Option<String>,
    caller_sdp: Option<Offer>,
    callee_sdp: Option<Offer>,
    /// RTP addresses each side's SDP named: (caller, callee).
    caller_media: Option<SocketAddr>,
    callee_media: Option<SocketAddr>,
}

/// The audio address an SDP body names (media-level `c=`, else session-level, and the port).
pub(super) fn sdp_media_addr(body: &[u8]) -> Option<SocketAddr> {
    let sdp = Sdp::parse(body).ok()?;
    let media = sdp.media().iter().find(|m| m.kind == "audio")?;
    Some(SocketAddr::new(
        media.connection.or(sdp.session_connection())?,
        media.port,
    ))
}

/// Picks the call: the first INVITE whose Call-ID got a 2xx, else the first INVITE at all.
fn find_dialog(sips: &[(u64, SipMessage)]) -> Option<Dialog> {
    let invites = sips.iter().filter(|(_, m)| {
        m.method() == Some(&Method::Invite) && m.to_tag().is_none() && m.call_id().is_some()
    });
    let answered = |id: &str| {
        sips.iter().any(|(_, m)| {
            m.call_id() == Some(id)
                && m.status().is_some_and(|s| (200..300).contains(&s))
                && m.cseq().is_some_and(|(_, method)| method == Method::Invite)
        })
    };
    let (_, invite) = invites
        .clone()
        .find(|(_, m)| m.call_id().is_some_and(answered))
        .or_else(|| invites.clone().next())?;
    let mut dialog = Dialog {
        call_id: invite.call_id()?.to_owned(),
        caller_tag: invite.from_tag(),
        ..Dialog::default()
    };
    for (_, msg) in sips.iter().filter(|(_, m)| m.call_id() == invite.call_id()) {
        let Some(offer) = Offer::from_sdp(&msg.body) else {
            continue;
        };
        let by_caller = if msg.is_request() {
            msg.from_tag() == dialog.caller_tag
        } else {
            msg.from_tag() != dialog.caller_tag
        };
        if by_caller && dialog.caller_sdp.is_none() {
            dialog.caller_media = sdp_media_addr(&msg.body);
            dialog.caller_sdp = Some(offer);
        } else if !by_caller && dialog.callee_sdp.is_none() {
            dialog.callee_media = sdp_media_addr(&msg.body);
            dialog.callee_sdp = Some(offer);
        }
    }
    Some(dialog)
}

/// Which side sent each RTP flow (source, destination), strongest evidence first: the flow goes
/// to an address one side's SDP named (RTP is sent where the receiver asked); it is the reverse
/// or the same direction of a flow already placed between the same two hosts; it comes from an
/// SDP address; else the first flow's source is the caller and everything else the callee.
fn assign_flows(
    dialog: Option<&Dialog>,
    rtps: &[(u64, SocketAddr, SocketAddr, Vec<u8>)],
) -> Vec<(SocketAddr, SocketAddr, Side)> {
    let mut pending: Vec<(SocketAddr, SocketAddr)> = Vec::new();
    for (_, src, dst, _) in rtps {
        if !pending.contains(&(*src, *dst)) {
            pending.push((*src, *dst));
        }
    }
    let first = pending.first().copied();
    let mut placed: Vec<(SocketAddr, SocketAddr, Side)> = Vec::new();
    let by_dst = |src: SocketAddr, dst: SocketAddr| {
        let d = dialog?;
        if Some(dst) == d.caller_media {
            Some(Side::Callee)
        } else if Some(dst) == d.callee_media {
            Some(Side::Caller)
        } else {
            let _ = src;
            None
        }
    };
    let by_src = |src: SocketAddr| {
        let d = dialog?;
        if Some(src) == d.caller_media {
            Some(Side::Caller)
        } else if Some(src) == d.callee_media {
            Some(Side::Callee)
        } else {
            None
        }
    };
    let fallback = |src: SocketAddr| match first {
        Some((first_src, _)) if src == first_src || src.ip() == first_src.ip() => Side::Caller,
        _ => Side::Callee,
    };
    for (src, dst) in &pending {
        if let Some(side) = by_dst(*src, *dst) {
            placed.push((*src, *dst, side));
        }
    }
    for (src, dst) in &pending {
        if placed.iter().any(|(s, d, _)| s == src && d == dst) {
            continue;
        }
        let side = flow_side(&placed, *src, *dst)
            .or_else(|| by_src(*src))
            .unwrap_or_else(|| fallback(*src));
        placed.push((*src, *dst, side));
    }
    placed
}

/// The side of a new flow from the flows already seen between the same two hosts: the
/// reverse direction of a known flow is the other side (whatever the ports, which are often
/// asymmetric), the same direction is the same side.
fn flow_side(
    flows: &[(SocketAddr, SocketAddr, Side)],
    src: SocketAddr,
    dst: SocketAddr,
) -> Option<Side> {
    let reverse = flows
        .iter()
        .find(|(s, d, _)| s.ip() == dst.ip() && d.ip() == src.ip() && s.ip() != d.ip());
    if let Some((_, _, side)) = reverse {
        return Some(match side {
            Side::Caller => Side::Callee,
            Side::Callee => Side::Caller,
        });
    }
    flows
        .iter()
        .find(|(s, d, _)| s.ip() == src.ip() && d.ip() == dst.ip() && s.ip() != d.ip())
        .map(|(_, _, side)| *side)
}

fn looks_like_sip(payload: &[u8]) -> bool {
    let head = payload.get(..payload.len().min(16)).unwrap_or_default();
    head.starts_with(b"SIP/2.0 ")
        || [
            "INVITE ",
            "ACK ",
            "BYE ",
            "CANCEL ",
            "INFO ",
            "OPTIONS ",
            "REGISTER ",
            "NOTIFY ",
            "REFER ",
            "UPDATE ",
            "PRACK ",
            "SUBSCRIBE ",
            "MESSAGE ",
        ]
        .iter()
        .any(|m| head.starts_with(m.as_bytes()))
}

/// Builds the plan of a capture held in memory. A truncated or damaged capture is an error:
/// replaying half a call would report a misleading outcome.
pub fn plan_capture(capture: &[u8]) -> Result<Plan, ReplayError> {
    let mut sips = Vec::new();
    let mut rtps: Vec<(u64, SocketAddr, SocketAddr, Vec<u8>)> = Vec::new();
    for segment in Segments::new(capture)? {
        let segment = segment?;
        let d = segment.datagram;
        if segment.transport == Transport::Tcp {
            // SIP over TCP: every whole message the segment starts with (no reassembly).
            let mut rest = d.payload;
            while looks_like_sip(rest) {
                let Ok(Some((msg, used))) = SipMessage::parse_stream(rest) else {
                    break;
                };
                sips.push((d.ts_us, msg));
                rest = rest.get(used..).unwrap_or_default();
            }
        } else if looks_like_sip(d.payload) {
            if let Ok(msg) = SipMessage::parse(d.payload) {
                sips.push((d.ts_us, msg));
            }
        } else if !is_rtcp(d.payload) && RtpView::parse(d.payload).is_ok() {
            rtps.push((d.ts_us, d.src, d.dst, d.payload.to_vec()));
        }
    }
    let dialog = find_dialog(&sips);
    let mut steps = Vec::new();
    let sides = assign_flows(dialog.as_ref(), &rtps);
    for (ts, src, dst, bytes) in rtps {
        let from = sides
            .iter()
            .find(|(s, d, _)| *s == src && *d == dst)
            .map_or(Side::Caller, |(_, _, side)| *side);
        steps.push((ts, from, Payload::Rtp(bytes)));
    }
    if let Some(d) = &dialog {
        for (ts, msg) in sips.iter().filter(|(_, m)| m.call_id() == Some(&d.call_id)) {
            let StartLine::Request { method, .. } = &msg.start else {
                continue;
            };
            let from = if msg.from_tag() == d.caller_tag {
                Side::Caller
            } else {
                Side::Callee
            };
            let payload = match method {
                Method::Info => Payload::Info {
                    content_type: msg.content_type().unwrap_or("text/plain").to_owned(),
                    body: msg.body.to_vec(),
                },
                Method::Bye => Payload::Bye,
                _ => continue,
            };
            steps.push((*ts, from, payload));
        }
    }
    steps.sort_by_key(|(ts, _, _)| *ts);
    let origin = steps.first().map_or(0, |(ts, _, _)| *ts);
    let steps = steps
        .into_iter()
        .map(|(ts, from, payload)| Step {
            at_us: ts.saturating_sub(origin),
            from,
            payload,
        })
        .collect();
    let (caller_offer, callee_answer, from_sip) = offers(dialog.as_ref(), capture);
    Ok(Plan {
        caller_offer,
        callee_answer,
        from_sip,
        steps,
    })
}

/// The SDP each side uses: the capture's when it has them (one side's stands in for a missing
/// other), else G.711 with the telephone-event format the analysis inferred from the RTP.
fn offers(dialog: Option<&Dialog>, capture: &[u8]) -> (Offer, Offer, bool) {
    if let Some(d) = dialog {
        match (&d.caller_sdp, &d.callee_sdp) {
            (Some(a), Some(b)) => return (a.clone(), b.clone(), true),
            (Some(one), None) | (None, Some(one)) => return (one.clone(), one.clone(), true),
            (None, None) => {}
        }
    }
    let inferred = analyze(capture, &AnalyzeOptions::default())
        .ok()
        .and_then(|report| {
            let mut configs: HashMap<(u8, u32), usize> = HashMap::new();
            for stream in &report.streams {
                if let Some(c) = stream.event_config {
                    *configs.entry((c.payload_type, c.clock_rate)).or_default() += 1;
                }
            }
            configs.into_iter().max_by_key(|(_, n)| *n).map(|(k, _)| k)
        });
    let offer = inferred.map_or_else(Offer::default_offer, |(pt, rate)| {
        Offer::g711_with_event(pt, rate)
    });
    (offer.clone(), offer, false)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
