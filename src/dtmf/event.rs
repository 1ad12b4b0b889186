//! RFC 4733 telephone-event payload, the digit table and the events the decoder reports.

/// One RFC 4733 §2.3 event payload block: what key, whether it ended, how long so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0..=15 are DTMF keys; 32 is ANS, etc.).
    pub event: u8,
    /// E bit: this packet reports the end of the event.
    pub end: bool,
    /// Power level in -dBm0 (0..=63).
    pub volume: u8,
    /// Duration so far, in units of the event clock rate.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads the first 4-byte event block of a payload; `None` when shorter than 4 bytes.
    pub fn parse(payload: &[u8]) -> Option<TelephoneEvent> {
        let block: &[u8; 4] = payload.get(..4)?.try_into().ok()?;
        let [event, flags, d0, d1] = *block;
        Some(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }
}

/// Maps an RFC 4733 event code to its DTMF key: 0-9, 10 `*`, 11 `#`, 12..=15 `A`..=`D`.
/// Every other code (tones such as 32 ANS, Cisco NSE codes) is not a key press and gives `None`.
pub fn event_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + (event - 12))),
        _ => None,
    }
}

/// Telephone-event payload type and clock rate that the receiving leg's SDP negotiated
/// (`a=rtpmap:N telephone-event/RATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventConfig {
    /// RTP payload type carrying telephone-events on this stream.
    pub payload_type: u8,
    /// Event clock rate in Hz; durations are divided by it to get milliseconds.
    pub clock_rate: u32,
}

/// A key press boundary reported by the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfEvent {
    /// The first packet of a new key press arrived.
    Started {
        /// The key.
        digit: char,
        /// Sender's SSRC.
        ssrc: u32,
        /// RTP timestamp identifying the event.
        rtp_timestamp: u32,
        /// Arrival time of that first packet (µs, caller's clock).
        at_us: u64,
    },
    /// The key press is over.
    Ended {
        /// The key.
        digit: char,
        /// Sender's SSRC.
        ssrc: u32,
        /// RTP timestamp identifying the event (of its first segment for long events).
        rtp_timestamp: u32,
        /// Longest duration the sender reported, converted with the clock rate.
        duration_ms: u32,
        /// When the end was seen or inferred (µs, caller's clock).
        at_us: u64,
        /// True when no end packet was seen: the end was inferred from silence or from the
        /// next event starting.
        timed_out: bool,
    },
}

impl DtmfEvent {
    /// The key this boundary belongs to.
    pub fn digit(&self) -> char {
        match *self {
            DtmfEvent::Started { digit, .. } | DtmfEvent::Ended { digit, .. } => digit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_table_covers_keys_only() {
        let keys: String = (0..=15).filter_map(event_digit).collect();
        assert_eq!(keys, "0123456789*#ABCD");
        assert_eq!(event_digit(32), None, "ANS tone is not a key");
        assert_eq!(event_digit(194), None, "Cisco NSE is not a key");
    }

    #[test]
    fn parses_end_packet_of_sipp_speex_capture() {
        // '#' end packet: event 11, E=1, volume 9, duration 3120.
        let ev = TelephoneEvent::parse(&[0x0b, 0x89, 0x0c, 0x30]).unwrap();
        assert_eq!(
            ev,
            TelephoneEvent {
                event: 11,
                end: true,
                volume: 9,
                duration: 3120
            }
        );
        assert_eq!(TelephoneEvent::parse(&[0x0b, 0x89, 0x0c]), None);
    }
}
