//! Helpers shared by the recording tests: a tiny pcap reader and RTP builders.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The sample call shipped with SIPp: 236 PCMA packets of 30 ms, one direction.
pub(super) const SAMPLE_PCAP: &str = "/usr/share/sip-tester/g711a.pcap";

/// One UDP datagram read from a capture.
pub(super) struct CapturedUdp {
    pub time_us: u64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
}

/// Reads a little-endian microsecond pcap of Ethernet + IPv4 + UDP frames.
pub(super) fn read_pcap(bytes: &[u8]) -> Vec<CapturedUdp> {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(u32_at(0), 0xa1b2_c3d4, "little-endian microsecond pcap");
    assert_eq!(u32_at(20), 1, "Ethernet link type");
    let mut packets = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let time_us = u64::from(u32_at(at)) * 1_000_000 + u64::from(u32_at(at + 4));
        let captured = u32_at(at + 8) as usize;
        let frame = &bytes[at + 16..at + 16 + captured];
        at += 16 + captured;
        assert_eq!(&frame[12..14], &[0x08, 0x00], "IPv4");
        let ip = &frame[14..];
        let header_len = usize::from(ip[0] & 0x0F) * 4;
        assert_eq!(ip[9], 17, "UDP");
        let addr = |offset: usize| {
            IpAddr::V4(Ipv4Addr::new(
                ip[offset],
                ip[offset + 1],
                ip[offset + 2],
                ip[offset + 3],
            ))
        };
        let udp = &ip[header_len..];
        let port = |offset: usize| u16::from_be_bytes([udp[offset], udp[offset + 1]]);
        let udp_len = usize::from(port(4));
        packets.push(CapturedUdp {
            time_us,
            src: SocketAddr::new(addr(12), port(0)),
            dst: SocketAddr::new(addr(16), port(2)),
            payload: udp[8..udp_len].to_vec(),
        });
    }
    packets
}

/// A minimal RTP packet (no CSRC, no extension).
pub(super) fn rtp_packet(
    pt: u8,
    marker: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut packet = vec![0x80, pt | if marker { 0x80 } else { 0 }];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&ts.to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

/// Normalised cross-correlation of two equally long signals at lag 0.
pub(super) fn correlation(left: &[f64], right: &[f64]) -> f64 {
    assert_eq!(left.len(), right.len());
    let dot: f64 = left.iter().zip(right).map(|(a, b)| a * b).sum();
    let energy = |s: &[f64]| s.iter().map(|v| v * v).sum::<f64>().sqrt();
    dot / (energy(left) * energy(right))
}
