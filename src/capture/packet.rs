//! Link-layer, IP and UDP decoding of captured frames down to UDP datagrams.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::capture::CaptureError;
use crate::capture::pcap::{Frame, FrameReader};
use crate::pcap::wire::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_UDP, LINKTYPE_ETHERNET};

/// LINKTYPE_NULL: BSD loopback, 4-byte address family in the capturing host's byte order.
const LINK_NULL: u16 = 0;
/// LINKTYPE_RAW (and the BSD DLT_RAW values 12 and 14 some writers use).
const LINK_RAW: [u16; 3] = [101, 12, 14];
/// LINKTYPE_LOOP: OpenBSD loopback, address family in network byte order.
const LINK_LOOP: u16 = 108;
/// LINKTYPE_LINUX_SLL (cooked capture v1).
const LINK_SLL: u16 = 113;
/// LINKTYPE_IPV4 / LINKTYPE_IPV6.
const LINK_IPV4: u16 = 228;
const LINK_IPV6: u16 = 229;
/// LINKTYPE_LINUX_SLL2 (cooked capture v2).
const LINK_SLL2: u16 = 276;

const ETHERTYPE_VLAN: [u16; 3] = [0x8100, 0x88A8, 0x9100];
const IPPROTO_TCP: u8 = 6;

/// Transport protocol of a [`Segment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A UDP datagram.
    Udp,
    /// One TCP segment (not reassembled).
    Tcp,
}

/// The transport payload of one frame, UDP or TCP; used where SIP over TCP matters too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// UDP or TCP.
    pub transport: Transport,
    /// The datagram or segment with its addresses.
    pub datagram: UdpDatagram<'a>,
}

/// One UDP datagram found in a capture, payload borrowed from the capture bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    /// Capture time in µs since the Unix epoch.
    pub ts_us: u64,
    /// Sender address and port.
    pub src: SocketAddr,
    /// Receiver address and port.
    pub dst: SocketAddr,
    /// UDP payload (cut short if the frame was truncated or is a first IP fragment).
    pub payload: &'a [u8],
}

fn be16(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(
        buf.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

/// Decodes a frame of the given link type down to its UDP datagram, if it carries one.
pub fn decode_udp<'a>(frame: &Frame<'a>) -> Option<UdpDatagram<'a>> {
    decode_segment(frame)
        .filter(|s| s.transport == Transport::Udp)
        .map(|s| s.datagram)
}

/// Decodes a frame down to its UDP datagram or TCP segment payload.
pub fn decode_segment<'a>(frame: &Frame<'a>) -> Option<Segment<'a>> {
    let data = frame.data;
    let (ip, ether_type) = match frame.link_type {
        LINKTYPE_ETHERNET => ethernet_payload(data)?,
        LINK_SLL => (data.get(16..)?, be16(data, 14)?),
        LINK_SLL2 => (data.get(20..)?, be16(data, 0)?),
        LINK_IPV4 => (data, ETHERTYPE_IPV4),
        LINK_IPV6 => (data, ETHERTYPE_IPV6),
        LINK_NULL | LINK_LOOP => {
            let raw: [u8; 4] = data.get(..4)?.try_into().ok()?;
            let family = if frame.link_type == LINK_LOOP || u32::from_le_bytes(raw) > 0xFFFF {
                u32::from_be_bytes(raw)
            } else {
                u32::from_le_bytes(raw)
            };
            let ether_type = match family {
                2 => ETHERTYPE_IPV4,
                24 | 28 | 30 => ETHERTYPE_IPV6,
                _ => return None,
            };
            (data.get(4..)?, ether_type)
        }
        lt if LINK_RAW.contains(&lt) => match data.first()? >> 4 {
            4 => (data, ETHERTYPE_IPV4),
            6 => (data, ETHERTYPE_IPV6),
            _ => return None,
        },
        _ => return None,
    };
    let (protocol, src_ip, dst_ip, l4) = match ether_type {
        ETHERTYPE_IPV4 => ipv4_payload(ip)?,
        ETHERTYPE_IPV6 => ipv6_payload(ip)?,
        _ => return None,
    };
    let src_port = be16(l4, 0)?;
    let dst_port = be16(l4, 2)?;
    let (transport, payload) = match protocol {
        IPPROTO_UDP => {
            let udp_len = usize::from(be16(l4, 4)?);
            let end = if udp_len >= 8 {
                udp_len.min(l4.len())
            } else {
                l4.len()
            };
            (Transport::Udp, l4.get(8..end)?)
        }
        _ => {
            let header_len = usize::from(*l4.get(12)? >> 4) * 4;
            (Transport::Tcp, l4.get(header_len.max(20)..)?)
        }
    };
    Some(Segment {
        transport,
        datagram: UdpDatagram {
            ts_us: frame.ts_us,
            src: SocketAddr::new(src_ip, src_port),
            dst: SocketAddr::new(dst_ip, dst_port),
            payload,
        },
    })
}

/// Skips the Ethernet header and any stacked 802.1Q/802.1ad tags.
fn ethernet_payload(data: &[u8]) -> Option<(&[u8], u16)> {
    let mut at = 12;
    let mut ether_type = be16(data, at)?;
    while ETHERTYPE_VLAN.contains(&ether_type) {
        at += 4;
        ether_type = be16(data, at)?;
    }
    Some((data.get(at + 2..)?, ether_type))
}

/// IPv4 to UDP or TCP; non-first fragments and other protocols give `None`.
fn ipv4_payload(ip: &[u8]) -> Option<(u8, IpAddr, IpAddr, &[u8])> {
    let first = *ip.first()?;
    let header_len = usize::from(first & 0x0F) * 4;
    let protocol = *ip.get(9)?;
    if first >> 4 != 4 || header_len < 20 || !matches!(protocol, IPPROTO_UDP | IPPROTO_TCP) {
        return None;
    }
    if be16(ip, 6)? & 0x1FFF != 0 {
        return None;
    }
    let total = usize::from(be16(ip, 2)?);
    let end = if total >= header_len {
        total.min(ip.len())
    } else {
        ip.len()
    };
    let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
    let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
    Some((
        protocol,
        Ipv4Addr::from(src).into(),
        Ipv4Addr::from(dst).into(),
        ip.get(header_len..end)?,
    ))
}

/// IPv6 to UDP or TCP through hop-by-hop, routing, destination-options, AH and fragment
/// headers; non-first fragments give `None`.
fn ipv6_payload(ip: &[u8]) -> Option<(u8, IpAddr, IpAddr, &[u8])> {
    if ip.first()? >> 4 != 6 {
        return None;
    }
    let payload_len = usize::from(be16(ip, 4)?);
    let mut next = *ip.get(6)?;
    let src: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
    let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
    let end = if payload_len == 0 {
        ip.len()
    } else {
        (40 + payload_len).min(ip.len())
    };
    let mut at = 40;
    for _ in 0..8 {
        if matches!(next, IPPROTO_UDP | IPPROTO_TCP) {
            return Some((
                next,
                Ipv6Addr::from(src).into(),
                Ipv6Addr::from(dst).into(),
                ip.get(at..end)?,
            ));
        }
        let ext_len = match next {
            0 | 43 | 60 => (usize::from(*ip.get(at + 1)?) + 1) * 8,
            44 => {
                if be16(ip, at + 2)? >> 3 != 0 {
                    return None;
                }
                8
            }
            51 => (usize::from(*ip.get(at + 1)?) + 2) * 4,
            _ => return None,
        };
        next = *ip.get(at)?;
        at += ext_len;
    }
    None
}

/// Iterator over the UDP datagrams and TCP segments of a capture; other frames are skipped.
#[derive(Debug, Clone)]
pub struct Segments<'a> {
    frames: FrameReader<'a>,
    first_frame_us: Option<u64>,
}

impl<'a> Segments<'a> {
    /// Opens a pcap or pcapng capture held in memory.
    pub fn new(capture: &'a [u8]) -> Result<Self, CaptureError> {
        Ok(Segments {
            frames: FrameReader::new(capture)?,
            first_frame_us: None,
        })
    }

    /// Time of the first frame read so far (any protocol): the capture's start.
    pub fn first_frame_us(&self) -> Option<u64> {
        self.first_frame_us
    }
}

impl<'a> Iterator for Segments<'a> {
    type Item = Result<Segment<'a>, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let frame = match self.frames.next()? {
                Ok(frame) => frame,
                Err(err) => return Some(Err(err)),
            };
            self.first_frame_us.get_or_insert(frame.ts_us);
            if let Some(segment) = decode_segment(&frame) {
                return Some(Ok(segment));
            }
        }
    }
}

/// Iterator over the UDP datagrams of a capture; a damaged record ends it with one error.
#[derive(Debug, Clone)]
pub struct UdpDatagrams<'a> {
    segments: Segments<'a>,
}

impl<'a> UdpDatagrams<'a> {
    /// Opens a pcap or pcapng capture held in memory.
    pub fn new(capture: &'a [u8]) -> Result<Self, CaptureError> {
        Ok(UdpDatagrams {
            segments: Segments::new(capture)?,
        })
    }
}

impl<'a> Iterator for UdpDatagrams<'a> {
    type Item = Result<UdpDatagram<'a>, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.segments.next()? {
                Ok(s) if s.transport == Transport::Udp => return Some(Ok(s.datagram)),
                Ok(_) => {}
                Err(err) => return Some(Err(err)),
            }
        }
    }
}
