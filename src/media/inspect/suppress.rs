//! DTMF suppression of one stream direction: withholding telephone-events from the binding digit
//! on, and renumbering the forwarded packets so the receiver never sees the hole.
//!
//! States: *passing* (nothing withheld); *holding* (from the start of a binding-digit press every
//! telephone-event packet is dropped and the decoded digits are remembered, until the metaflow
//! decides); *draining* (decided, but the press in progress still has packets on the way: they
//! are dropped too, until a new press starts or the events pause for [`TAIL_GAP_US`]).
//!
//! Sequence numbers: every dropped packet that advanced the sender's sequence (not a duplicate or
//! a late reordered one) lowers `seq_offset` by one, every synthesized packet raises it by one, and every forwarded packet's sequence number is shifted by it (wrapping), so
//! what leaves the proxy is gap-free. While the offset is 0 forwarded packets are not touched.

use tracing::debug;

use crate::dtmf::DtmfEvent;
use crate::dtmf::EVENT_TIMEOUT_US;
use crate::dtmf::synth::ClockAnchor;

/// Digits remembered while holding; later ones are still withheld but not remembered.
pub(crate) const MAX_HELD_DIGITS: usize = 64;
/// Holding ends on its own (digits forgotten) when no telephone-event arrived for this long,
/// so a lost decision cannot mute a leg's DTMF for the rest of the call.
pub(crate) const HOLD_LIMIT_US: u64 = 60_000_000;
/// Pause in the events that ends draining: the held press is surely over by then.
pub(crate) const TAIL_GAP_US: u64 = EVENT_TIMEOUT_US;

/// A digit decoded while holding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct HeldDigit {
    /// The key.
    pub digit: char,
    /// How long it was pressed; 0 while the press has not ended.
    pub duration_ms: u32,
}

/// Fixed-size list of held digits, in press order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeldDigits {
    digits: [HeldDigit; MAX_HELD_DIGITS],
    len: usize,
}

impl HeldDigits {
    const EMPTY: HeldDigits = HeldDigits {
        digits: [HeldDigit {
            digit: '\0',
            duration_ms: 0,
        }; MAX_HELD_DIGITS],
        len: 0,
    };

    /// The remembered digits.
    pub(crate) fn as_slice(&self) -> &[HeldDigit] {
        self.digits.get(..self.len).unwrap_or_default()
    }

    fn push(&mut self, digit: char) {
        if let Some(slot) = self.digits.get_mut(self.len) {
            *slot = HeldDigit {
                digit,
                duration_ms: 0,
            };
            self.len += 1;
        }
    }

    fn ended(&mut self, digit: char, duration_ms: u32) {
        if let Some(last) = self.len.checked_sub(1).and_then(|i| self.digits.get_mut(i))
            && last.digit == digit
            && last.duration_ms == 0
        {
            last.duration_ms = duration_ms;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    Passing,
    /// `last_event_us`: arrival of the latest telephone-event packet.
    Holding {
        last_event_us: u64,
    },
    Draining {
        last_event_us: u64,
    },
}

/// Suppression state and sequence/timestamp bookkeeping of packets sent by one leg.
#[derive(Debug, Clone)]
pub(crate) struct Suppression {
    binding: Option<char>,
    hold: Hold,
    held: HeldDigits,
    seq_offset: u16,
    /// Highest sequence number received from the leg.
    last_received_seq: Option<u16>,
    /// Sequence number of the latest packet sent on (forwarded or synthesized).
    last_sent_seq: Option<u16>,
    ssrc: Option<u32>,
    anchor: Option<ClockAnchor>,
    /// Used before the leg sent anything: a random SSRC and timestamp origin (RFC 3550 §5.1).
    fallback_ssrc: u32,
    fallback_timestamp: u32,
}

impl Suppression {
    /// A passing direction with random fallbacks for a stream not yet seen.
    pub(crate) fn new(fallback_ssrc: u32, fallback_timestamp: u32) -> Self {
        Suppression {
            binding: None,
            hold: Hold::Passing,
            held: HeldDigits::EMPTY,
            seq_offset: 0,
            last_received_seq: None,
            last_sent_seq: None,
            ssrc: None,
            anchor: None,
            fallback_ssrc,
            fallback_timestamp,
        }
    }

    /// Sets (or clears) the binding digit; clearing it stops a hold in progress.
    pub(crate) fn set_binding(&mut self, binding: Option<char>) {
        self.binding = binding;
        if binding.is_none() {
            self.stop_holding();
        }
    }

    /// Whether telephone-events are being withheld.
    pub(crate) fn is_holding(&self) -> bool {
        matches!(self.hold, Hold::Holding { .. })
    }

    /// Follows the decoder: a binding-digit press starts holding, presses while holding are
    /// remembered, and any new press ends draining.
    pub(crate) fn observe(&mut self, event: &DtmfEvent, now_us: u64) {
        match *event {
            DtmfEvent::Started { digit, .. } => match self.hold {
                Hold::Holding { .. } => self.held.push(digit),
                Hold::Passing | Hold::Draining { .. } => {
                    if self.binding == Some(digit) {
                        self.hold = Hold::Holding {
                            last_event_us: now_us,
                        };
                        self.held = HeldDigits::EMPTY;
                        self.held.push(digit);
                    } else {
                        self.hold = Hold::Passing;
                    }
                }
            },
            DtmfEvent::Ended {
                digit, duration_ms, ..
            } => {
                if self.is_holding() {
                    self.held.ended(digit, duration_ms);
                }
            }
        }
    }

    /// Decides whether the packet with `header` (sequence number, timestamp, SSRC) is withheld
    /// (`true`: drop it). Only telephone-events are. A withheld packet still teaches the
    /// stream's SSRC, numbering and clock when nothing was forwarded yet, so digits re-sent
    /// later continue the sender's own stream even if it sent no audio first.
    pub(crate) fn withholds(
        &mut self,
        header: (u16, u32, u32),
        is_event: bool,
        now_us: u64,
    ) -> bool {
        let (seq, timestamp, ssrc) = header;
        let advances = is_newer(seq, self.last_received_seq);
        if advances {
            self.last_received_seq = Some(seq);
        }
        if !is_event {
            return false;
        }
        let withhold = match self.hold {
            Hold::Passing => false,
            Hold::Holding { .. } => {
                self.hold = Hold::Holding {
                    last_event_us: now_us,
                };
                true
            }
            Hold::Draining { last_event_us } => {
                if now_us.saturating_sub(last_event_us) <= TAIL_GAP_US {
                    self.hold = Hold::Draining {
                        last_event_us: now_us,
                    };
                    true
                } else {
                    self.hold = Hold::Passing;
                    false
                }
            }
        };
        if withhold {
            if self.last_sent_seq.is_none() {
                self.last_sent_seq = Some(seq.wrapping_add(self.seq_offset).wrapping_sub(1));
            }
            self.ssrc.get_or_insert(ssrc);
            self.anchor.get_or_insert(ClockAnchor {
                timestamp,
                at_us: now_us,
            });
            if advances {
                self.seq_offset = self.seq_offset.wrapping_sub(1);
            }
        }
        withhold
    }

    /// Renumbers a forwarded packet by the offset (untouched at offset 0) and remembers its
    /// SSRC, sequence number and, for media packets, its timestamp and arrival time.
    pub(crate) fn forwarded(
        &mut self,
        packet: &mut [u8],
        header: (u16, u32, u32),
        is_event: bool,
        now_us: u64,
    ) {
        let (seq, timestamp, ssrc) = header;
        let sent_seq = seq.wrapping_add(self.seq_offset);
        if self.seq_offset != 0
            && let Some(field) = packet.get_mut(2..4)
        {
            field.copy_from_slice(&sent_seq.to_be_bytes());
        }
        self.note_sent(sent_seq);
        self.ssrc = Some(ssrc);
        // An event's timestamp is its start, not the current time; media dates the stream.
        if !is_event || self.anchor.is_none() {
            self.anchor = Some(ClockAnchor {
                timestamp,
                at_us: now_us,
            });
        }
    }

    /// The offset forwarded packets are renumbered by (0: untouched).
    pub(crate) fn seq_offset(&self) -> u16 {
        self.seq_offset
    }

    /// Media packets were forwarded without passing here (the kernel path, renumbered by the
    /// same offset); `header` is the last one's as sent: the stream continues from it.
    pub(crate) fn forwarded_elsewhere(&mut self, header: (u16, u32, u32), at_us: u64) {
        let (sent_seq, timestamp, ssrc) = header;
        self.note_sent(sent_seq);
        self.ssrc = Some(ssrc);
        if self.anchor.is_none_or(|anchor| anchor.at_us <= at_us) {
            self.anchor = Some(ClockAnchor { timestamp, at_us });
        }
    }

    /// Sequence number for a synthesized packet: right after the latest one sent; raises the
    /// offset so that forwarded packets make room for it.
    pub(crate) fn claim_injected_seq(&mut self) -> u16 {
        let seq = self
            .last_sent_seq
            .map_or(self.fallback_timestamp as u16, |last| last.wrapping_add(1));
        self.last_sent_seq = Some(seq);
        self.seq_offset = self.seq_offset.wrapping_add(1);
        seq
    }

    /// SSRC of the stream: the latest forwarded packet's, else the random fallback.
    pub(crate) fn ssrc(&self) -> u32 {
        self.ssrc.unwrap_or(self.fallback_ssrc)
    }

    /// Maps the engine clock to the stream's RTP timestamps (random origin if nothing seen).
    pub(crate) fn anchor(&self, now_us: u64) -> ClockAnchor {
        self.anchor.unwrap_or(ClockAnchor {
            timestamp: self.fallback_timestamp,
            at_us: now_us,
        })
    }

    /// The code matched: forget the held digits, stop holding (the press in progress drains).
    pub(crate) fn discard(&mut self) {
        self.stop_holding();
        self.held = HeldDigits::EMPTY;
    }

    /// No match: stop holding and hand back what was held (for the original press lengths).
    pub(crate) fn release(&mut self) -> HeldDigits {
        self.stop_holding();
        std::mem::replace(&mut self.held, HeldDigits::EMPTY)
    }

    /// Ends a hold nobody decided on within [`HOLD_LIMIT_US`].
    pub(crate) fn on_tick(&mut self, now_us: u64) {
        if let Hold::Holding { last_event_us } = self.hold
            && now_us.saturating_sub(last_event_us) > HOLD_LIMIT_US
        {
            debug!(held = self.held.len, "DTMF hold expired without a decision");
            self.discard();
        }
    }

    fn stop_holding(&mut self) {
        if let Hold::Holding { last_event_us } = self.hold {
            self.hold = Hold::Draining { last_event_us };
        }
    }

    fn note_sent(&mut self, seq: u16) {
        if is_newer(seq, self.last_sent_seq) {
            self.last_sent_seq = Some(seq);
        }
    }
}

/// Whether `seq` is after `last` in RTP's wrapping sequence space (or nothing came before).
fn is_newer(seq: u16, last: Option<u16>) -> bool {
    last.is_none_or(|last| (seq.wrapping_sub(last) as i16) > 0)
}
