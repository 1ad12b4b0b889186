//! DTMF tone pairs in G.711 audio, for the tests that send digits in-band (directly, or inside a
//! generated capture).

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
