//! Parsed view of an SDP body (RFC 4566): the parts a media relay needs.

use std::net::IpAddr;

use super::codec::static_payload;
use super::error::{SdpError, excerpt};
use super::lines::{attribute, split_lines, type_and_value};

/// A parsed session description: session-level connection and origin plus
/// one [`MediaDesc`] per `m=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    origin_address: Option<IpAddr>,
    session_connection: Option<IpAddr>,
    session_direction: Option<Direction>,
    media: Vec<MediaDesc>,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDesc {
    /// Media type (`audio`, `video`, `image`...).
    pub kind: String,
    /// Transport port; 0 means the stream is disabled.
    pub port: u16,
    /// Transport protocol (`RTP/AVP`, `RTP/SAVPF`, `udptl`...).
    pub proto: String,
    /// Format list (payload types for RTP).
    pub formats: Vec<String>,
    /// Media-level `c=` address, else the session-level one.
    pub connection: Option<IpAddr>,
    /// `a=rtcp:` port and optional address (RFC 3605).
    pub rtcp: Option<(u16, Option<IpAddr>)>,
    /// `a=rtpmap:` entries in order.
    pub rtpmaps: Vec<RtpMap>,
    /// Media-level direction attribute, else the session-level one.
    pub direction: Option<Direction>,
    /// `a=ptime:` in milliseconds (RFC 4566 §6), the packet time the sender wants to receive.
    pub ptime_ms: Option<u32>,
}

/// One `a=rtpmap:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// RTP payload type.
    pub payload_type: u8,
    /// Encoding name as written (`PCMA`, `telephone-event`, `opus`).
    pub encoding: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count when given.
    pub channels: Option<u8>,
}

/// Stream direction attribute (RFC 4566 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Media flows both ways.
    SendRecv,
    /// The describing side only sends.
    SendOnly,
    /// The describing side only receives.
    RecvOnly,
    /// No media flows (hold).
    Inactive,
}

impl Direction {
    /// Maps an attribute name to a direction.
    pub fn parse(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The attribute name of this direction.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

impl Sdp {
    /// Parses an SDP body. Lines may end in CRLF or LF; unknown lines and
    /// malformed attributes are ignored, but every line must be `x=...`, the
    /// first must be `v=` and every `m=` line needs a numeric port.
    pub fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
        let text = std::str::from_utf8(body).map_err(|_| SdpError::NonUtf8)?;
        let mut sdp = Sdp {
            origin_address: None,
            session_connection: None,
            session_direction: None,
            media: Vec::new(),
        };
        let mut seen_version = false;
        for (index, line) in split_lines(text).iter().enumerate() {
            let number = index + 1;
            if line.text.trim().is_empty() {
                continue;
            }
            let (kind, value) =
                type_and_value(line.text).ok_or_else(|| SdpError::MalformedLine {
                    line: number,
                    text: excerpt(line.text),
                })?;
            if !seen_version {
                if kind != b'v' {
                    return Err(SdpError::MissingVersion);
                }
                seen_version = true;
                continue;
            }
            match (kind, sdp.media.last_mut()) {
                (b'm', _) => sdp.media.push(parse_media_line(value).ok_or_else(|| {
                    SdpError::BadMediaLine {
                        line: number,
                        text: excerpt(line.text),
                    }
                })?),
                (b'o', None) => sdp.origin_address = parse_origin_address(value),
                (b'c', None) => sdp.session_connection = parse_connection(value),
                (b'c', Some(media)) => media.connection = parse_connection(value),
                (b'a', None) => {
                    if let Some((name, _)) = attribute(line.text) {
                        sdp.session_direction = Direction::parse(name).or(sdp.session_direction);
                    }
                }
                (b'a', Some(media)) => apply_media_attribute(media, line.text),
                _ => {}
            }
        }
        if !seen_version {
            return Err(SdpError::MissingVersion);
        }
        for media in &mut sdp.media {
            media.connection = media.connection.or(sdp.session_connection);
            media.direction = media.direction.or(sdp.session_direction);
        }
        Ok(sdp)
    }

    /// The media sections in `m=` order.
    pub fn media(&self) -> &[MediaDesc] {
        &self.media
    }

    /// The session-level `c=` address.
    pub fn session_connection(&self) -> Option<IpAddr> {
        self.session_connection
    }

    /// The address in the `o=` line.
    pub fn origin_address(&self) -> Option<IpAddr> {
        self.origin_address
    }

    /// The session-level direction attribute.
    pub fn session_direction(&self) -> Option<Direction> {
        self.session_direction
    }
}

impl MediaDesc {
    /// The telephone-event (RFC 4733) payload type and clock rate, preferring
    /// the first one in `m=` format order.
    pub fn telephone_event(&self) -> Option<(u8, u32)> {
        self.telephone_events().into_iter().next()
    }

    /// Every telephone-event payload type offered (e.g. 8 kHz and 48 kHz), in
    /// `m=` format order.
    pub fn telephone_events(&self) -> Vec<(u8, u32)> {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .filter_map(|pt| self.rtpmaps.iter().find(|m| m.payload_type == pt))
            .filter(|m| m.encoding.eq_ignore_ascii_case("telephone-event"))
            .map(|m| (m.payload_type, m.clock_rate))
            .collect()
    }

    /// The codec of a payload type: its rtpmap, or the RFC 3551 static
    /// mapping when the format is listed without an rtpmap.
    pub fn codec(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmaps
            .iter()
            .find(|m| m.payload_type == pt)
            .or_else(|| {
                let listed = self.formats.iter().any(|f| f.parse::<u8>() == Ok(pt));
                listed.then(|| static_payload(pt)).flatten()
            })
    }
}

fn parse_media_line(value: &str) -> Option<MediaDesc> {
    let mut fields = value.split_whitespace();
    let kind = fields.next()?;
    let port_field = fields.next()?;
    let proto = fields.next()?;
    let port_text = port_field.split_once('/').map_or(port_field, |(p, _)| p);
    let port = port_text.parse::<u16>().ok()?;
    Some(MediaDesc {
        kind: kind.to_string(),
        port,
        proto: proto.to_string(),
        formats: fields.map(str::to_string).collect(),
        connection: None,
        rtcp: None,
        rtpmaps: Vec::new(),
        direction: None,
        ptime_ms: None,
    })
}

/// Address of `c=IN IP4 224.2.1.1/127` (TTL and count suffixes dropped).
fn parse_connection(value: &str) -> Option<IpAddr> {
    let mut fields = value.split_whitespace();
    let _net = fields.next()?;
    let _addr_type = fields.next()?;
    let address = fields.next()?;
    address.split('/').next()?.parse().ok()
}

/// Address of `o=user sess-id version IN IP4 addr`.
fn parse_origin_address(value: &str) -> Option<IpAddr> {
    value.split_whitespace().nth(5)?.parse().ok()
}

fn apply_media_attribute(media: &mut MediaDesc, line: &str) {
    let Some((name, value)) = attribute(line) else {
        return;
    };
    match (name, value) {
        ("rtpmap", Some(v)) => media.rtpmaps.extend(parse_rtpmap(v)),
        ("rtcp", Some(v)) => media.rtcp = parse_rtcp(v).or(media.rtcp),
        ("ptime", Some(v)) => {
            // Fractional ptimes (`a=ptime:20.0`) are seen in the wild; whole milliseconds kept.
            let whole = v.trim().split('.').next().unwrap_or_default();
            media.ptime_ms = whole.parse().ok().filter(|ms| (1..=200).contains(ms));
        }
        (other, None) => media.direction = Direction::parse(other).or(media.direction),
        _ => {}
    }
}

/// Parses `101 telephone-event/8000[/1]`.
fn parse_rtpmap(value: &str) -> Option<RtpMap> {
    let (pt, encoding) = value.trim().split_once(char::is_whitespace)?;
    let mut parts = encoding.trim().split('/');
    let name = parts.next().filter(|n| !n.is_empty())?;
    let clock_rate = parts.next()?.trim().parse().ok()?;
    let channels = match parts.next() {
        Some(c) => Some(c.trim().parse().ok()?),
        None => None,
    };
    Some(RtpMap {
        payload_type: pt.parse().ok()?,
        encoding: name.to_string(),
        clock_rate,
        channels,
    })
}

/// Parses `5005` or `5005 IN IP4 10.0.0.1`.
fn parse_rtcp(value: &str) -> Option<(u16, Option<IpAddr>)> {
    let mut fields = value.split_whitespace();
    let port = fields.next()?.parse().ok()?;
    let address = fields.nth(2).and_then(|a| a.parse().ok());
    Some((port, address))
}
