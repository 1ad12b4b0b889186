//! The SDP each stand-in party sends: the audio formats read from the capture's SDP (or the
//! G.711 default), rendered again with the replay's own address.

use std::net::SocketAddr;

use crate::sdp::Sdp;

/// One RTP payload format offered in SDP: what a side says it can receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    /// RTP payload type.
    pub payload_type: u8,
    /// Encoding name, e.g. `PCMU` or `telephone-event`.
    pub encoding: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count when the capture gave one.
    pub channels: Option<u8>,
}

/// The audio description one side offers, rebuilt into SDP with the replay's own address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Formats in `m=` order.
    pub formats: Vec<Format>,
    /// `a=ptime` when the capture gave one.
    pub ptime_ms: Option<u32>,
}

impl Offer {
    /// PCMU, PCMA and telephone-event/8000 on 101: what a capture without SIP is offered with.
    pub fn default_offer() -> Offer {
        Offer::g711_with_event(101, 8000)
    }

    /// PCMU, PCMA and the given telephone-event payload type and clock rate: the offer for a
    /// capture without SIP whose event format could be inferred from its RTP.
    pub fn g711_with_event(payload_type: u8, clock_rate: u32) -> Offer {
        let format = |payload_type, encoding: &str, clock_rate| Format {
            payload_type,
            encoding: encoding.to_owned(),
            clock_rate,
            channels: None,
        };
        Offer {
            formats: vec![
                format(0, "PCMU", 8000),
                format(8, "PCMA", 8000),
                format(payload_type, "telephone-event", clock_rate),
            ],
            ptime_ms: None,
        }
    }

    /// Reads the first audio section of an SDP body; `None` when it has none.
    pub fn from_sdp(body: &[u8]) -> Option<Offer> {
        let sdp = Sdp::parse(body).ok()?;
        let media = sdp.media().iter().find(|m| m.kind == "audio")?;
        let formats = media
            .formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .filter_map(|pt| {
                media.codec(pt).map(|map| Format {
                    payload_type: pt,
                    encoding: map.encoding.clone(),
                    clock_rate: map.clock_rate,
                    channels: map.channels,
                })
            })
            .collect::<Vec<_>>();
        (!formats.is_empty()).then_some(Offer {
            formats,
            ptime_ms: media.ptime_ms,
        })
    }

    /// The SDP body this offer makes for a party receiving RTP at `media`.
    pub fn render(&self, media: SocketAddr, session_id: u64) -> String {
        let family = if media.is_ipv6() { "IP6" } else { "IP4" };
        let ip = media.ip();
        let pts = self
            .formats
            .iter()
            .map(|f| f.payload_type.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let mut sdp = format!(
            "v=0\r\no=replay {session_id} {session_id} IN {family} {ip}\r\ns=replay\r\n\
             c=IN {family} {ip}\r\nt=0 0\r\nm=audio {} RTP/AVP {pts}\r\n",
            media.port()
        );
        for f in &self.formats {
            let channels = f.channels.map(|c| format!("/{c}")).unwrap_or_default();
            sdp.push_str(&format!(
                "a=rtpmap:{} {}/{}{channels}\r\n",
                f.payload_type, f.encoding, f.clock_rate
            ));
            if f.encoding.eq_ignore_ascii_case("telephone-event") {
                sdp.push_str(&format!("a=fmtp:{} 0-15\r\n", f.payload_type));
            }
        }
        if let Some(ptime) = self.ptime_ms {
            sdp.push_str(&format!("a=ptime:{ptime}\r\n"));
        }
        sdp.push_str("a=sendrecv\r\n");
        sdp
    }
}
