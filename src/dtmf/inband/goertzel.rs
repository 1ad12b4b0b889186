//! A bank of Goertzel filters run over half-windows of [`HALF`] samples; two consecutive halves
//! combine into one [`WINDOW`]-sample DFT bin without re-running the filters, so the detector
//! gets a 102-sample analysis every 51 samples at the cost of one pass.

use std::f32::consts::PI;

/// Samples per half-window.
pub(crate) const HALF: usize = 51;
/// Samples per analysis window (spandsp's block length: 78 Hz bins, the row tones 73 Hz apart
/// fall near each other's first null).
pub(crate) const WINDOW: usize = 2 * HALF;
/// The 8 DTMF frequencies: rows 697..941, then columns 1209..1633.
pub(crate) const TONES: [f32; 8] = [697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0];
/// Offset of the frequency probes each side of a tone: a tone is nearer its nominal frequency
/// than either probe (so within ±2.5 %) exactly when the nominal bin is the largest of the three.
pub(crate) const PROBE: f32 = 0.05;
/// Bins: 8 fundamentals, 8 low probes, 8 high probes, 8 second harmonics.
pub(crate) const BINS: usize = 32;

/// One bin's frequency-dependent constants.
#[derive(Clone, Copy, Debug, Default)]
struct Coeffs {
    /// 2 cos ω, the recursion's coefficient.
    two_cos: f32,
    cos: f32,
    sin: f32,
    /// e^{-jω·HALF}: turns the second half's result to the window's phase.
    shift_re: f32,
    shift_im: f32,
}

/// Filter states and the constants of every bin; fixed arrays, no allocation.
#[derive(Clone, Debug)]
pub(crate) struct Bank {
    coeffs: [Coeffs; BINS],
    s1: [f32; BINS],
    s2: [f32; BINS],
    energy: f32,
    filled: usize,
}

/// A finished half-window: each bin's complex sum and the half's sample energy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HalfResult {
    re: [f32; BINS],
    im: [f32; BINS],
    energy: f32,
}

/// One analysis window: per-bin tone power and mean power, in squared linear units (a sine of
/// amplitude A at a bin centre gives A²/2 in its bin and A²/2 as mean power).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) power: [f32; BINS],
    pub(crate) mean_power: f32,
}

/// The frequency of bin `k`.
pub(crate) fn bin_frequency(k: usize) -> f32 {
    let tone = TONES[k % 8];
    match k / 8 {
        0 => tone,
        1 => tone * (1.0 - PROBE),
        2 => tone * (1.0 + PROBE),
        _ => tone * 2.0,
    }
}

impl Bank {
    /// A bank with clear state.
    pub(crate) fn new() -> Self {
        let mut coeffs = [Coeffs::default(); BINS];
        for (k, c) in coeffs.iter_mut().enumerate() {
            let w = 2.0 * PI * bin_frequency(k) / 8000.0;
            *c = Coeffs {
                two_cos: 2.0 * w.cos(),
                cos: w.cos(),
                sin: w.sin(),
                shift_re: (w * HALF as f32).cos(),
                shift_im: -(w * HALF as f32).sin(),
            };
        }
        Self {
            coeffs,
            s1: [0.0; BINS],
            s2: [0.0; BINS],
            energy: 0.0,
            filled: 0,
        }
    }

    /// Forgets a partial half-window.
    pub(crate) fn clear(&mut self) {
        self.s1 = [0.0; BINS];
        self.s2 = [0.0; BINS];
        self.energy = 0.0;
        self.filled = 0;
    }

    /// Feeds one sample; returns the half-window it completes, if any.
    pub(crate) fn push(&mut self, x: f32) -> Option<HalfResult> {
        for k in 0..BINS {
            let s = x + self.coeffs[k].two_cos * self.s1[k] - self.s2[k];
            self.s2[k] = self.s1[k];
            self.s1[k] = s;
        }
        self.energy += x * x;
        self.filled += 1;
        if self.filled < HALF {
            return None;
        }
        let mut out = HalfResult {
            re: [0.0; BINS],
            im: [0.0; BINS],
            energy: self.energy,
        };
        for k in 0..BINS {
            // y = s1 - e^{-jω} s2 = e^{jω(HALF-1)} · Σ x[n] e^{-jωn}.
            out.re[k] = self.s1[k] - self.coeffs[k].cos * self.s2[k];
            out.im[k] = self.coeffs[k].sin * self.s2[k];
        }
        self.clear();
        Some(out)
    }

    /// The window made of `first` then `second`.
    pub(crate) fn combine(&self, first: &HalfResult, second: &HalfResult) -> Window {
        let mut power = [0.0; BINS];
        let norm = 2.0 / (WINDOW * WINDOW) as f32;
        for (k, p) in power.iter_mut().enumerate() {
            let c = &self.coeffs[k];
            let re = first.re[k] + c.shift_re * second.re[k] - c.shift_im * second.im[k];
            let im = first.im[k] + c.shift_re * second.im[k] + c.shift_im * second.re[k];
            *p = (re * re + im * im) * norm;
        }
        Window {
            power,
            mean_power: (first.energy + second.energy) / WINDOW as f32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_halves_match_a_direct_dft() {
        let mut bank = Bank::new();
        let signal: Vec<f32> = (0..WINDOW)
            .map(|n| {
                let t = n as f32 / 8000.0;
                1000.0 * (2.0 * PI * 700.0 * t + 0.3).sin() + 500.0 * (2.0 * PI * 1500.0 * t).cos()
            })
            .collect();
        let halves: Vec<HalfResult> = signal.iter().filter_map(|&x| bank.push(x)).collect();
        assert_eq!(halves.len(), 2);
        let w = bank.combine(&halves[0], &halves[1]);
        for k in 0..BINS {
            let omega = 2.0 * PI * bin_frequency(k) / 8000.0;
            let (re, im) = signal
                .iter()
                .enumerate()
                .fold((0.0f32, 0.0f32), |acc, (n, x)| {
                    (
                        acc.0 + x * (omega * n as f32).cos(),
                        acc.1 - x * (omega * n as f32).sin(),
                    )
                });
            let direct = (re * re + im * im) * 2.0 / (WINDOW * WINDOW) as f32;
            assert!(
                (direct - w.power[k]).abs() <= 1e-3 * direct.max(1.0),
                "bin {k}: {direct} vs {}",
                w.power[k]
            );
        }
    }
}
