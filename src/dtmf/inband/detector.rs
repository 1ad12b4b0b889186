//! The per-stream detector: G.711 bytes in, per-window digit hits, then the duration and pause
//! rules that turn hits into one `Started` and one `Ended` per key press.

use crate::audio::g711::Law;

use super::goertzel::{Bank, HalfResult, WINDOW, Window};

/// Linear power of a 0 dBm0 sine in 16-bit samples: G.711 A-law's full-scale sine (amplitude
/// 32256) is +3.14 dBm0, so 0 dBm0 is amplitude 22,486, power A²/2 ≈ 2.53e8 (RMS ≈ 15,900).
pub(crate) const DBM0_POWER: f32 = 2.528e8;
/// Least power per tone: -42 dBm0 (accepts -36 dBm0 with margin for frequency offset and
/// partial windows, rejects -45 dBm0).
const LEVEL_MIN: f32 = DBM0_POWER * 6.31e-5;
/// Normal twist (high group weaker) accepted: up to 9.8 dB measured. 8 dB is required; the
/// stronger tone's sidelobes in the weaker tone's bin move the measured twist by up to ±1.3 dB.
const NORMAL_TWIST: f32 = 0.1047;
/// Reverse twist (high group stronger) accepted: up to 5.8 dB measured (4 dB required).
const REVERSE_TWIST: f32 = 3.8;
/// Each tone must stand 8 dB above the other tones of its group.
const RELATIVE_PEAK: f32 = 6.3;
/// The two tones must hold this share of the window's power (talk-off protection).
const TONE_SHARE: f32 = 0.6;
/// A row tone's second harmonic may reach this fraction of it (the 1394 Hz harmonic bin picks
/// up 1336 Hz leakage, about -10 dB plus reverse twist).
const ROW_HARMONIC: f32 = 0.4;
/// Share of a column tone's power a row-harmonic bin may pick up as leakage.
const COL_LEAK: f32 = 0.5;
/// A column tone's second harmonic may reach this fraction of it (-10 dB).
const COL_HARMONIC: f32 = 0.1;
/// Consecutive hit windows (one every 51 samples) that recognise a digit: a 40 ms tone always
/// gives 5, a 23 ms tone at most 4 (see docs/DECISIONS.md).
const HITS_TO_START: u32 = 5;
/// Consecutive non-hit windows that end a digit: a 40 ms pause always gives 6, a 10 ms dropout
/// at most 3.
const MISSES_TO_END: u32 = 5;
/// A timestamp gap longer than this (200 ms at 8 kHz) means the stream stopped: the digit ends.
const STOPPED_GAP: u32 = 1600;
/// Subtracted from the hit span for the reported duration: windows that catch the tone's
/// edges with most of their samples stretch the span past the tone by about this much.
const EDGE_SAMPLES: u64 = 64;

/// Digits by (row, column).
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Events of in-band detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InbandEvent {
    /// A digit was recognised (after the minimum tone duration); `rtp_ts` of the packet that
    /// completed the recognition.
    Started {
        /// The key.
        digit: char,
        /// RTP timestamp of the packet that completed the recognition.
        rtp_ts: u32,
    },
    /// It ended (pause of minimum duration, or the stream stopped for > 200 ms of timestamps).
    Ended {
        /// The key.
        digit: char,
        /// How long the tone was heard, estimated from the windows that saw it.
        duration_ms: u32,
    },
}

/// Detects DTMF tones in one direction of a G.711 stream, so that trunks that send digits as
/// audio rather than RFC 4733 events still drive metaflows. One detector per RTP stream
/// direction; sans-IO and allocation-free per packet.
#[derive(Clone, Debug)]
pub struct InbandDetector {
    bank: Bank,
    prev_half: Option<HalfResult>,
    /// RTP timestamp the next in-order sample carries.
    next_ts: Option<u32>,
    /// Samples since the first packet, counting bridged gaps.
    pos: u64,
    /// Digit of the current run of identical hits, and its length.
    run_digit: Option<char>,
    run_len: u32,
    run_start: u64,
    /// The digit being heard, if recognised.
    current: Option<char>,
    tone_start: u64,
    last_hit_end: u64,
    misses: u32,
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InbandDetector {
    /// A detector that has heard nothing.
    pub fn new() -> Self {
        Self {
            bank: Bank::new(),
            prev_half: None,
            next_ts: None,
            pos: 0,
            run_digit: None,
            run_len: 0,
            run_start: 0,
            current: None,
            tone_start: 0,
            last_hit_end: 0,
            misses: 0,
        }
    }

    /// Whether a tone is being heard now (for suppression: the relay silences packets while
    /// true).
    pub fn in_tone(&self) -> bool {
        self.current.is_some()
    }

    /// Feeds one RTP packet's G.711 payload. `rtp_ts` is the packet's RTP timestamp (8 kHz);
    /// gaps in it (loss) and repeats (duplicates/reordering: ignore packets older than the last)
    /// are handled from the timestamps, not arrival time. Calls `out` for each event found. No
    /// allocation.
    pub fn feed(
        &mut self,
        law: Law,
        payload: &[u8],
        rtp_ts: u32,
        out: &mut dyn FnMut(InbandEvent),
    ) {
        if let Some(expected) = self.next_ts {
            let gap = rtp_ts.wrapping_sub(expected);
            let behind = expected.wrapping_sub(rtp_ts);
            if gap > u32::MAX / 2 && behind <= STOPPED_GAP {
                // Older than what was already heard: a duplicate or a late packet.
                return;
            }
            if gap > STOPPED_GAP {
                // The stream stopped, or its timestamps jumped (either way, far back counts
                // as a new start rather than a packet to ignore for ever).
                self.end_tone(out);
                self.reset_analysis();
            } else {
                // Loss: the missing time counts, the filters go on across the seam (a phase
                // jump spoils a window or two, fewer than end a digit).
                self.pos += u64::from(gap);
            }
        }
        self.next_ts = Some(rtp_ts.wrapping_add(payload.len() as u32));
        for &code in payload {
            self.pos += 1;
            if let Some(half) = self.bank.push(f32::from(law.decode(code)))
                && let Some(prev) = self.prev_half.replace(half)
            {
                let window = self.bank.combine(&prev, &half);
                self.on_window(classify(&window), rtp_ts, out);
            }
        }
    }

    fn reset_analysis(&mut self) {
        self.bank.clear();
        self.prev_half = None;
        self.run_digit = None;
        self.run_len = 0;
    }

    fn end_tone(&mut self, out: &mut dyn FnMut(InbandEvent)) {
        if let Some(digit) = self.current.take() {
            let span = self.last_hit_end.saturating_sub(self.tone_start);
            let samples = span.saturating_sub(EDGE_SAMPLES);
            out(InbandEvent::Ended {
                digit,
                duration_ms: u32::try_from(samples / 8).unwrap_or(u32::MAX),
            });
        }
        self.misses = 0;
    }

    fn on_window(&mut self, hit: Option<char>, rtp_ts: u32, out: &mut dyn FnMut(InbandEvent)) {
        let end = self.pos;
        if hit.is_some() && hit == self.run_digit {
            self.run_len += 1;
        } else {
            self.run_digit = hit;
            self.run_len = u32::from(hit.is_some());
            self.run_start = end.saturating_sub(WINDOW as u64);
        }
        if let Some(digit) = self.current {
            if hit == Some(digit) {
                self.misses = 0;
                self.last_hit_end = end;
            } else {
                self.misses += 1;
                if self.misses >= MISSES_TO_END {
                    self.end_tone(out);
                }
            }
        }
        if self.current.is_none()
            && self.run_len >= HITS_TO_START
            && let Some(digit) = self.run_digit
        {
            self.current = Some(digit);
            self.tone_start = self.run_start;
            self.last_hit_end = end;
            self.misses = 0;
            out(InbandEvent::Started { digit, rtp_ts });
        }
    }
}

/// The digit a window holds, if it passes every acceptance check.
fn classify(w: &Window) -> Option<char> {
    let p = &w.power;
    let row = strongest(&p[0..4])?;
    let col = strongest(&p[4..8])?;
    let (pr, pc) = (p[row], p[4 + col]);
    let level = pr >= LEVEL_MIN && pc >= LEVEL_MIN;
    let twist = pc >= pr * NORMAL_TWIST && pc <= pr * REVERSE_TWIST;
    let share = pr + pc >= TONE_SHARE * w.mean_power;
    if !(level && twist && share) {
        return None;
    }
    let peaks = (0..4).all(|i| {
        (i == row || p[i] * RELATIVE_PEAK <= pr) && (i == col || p[4 + i] * RELATIVE_PEAK <= pc)
    });
    let on_frequency = |k: usize| p[k] >= p[k + 8] && p[k] >= p[k + 16];
    // The row harmonics 1394, 1540 and 1704 Hz lie 58-71 Hz from a column tone, whose leakage
    // is allowed for.
    let harmonics =
        p[24 + row] <= pr * ROW_HARMONIC + pc * COL_LEAK && p[28 + col] <= pc * COL_HARMONIC;
    if peaks && on_frequency(row) && on_frequency(4 + col) && harmonics {
        KEYS.get(row).and_then(|r| r.get(col)).copied()
    } else {
        None
    }
}

/// Index of the largest value.
fn strongest(values: &[f32]) -> Option<usize> {
    values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
}
