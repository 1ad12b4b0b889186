//! Talk-off: speech from the real `flite` and `espeak-ng` engines (several voices, over ten
//! minutes in all) and five minutes of generated music, run through the detector as G.711
//! packets; every digit found is a false one.

use std::f32::consts::PI;
use std::process::Command;

use super::testgen::{Pair, Signal, run, started};
use crate::audio::decode::{DecodeLimits, decode};
use crate::audio::g711::Law;

/// Public-domain prose (Dickens, A Tale of Two Cities; Austen, Pride and Prejudice; Carroll,
/// Alice's Adventures in Wonderland; Melville, Moby-Dick).
const TEXT: &str = "It was the best of times, it was the worst of times, it was the age of wisdom, \
it was the age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it \
was the season of Light, it was the season of Darkness, it was the spring of hope, it was the \
winter of despair, we had everything before us, we had nothing before us, we were all going \
direct to Heaven, we were all going direct the other way. It is a truth universally \
acknowledged, that a single man in possession of a good fortune, must be in want of a wife. \
However little known the feelings or views of such a man may be on his first entering a \
neighbourhood, this truth is so well fixed in the minds of the surrounding families, that he is \
considered the rightful property of some one or other of their daughters. Alice was beginning \
to get very tired of sitting by her sister on the bank, and of having nothing to do: once or \
twice she had peeped into the book her sister was reading, but it had no pictures or \
conversations in it, and what is the use of a book, thought Alice, without pictures or \
conversations? So she was considering in her own mind, as well as she could, for the hot day \
made her feel very sleepy and stupid, whether the pleasure of making a daisy-chain would be \
worth the trouble of getting up and picking the daisies, when suddenly a White Rabbit with pink \
eyes ran close by her. Call me Ishmael. Some years ago, never mind how long precisely, having \
little or no money in my purse, and nothing particular to interest me on shore, I thought I \
would sail about a little and see the watery part of the world. It is a way I have of driving \
off the spleen, and regulating the circulation. Whenever I find myself growing grim about the \
mouth; whenever it is a damp, drizzly November in my soul; whenever I find myself involuntarily \
pausing before coffin warehouses, and bringing up the rear of every funeral I meet, then, I \
account it high time to get to sea as soon as I can.";

/// Renders `TEXT` with one engine and voice and returns 8 kHz samples.
fn speak(program: &str, args: &[&str]) -> Vec<f32> {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speech.wav");
    let wav_arg = wav.to_str().unwrap();
    let mut cmd = Command::new(program);
    if program == "flite" {
        cmd.args(args).args(["-t", TEXT, "-o", wav_arg]);
    } else {
        cmd.args(args).args(["-w", wav_arg, TEXT]);
    }
    let status = cmd.status().unwrap_or_else(|e| {
        panic!("{program} could not run ({e}): apt-get install flite espeak-ng; the talk-off test needs them")
    });
    assert!(status.success(), "{program} {args:?} failed: {status}");
    let bytes = std::fs::read(&wav).unwrap();
    let limits = DecodeLimits {
        max_bytes: usize::MAX,
        max_duration: std::time::Duration::from_secs(3600),
    };
    decode(&bytes, limits)
        .unwrap()
        .samples()
        .iter()
        .map(|&s| f32::from(s))
        .collect()
}

/// `audio`, then a real '5' after it: the last digit found must be that one (the chain is not
/// deaf); returns the digits before it, the false ones.
fn digits_before_a_real_one(law: Law, audio: &[f32]) -> String {
    let mut samples = audio.to_vec();
    samples.extend(
        Signal::default()
            .silence(200)
            .tone('5', 80, Pair::level(-20.0))
            .silence(200)
            .samples,
    );
    let mut found = started(&run(law, &samples));
    assert_eq!(
        found.pop(),
        Some('5'),
        "the digit after the audio was missed"
    );
    found
}

/// Five minutes of music: chords with harmonics, a melody sweeping 600-1700 Hz with vibrato and
/// glides, drums as decaying noise bursts.
fn music(seconds: usize, seed: u64) -> Vec<f32> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let note = |semitones: f32| 440.0 * 2f32.powf(semitones / 12.0);
    let mut out = Vec::with_capacity(seconds * 8000);
    let beat = 2000; // 250 ms
    let mut phases = [0.0f32; 8];
    for b in 0..seconds * 4 {
        let root = rng.i32(-12..0) as f32;
        let chord = [root, root + 4.0, root + 7.0];
        // Melody between 600 and 1700 Hz (D5 .. G#6), sometimes gliding to the next note.
        let m0 = note(rng.i32(6..24) as f32);
        let m1 = if rng.bool() {
            note(rng.i32(6..24) as f32)
        } else {
            m0
        };
        let drum = b % 2 == 0;
        for n in 0..beat {
            let t = n as f32 / beat as f32;
            let mut x = 0.0;
            for (i, &c) in chord.iter().enumerate() {
                let f = note(c);
                phases[i] += 2.0 * PI * f / 8000.0;
                for h in 1..=5 {
                    x += 2500.0 / h as f32 * (phases[i] * h as f32).sin();
                }
            }
            let vibrato = 1.0 + 0.006 * (2.0 * PI * 5.5 * (b * beat + n) as f32 / 8000.0).sin();
            let f = (m0 + (m1 - m0) * t) * vibrato;
            phases[3] += 2.0 * PI * f / 8000.0;
            x += 6000.0 * phases[3].sin() + 1500.0 * (2.0 * phases[3]).sin();
            if drum {
                x += 8000.0 * (rng.f32() * 2.0 - 1.0) * (-t * 30.0).exp();
            }
            out.push(x * (1.0 - 0.3 * t));
        }
    }
    out
}

const VOICES: [(&str, &[&str]); 9] = [
    ("flite", &["-voice", "slt"]),
    ("flite", &["-voice", "rms"]),
    ("flite", &["-voice", "kal"]),
    ("flite", &["-voice", "awb"]),
    ("espeak-ng", &["-v", "en-us"]),
    ("espeak-ng", &["-v", "en+f3"]),
    ("espeak-ng", &["-v", "de"]),
    ("espeak-ng", &["-v", "fr"]),
    ("espeak-ng", &["-v", "es"]),
];

#[test]
fn speech_from_nine_voices_gives_no_digits() {
    let mut total = 0usize;
    let mut false_digits = String::new();
    for (program, args) in VOICES {
        let speech = speak(program, args);
        total += speech.len();
        for law in [Law::A, Law::Mu] {
            let found = digits_before_a_real_one(law, &speech);
            eprintln!(
                "{program} {args:?} {law:?}: {} s, false digits {found:?}",
                speech.len() / 8000
            );
            false_digits.push_str(&found);
        }
    }
    eprintln!("speech: {} s, false digits: {false_digits:?}", total / 8000);
    assert!(total >= 600 * 8000, "only {} s of speech", total / 8000);
    assert!(false_digits.len() <= 2, "talk-off: {false_digits:?}");
}

#[test]
fn five_minutes_of_music_gives_no_digits() {
    let samples = music(300, 42);
    let found = digits_before_a_real_one(Law::A, &samples);
    eprintln!("music: 300 s, false digits {found:?}");
    assert!(found.len() <= 2, "talk-off: {found:?}");
}
