//! The built-in music on hold: generated here, so the proxy ships no third-party audio.
//!
//! A slow progression of four chords (C, A minor, F, G), each voice a sine with a soft attack and
//! release so that chord changes do not click, over a quiet bass; 16 seconds that loop seamlessly
//! (the last chord fades out where the first fades in).

use std::f32::consts::TAU;

use super::clip::{CLIP_RATE, Clip};

/// Length of one chord.
const CHORD_SECONDS: f32 = 4.0;
/// The chords: (bass, three voices) in Hz.
const CHORDS: [[f32; 4]; 4] = [
    [130.81, 261.63, 329.63, 392.00], // C
    [110.00, 220.00, 261.63, 329.63], // A minor
    [87.31, 174.61, 220.00, 261.63],  // F
    [98.00, 196.00, 246.94, 293.66],  // G
];
/// Peak amplitude of the mix (about -12 dBFS: music on hold should not be loud).
const PEAK: f32 = 8000.0;

/// Renders the built-in music on hold.
pub fn default_moh() -> Clip {
    let per_chord = (CHORD_SECONDS * CLIP_RATE as f32) as usize;
    let mut samples = Vec::with_capacity(per_chord * CHORDS.len());
    for chord in CHORDS {
        for n in 0..per_chord {
            let t = n as f32 / CLIP_RATE as f32;
            // Raised-cosine envelope over the chord: silent at both ends, so the loop is smooth.
            let envelope = 0.5 - 0.5 * (TAU * n as f32 / per_chord as f32).cos();
            let bass = 0.5 * (TAU * chord[0] * t).sin();
            let voices: f32 = chord[1..]
                .iter()
                .enumerate()
                // A slow tremolo per voice keeps the sound from being a flat organ tone.
                .map(|(i, f)| {
                    let tremolo = 0.85 + 0.15 * (TAU * (0.5 + i as f32 * 0.2) * t).sin();
                    tremolo * (TAU * f * t).sin()
                })
                .sum();
            let value = PEAK * envelope * (bass + voices) / 3.5;
            samples.push(value as i16);
        }
    }
    Clip::new(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_music_is_sixteen_seconds_of_audible_sound_that_loops_without_a_click() {
        let clip = default_moh();
        assert_eq!(clip.len(), 16 * CLIP_RATE as usize);
        let rms = (clip
            .samples()
            .iter()
            .map(|&s| f64::from(s).powi(2))
            .sum::<f64>()
            / clip.len() as f64)
            .sqrt();
        assert!(rms > 1000.0, "rms {rms}");
        let first = clip.samples()[0];
        let last = clip.samples()[clip.len() - 1];
        assert!(first.abs() < 50 && last.abs() < 50, "{first} {last}");
    }
}
