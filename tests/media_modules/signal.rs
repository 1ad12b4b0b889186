//! Audio checks on captured G.711: decoding, level and likeness to a reference.

use metaflow_proxy::audio::g711::Law;

/// Decodes A-law payloads, concatenated.
pub fn decode_alaw<'a>(payloads: impl IntoIterator<Item = &'a [u8]>) -> Vec<i16> {
    payloads
        .into_iter()
        .flat_map(|p| p.iter().map(|&b| Law::A.decode(b)))
        .collect()
}

/// Root mean square of samples.
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// Normalised correlation of `got` with the start of `reference` (1.0 = the same waveform).
pub fn correlation(got: &[i16], reference: &[i16]) -> f64 {
    let n = got.len().min(reference.len());
    let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
    for (&x, &y) in got[..n].iter().zip(&reference[..n]) {
        let (x, y) = (f64::from(x), f64::from(y));
        xy += x * y;
        xx += x * x;
        yy += y * y;
    }
    if xx == 0.0 || yy == 0.0 {
        return 0.0;
    }
    xy / (xx * yy).sqrt()
}
