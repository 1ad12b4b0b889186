//! Sans-IO RFC 4733 decoder: RTP packets and `now` in, one `Started` and one `Ended` per key
//! press out, whatever redundancy, loss or reordering the sender and the network add.
//!
//! Rules (RFC 4733 §2.5 plus what real senders do):
//! - An event is identified by SSRC, RTP timestamp and event code. The first packet seen for a
//!   new event starts a press, whatever its duration (the start packet may be lost) and whatever
//!   its marker bit (some senders set it on every packet).
//! - The first end (E) packet ends the press; its redundant copies (same or distinct sequence
//!   number) and late non-end packets of the same event are absorbed.
//! - After a press ended, a packet of the same event is a *new* press when it is a replay of the
//!   press's first packet (same sequence number, duration not grown), or when it arrives more
//!   than [`REPRESS_GAP_US`] after the last packet of the press with a duration that restarted
//!   below the final one. This is how byte-identical replays (SIPp `dtmf_2833_*.pcap` played
//!   twice) count twice.
//! - A press with no end packet ends [`EVENT_TIMEOUT_US`] after its last packet, or when another
//!   event starts on the stream.
//! - Long events split into segments (§2.5.1.3: new timestamp = old timestamp + old duration,
//!   no marker) continue the same press; their durations add up.
//! - Packets of another payload type and events that are not keys (e.g. 32 ANS) are ignored.

use crate::dtmf::event::{DtmfEvent, EventConfig, TelephoneEvent, event_digit};
use crate::rtp::RtpView;

/// Silence after the last packet of a press with no end packet before it is declared over.
/// RFC 4733 senders refresh at least every 50 ms; 200 ms tolerates a few lost refreshes.
pub const EVENT_TIMEOUT_US: u64 = 200_000;

/// Gap after the last packet of an ended press beyond which a same-event packet whose duration
/// restarted is taken as a new press rather than a late copy.
pub const REPRESS_GAP_US: u64 = 100_000;

/// Clock used when the configuration carries a rate of 0.
const FALLBACK_CLOCK_RATE: u32 = 8000;

/// Reordered packets from an earlier event are recognised this many sequence numbers back.
const STALE_SEQ_WINDOW: i16 = 64;

/// State of one key press, fixed size.
#[derive(Debug, Clone, Copy)]
struct Press {
    ssrc: u32,
    event: u8,
    digit: char,
    /// Timestamp of the first segment: the press's identity in reports.
    first_timestamp: u32,
    /// Timestamp of the segment now being refreshed.
    segment_timestamp: u32,
    first_seq: u16,
    first_duration: u16,
    /// Longest duration seen in the current segment.
    segment_duration: u16,
    /// Sum of the durations of the finished segments of a long event.
    earlier_segments: u32,
    started_us: u64,
    last_packet_us: u64,
    /// `Started` has been reported.
    announced: bool,
    /// An end packet was seen but `Ended` is still to be reported.
    end_seen: bool,
}

impl Press {
    fn total_duration(&self) -> u32 {
        self.earlier_segments
            .saturating_add(u32::from(self.segment_duration))
    }

    fn same_event(&self, pkt: &RtpView<'_>, ev: &TelephoneEvent) -> bool {
        self.ssrc == pkt.ssrc()
            && self.segment_timestamp == pkt.timestamp()
            && self.event == ev.event
    }

    /// A later segment of a long event (RFC 4733 §2.5.1.3).
    fn continued_by(&self, pkt: &RtpView<'_>, ev: &TelephoneEvent) -> bool {
        self.ssrc == pkt.ssrc()
            && self.event == ev.event
            && !pkt.marker()
            && pkt.timestamp()
                == self
                    .segment_timestamp
                    .wrapping_add(u32::from(self.segment_duration))
    }

    /// A reordered packet of an older event arriving after this press began.
    fn is_older_than(&self, pkt: &RtpView<'_>) -> bool {
        let seq_delta = pkt.sequence().wrapping_sub(self.first_seq) as i16;
        let ts_delta = pkt.timestamp().wrapping_sub(self.first_timestamp) as i32;
        self.ssrc == pkt.ssrc() && (-STALE_SEQ_WINDOW..0).contains(&seq_delta) && ts_delta < 0
    }

    /// After this press ended: does the same-event packet start a new press?
    fn repressed_by(&self, pkt: &RtpView<'_>, ev: &TelephoneEvent, now_us: u64) -> bool {
        let replayed_start =
            !ev.end && pkt.sequence() == self.first_seq && ev.duration <= self.first_duration;
        let gap = now_us.saturating_sub(self.last_packet_us);
        let restarted = gap > REPRESS_GAP_US && ev.duration < self.segment_duration;
        replayed_start || restarted
    }
}

/// Where the decoder stands on its stream.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Idle,
    Active(Press),
    Ended(Press),
}

/// RFC 4733 telephone-event decoder for one RTP stream direction. Fixed size, no heap; every
/// call is O(1). After each `on_packet`, call `on_timeout` whenever `poll_timeout()` is at or
/// before `now` (it may be due at once: a packet can complete a press and start the next).
#[derive(Debug, Clone)]
pub struct DtmfDecoder {
    config: Option<EventConfig>,
    phase: Phase,
}

impl DtmfDecoder {
    /// Decoder for a stream whose SDP negotiated `cfg`; `None` decodes nothing until configured.
    pub fn new(cfg: Option<EventConfig>) -> Self {
        DtmfDecoder {
            config: cfg,
            phase: Phase::Idle,
        }
    }

    /// Applies an SDP renegotiation; a press in progress continues.
    pub fn set_config(&mut self, cfg: Option<EventConfig>) {
        self.config = cfg;
    }

    /// Telephone-event payload type and rate in use.
    pub fn config(&self) -> Option<EventConfig> {
        self.config
    }

    /// Feeds one received RTP packet; returns `Started` at the first packet of a new press and
    /// `Ended` at its end packet (or the end of a press superseded by this packet).
    pub fn on_packet(&mut self, pkt: &RtpView<'_>, now_us: u64) -> Option<DtmfEvent> {
        let cfg = self.config?;
        if pkt.payload_type() != cfg.payload_type {
            return None;
        }
        let ev = TelephoneEvent::parse(pkt.payload())?;
        let digit = event_digit(ev.event)?;
        match self.phase {
            Phase::Idle => self.begin(pkt, &ev, digit, now_us),
            Phase::Ended(mut prev) => {
                if prev.same_event(pkt, &ev) && !prev.repressed_by(pkt, &ev, now_us) {
                    prev.last_packet_us = now_us;
                    self.phase = Phase::Ended(prev);
                    return None;
                }
                self.begin(pkt, &ev, digit, now_us)
            }
            Phase::Active(mut cur) => {
                if cur.continued_by(pkt, &ev) {
                    cur.earlier_segments = cur.total_duration();
                    cur.segment_timestamp = pkt.timestamp();
                    cur.segment_duration = 0;
                } else if !cur.same_event(pkt, &ev) {
                    if cur.is_older_than(pkt) {
                        return None;
                    }
                    return self.supersede(cur, pkt, &ev, digit, now_us);
                }
                self.refresh(cur, pkt, &ev, now_us)
            }
        }
    }

    /// When `on_timeout` must next be called, if a press is pending.
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.phase {
            Phase::Active(p) if !p.announced || p.end_seen => Some(p.last_packet_us),
            Phase::Active(p) => Some(p.last_packet_us.saturating_add(EVENT_TIMEOUT_US)),
            Phase::Idle | Phase::Ended(_) => None,
        }
    }

    /// Reports what is due at `now_us`: a deferred `Started`, a deferred `Ended`, or the end of a
    /// press whose packets stopped without an end packet (`timed_out: true`).
    pub fn on_timeout(&mut self, now_us: u64) -> Option<DtmfEvent> {
        let Phase::Active(mut p) = self.phase else {
            return None;
        };
        if !p.announced {
            p.announced = true;
            self.phase = Phase::Active(p);
            return Some(self.started(&p));
        }
        if p.end_seen {
            self.phase = Phase::Ended(p);
            return Some(self.ended(&p, p.last_packet_us, false));
        }
        if now_us >= p.last_packet_us.saturating_add(EVENT_TIMEOUT_US) {
            self.phase = Phase::Ended(p);
            return Some(self.ended(&p, now_us, true));
        }
        None
    }

    fn begin(
        &mut self,
        pkt: &RtpView<'_>,
        ev: &TelephoneEvent,
        digit: char,
        now_us: u64,
    ) -> Option<DtmfEvent> {
        let press = new_press(pkt, ev, digit, now_us, true);
        self.phase = Phase::Active(press);
        Some(self.started(&press))
    }

    /// Another event arrived while `cur` had no end: `cur` ends now, the new one is announced
    /// by the next `on_timeout`.
    fn supersede(
        &mut self,
        cur: Press,
        pkt: &RtpView<'_>,
        ev: &TelephoneEvent,
        digit: char,
        now_us: u64,
    ) -> Option<DtmfEvent> {
        if !cur.announced {
            // The caller skipped `on_timeout`; report the pending start and drop this packet.
            let mut cur = cur;
            cur.announced = true;
            cur.end_seen = true;
            self.phase = Phase::Active(cur);
            return Some(self.started(&cur));
        }
        self.phase = Phase::Active(new_press(pkt, ev, digit, now_us, false));
        Some(self.ended(&cur, now_us, !cur.end_seen))
    }

    fn refresh(
        &mut self,
        mut cur: Press,
        pkt: &RtpView<'_>,
        ev: &TelephoneEvent,
        now_us: u64,
    ) -> Option<DtmfEvent> {
        cur.segment_duration = cur.segment_duration.max(ev.duration);
        cur.last_packet_us = now_us;
        if (pkt.sequence().wrapping_sub(cur.first_seq) as i16) < 0 {
            cur.first_seq = pkt.sequence();
        }
        if !ev.end {
            self.phase = Phase::Active(cur);
            return None;
        }
        if !cur.announced {
            // The caller skipped `on_timeout`: report the start now, the end at the next poll.
            cur.announced = true;
            cur.end_seen = true;
            self.phase = Phase::Active(cur);
            return Some(self.started(&cur));
        }
        self.phase = Phase::Ended(cur);
        Some(self.ended(&cur, now_us, false))
    }

    fn started(&self, p: &Press) -> DtmfEvent {
        DtmfEvent::Started {
            digit: p.digit,
            ssrc: p.ssrc,
            rtp_timestamp: p.first_timestamp,
            at_us: p.started_us,
        }
    }

    fn ended(&self, p: &Press, at_us: u64, timed_out: bool) -> DtmfEvent {
        let rate = match self.config.map(|c| c.clock_rate) {
            Some(0) | None => FALLBACK_CLOCK_RATE,
            Some(rate) => rate,
        };
        let ms = u64::from(p.total_duration()) * 1000 / u64::from(rate);
        DtmfEvent::Ended {
            digit: p.digit,
            ssrc: p.ssrc,
            rtp_timestamp: p.first_timestamp,
            duration_ms: u32::try_from(ms).unwrap_or(u32::MAX),
            at_us,
            timed_out,
        }
    }
}

fn new_press(
    pkt: &RtpView<'_>,
    ev: &TelephoneEvent,
    digit: char,
    now_us: u64,
    announced: bool,
) -> Press {
    Press {
        ssrc: pkt.ssrc(),
        event: ev.event,
        digit,
        first_timestamp: pkt.timestamp(),
        segment_timestamp: pkt.timestamp(),
        first_seq: pkt.sequence(),
        first_duration: ev.duration,
        segment_duration: ev.duration,
        earlier_segments: 0,
        started_us: now_us,
        last_packet_us: now_us,
        announced,
        end_seen: ev.end,
    }
}

#[cfg(test)]
#[path = "decoder_tests.rs"]
mod tests;
