//! Test signals: DTMF pairs at given levels, twist and frequency offsets, noise, and the
//! packetiser that feeds a detector 20 ms G.711 packets with RTP timestamps.

use std::f32::consts::PI;

use crate::audio::g711::Law;

use super::{InbandDetector, InbandEvent};

/// Amplitude of a 0 dBm0 sine (A-law's full-scale sine is +3.14 dBm0).
pub(crate) const DBM0_AMPLITUDE: f32 = 22_486.0;

/// Row and column frequency of a key.
pub(crate) fn key_freqs(digit: char) -> (f32, f32) {
    const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    let keys = "123A456B789C*0#D";
    let i = keys.find(digit).unwrap();
    (ROWS[i / 4], COLS[i % 4])
}

/// Amplitude of a sine at `dbm0`.
pub(crate) fn amplitude(dbm0: f32) -> f32 {
    DBM0_AMPLITUDE * 10f32.powf(dbm0 / 20.0)
}

/// A signal under construction, 8 kHz float samples at 16-bit scale.
#[derive(Default, Clone)]
pub(crate) struct Signal {
    pub(crate) samples: Vec<f32>,
}

/// How a tone pair deviates from the nominal.
#[derive(Clone, Copy)]
pub(crate) struct Pair {
    /// Level of the row tone, dBm0.
    pub(crate) low_dbm0: f32,
    /// Level of the column tone, dBm0.
    pub(crate) high_dbm0: f32,
    /// Relative frequency offset of both tones (0.015 = +1.5 %).
    pub(crate) offset: f32,
}

impl Pair {
    pub(crate) fn level(dbm0: f32) -> Self {
        Self {
            low_dbm0: dbm0,
            high_dbm0: dbm0,
            offset: 0.0,
        }
    }
}

impl Signal {
    pub(crate) fn silence(mut self, ms: u32) -> Self {
        self.samples
            .extend(std::iter::repeat_n(0.0, ms as usize * 8));
        self
    }

    pub(crate) fn samples_silence(mut self, n: usize) -> Self {
        self.samples.extend(std::iter::repeat_n(0.0, n));
        self
    }

    pub(crate) fn tone(mut self, digit: char, ms: u32, pair: Pair) -> Self {
        let (lo, hi) = key_freqs(digit);
        let (lo, hi) = (lo * (1.0 + pair.offset), hi * (1.0 + pair.offset));
        let (al, ah) = (amplitude(pair.low_dbm0), amplitude(pair.high_dbm0));
        for n in 0..ms as usize * 8 {
            let t = n as f32 / 8000.0;
            self.samples
                .push(al * (2.0 * PI * lo * t).sin() + ah * (2.0 * PI * hi * t + 1.0).sin());
        }
        self
    }

    /// Adds white noise `snr_db` below `signal_dbm0` (the power of the whole pair).
    pub(crate) fn noise(mut self, signal_dbm0: f32, snr_db: f32, seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        // Uniform in [-a, a] has power a²/3.
        let power =
            (DBM0_AMPLITUDE * DBM0_AMPLITUDE / 2.0) * 10f32.powf((signal_dbm0 - snr_db) / 10.0);
        let a = (3.0 * power).sqrt();
        for s in &mut self.samples {
            *s += (rng.f32() * 2.0 - 1.0) * a;
        }
        self
    }
}

/// Encodes `samples` and feeds them as 20 ms packets starting at RTP timestamp `ts0`, skipping
/// the packets whose index is in `lost`; returns every event.
pub(crate) fn run_lossy(law: Law, samples: &[f32], ts0: u32, lost: &[usize]) -> Vec<InbandEvent> {
    let mut det = InbandDetector::new();
    let mut events = Vec::new();
    let mut payload = [0u8; 160];
    for (i, chunk) in samples.chunks(160).enumerate() {
        let ts = ts0.wrapping_add((i * 160) as u32);
        if lost.contains(&i) {
            continue;
        }
        for (b, s) in payload.iter_mut().zip(chunk) {
            *b = law.encode(s.round().clamp(-32768.0, 32767.0) as i16);
        }
        det.feed(law, &payload[..chunk.len()], ts, &mut |e| events.push(e));
    }
    events
}

/// [`run_lossy`] without loss.
pub(crate) fn run(law: Law, samples: &[f32]) -> Vec<InbandEvent> {
    run_lossy(law, samples, 0xffff_f000, &[])
}

/// The recognised digits, in order.
pub(crate) fn started(events: &[InbandEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            InbandEvent::Started { digit, .. } => Some(*digit),
            InbandEvent::Ended { .. } => None,
        })
        .collect()
}
