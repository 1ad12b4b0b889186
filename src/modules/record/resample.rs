//! Streaming stereo resampler from G.711's 8 kHz to the rate `data.record_sample_rate` asks for.
//!
//! Cubic (Catmull-Rom) interpolation between input frames: smooth and phase-exact, so a tone keeps
//! its frequency, unlike the staircase of sample duplication. Sans-IO: frames in, frames out; the
//! output of `n` input frames is `n * rate / 8000` frames (rounded down) once flushed.

/// Input rate: what the aligner produces.
const INPUT_RATE: u64 = 8000;

/// Resamples interleaved stereo frames from 8 kHz to `rate`.
#[derive(Debug)]
pub(crate) struct Resampler {
    rate: u64,
    /// Input frames still needed for the next outputs; `input[0]` is input frame `base`.
    input: Vec<[f32; 2]>,
    base: u64,
    /// Input frames received so far.
    received: u64,
    /// Output frames produced so far.
    produced: u64,
}

impl Resampler {
    /// A resampler from 8 kHz to `rate` (Hz).
    pub(crate) fn new(rate: u32) -> Self {
        Self {
            rate: u64::from(rate.max(1)),
            input: Vec::with_capacity(8),
            base: 0,
            received: 0,
            produced: 0,
        }
    }

    /// Adds 8 kHz frames and appends every output frame that can now be computed to `out`.
    pub(crate) fn push(&mut self, frames: &[[i16; 2]], out: &mut Vec<[i16; 2]>) {
        for frame in frames {
            self.input.push([f32::from(frame[0]), f32::from(frame[1])]);
        }
        self.received += frames.len() as u64;
        self.produce(false, out);
    }

    /// Ends the stream: the outputs waiting for frames after the last one are computed with
    /// the last frame repeated.
    pub(crate) fn flush(&mut self, out: &mut Vec<[i16; 2]>) {
        self.produce(true, out);
    }

    fn produce(&mut self, last: bool, out: &mut Vec<[i16; 2]>) {
        let total_out = self.received * self.rate / INPUT_RATE;
        while self.produced < total_out {
            // Position of the output frame in input frames: index + fraction.
            let position = self.produced * INPUT_RATE;
            let index = position / self.rate;
            if !last && index + 2 >= self.received {
                break;
            }
            let fraction = (position % self.rate) as f32 / self.rate as f32;
            let at = |offset: i64| -> [f32; 2] {
                let wanted = (index as i64 + offset).clamp(0, self.received as i64 - 1) as u64;
                let slot = wanted.saturating_sub(self.base) as usize;
                self.input
                    .get(slot)
                    .or_else(|| self.input.last())
                    .copied()
                    .unwrap_or([0.0; 2])
            };
            let (p0, p1, p2, p3) = (at(-1), at(0), at(1), at(2));
            let mut frame = [0i16; 2];
            for (channel, sample) in frame.iter_mut().enumerate() {
                let value =
                    catmull_rom(p0[channel], p1[channel], p2[channel], p3[channel], fraction);
                *sample = value.round().clamp(-32768.0, 32767.0) as i16;
            }
            out.push(frame);
            self.produced += 1;
        }
        // Keep one frame before the next output's index for its interpolation.
        let next_index = self.produced * INPUT_RATE / self.rate;
        let keep_from = next_index.saturating_sub(1).max(self.base);
        let drop = usize::try_from(keep_from - self.base)
            .unwrap_or(usize::MAX)
            .min(self.input.len());
        self.input.drain(..drop);
        self.base += drop as u64;
    }
}

fn catmull_rom(p0: f32, p1: f32, p2: f32, p3: f32, t: f32) -> f32 {
    p1 + 0.5
        * t
        * (p2 - p0 + t * (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3 + t * (3.0 * (p1 - p2) + p3 - p0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frames: usize, hz: f64, rate: f64) -> Vec<[i16; 2]> {
        (0..frames)
            .map(|n| {
                let v = (8000.0 * (2.0 * std::f64::consts::PI * hz * n as f64 / rate).sin()) as i16;
                [v, 0]
            })
            .collect()
    }

    fn resample(input: &[[i16; 2]], rate: u32, chunk: usize) -> Vec<[i16; 2]> {
        let mut resampler = Resampler::new(rate);
        let mut out = Vec::new();
        for part in input.chunks(chunk) {
            resampler.push(part, &mut out);
        }
        resampler.flush(&mut out);
        out
    }

    /// Sign changes of the left channel.
    fn zero_crossings(frames: &[[i16; 2]]) -> usize {
        frames
            .windows(2)
            .filter(|w| (w[0][0] >= 0) != (w[1][0] >= 0))
            .count()
    }

    #[test]
    fn length_is_exact_whatever_the_chunking() {
        let input = tone(8000, 1000.0, 8000.0);
        for rate in [8000, 11025, 16000, 22050, 32000, 44100, 48000] {
            for chunk in [1, 160, 4096] {
                let out = resample(&input, rate, chunk);
                assert_eq!(out.len(), rate as usize, "rate {rate} chunk {chunk}");
            }
        }
        assert_eq!(resample(&input[..160], 44100, 7).len(), 882);
    }

    #[test]
    fn a_1khz_tone_stays_1khz_and_follows_the_ideal_curve() {
        let input = tone(8000, 1000.0, 8000.0);
        for rate in [16000u32, 44100, 48000] {
            let out = resample(&input, rate, 160);
            // One second of 1 kHz: 2000 sign changes (±2 at the edges).
            let crossings = zero_crossings(&out);
            assert!(
                crossings.abs_diff(2000) <= 2,
                "rate {rate}: {crossings} crossings"
            );
            let ideal = tone(rate as usize, 1000.0, f64::from(rate));
            let error: f64 = out
                .iter()
                .zip(&ideal)
                .map(|(a, b)| (f64::from(a[0]) - f64::from(b[0])).powi(2))
                .sum::<f64>()
                / out.len() as f64;
            let rms = error.sqrt();
            assert!(rms < 8000.0 * 0.05, "rate {rate}: rms error {rms}");
            assert!(out.iter().all(|f| f[1] == 0), "silence stays silence");
        }
    }

    #[test]
    fn the_input_samples_are_kept_where_the_grids_meet() {
        let input = tone(800, 1000.0, 8000.0);
        let out = resample(&input, 16000, 33);
        for (n, frame) in input.iter().enumerate() {
            assert_eq!(out[2 * n], *frame, "frame {n}");
        }
    }
}
