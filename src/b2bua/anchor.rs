//! SDP anchoring: allocate relay ports for every stream an SDP describes, tell the media engine
//! where the sending leg's media lives, and rewrite the SDP for the receiving leg.

use std::net::{IpAddr, SocketAddr};

use crate::media::{InspectorConfig, MediaControl, MediaError};
use crate::sdp::{Anchor, Sdp};

use super::{CallKey, Leg};

/// Why an SDP could not be anchored.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// The body is not parseable SDP.
    #[error("unparseable SDP: {0}")]
    Sdp(#[from] crate::sdp::SdpError),
    /// No relay ports left.
    #[error("media: {0}")]
    Media(#[from] MediaError),
}

/// Anchors the SDP `body` sent by leg `from` for call `call`, returning the body to send to
/// the other leg, whose media will then flow through `media_ip`.
pub fn anchor_sdp(
    media: &mut dyn MediaControl,
    media_ip: IpAddr,
    call: CallKey,
    from: Leg,
    body: &[u8],
) -> Result<Vec<u8>, AnchorError> {
    let sdp = Sdp::parse(body)?;
    let mut anchors = Vec::with_capacity(sdp.media().len());
    for (index, m) in sdp.media().iter().enumerate() {
        if m.port == 0 {
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
        media.configure_inspector(
            call,
            index,
            from,
            InspectorConfig {
                event_payload_type: m.telephone_event(),
            },
        );
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
    Ok(crate::sdp::rewrite(body, &anchors)?)
}
