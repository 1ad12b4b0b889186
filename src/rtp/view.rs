//! Zero-copy view of an RTP packet header (RFC 3550) used on the media hot path.

use thiserror::Error;

/// Fixed part of every RTP header: V/P/X/CC, M/PT, sequence, timestamp, SSRC.
const FIXED_HEADER_LEN: usize = 12;

/// Why a datagram could not be read as an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtpError {
    /// Fewer bytes than the fixed 12-byte header, the CSRC list or the extension announce.
    #[error("RTP packet truncated: need {needed} bytes, have {have}")]
    Truncated {
        /// Bytes the header claims.
        needed: usize,
        /// Bytes actually present.
        have: usize,
    },
    /// The version field is not 2.
    #[error("RTP version {0} is not 2")]
    BadVersion(u8),
    /// The second byte is an RTCP packet type (RFC 5761 demultiplexing range 192..=223).
    #[error("datagram is RTCP (packet type {0}), not RTP")]
    Rtcp(u8),
    /// The padding count is zero or larger than the payload.
    #[error("RTP padding count {0} is invalid")]
    BadPadding(u8),
}

/// Tells RTCP from RTP on a multiplexed port (RFC 5761: second byte 192..=223, which covers
/// SR/RR/SDES/BYE/APP 200..=204, i.e. payload types 72..=76 with the marker bit set).
pub fn is_rtcp(buf: &[u8]) -> bool {
    matches!(buf.get(1), Some(192..=223)) && buf.first().is_some_and(|b| b >> 6 == 2)
}

/// Borrowed, validated view of one RTP packet; parsing allocates nothing and copies no payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpView<'a> {
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    header_len: usize,
    payload: &'a [u8],
}

impl<'a> RtpView<'a> {
    /// Validates the header (version, CSRC list, extension, padding) and borrows the payload.
    pub fn parse(buf: &'a [u8]) -> Result<RtpView<'a>, RtpError> {
        let fixed: &[u8; FIXED_HEADER_LEN] = buf
            .get(..FIXED_HEADER_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(RtpError::Truncated {
                needed: FIXED_HEADER_LEN,
                have: buf.len(),
            })?;
        let [b0, b1, s0, s1, t0, t1, t2, t3, c0, c1, c2, c3] = *fixed;
        let version = b0 >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        if is_rtcp(buf) {
            return Err(RtpError::Rtcp(b1));
        }
        let csrc_count = usize::from(b0 & 0x0f);
        let mut header_len = FIXED_HEADER_LEN + 4 * csrc_count;
        if b0 & 0x10 != 0 {
            let ext = buf
                .get(header_len..header_len + 4)
                .ok_or(RtpError::Truncated {
                    needed: header_len + 4,
                    have: buf.len(),
                })?;
            let words = ext
                .get(2..4)
                .and_then(|w| <[u8; 2]>::try_from(w).ok())
                .map_or(0, |w| usize::from(u16::from_be_bytes(w)));
            header_len += 4 + 4 * words;
        }
        if header_len > buf.len() {
            return Err(RtpError::Truncated {
                needed: header_len,
                have: buf.len(),
            });
        }
        let mut payload_end = buf.len();
        if b0 & 0x20 != 0 {
            let pad = buf.last().copied().unwrap_or(0);
            let pad_len = usize::from(pad);
            if pad_len == 0 || pad_len > payload_end - header_len {
                return Err(RtpError::BadPadding(pad));
            }
            payload_end -= pad_len;
        }
        let payload = buf.get(header_len..payload_end).unwrap_or_default();
        Ok(RtpView {
            marker: b1 & 0x80 != 0,
            payload_type: b1 & 0x7f,
            sequence: u16::from_be_bytes([s0, s1]),
            timestamp: u32::from_be_bytes([t0, t1, t2, t3]),
            ssrc: u32::from_be_bytes([c0, c1, c2, c3]),
            header_len,
            payload,
        })
    }

    /// Marker bit: start of a talkspurt for audio, first packet of an event for RFC 4733.
    pub fn marker(&self) -> bool {
        self.marker
    }

    /// 7-bit payload type, matched against the SDP's `a=rtpmap` numbers.
    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }

    /// Sequence number, used to spot duplicates and reordering.
    pub fn sequence(&self) -> u16 {
        self.sequence
    }

    /// Media timestamp; for telephone-events it identifies the event.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Synchronisation source: which sender's stream this packet belongs to.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Payload bytes after CSRCs and header extension, padding removed.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// Length of the header including CSRCs and extension, i.e. where the payload starts.
    pub fn header_len(&self) -> usize {
        self.header_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// First event packet of SIP_DTMF2.cap (digit 6, PT 96, marker, volume 7, duration 0).
    const SIP_DTMF2_START: [u8; 16] = [
        0x80, 0xe0, 0xf4, 0xd4, 0xea, 0x50, 0x4b, 0xd9, 0x57, 0x11, 0xbf, 0x84, 0x06, 0x07, 0x00,
        0x00,
    ];

    #[test]
    fn parses_plain_event_packet() {
        let v = RtpView::parse(&SIP_DTMF2_START).unwrap();
        assert!(v.marker());
        assert_eq!(v.payload_type(), 96);
        assert_eq!(v.ssrc(), 0x5711_bf84);
        assert_eq!((v.sequence(), v.timestamp()), (62676, 3_931_130_841));
        assert_eq!(v.header_len(), 12);
        assert_eq!(v.payload(), &[0x06, 0x07, 0x00, 0x00]);
    }

    #[test]
    fn skips_csrcs_extension_and_padding() {
        let mut pkt = vec![0xb1, 101, 0, 7, 0, 0, 0, 9, 0, 0, 0, 1];
        pkt.extend_from_slice(&[1, 2, 3, 4]); // one CSRC
        pkt.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]); // extension, 1 word
        pkt.extend_from_slice(&[5, 0x8a, 0, 160]); // event payload
        pkt.extend_from_slice(&[0, 0, 3]); // 3 bytes of padding
        let v = RtpView::parse(&pkt).unwrap();
        assert_eq!(v.header_len(), 24);
        assert_eq!(v.sequence(), 7);
        assert_eq!(v.timestamp(), 9);
        assert_eq!(v.payload(), &[5, 0x8a, 0, 160]);
    }

    #[test]
    fn rejects_rtcp_bad_version_truncation_and_padding() {
        let rr = [0x81, 201, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0];
        assert!(is_rtcp(&rr));
        assert_eq!(RtpView::parse(&rr), Err(RtpError::Rtcp(201)));
        let sip = b"INVITE sip:x SIP/2.0";
        assert_eq!(RtpView::parse(sip), Err(RtpError::BadVersion(1)));
        assert!(matches!(
            RtpView::parse(&SIP_DTMF2_START[..11]),
            Err(RtpError::Truncated { .. })
        ));
        let mut ext = SIP_DTMF2_START;
        ext[0] |= 0x10;
        ext[15] = 1; // extension claims one word beyond the end
        assert!(matches!(
            RtpView::parse(&ext),
            Err(RtpError::Truncated { .. })
        ));
        let mut pad = SIP_DTMF2_START;
        pad[0] |= 0x20;
        assert_eq!(RtpView::parse(&pad), Err(RtpError::BadPadding(0)));
    }

    /// A fixed header with `first` and `second` as its first two bytes, sequence 0x1234,
    /// timestamp 160 and SSRC 0xDEADBEEF.
    fn header(first: u8, second: u8) -> Vec<u8> {
        let mut packet = vec![first, second, 0x12, 0x34];
        packet.extend_from_slice(&0x0000_00A0u32.to_be_bytes());
        packet.extend_from_slice(&0xDEAD_BEEFu32.to_be_bytes());
        packet
    }

    #[test]
    fn parses_plain_audio_packet() {
        let mut packet = header(0x80, 0x88);
        packet.extend_from_slice(&[1, 2, 3]);
        let view = RtpView::parse(&packet).unwrap();
        assert_eq!(view.payload_type(), 8);
        assert!(view.marker());
        assert_eq!(view.sequence(), 0x1234);
        assert_eq!(view.timestamp(), 160);
        assert_eq!(view.ssrc(), 0xDEAD_BEEF);
        assert_eq!(view.payload(), &[1, 2, 3]);
    }

    #[test]
    fn audio_payload_skips_csrcs_extension_and_padding() {
        let mut packet = header(0x80 | 0x20 | 0x10 | 1, 0x00);
        packet.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        packet.extend_from_slice(&[0xBE, 0xDE, 0, 1, 7, 7, 7, 7]); // extension of one word
        packet.extend_from_slice(&[5, 6]);
        packet.extend_from_slice(&[0, 0, 3]); // three bytes of padding
        let view = RtpView::parse(&packet).unwrap();
        assert_eq!(view.payload(), &[5, 6]);
    }

    #[test]
    fn rejects_packets_whose_lengths_do_not_add_up() {
        assert!(RtpView::parse(&[]).is_err());
        assert!(RtpView::parse(&[0x80, 0, 0]).is_err());
        assert!(RtpView::parse(&header(0x40, 0)).is_err(), "version 1");
        assert!(
            RtpView::parse(&header(0x8F, 0)).is_err(),
            "CSRCs beyond the end"
        );
        let mut padded = header(0xA0, 0);
        padded.push(200);
        assert!(
            RtpView::parse(&padded).is_err(),
            "padding longer than the packet"
        );
        assert!(
            RtpView::parse(&header(0x90, 0)).is_err(),
            "extension beyond the end"
        );
    }
}
