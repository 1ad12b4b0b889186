//! Per-stream statistics gathered in a first pass over a capture, used to infer the
//! telephone-event payload type and clock rate of streams no SDP describes.

use crate::dtmf::TelephoneEvent;
use crate::rtp::RtpView;

/// Clock rates a telephone-event stream is snapped to.
const KNOWN_RATES: [u32; 3] = [8000, 16000, 48000];

/// Timestamp evidence needs at least this much wall time between first and last packet.
const MIN_SPAN_US: u64 = 200_000;

/// Counters for one payload type within a stream.
#[derive(Debug, Clone, Copy, Default)]
struct PtStats {
    payload_type: u8,
    packets: u32,
    /// Packets whose payload is exactly one event block with a DTMF code.
    shaped: u32,
    /// Shaped packets repeating the previous event's timestamp with a duration not shrinking.
    follow_ups: u32,
    /// Sum of duration growth and of the wall time it took, over consecutive non-end updates.
    growth_units: u64,
    growth_us: u64,
    previous: Option<(u32, TelephoneEvent, u64)>,
}

/// First-pass view of one RTP stream (one source, destination and SSRC).
#[derive(Debug, Clone, Default)]
pub(super) struct StreamStats {
    /// RTP packets seen.
    pub packets: u64,
    by_pt: Vec<PtStats>,
    first: Option<(u32, u64)>,
    last: Option<(u32, u64)>,
}

impl StreamStats {
    /// Accounts one packet of the stream arriving at `at_us`.
    pub(super) fn observe(&mut self, pkt: &RtpView<'_>, at_us: u64) {
        self.packets += 1;
        self.first.get_or_insert((pkt.timestamp(), at_us));
        self.last = Some((pkt.timestamp(), at_us));
        let index = match self
            .by_pt
            .iter()
            .position(|s| s.payload_type == pkt.payload_type())
        {
            Some(i) => i,
            None => {
                self.by_pt.push(PtStats {
                    payload_type: pkt.payload_type(),
                    ..PtStats::default()
                });
                self.by_pt.len() - 1
            }
        };
        let Some(stats) = self.by_pt.get_mut(index) else {
            return;
        };
        stats.packets += 1;
        let Some(ev) = TelephoneEvent::parse(pkt.payload()) else {
            return;
        };
        let reserved_bit = pkt.payload().get(1).is_some_and(|b| b & 0x40 != 0);
        if pkt.payload().len() != 4 || ev.event > 15 || reserved_bit {
            return;
        }
        stats.shaped += 1;
        if let Some((prev_ts, prev, prev_us)) = stats.previous
            && prev_ts == pkt.timestamp()
            && ev.duration >= prev.duration
        {
            stats.follow_ups += 1;
            if !ev.end && !prev.end && ev.duration > prev.duration && at_us > prev_us {
                stats.growth_units += u64::from(ev.duration - prev.duration);
                stats.growth_us += at_us - prev_us;
            }
        }
        stats.previous = Some((pkt.timestamp(), ev, at_us));
    }

    /// Whether any packet of the stream used this payload type.
    pub(super) fn uses_payload_type(&self, payload_type: u8) -> bool {
        self.by_pt.iter().any(|s| s.payload_type == payload_type)
    }

    /// A dynamic payload type (96..=127) whose packets are nearly all 4-byte DTMF events that
    /// repeat their timestamp with growing durations, the one with most such packets.
    pub(super) fn inferred_event_pt(&self) -> Option<u8> {
        self.by_pt
            .iter()
            .filter(|s| (96..=127).contains(&s.payload_type))
            .filter(|s| s.shaped >= 2 && s.follow_ups >= 1)
            .filter(|s| u64::from(s.shaped) * 10 >= u64::from(s.packets) * 9)
            .max_by_key(|s| s.shaped)
            .map(|s| s.payload_type)
    }

    /// Clock rate of the stream. RTP timestamps advancing with wall time (audio or successive
    /// events of the same SSRC) are the best evidence and are snapped to 8/16/48 kHz. Without
    /// them the duration growth of the event's own updates decides between 8 kHz and 48 kHz
    /// only: senders that over-report durations (SIPp's stock pcaps grow 40 ms per 20 ms)
    /// would otherwise read as 16 kHz. No evidence at all means 8 kHz.
    pub(super) fn inferred_clock_rate(&self, event_pt: u8) -> u32 {
        if let Some(rate) = self.timestamp_rate() {
            return rate;
        }
        let Some(stats) = self.by_pt.iter().find(|s| s.payload_type == event_pt) else {
            return 8000;
        };
        if stats.growth_us == 0 {
            return 8000;
        }
        let estimate = stats.growth_units.saturating_mul(1_000_000) / stats.growth_us;
        if estimate >= 24_000 { 48_000 } else { 8000 }
    }

    fn timestamp_rate(&self) -> Option<u32> {
        let (first_ts, first_us) = self.first?;
        let (last_ts, last_us) = self.last?;
        let span_us = last_us
            .checked_sub(first_us)
            .filter(|s| *s >= MIN_SPAN_US)?;
        let ticks = i64::from(last_ts.wrapping_sub(first_ts) as i32);
        let estimate = u64::try_from(ticks).ok()?.saturating_mul(1_000_000) / span_us;
        KNOWN_RATES.iter().copied().find(|rate| {
            estimate * 3 >= u64::from(*rate) * 2 && estimate * 2 <= u64::from(*rate) * 3
        })
    }
}
