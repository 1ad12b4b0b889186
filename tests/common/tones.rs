//! Tones in G.711 audio: DTMF tone pairs for the tests that send digits in-band (directly, or
//! inside a generated capture), and single tones that tell apart the parties of a call between
//! real phones, with the analysis of what each phone heard (those tones, a ringback, music).

use metaflow_proxy::audio::g711::Law;

/// Amplitude of each of the two tones (about -13 dBm0).
const AMPLITUDE: f64 = 5000.0;

/// `ms` of the DTMF tone pair of `digit`, as 20 ms PCMA payloads.
pub fn tone(digit: char, ms: usize) -> Vec<Vec<u8>> {
    let (low, high) = match digit {
        '*' => (941.0, 1209.0),
        '0' => (941.0, 1336.0),
        _ => panic!("no tone for {digit}"),
    };
    let samples: Vec<u8> = (0..ms * 8)
        .map(|n| {
            let t = n as f64 / 8000.0;
            let v = AMPLITUDE * (std::f64::consts::TAU * low * t).sin()
                + AMPLITUDE * (std::f64::consts::TAU * high * t).sin();
            Law::A.encode(v as i16)
        })
        .collect();
    samples.chunks(160).map(<[u8]>::to_vec).collect()
}

/// Length of one analysis window of [`Audio`]: 100 ms, so that the test tones (multiples of
/// 10 Hz) fall exactly on a DFT bin and leak nothing into the others.
const WINDOW_SECONDS: f64 = 0.1;
/// Share of a window's power a tone must carry for the window to count as that tone's.
const DOMINANT: f64 = 0.6;
/// Mean square below which a window counts as silence (an amplitude of about 100).
const QUIET: f64 = 1e4;

/// Writes `seconds` of a sine at `hz` (amplitude 8000) as 8 kHz mono 16-bit WAV: the sound a
/// softphone sends, so that whoever hears it can be told by its frequency.
pub fn write_tone_wav(path: &std::path::Path, hz: f64, seconds: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for n in 0..seconds * 8000 {
        let t = f64::from(n) / 8000.0;
        writer
            .write_sample((8000.0 * (std::f64::consts::TAU * hz * t).sin()) as i16)
            .unwrap();
    }
    writer.finalize().unwrap();
}

/// Mono 16-bit audio (a phone's recording), cut into 100 ms windows to tell which tone
/// dominates each: the check of who hears whom.
#[derive(Clone, Debug)]
pub struct Audio {
    pub samples: Vec<i16>,
    pub rate: u32,
}

impl Audio {
    /// Reads the first channel of a 16-bit PCM WAV file.
    pub fn read_wav(path: &std::path::Path) -> Audio {
        let mut reader = hound::WavReader::open(path)
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
        let spec = reader.spec();
        let channels = usize::from(spec.channels);
        let samples = reader
            .samples::<i16>()
            .step_by(channels)
            .map(Result::unwrap)
            .collect();
        Audio {
            samples,
            rate: spec.sample_rate,
        }
    }

    /// Duration in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.rate)
    }

    /// The audio between `from` and `to` seconds (clamped to the recording; empty when `to`
    /// comes first).
    pub fn span(&self, from: f64, to: f64) -> Audio {
        let at = |s: f64| ((s.max(0.0) * f64::from(self.rate)) as usize).min(self.samples.len());
        let (start, end) = (at(from), at(to));
        Audio {
            samples: self.samples[start..end.max(start)].to_vec(),
            rate: self.rate,
        }
    }

    /// The whole 100 ms windows.
    fn windows(&self) -> std::slice::Chunks<'_, i16> {
        let size = (f64::from(self.rate) * WINDOW_SECONDS) as usize;
        let whole = self.samples.len() / size * size;
        self.samples[..whole].chunks(size)
    }

    /// Number of whole 100 ms windows.
    pub fn window_count(&self) -> usize {
        self.windows().len()
    }

    /// Share of the windows (0 when there is none) in which the frequencies of `sound` together
    /// carry most of the power: one frequency for a party's tone, two for a ringback's pair.
    pub fn share_of(&self, sound: &[f64]) -> f64 {
        self.share(|window| dominant(window, self.rate, &[sound]).is_some())
    }

    /// Share of the windows that are quiet: a ringback's cadence is half silence or more, so
    /// its quiet windows count as hearing it rather than as hearing something else.
    pub fn share_of_quiet(&self) -> f64 {
        self.share(|window| mean_square(window) < QUIET)
    }

    /// Share of the windows that are neither quiet nor dominated by any of `sounds`: music on
    /// hold, say, rather than a party or a ringback.
    pub fn share_of_other(&self, sounds: &[&[f64]]) -> f64 {
        self.share(|window| {
            mean_square(window) >= QUIET && dominant(window, self.rate, sounds).is_none()
        })
    }

    /// Share of the windows for which `counts` holds (0 when there is none).
    fn share(&self, mut counts: impl FnMut(&[i16]) -> bool) -> f64 {
        let total = self.window_count();
        if total == 0 {
            return 0.0;
        }
        self.windows().filter(|w| counts(w)).count() as f64 / total as f64
    }

    /// One character per window: the label of the sound of `sounds` that dominates it, `.` for
    /// a quiet window, `~` for anything else; printed when a check fails.
    pub fn timeline(&self, sounds: &[(char, &[f64])]) -> String {
        let freqs: Vec<&[f64]> = sounds.iter().map(|&(_, sound)| sound).collect();
        self.windows()
            .map(|window| match dominant(window, self.rate, &freqs) {
                Some(index) => sounds[index].0,
                None if mean_square(window) < QUIET => '.',
                None => '~',
            })
            .collect()
    }
}

/// Mean square of `window`.
fn mean_square(window: &[i16]) -> f64 {
    window.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / window.len().max(1) as f64
}

/// Index of the sound of `sounds` (one or more frequencies) whose frequencies together carry at
/// least [`DOMINANT`] of `window`'s power (a Goertzel filter per frequency), if any; never for a
/// quiet window.
fn dominant(window: &[i16], rate: u32, sounds: &[&[f64]]) -> Option<usize> {
    let mean = mean_square(window);
    if mean < QUIET {
        return None;
    }
    // A pure sine on a bin gives |X|² = N²·mean/2.
    let share = |hz: f64| {
        let coeff = 2.0 * (std::f64::consts::TAU * hz / f64::from(rate)).cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for &x in window {
            let s0 = f64::from(x) + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        2.0 * power / ((window.len() as f64).powi(2) * mean)
    };
    sounds
        .iter()
        .position(|sound| sound.iter().map(|&hz| share(hz)).sum::<f64>() >= DOMINANT)
}
