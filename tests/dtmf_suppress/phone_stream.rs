//! A phone-like RTP stream written as a pcap that SIPp's `play_pcap_audio` can play: one SSRC,
//! PCMA every 20 ms, key presses as RFC 4733 telephone-events in the same sequence-number and
//! timestamp space (as real phones send them, unlike SIPp's stock pcaps, where audio and each
//! digit carry unrelated SSRCs and sequence numbers). Also decodes telephone-events back into
//! key presses, to check what a receiver gets.

use std::path::Path;

use crate::common::capture::RtpPacket;

/// SSRC of the generated stream.
pub const STREAM_SSRC: u32 = 0x5EED_1234;
/// Telephone-event payload type (as in every scenario's SDP).
pub const EVENT_PT: u8 = 101;
/// PCMA payload type.
pub const AUDIO_PT: u8 = 8;
/// Timestamp units (and PCMA bytes) per 20 ms packet at 8 kHz.
const SAMPLES_PER_PACKET: u32 = 160;
/// Packets of one generated key press before its end packet; the press lasts this many
/// 20 ms steps plus one.
pub const PRESS_UPDATES: u16 = 7;
/// Duration field of a generated press's end packet: 8 steps of 160 units (160 ms).
pub const PRESS_DURATION: u16 = (PRESS_UPDATES + 1) * 160;
const PACKET_INTERVAL_US: u64 = 20_000;

/// One packet of the generated stream, with its send offset from the start of the capture.
#[derive(Debug, Clone)]
pub struct SentPacket {
    pub at_us: u64,
    pub seq: u16,
    pub ts: u32,
    pub pt: u8,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// Builds the stream segment by segment.
pub struct PhoneStream {
    seq: u16,
    ts: u32,
    at_us: u64,
    pub packets: Vec<SentPacket>,
}

impl PhoneStream {
    pub fn new() -> PhoneStream {
        PhoneStream {
            seq: 31_000,
            ts: 48_000,
            at_us: 0,
            packets: Vec::new(),
        }
    }

    /// `count` PCMA packets, each with a payload unique to its sequence number.
    pub fn audio(mut self, count: usize) -> PhoneStream {
        for _ in 0..count {
            let payload = (0..SAMPLES_PER_PACKET)
                .map(|i| (u32::from(self.seq) * 7 + i) as u8 ^ 0x55)
                .collect();
            self.push(AUDIO_PT, false, self.ts, payload);
            self.seq = self.seq.wrapping_add(1);
            self.ts = self.ts.wrapping_add(SAMPLES_PER_PACKET);
            self.at_us += PACKET_INTERVAL_US;
        }
        self
    }

    /// PCMA packets with the given payloads (160 bytes each: 20 ms), e.g. tones in the audio.
    #[allow(dead_code)] // used by tests/inband_dtmf.rs, not by every file sharing this one
    pub fn audio_payloads(mut self, payloads: impl IntoIterator<Item = Vec<u8>>) -> PhoneStream {
        for payload in payloads {
            self.push(AUDIO_PT, false, self.ts, payload);
            self.seq = self.seq.wrapping_add(1);
            self.ts = self.ts.wrapping_add(SAMPLES_PER_PACKET);
            self.at_us += PACKET_INTERVAL_US;
        }
        self
    }

    /// One key press of `event` (RFC 4733 code): [`PRESS_UPDATES`] updates, then the end packet
    /// three times with the same sequence number (RFC 4733 §2.5.1.4). Audio resumes after it.
    pub fn press(mut self, event: u8) -> PhoneStream {
        let start_ts = self.ts;
        for step in 1..=PRESS_UPDATES + 1 {
            let end = step == PRESS_UPDATES + 1;
            let copies = if end { 3 } else { 1 };
            for copy in 0..copies {
                let flags = if end { 0x80 | 10 } else { 10 };
                let [d0, d1] = (step * 160).to_be_bytes();
                self.push(EVENT_PT, step == 1, start_ts, vec![event, flags, d0, d1]);
                self.at_us += if copy + 1 < copies { 1_000 } else { 0 };
            }
            self.seq = self.seq.wrapping_add(1);
            self.at_us += PACKET_INTERVAL_US;
        }
        self.ts = start_ts.wrapping_add(u32::from(PRESS_DURATION));
        self
    }

    fn push(&mut self, pt: u8, marker: bool, ts: u32, payload: Vec<u8>) {
        self.packets.push(SentPacket {
            at_us: self.at_us,
            seq: self.seq,
            ts,
            pt,
            marker,
            payload,
        });
    }

    /// The audio packets, in order.
    pub fn audio_packets(&self) -> Vec<&SentPacket> {
        self.packets.iter().filter(|p| p.pt == AUDIO_PT).collect()
    }

    /// Writes the stream as a classic Ethernet pcap (10.0.0.1:40000 -> 10.0.0.2:40002).
    pub fn write_pcap(&self, path: &Path) {
        let mut file = Vec::new();
        for word in [0xa1b2_c3d4u32.to_le_bytes(), [2, 0, 4, 0]] {
            file.extend_from_slice(&word);
        }
        for word in [0u32, 0, 65_535, 1] {
            file.extend_from_slice(&word.to_le_bytes());
        }
        for packet in &self.packets {
            let frame = ethernet_frame(&rtp_bytes(packet));
            let time_us = 1_700_000_000_000_000 + packet.at_us;
            let seconds = (time_us / 1_000_000) as u32;
            let micros = (time_us % 1_000_000) as u32;
            let len = frame.len() as u32;
            for word in [seconds, micros, len, len] {
                file.extend_from_slice(&word.to_le_bytes());
            }
            file.extend_from_slice(&frame);
        }
        std::fs::write(path, file).unwrap();
    }
}

fn rtp_bytes(packet: &SentPacket) -> Vec<u8> {
    let mut bytes = vec![0x80, packet.pt | if packet.marker { 0x80 } else { 0 }];
    bytes.extend_from_slice(&packet.seq.to_be_bytes());
    bytes.extend_from_slice(&packet.ts.to_be_bytes());
    bytes.extend_from_slice(&STREAM_SSRC.to_be_bytes());
    bytes.extend_from_slice(&packet.payload);
    bytes
}

fn ethernet_frame(udp_payload: &[u8]) -> Vec<u8> {
    let udp_len = (8 + udp_payload.len()) as u16;
    let ip_len = 20 + udp_len;
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    let sum = ip
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]])))
        .sum::<u32>();
    let folded = (sum & 0xffff) + (sum >> 16);
    ip[10..12].copy_from_slice(&(!(folded as u16)).to_be_bytes());
    let mut frame = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    frame.extend_from_slice(&ip);
    for word in [40_000u16, 40_002, udp_len, 0] {
        frame.extend_from_slice(&word.to_be_bytes());
    }
    frame.extend_from_slice(udp_payload);
    frame
}

/// One key press as a receiver sees it: consecutive telephone-event packets with one timestamp.
#[derive(Debug, Clone)]
pub struct ReceivedPress {
    pub digit: char,
    pub ts: u32,
    pub packets: Vec<RtpPacket>,
}

impl ReceivedPress {
    /// Packets with the E bit.
    pub fn end_packets(&self) -> usize {
        self.packets.iter().filter(|p| event_fields(p).1).count()
    }

    /// Duration field of the last packet.
    pub fn final_duration(&self) -> u16 {
        self.packets.last().map_or(0, |p| event_fields(p).2)
    }

    /// Capture time from the first to the last packet.
    pub fn span_us(&self) -> u64 {
        let first = self.packets.first().map_or(0, |p| p.time_us);
        self.packets.last().map_or(0, |p| p.time_us) - first
    }

    /// Panics unless the press is well formed: one event code, durations that never shrink,
    /// and end packets only at the end.
    pub fn assert_well_formed(&self) {
        let fields: Vec<(u8, bool, u16)> = self.packets.iter().map(event_fields).collect();
        assert!(
            fields
                .windows(2)
                .all(|w| w[0].0 == w[1].0 && w[0].2 <= w[1].2 && (!w[0].1 || w[1].1)),
            "malformed press {:?}: {fields:?}",
            self.digit
        );
        assert!(self.end_packets() >= 1, "press {:?} never ends", self.digit);
    }
}

/// (event code, E bit, duration) of a telephone-event packet.
pub fn event_fields(packet: &RtpPacket) -> (u8, bool, u16) {
    let p = &packet.payload;
    assert!(p.len() >= 4, "short telephone-event payload {packet:?}");
    (p[0], p[1] & 0x80 != 0, u16::from_be_bytes([p[2], p[3]]))
}

/// The key of an RFC 4733 DTMF event code.
pub fn event_digit(code: u8) -> char {
    match code {
        0..=9 => char::from(b'0' + code),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + code - 12),
        other => panic!("not a DTMF event: {other}"),
    }
}

/// Groups the telephone-event packets of `received` (in arrival order) into key presses: a new
/// press starts when the event timestamp or code changes.
pub fn presses(received: &[RtpPacket]) -> Vec<ReceivedPress> {
    let mut out: Vec<ReceivedPress> = Vec::new();
    for packet in received.iter().filter(|p| p.pt == EVENT_PT) {
        let digit = event_digit(event_fields(packet).0);
        match out.last_mut() {
            Some(press) if press.ts == packet.ts && press.digit == digit => {
                press.packets.push(packet.clone())
            }
            _ => out.push(ReceivedPress {
                digit,
                ts: packet.ts,
                packets: vec![packet.clone()],
            }),
        }
    }
    out
}

/// Panics unless every packet's sequence number is the previous one plus one (wrapping).
pub fn assert_gap_free(received: &[RtpPacket], what: &str) {
    let breaks: Vec<(u16, u16)> = received
        .windows(2)
        .filter(|w| w[1].seq != w[0].seq.wrapping_add(1))
        .map(|w| (w[0].seq, w[1].seq))
        .collect();
    assert!(
        breaks.is_empty(),
        "{what}: sequence numbers not consecutive at {breaks:?} (of {} packets: {:?})",
        received.len(),
        received.iter().map(|p| (p.seq, p.pt)).collect::<Vec<_>>()
    );
}
