//! Sample-rate conversion to [`CLIP_RATE`]: a windowed-sinc low-pass and interpolation in one
//! polyphase filter, so that uploaded files and speech engines' output at any rate play at 8 kHz
//! without aliasing (a 6 kHz tone in a 48 kHz file must not fold back to 2 kHz).

use std::f64::consts::PI;

use super::clip::CLIP_RATE;

/// Zero crossings of the sinc on each side of the centre: the filter's length, hence its
/// steepness (about 400 Hz of transition band at 8 kHz).
const ZERO_CROSSINGS: usize = 16;

/// Fractional positions the kernel is tabulated at (nearest-phase lookup; the error is far below
/// 16-bit noise at this many).
const PHASES: usize = 512;

/// Pass band edge as a fraction of the lower Nyquist frequency: 0.9 of 4 kHz keeps 3.6 kHz of
/// speech band; the window's transition band takes the rest.
const CUTOFF: f64 = 0.9;

/// Resamples mono `input` at `rate` Hz to [`CLIP_RATE`], with a low-pass at the lower of the two
/// Nyquist frequencies. Returns the samples unchanged when `rate` already is [`CLIP_RATE`].
pub fn to_clip_rate(input: &[f32], rate: u32) -> Vec<f32> {
    resample(input, rate, CLIP_RATE)
}

/// Resamples mono `input` from `from` Hz to `to` Hz (both non-zero; a zero rate gives nothing).
pub fn resample(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to {
        return input.to_vec();
    }
    if from == 0 || to == 0 || input.is_empty() {
        return Vec::new();
    }
    let kernel = Kernel::new(from, to);
    let out_len = (input.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    let step = f64::from(from) / f64::from(to);
    let half = kernel.half as isize;
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len {
        let position = n as f64 * step;
        let base = position.floor();
        let fraction = position - base;
        let base = base as isize;
        let phase = ((fraction * PHASES as f64).round() as usize).min(PHASES);
        let taps = kernel.taps(phase);
        let mut acc = 0.0f32;
        // Tap j weighs input sample base - half + 1 + j.
        let first = base - half + 1;
        let window = usize::try_from(first)
            .ok()
            .and_then(|start| input.get(start..start + taps.len()));
        if let Some(window) = window {
            // The whole kernel over the input: no per-tap bounds check.
            acc = window.iter().zip(taps).map(|(s, w)| s * w).sum();
        } else {
            // At either end, taps outside the input count as silence.
            for (j, &weight) in taps.iter().enumerate() {
                let index = first + j as isize;
                if index >= 0
                    && let Some(&sample) = input.get(index as usize)
                {
                    acc += sample * weight;
                }
            }
        }
        out.push(acc);
    }
    out
}

/// The low-pass kernel tabulated at [`PHASES`] + 1 fractional offsets.
struct Kernel {
    /// Taps on each side of the centre.
    half: usize,
    /// `(PHASES + 1) * 2 * half` weights, phase-major.
    table: Vec<f32>,
}

impl Kernel {
    fn new(from: u32, to: u32) -> Self {
        // Cut-off in cycles per input sample.
        let cutoff = CUTOFF * 0.5 * f64::from(from.min(to)) / f64::from(from);
        let half = (ZERO_CROSSINGS as f64 / (2.0 * cutoff)).ceil() as usize;
        let width = 2 * half;
        let mut table = Vec::with_capacity((PHASES + 1) * width);
        for phase in 0..=PHASES {
            let fraction = phase as f64 / PHASES as f64;
            for j in 0..width {
                // Distance from the output position to input sample base - half + 1 + j.
                let distance = (j as f64 - half as f64 + 1.0) - fraction;
                table.push(
                    (2.0 * cutoff * sinc(2.0 * cutoff * distance) * blackman(distance, half))
                        as f32,
                );
            }
        }
        Self { half, table }
    }

    fn taps(&self, phase: usize) -> &[f32] {
        let width = 2 * self.half;
        &self.table[phase * width..(phase + 1) * width]
    }
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        (PI * x).sin() / (PI * x)
    }
}

/// Blackman window over `[-half, half]`, zero outside.
fn blackman(distance: f64, half: usize) -> f64 {
    let x = distance / half as f64;
    if x.abs() >= 1.0 {
        return 0.0;
    }
    let t = PI * (x + 1.0);
    0.42 - 0.5 * t.cos() + 0.08 * (2.0 * t).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, seconds: f64) -> Vec<f32> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|i| (0.5 * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin()) as f32)
            .collect()
    }

    fn rms(samples: &[f32]) -> f64 {
        (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
    }

    /// Frequency from the zero crossings of the middle of the signal (edges skipped).
    fn frequency(samples: &[f32], rate: u32) -> f64 {
        let middle = &samples[samples.len() / 10..samples.len() * 9 / 10];
        let crossings = middle
            .windows(2)
            .filter(|pair| pair[0] < 0.0 && pair[1] >= 0.0)
            .count();
        crossings as f64 * f64::from(rate) / middle.len() as f64
    }

    #[test]
    fn a_1khz_tone_stays_1khz_with_the_right_length_at_every_rate() {
        for rate in [44_100, 48_000, 16_000, 22_050, 11_025] {
            let out = to_clip_rate(&sine(1000.0, rate, 1.0), rate);
            assert!(
                (out.len() as i64 - 8000).abs() <= 1,
                "{rate}: {}",
                out.len()
            );
            let freq = frequency(&out, CLIP_RATE);
            assert!((freq - 1000.0).abs() < 5.0, "{rate}: {freq} Hz");
            let level = rms(&out[800..7200]);
            assert!(
                (level - 0.5 / 2f64.sqrt()).abs() < 0.01,
                "{rate}: rms {level}"
            );
        }
    }

    #[test]
    fn a_6khz_tone_at_48khz_is_attenuated_more_than_30_db() {
        let input = sine(6000.0, 48_000, 1.0);
        let out = to_clip_rate(&input, 48_000);
        let ratio = rms(&out[800..7200]) / rms(&input);
        let db = 20.0 * ratio.log10();
        eprintln!("6 kHz at 48 kHz after resampling: {db:.1} dB");
        assert!(db < -30.0, "only {db:.1} dB");
    }

    #[test]
    fn the_clip_rate_passes_through_and_empty_stays_empty() {
        let input = sine(440.0, 8000, 0.1);
        assert_eq!(to_clip_rate(&input, 8000), input);
        assert!(to_clip_rate(&[], 44_100).is_empty());
        assert!(resample(&input, 0, 8000).is_empty());
    }

    #[test]
    fn upsampling_keeps_the_tone() {
        let out = to_clip_rate(&sine(500.0, 6000, 1.0), 6000);
        assert_eq!(out.len(), 8000);
        assert!((frequency(&out, CLIP_RATE) - 500.0).abs() < 5.0);
    }
}
