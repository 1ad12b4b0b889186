//! libpcap writer (Ethernet link type) that wraps each UDP payload in synthesised Ethernet,
//! IPv4-or-IPv6 and UDP headers carrying the real addresses and ports, so Wireshark shows the
//! RTP exactly as the proxy saw it.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::pcap::wire::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_UDP, LINKTYPE_ETHERNET};

/// Largest packet a record can hold (the snap length announced in the global header).
pub const SNAP_LEN: u32 = 65_535;
const ETHERNET_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const IPV6_LEN: usize = 40;
const UDP_LEN: usize = 8;
const DEFAULT_TTL: u8 = 64;
/// Locally administered MAC addresses: one for the sending side, one for the receiving side.
const SOURCE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const DESTINATION_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// Room for the largest synthesised header stack (Ethernet + IPv6 + UDP).
const MAX_HEADERS: usize = ETHERNET_LEN + IPV6_LEN + UDP_LEN;

/// Writes a pcap capture: the global header on creation, then one record per packet.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    records: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header (microsecond timestamps, Ethernet).
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // Bytes 8..16: time zone offset and accuracy, both zero.
        header[16..20].copy_from_slice(&SNAP_LEN.to_le_bytes());
        header[20..24].copy_from_slice(&u32::from(LINKTYPE_ETHERNET).to_le_bytes());
        out.write_all(&header)?;
        Ok(Self { out, records: 0 })
    }

    /// Appends one UDP datagram sent from `src` to `dst` at `unix_us` (microseconds since the
    /// Unix epoch). Mixed families are written as IPv6 with the IPv4 address mapped.
    pub fn write_udp(
        &mut self,
        unix_us: u64,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> io::Result<()> {
        let mut headers = [0u8; MAX_HEADERS];
        let header_len = build_headers(&mut headers, src, dst, payload)?;
        let total = header_len.saturating_add(payload.len());
        let captured = u32::try_from(total)
            .ok()
            .filter(|len| *len <= SNAP_LEN)
            .ok_or_else(|| invalid("packet larger than the snap length"))?;
        let seconds = u32::try_from(unix_us / 1_000_000).unwrap_or(u32::MAX);
        let micros = u32::try_from(unix_us % 1_000_000).unwrap_or(0);
        let mut record = [0u8; 16];
        record[0..4].copy_from_slice(&seconds.to_le_bytes());
        record[4..8].copy_from_slice(&micros.to_le_bytes());
        record[8..12].copy_from_slice(&captured.to_le_bytes());
        record[12..16].copy_from_slice(&captured.to_le_bytes());
        self.out.write_all(&record)?;
        self.out
            .write_all(headers.get(..header_len).unwrap_or_default())?;
        self.out.write_all(payload)?;
        self.records = self.records.saturating_add(1);
        Ok(())
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Flushes and hands back the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// One UDP datagram as an Ethernet frame, as [`PcapWriter::write_udp`] records it: headers with
/// their checksums, then the payload. For tests that hand the kernel fast path's program whole
/// packets.
#[cfg(test)]
pub(crate) fn udp_frame(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> io::Result<Vec<u8>> {
    let mut headers = [0u8; MAX_HEADERS];
    let header_len = build_headers(&mut headers, src, dst, payload)?;
    let mut frame = headers.get(..header_len).unwrap_or_default().to_vec();
    frame.extend_from_slice(payload);
    Ok(frame)
}

fn invalid(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn mapped(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Fills `buf` with Ethernet + IP + UDP headers for `payload`; returns how many bytes it used.
fn build_headers(
    buf: &mut [u8; MAX_HEADERS],
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
) -> io::Result<usize> {
    let udp_len = payload
        .len()
        .checked_add(UDP_LEN)
        .and_then(|len| u16::try_from(len).ok())
        .ok_or_else(|| invalid("datagram too large for UDP"))?;
    let (ethertype, ip_len, pseudo_sum) = match (src.ip(), dst.ip()) {
        (IpAddr::V4(from), IpAddr::V4(to)) => {
            let total = udp_len
                .checked_add(IPV4_LEN as u16)
                .ok_or_else(|| invalid("datagram too large for IPv4"))?;
            let ip = &mut buf[ETHERNET_LEN..ETHERNET_LEN + IPV4_LEN];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip[6] = 0x40; // don't fragment
            ip[8] = DEFAULT_TTL;
            ip[9] = IPPROTO_UDP;
            ip[12..16].copy_from_slice(&from.octets());
            ip[16..20].copy_from_slice(&to.octets());
            let checksum = fold(ones_sum(0, ip));
            ip[10..12].copy_from_slice(&checksum.to_be_bytes());
            let pseudo = ones_sum(ones_sum(0, &from.octets()), &to.octets());
            (
                ETHERTYPE_IPV4,
                IPV4_LEN,
                pseudo + u32::from(IPPROTO_UDP) + u32::from(udp_len),
            )
        }
        (from, to) => {
            let (from, to) = (mapped(from), mapped(to));
            let ip = &mut buf[ETHERNET_LEN..ETHERNET_LEN + IPV6_LEN];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&udp_len.to_be_bytes());
            ip[6] = IPPROTO_UDP;
            ip[7] = DEFAULT_TTL;
            ip[8..24].copy_from_slice(&from.octets());
            ip[24..40].copy_from_slice(&to.octets());
            let pseudo = ones_sum(ones_sum(0, &from.octets()), &to.octets());
            (
                ETHERTYPE_IPV6,
                IPV6_LEN,
                pseudo + u32::from(IPPROTO_UDP) + u32::from(udp_len),
            )
        }
    };
    buf[0..6].copy_from_slice(&DESTINATION_MAC);
    buf[6..12].copy_from_slice(&SOURCE_MAC);
    buf[12..14].copy_from_slice(&ethertype.to_be_bytes());
    let udp_start = ETHERNET_LEN + ip_len;
    let udp = &mut buf[udp_start..udp_start + UDP_LEN];
    udp[0..2].copy_from_slice(&src.port().to_be_bytes());
    udp[2..4].copy_from_slice(&dst.port().to_be_bytes());
    udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
    let sum = ones_sum(ones_sum(pseudo_sum, udp), payload);
    // A computed zero is sent as all ones: zero means "no checksum" (RFC 768).
    let checksum = match fold(sum) {
        0 => 0xFFFF,
        value => value,
    };
    udp[6..8].copy_from_slice(&checksum.to_be_bytes());
    Ok(udp_start + UDP_LEN)
}

/// Adds `bytes` as big-endian 16-bit words to a running one's-complement sum.
fn ones_sum(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut words = bytes.chunks_exact(2);
    for word in &mut words {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([word[0], word[1]])));
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    if let [last] = words.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    sum
}

/// Folds a running sum into the final 16-bit one's-complement checksum.
fn fold(mut sum: u32) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture_of(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
        let mut writer = PcapWriter::new(Vec::new()).unwrap();
        let unix_us = 1_700_000_000_123_456;
        writer
            .write_udp(unix_us, src.parse().unwrap(), dst.parse().unwrap(), payload)
            .unwrap();
        assert_eq!(writer.records(), 1);
        writer.finish().unwrap()
    }

    #[test]
    fn ipv4_record_has_correct_lengths_and_checksums() {
        let payload = [0x80u8, 8, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4, 0xD5];
        let bytes = capture_of("192.0.2.1:4000", "198.51.100.7:5004", &payload);
        assert_eq!(&bytes[0..4], &0xa1b2_c3d4u32.to_le_bytes());
        let record = &bytes[24..];
        assert_eq!(
            u32::from_le_bytes(record[0..4].try_into().unwrap()),
            1_700_000_000
        );
        assert_eq!(
            u32::from_le_bytes(record[4..8].try_into().unwrap()),
            123_456
        );
        let frame = &record[16..];
        let captured = u32::from_le_bytes(record[8..12].try_into().unwrap()) as usize;
        assert_eq!(captured, frame.len());
        assert_eq!(frame.len(), 14 + 20 + 8 + payload.len());
        assert_eq!(&frame[12..14], &[0x08, 0x00]);
        let ip = &frame[14..34];
        assert_eq!(
            u16::from_be_bytes([ip[2], ip[3]]) as usize,
            20 + 8 + payload.len()
        );
        assert_eq!(fold(ones_sum(0, ip)), 0, "IPv4 header checksum verifies");
        assert_eq!(&ip[12..16], &[192, 0, 2, 1]);
        let udp = &frame[34..];
        assert_eq!(u16::from_be_bytes([udp[0], udp[1]]), 4000);
        assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), 5004);
        assert_eq!(u16::from_be_bytes([udp[4], udp[5]]) as usize, udp.len());
        let pseudo = ones_sum(ones_sum(0, &ip[12..16]), &ip[16..20]) + 17 + udp.len() as u32;
        assert_eq!(fold(ones_sum(pseudo, udp)), 0, "UDP checksum verifies");
        assert_eq!(&udp[8..], &payload);
    }

    #[test]
    fn ipv6_record_and_mixed_families() {
        let payload = [1u8, 2, 3];
        let bytes = capture_of("[2001:db8::1]:4000", "[2001:db8::2]:6000", &payload);
        let frame = &bytes[24 + 16..];
        assert_eq!(frame.len(), 14 + 40 + 8 + 3);
        assert_eq!(&frame[12..14], &[0x86, 0xDD]);
        let ip = &frame[14..54];
        assert_eq!(u16::from_be_bytes([ip[4], ip[5]]), 11);
        let udp = &frame[54..];
        let pseudo = ones_sum(ones_sum(0, &ip[8..24]), &ip[24..40]) + 17 + udp.len() as u32;
        assert_eq!(fold(ones_sum(pseudo, udp)), 0, "UDP checksum verifies");

        let mixed = capture_of("192.0.2.1:4000", "[2001:db8::2]:6000", &payload);
        let frame = &mixed[24 + 16..];
        assert_eq!(&frame[12..14], &[0x86, 0xDD]);
        assert_eq!(
            &frame[14 + 8..14 + 24],
            &"::ffff:192.0.2.1".parse::<Ipv6Addr>().unwrap().octets()
        );
    }

    #[test]
    fn oversized_datagrams_are_refused() {
        let mut writer = PcapWriter::new(Vec::new()).unwrap();
        let big = vec![0u8; 70_000];
        let (src, dst) = (
            "192.0.2.1:1".parse().unwrap(),
            "192.0.2.2:2".parse().unwrap(),
        );
        assert!(writer.write_udp(0, src, dst, &big).is_err());
        assert_eq!(writer.records(), 0);
    }

    #[test]
    fn odd_length_checksum_pads_with_zero() {
        assert_eq!(ones_sum(0, &[0x12]), 0x1200);
        assert_eq!(fold(ones_sum(0, &[0xFF, 0xFF, 0x00, 0x01])), 0xFFFE);
    }
}
