//! RFC 4733 telephone-event synthesis: turns digits into the packets a well-behaved sender would
//! emit, paced in real time, so that digits withheld from one leg can be delivered late.
//!
//! Per digit (RFC 4733 §2.5): one event timestamp for all its packets; the first packet carries
//! the marker bit; an update every [`UPDATE_INTERVAL_US`] with the duration so far; the final
//! packet (E bit, full duration) sent [`END_COPIES`] times at that interval (§2.5.1.4); then a
//! pause of [`INTER_DIGIT_GAP_US`] before the next digit. The relay sends each packet when it is
//! due, so the receiver sees a digit as long as it lasts instead of a burst.
//! Everything is fixed size: no heap, no lock.

use crate::dtmf::event::event_digit;

/// Bytes of one synthesized packet: a 12-byte RTP header and one 4-byte event block.
pub(crate) const PACKET_LEN: usize = 16;
/// Digits one release can queue; longer strings are cut (a code is at most 65 digits).
pub(crate) const MAX_QUEUED_DIGITS: usize = 80;
/// Spacing of the packets of one digit (the usual 20 ms packetization).
pub(crate) const UPDATE_INTERVAL_US: u64 = 20_000;
/// How many times the final packet of a digit is sent.
pub(crate) const END_COPIES: u16 = 3;
/// Silence between the last end packet of a digit and the first packet of the next.
pub(crate) const INTER_DIGIT_GAP_US: u64 = 60_000;
/// Tone length used when the original press length is unknown.
pub(crate) const DEFAULT_TONE_US: u64 = 100_000;
/// Shortest and longest tone synthesized (ITU-T Q.24 wants at least 40 ms).
const TONE_RANGE_US: (u64, u64) = (40_000, 1_000_000);
/// Volume reported in the events, in -dBm0.
const VOLUME: u8 = 10;
/// Clock assumed when the negotiated rate is 0.
const FALLBACK_CLOCK_RATE: u32 = 8000;

/// Maps a DTMF key to its RFC 4733 event code: the inverse of [`event_digit`].
pub(crate) fn digit_event(digit: char) -> Option<u8> {
    (0..=15u8).find(|code| event_digit(*code) == Some(digit.to_ascii_uppercase()))
}

/// Header fields shared by every packet of an injection: whose stream it continues and what the
/// receiving leg negotiated for telephone-events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InjectedStream {
    /// Telephone-event payload type the receiving leg expects.
    pub payload_type: u8,
    /// Telephone-event clock rate, in Hz.
    pub clock_rate: u32,
    /// SSRC of the stream the packets are slipped into.
    pub ssrc: u32,
}

/// Ties the stream's RTP timestamps to the engine clock: `timestamp` was current at `at_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClockAnchor {
    /// An RTP timestamp of the stream.
    pub timestamp: u32,
    /// When (engine clock, µs) the packet carrying it arrived.
    pub at_us: u64,
}

impl ClockAnchor {
    /// The stream's RTP timestamp at `now_us`, advanced by the elapsed samples.
    fn timestamp_at(&self, now_us: u64, clock_rate: u32) -> u32 {
        let elapsed = u128::from(now_us.saturating_sub(self.at_us));
        let samples = elapsed * u128::from(clock_rate) / 1_000_000;
        // RTP timestamps wrap: only the low 32 bits of the advance matter.
        self.timestamp.wrapping_add(samples as u32)
    }
}

/// A digit waiting to be sent.
#[derive(Debug, Clone, Copy, Default)]
struct QueuedTone {
    event: u8,
    duration_us: u64,
}

/// The digit being sent.
#[derive(Debug, Clone, Copy)]
struct Tone {
    event: u8,
    timestamp: u32,
    /// Full duration in timestamp units.
    total: u16,
    /// Updates before the first end packet.
    updates: u16,
    /// Timestamp units per update interval.
    step: u16,
    started_us: u64,
    packets_sent: u16,
}

/// Paced synthesizer of telephone-event packets for one stream direction.
#[derive(Debug, Clone)]
pub(crate) struct EventInjector {
    queue: [QueuedTone; MAX_QUEUED_DIGITS],
    queued: usize,
    next_tone: usize,
    stream: Option<InjectedStream>,
    current: Option<Tone>,
    next_due_us: Option<u64>,
    /// Timestamp just past the previous synthesized event, so events never overlap.
    previous_end: Option<u32>,
}

impl Default for EventInjector {
    fn default() -> Self {
        EventInjector {
            queue: [QueuedTone::default(); MAX_QUEUED_DIGITS],
            queued: 0,
            next_tone: 0,
            stream: None,
            current: None,
            next_due_us: None,
            previous_end: None,
        }
    }
}

impl EventInjector {
    /// Queues `tones` (event code, tone length in µs) for `stream`, starting at `now_us` if
    /// idle or after what is already queued. Returns how many tones were queued.
    pub(crate) fn enqueue(
        &mut self,
        stream: InjectedStream,
        tones: impl IntoIterator<Item = (u8, u64)>,
        now_us: u64,
    ) -> usize {
        if self.next_due_us.is_none() {
            self.queued = 0;
            self.next_tone = 0;
        }
        self.stream = Some(stream);
        let mut added = 0;
        for (event, duration_us) in tones {
            let Some(slot) = self.queue.get_mut(self.queued) else {
                break;
            };
            *slot = QueuedTone {
                event,
                duration_us: duration_us.clamp(TONE_RANGE_US.0, TONE_RANGE_US.1),
            };
            self.queued += 1;
            added += 1;
        }
        if added > 0 && self.next_due_us.is_none() {
            self.next_due_us = Some(now_us);
        }
        added
    }

    /// When the next packet is due (engine clock, µs), if any is pending.
    pub(crate) fn due_us(&self) -> Option<u64> {
        self.next_due_us
    }

    /// Whether a packet is due at `now_us`.
    pub(crate) fn is_due(&self, now_us: u64) -> bool {
        self.next_due_us.is_some_and(|due| due <= now_us)
    }

    /// Writes the packet due at `now_us` with sequence number `seq` into `buf` and schedules the
    /// next one. `anchor` dates the event timestamp of a digit that starts now. `None` when
    /// nothing is due or `buf` is shorter than [`PACKET_LEN`].
    pub(crate) fn write_due(
        &mut self,
        now_us: u64,
        seq: u16,
        anchor: ClockAnchor,
        buf: &mut [u8],
    ) -> Option<usize> {
        let due = self.next_due_us.filter(|due| *due <= now_us)?;
        let stream = self.stream?;
        let out: &mut [u8; PACKET_LEN] = buf.get_mut(..PACKET_LEN)?.try_into().ok()?;
        let mut tone = match self.current {
            Some(tone) => tone,
            None => self.start_tone(stream, due, anchor)?,
        };
        let index = tone.packets_sent;
        let (duration, end) = if index < tone.updates {
            let so_far = u32::from(index + 1) * u32::from(tone.step);
            (u16::try_from(so_far).unwrap_or(tone.total), false)
        } else {
            (tone.total, true)
        };
        write_packet(out, &stream, seq, &tone, duration, end);
        tone.packets_sent = index.saturating_add(1);
        let last_sent_us = tone.started_us + u64::from(index) * UPDATE_INTERVAL_US;
        if tone.packets_sent >= tone.updates.saturating_add(END_COPIES) {
            self.current = None;
            self.previous_end = Some(tone.timestamp.wrapping_add(u32::from(tone.total)));
            self.next_due_us =
                (self.next_tone < self.queued).then_some(last_sent_us + INTER_DIGIT_GAP_US);
        } else {
            self.current = Some(tone);
            self.next_due_us = Some(last_sent_us + UPDATE_INTERVAL_US);
        }
        Some(PACKET_LEN)
    }

    /// Takes the next queued digit and fixes its timestamp and packet plan.
    fn start_tone(
        &mut self,
        stream: InjectedStream,
        due_us: u64,
        anchor: ClockAnchor,
    ) -> Option<Tone> {
        let Some(queued) = self.queue.get(self.next_tone).copied() else {
            self.next_due_us = None;
            return None;
        };
        self.next_tone += 1;
        let rate = match stream.clock_rate {
            0 => FALLBACK_CLOCK_RATE,
            rate => rate,
        };
        let to_units = |us: u64| u64::from(rate) * us / 1_000_000;
        let step = u16::try_from(to_units(UPDATE_INTERVAL_US).max(1)).unwrap_or(u16::MAX);
        let total = u16::try_from(to_units(queued.duration_us))
            .unwrap_or(u16::MAX)
            .max(step);
        let updates = total.div_ceil(step).saturating_sub(1);
        let mut timestamp = anchor.timestamp_at(due_us, rate);
        if let Some(previous_end) = self.previous_end
            && (timestamp.wrapping_sub(previous_end) as i32) < 0
        {
            timestamp = previous_end;
        }
        Some(Tone {
            event: queued.event,
            timestamp,
            total,
            updates,
            step,
            started_us: due_us,
            packets_sent: 0,
        })
    }
}

fn write_packet(
    out: &mut [u8; PACKET_LEN],
    stream: &InjectedStream,
    seq: u16,
    tone: &Tone,
    duration: u16,
    end: bool,
) {
    let marker = if tone.packets_sent == 0 { 0x80 } else { 0 };
    let [s0, s1] = seq.to_be_bytes();
    let [t0, t1, t2, t3] = tone.timestamp.to_be_bytes();
    let [c0, c1, c2, c3] = stream.ssrc.to_be_bytes();
    let [d0, d1] = duration.to_be_bytes();
    let flags = if end { 0x80 | VOLUME } else { VOLUME };
    *out = [
        0x80,
        marker | (stream.payload_type & 0x7f),
        s0,
        s1,
        t0,
        t1,
        t2,
        t3,
        c0,
        c1,
        c2,
        c3,
        tone.event,
        flags,
        d0,
        d1,
    ];
}

#[cfg(test)]
#[path = "synth_tests.rs"]
mod tests;
