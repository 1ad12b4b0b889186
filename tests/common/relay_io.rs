//! A synthetic RTP packet for relay tests, shared by the userspace and kernel path tests
//! (included with `#[path]`, without the rest of `common`).

/// An RTP packet whose header fields and payload all depend on `seq`, so any rewrite shows.
pub fn rtp(payload_type: u8, seq: u16, ssrc: u32) -> Vec<u8> {
    let mut packet = vec![0x80, payload_type];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend((0..160u16).map(|i| (i as u8) ^ (seq as u8)));
    packet
}
