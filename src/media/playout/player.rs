//! One sound being played: a cursor over a shared clip, encoded a packet at a time.

use crate::audio::Clip;
use crate::audio::g711::Law;
use crate::base::PlaybackId;

/// A clip playing towards one leg.
#[derive(Debug)]
pub(crate) struct Player {
    /// Reported with the playback's end.
    pub(crate) id: PlaybackId,
    clip: Clip,
    /// Next sample to play.
    pos: usize,
    /// Start again at the end (music on hold) instead of ending.
    looped: bool,
    /// Added to the relayed audio instead of replacing it.
    pub(crate) mix: bool,
    /// Engine clock when the next packet of the proxy's own is due.
    pub(crate) next_due_us: u64,
}

impl Player {
    /// A player whose first packet is due at `now_us`.
    pub(crate) fn new(id: PlaybackId, clip: Clip, looped: bool, mix: bool, now_us: u64) -> Self {
        Self {
            id,
            clip,
            pos: 0,
            looped,
            mix,
            next_due_us: now_us,
        }
    }

    /// The next sample, `None` once a clip that does not loop is over.
    fn next_sample(&mut self) -> Option<i16> {
        let samples = self.clip.samples();
        if self.pos >= samples.len() {
            if !self.looped || samples.is_empty() {
                return None;
            }
            self.pos = 0;
        }
        let sample = samples.get(self.pos).copied();
        self.pos += 1;
        sample
    }

    /// Encodes the next `payload.len()` samples into `payload` (silence past the end); returns
    /// whether the clip is over.
    pub(crate) fn write(&mut self, law: Law, payload: &mut [u8]) -> bool {
        for byte in payload.iter_mut() {
            *byte = law.encode(self.next_sample().unwrap_or(0));
        }
        self.is_over()
    }

    /// Adds the next `payload.len()` samples to the audio already in `payload`; returns whether
    /// the clip is over.
    pub(crate) fn mix_into(&mut self, law: Law, payload: &mut [u8]) -> bool {
        for byte in payload.iter_mut() {
            let Some(sample) = self.next_sample() else {
                break;
            };
            let sum = i32::from(law.decode(*byte)) + i32::from(sample);
            let clamped = sum.clamp(i32::from(i16::MIN), i32::from(i16::MAX));
            *byte = law.encode(clamped as i16);
        }
        self.is_over()
    }

    fn is_over(&self) -> bool {
        !self.looped && self.pos >= self.clip.len()
    }
}
