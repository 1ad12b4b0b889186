//! Puts the decoded audio of both legs on one 8 kHz timeline so the two WAV channels stay aligned.
//!
//! Sans-IO: packets go in with their RTP timestamp and arrival time, stereo frames come out in
//! timeline order. Position 0 is the arrival of the first packet of either leg. A leg's RTP
//! timestamps are anchored to the arrival time of its first packet; after that the timestamps
//! decide where audio goes, so lost packets and silence-suppression gaps become silence of the
//! right length and packets reordered within the window land where they belong. A timestamp
//! that disagrees with the arrival clock by more than the resync threshold (new SSRC, sender
//! restart after hold, clock drift) re-anchors that leg on its arrival time. Frames are released
//! once every packet that may still fill them is past the reorder window; a leg without packets
//! (hold) yields silence while the other leg's arrivals move time forward.

use crate::base::Leg;

/// Samples per second of the timeline (G.711).
pub const SAMPLE_RATE: u32 = 8000;

/// Tuning of the aligner, in samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlignConfig {
    /// How far behind the newest arrival frames are held back for late (reordered) packets.
    pub reorder_window: u32,
    /// Disagreement between RTP time and arrival time that re-anchors a leg.
    pub resync_threshold: u32,
}

impl Default for AlignConfig {
    fn default() -> Self {
        Self {
            reorder_window: 80 * SAMPLE_RATE / 1000,
            resync_threshold: 300 * SAMPLE_RATE / 1000,
        }
    }
}

/// One decoded audio packet of a leg.
#[derive(Clone, Copy, Debug)]
pub struct AudioPacket<'a> {
    /// RTP timestamp (8 kHz units).
    pub timestamp: u32,
    /// RTP sequence number, used to spot duplicates.
    pub sequence: u16,
    /// RTP SSRC; a change re-anchors the leg.
    pub ssrc: u32,
    /// When the packet reached the proxy, in microseconds on any monotonic clock.
    pub arrival_us: u64,
    /// Decoded linear samples.
    pub samples: &'a [i16],
}

/// Counters describing what the aligner had to repair or discard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlignStats {
    /// Packets that arrived after their place on the timeline had been written.
    pub late_packets: u64,
    /// Packets received twice.
    pub duplicate_packets: u64,
    /// Times a leg was re-anchored on its arrival clock.
    pub resyncs: u64,
}

#[derive(Clone, Copy, Debug)]
struct Anchor {
    ssrc: u32,
    timestamp: u32,
    position: i64,
}

#[derive(Debug)]
struct Pending {
    position: i64,
    sequence: u16,
    samples: Vec<i16>,
}

impl Pending {
    fn end(&self) -> i64 {
        self.position.saturating_add(len_i64(self.samples.len()))
    }
}

#[derive(Debug, Default)]
struct LegTimeline {
    anchor: Option<Anchor>,
    /// Packets not yet written, sorted by position.
    pending: Vec<Pending>,
}

/// Merges both legs into stereo frames (left a-leg, right b-leg) on a shared timeline.
#[derive(Debug, Default)]
pub struct Aligner {
    config: AlignConfig,
    origin_us: Option<u64>,
    legs: [LegTimeline; 2],
    /// Frames emitted so far: the timeline position of the next frame.
    written: i64,
    /// Timeline position of the newest arrival.
    newest_arrival: i64,
    stats: AlignStats,
}

fn len_i64(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

fn leg_index(leg: Leg) -> usize {
    match leg {
        Leg::A => 0,
        Leg::B => 1,
    }
}

impl Aligner {
    /// An aligner with the given tuning.
    pub fn new(config: AlignConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Places one packet of `leg` on the timeline.
    pub fn push(&mut self, leg: Leg, packet: AudioPacket<'_>) {
        let origin = *self.origin_us.get_or_insert(packet.arrival_us);
        let elapsed_us = packet.arrival_us.saturating_sub(origin);
        let arrival = i64::try_from(elapsed_us / 125).unwrap_or(i64::MAX);
        self.newest_arrival = self.newest_arrival.max(arrival);
        let threshold = u64::from(self.config.resync_threshold);
        let timeline = &mut self.legs[leg_index(leg)];
        let predicted = timeline.anchor.and_then(|anchor| {
            let offset = i64::from(packet.timestamp.wrapping_sub(anchor.timestamp) as i32);
            let position = anchor.position.saturating_add(offset);
            let agrees = anchor.ssrc == packet.ssrc && position.abs_diff(arrival) <= threshold;
            agrees.then_some(position)
        });
        let position = match predicted {
            Some(position) => position,
            None => {
                if timeline.anchor.is_some() {
                    self.stats.resyncs += 1;
                }
                timeline.anchor = Some(Anchor {
                    ssrc: packet.ssrc,
                    timestamp: packet.timestamp,
                    position: arrival,
                });
                arrival
            }
        };
        if let Some(anchor) = timeline.anchor.as_mut().filter(|a| position > a.position) {
            // Keep the anchor recent so timestamp differences stay small.
            anchor.timestamp = packet.timestamp;
            anchor.position = position;
        }
        let skip = usize::try_from(self.written.saturating_sub(position)).unwrap_or(0);
        let Some(samples) = packet.samples.get(skip..).filter(|s| !s.is_empty()) else {
            self.stats.late_packets += 1;
            return;
        };
        let position = position.saturating_add(len_i64(skip));
        let slot = timeline.pending.partition_point(|p| p.position < position);
        let duplicate = timeline.pending.get(slot).is_some_and(|p| {
            p.position == position
                && p.sequence == packet.sequence
                && p.samples.len() == samples.len()
        });
        if duplicate {
            self.stats.duplicate_packets += 1;
            return;
        }
        timeline.pending.insert(
            slot,
            Pending {
                position,
                sequence: packet.sequence,
                samples: samples.to_vec(),
            },
        );
    }

    /// Appends up to `limit` frames that no late packet can change any more; returns how many.
    /// Call again until it returns 0.
    pub fn drain_ready(&mut self, out: &mut Vec<[i16; 2]>, limit: usize) -> usize {
        let horizon = self
            .newest_arrival
            .saturating_sub(i64::from(self.config.reorder_window));
        self.emit_until(horizon, out, limit)
    }

    /// Appends up to `limit` of the remaining frames, through the end of the last packet, at the
    /// end of the recording. Call again until it returns 0.
    pub fn drain_all(&mut self, out: &mut Vec<[i16; 2]>, limit: usize) -> usize {
        let end = self
            .legs
            .iter()
            .filter_map(|leg| leg.pending.iter().map(Pending::end).max())
            .max()
            .unwrap_or(self.written);
        self.emit_until(end, out, limit)
    }

    /// Frames emitted so far (per channel).
    pub fn frames_written(&self) -> u64 {
        u64::try_from(self.written).unwrap_or(0)
    }

    /// What had to be repaired or discarded so far.
    pub fn stats(&self) -> AlignStats {
        self.stats
    }

    fn emit_until(&mut self, end: i64, out: &mut Vec<[i16; 2]>, limit: usize) -> usize {
        let start = self.written;
        let count = usize::try_from(end.saturating_sub(start))
            .unwrap_or(0)
            .min(limit);
        if count == 0 {
            return 0;
        }
        let stop = start.saturating_add(len_i64(count));
        let base = out.len();
        out.resize(base.saturating_add(count), [0, 0]);
        let frames = out.get_mut(base..).unwrap_or_default();
        for (channel, timeline) in self.legs.iter_mut().enumerate() {
            for packet in timeline.pending.iter().take_while(|p| p.position < stop) {
                let from = packet.position.max(start);
                let to = packet.end().min(stop);
                let skip = usize::try_from(from - packet.position).unwrap_or(0);
                let at = usize::try_from(from - start).unwrap_or(0);
                let take = usize::try_from(to - from).unwrap_or(0);
                let source = packet.samples.iter().skip(skip).take(take);
                for (frame, sample) in frames.iter_mut().skip(at).zip(source) {
                    if let Some(slot) = frame.get_mut(channel) {
                        *slot = *sample;
                    }
                }
            }
            timeline.pending.retain(|p| p.end() > stop);
        }
        self.written = stop;
        count
    }
}

#[cfg(test)]
#[path = "align_tests.rs"]
mod tests;
