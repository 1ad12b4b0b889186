//! Just enough RTP (RFC 3550) header parsing to find a packet's payload and its place in time.

/// The fields of an RTP packet a recording needs; `payload` borrows from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpView<'a> {
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Marker bit: first packet of a talkspurt for audio.
    pub marker: bool,
    /// Sequence number.
    pub sequence: u16,
    /// Media timestamp, in samples for G.711.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// The media bytes, without CSRCs, header extension or padding.
    pub payload: &'a [u8],
}

/// Parses an RTP packet; `None` when it is not version 2 or its lengths do not add up.
pub fn parse_rtp(packet: &[u8]) -> Option<RtpView<'_>> {
    let first = *packet.first()?;
    if first >> 6 != 2 {
        return None;
    }
    let second = *packet.get(1)?;
    let word = |at: usize| -> Option<u32> {
        let bytes = packet.get(at..at.checked_add(4)?)?;
        Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    };
    let sequence = u16::try_from(word(0)? & 0xFFFF).ok()?;
    let timestamp = word(4)?;
    let ssrc = word(8)?;
    let csrc_count = usize::from(first & 0x0F);
    let mut start = 12usize.checked_add(csrc_count.checked_mul(4)?)?;
    if first & 0x10 != 0 {
        let extension = word(start)?;
        let extension_words = usize::try_from(extension & 0xFFFF).ok()?;
        start = start
            .checked_add(4)?
            .checked_add(extension_words.checked_mul(4)?)?;
    }
    let mut end = packet.len();
    if first & 0x20 != 0 {
        let padding = usize::from(*packet.last()?);
        end = end.checked_sub(padding)?;
    }
    let payload = packet.get(start..end)?;
    Some(RtpView {
        payload_type: second & 0x7F,
        marker: second & 0x80 != 0,
        sequence,
        timestamp,
        ssrc,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(first: u8, second: u8) -> Vec<u8> {
        let mut packet = vec![first, second, 0x12, 0x34];
        packet.extend_from_slice(&0x0000_00A0u32.to_be_bytes());
        packet.extend_from_slice(&0xDEAD_BEEFu32.to_be_bytes());
        packet
    }

    #[test]
    fn plain_packet() {
        let mut packet = header(0x80, 0x88);
        packet.extend_from_slice(&[1, 2, 3]);
        let view = parse_rtp(&packet).unwrap();
        assert_eq!(view.payload_type, 8);
        assert!(view.marker);
        assert_eq!(view.sequence, 0x1234);
        assert_eq!(view.timestamp, 160);
        assert_eq!(view.ssrc, 0xDEAD_BEEF);
        assert_eq!(view.payload, &[1, 2, 3]);
    }

    #[test]
    fn csrcs_extension_and_padding_are_skipped() {
        let mut packet = header(0x80 | 0x20 | 0x10 | 1, 0x00);
        packet.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        packet.extend_from_slice(&[0xBE, 0xDE, 0, 1, 7, 7, 7, 7]); // extension of one word
        packet.extend_from_slice(&[5, 6]);
        packet.extend_from_slice(&[0, 0, 3]); // three bytes of padding
        let view = parse_rtp(&packet).unwrap();
        assert_eq!(view.payload, &[5, 6]);
    }

    #[test]
    fn malformed_packets_are_rejected() {
        assert_eq!(parse_rtp(&[]), None);
        assert_eq!(parse_rtp(&[0x80, 0, 0]), None);
        assert_eq!(parse_rtp(&header(0x40, 0)), None, "version 1");
        assert_eq!(parse_rtp(&header(0x8F, 0)), None, "CSRCs beyond the end");
        let mut padded = header(0xA0, 0);
        padded.push(200);
        assert_eq!(parse_rtp(&padded), None, "padding longer than the packet");
        assert_eq!(
            parse_rtp(&header(0x90, 0)),
            None,
            "extension beyond the end"
        );
    }
}
