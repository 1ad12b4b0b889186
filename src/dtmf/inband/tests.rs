//! Q.24 acceptance grid: digits, levels, twist, frequency offset, durations, pauses, noise,
//! loss, duplicates, on both PCMA and PCMU.

use super::InbandEvent;
use super::testgen::{Pair, Signal, run, run_lossy, started};
use crate::audio::g711::Law;

const KEYS: &str = "0123456789*#ABCD";
const LAWS: [Law; 2] = [Law::A, Law::Mu];

fn press(digit: char, ms: u32, pair: Pair) -> Vec<f32> {
    Signal::default()
        .silence(50)
        .tone(digit, ms, pair)
        .silence(200)
        .samples
}

#[test]
fn every_digit_at_every_level_once() {
    for law in LAWS {
        for level in [0.0, -10.0, -20.0, -30.0, -36.0] {
            for digit in KEYS.chars() {
                let events = run(law, &press(digit, 80, Pair::level(level)));
                assert_eq!(
                    started(&events),
                    digit.to_string(),
                    "{law:?} {digit} {level} dBm0"
                );
                assert!(
                    matches!(events.last(), Some(InbandEvent::Ended { digit: d, duration_ms }) if *d == digit && (60..=100).contains(duration_ms)),
                    "{law:?} {digit} {level}: {events:?}"
                );
            }
        }
    }
}

#[test]
fn too_quiet_is_rejected() {
    for law in LAWS {
        for digit in KEYS.chars() {
            assert_eq!(
                started(&run(law, &press(digit, 80, Pair::level(-45.0)))),
                ""
            );
        }
    }
}

#[test]
fn twist_within_limits_accepted_beyond_rejected() {
    let cases = [(-8.0, true), (4.0, true), (-10.5, false), (6.5, false)];
    for law in LAWS {
        for digit in KEYS.chars() {
            for (twist, ok) in cases {
                // Positive: the high group is stronger (reverse twist).
                let pair = Pair {
                    low_dbm0: -12.0,
                    high_dbm0: -12.0 + twist,
                    offset: 0.0,
                };
                let want = if ok { digit.to_string() } else { String::new() };
                assert_eq!(
                    started(&run(law, &press(digit, 80, pair))),
                    want,
                    "{law:?} {digit} twist {twist}"
                );
            }
        }
    }
}

#[test]
fn frequency_offset_within_1_5_percent_accepted_beyond_3_5_rejected() {
    for law in LAWS {
        for digit in KEYS.chars() {
            for (offset, ok) in [
                (0.015, true),
                (-0.015, true),
                (0.035, false),
                (-0.035, false),
            ] {
                let pair = Pair {
                    offset,
                    ..Pair::level(-10.0)
                };
                let want = if ok { digit.to_string() } else { String::new() };
                assert_eq!(
                    started(&run(law, &press(digit, 80, pair))),
                    want,
                    "{law:?} {digit} {offset}"
                );
            }
        }
    }
}

#[test]
fn forty_ms_accepted_twenty_three_rejected_at_any_alignment() {
    for law in LAWS {
        for digit in "159#D".chars() {
            for shift in (0..160).step_by(7) {
                let base = Signal::default().samples_silence(400 + shift);
                let long = base
                    .clone()
                    .tone(digit, 40, Pair::level(-10.0))
                    .silence(200);
                assert_eq!(
                    started(&run(law, &long.samples)),
                    digit.to_string(),
                    "40 ms {digit} +{shift}"
                );
                let short = base.tone(digit, 23, Pair::level(-10.0)).silence(200);
                assert_eq!(
                    started(&run(law, &short.samples)),
                    "",
                    "23 ms {digit} +{shift}"
                );
            }
        }
    }
}

#[test]
fn forty_ms_pause_gives_two_digits() {
    for law in LAWS {
        for shift in (0..160).step_by(13) {
            let s = Signal::default()
                .samples_silence(400 + shift)
                .tone('5', 50, Pair::level(-10.0))
                .silence(40)
                .tone('5', 50, Pair::level(-10.0))
                .silence(200);
            assert_eq!(started(&run(law, &s.samples)), "55", "+{shift}");
        }
    }
}

#[test]
fn ten_ms_dropout_does_not_split() {
    let s = Signal::default()
        .silence(50)
        .tone('7', 60, Pair::level(-10.0))
        .silence(10)
        .tone('7', 60, Pair::level(-10.0))
        .silence(200);
    assert_eq!(started(&run(Law::A, &s.samples)), "7");
}

#[test]
fn a_sequence_of_digits() {
    let mut s = Signal::default().silence(100);
    for d in "0123456789*#ABCD".chars() {
        s = s.tone(d, 60, Pair::level(-20.0)).silence(60);
    }
    for law in LAWS {
        assert_eq!(started(&run(law, &s.samples)), "0123456789*#ABCD");
    }
}

#[test]
fn white_noise_at_20_and_10_db_snr() {
    for law in LAWS {
        for snr in [20.0, 10.0] {
            for (seed, digit) in KEYS.chars().enumerate() {
                let s = Signal::default()
                    .silence(100)
                    .tone(digit, 80, Pair::level(-23.0))
                    .silence(200)
                    .noise(-20.0, snr, seed as u64);
                assert_eq!(
                    started(&run(law, &s.samples)),
                    digit.to_string(),
                    "{law:?} {digit} snr {snr}"
                );
            }
        }
    }
}

#[test]
fn noise_alone_gives_nothing() {
    let s = Signal::default().silence(10_000).noise(-10.0, 0.0, 7);
    assert_eq!(started(&run(Law::A, &s.samples)), "");
}

#[test]
fn a_lost_packet_mid_tone_does_not_split_the_digit() {
    // 200 ms tone from packet 2 to 11; packet 6 (and, separately, 6 and 7) lost.
    let s = Signal::default()
        .silence(40)
        .tone('9', 200, Pair::level(-10.0))
        .silence(200);
    for lost in [&[6][..], &[6, 7][..]] {
        let events = run_lossy(Law::A, &s.samples, 1000, lost);
        assert_eq!(started(&events), "9", "lost {lost:?}: {events:?}");
    }
}

#[test]
fn duplicates_and_late_packets_are_ignored() {
    use super::InbandDetector;
    let s = Signal::default()
        .silence(40)
        .tone('3', 100, Pair::level(-10.0))
        .silence(200);
    let mut det = InbandDetector::new();
    let mut events = Vec::new();
    let mut packets = Vec::new();
    for (i, chunk) in s.samples.chunks(160).enumerate() {
        let payload: Vec<u8> = chunk.iter().map(|x| Law::A.encode(*x as i16)).collect();
        packets.push(((i * 160) as u32, payload));
    }
    for (i, (ts, p)) in packets.iter().enumerate() {
        det.feed(Law::A, p, *ts, &mut |e| events.push(e));
        // Every packet again, and the one before it late.
        det.feed(Law::A, p, *ts, &mut |e| events.push(e));
        if i > 0 {
            let (ts0, p0) = &packets[i - 1];
            det.feed(Law::A, p0, *ts0, &mut |e| events.push(e));
        }
    }
    assert_eq!(started(&events), "3");
    assert_eq!(events.len(), 2);
}

#[test]
fn stream_stopping_ends_the_digit() {
    use super::InbandDetector;
    let s = Signal::default()
        .silence(40)
        .tone('4', 100, Pair::level(-10.0));
    let mut det = InbandDetector::new();
    let mut events = Vec::new();
    for (i, chunk) in s.samples.chunks(160).enumerate() {
        let payload: Vec<u8> = chunk.iter().map(|x| Law::Mu.encode(*x as i16)).collect();
        det.feed(Law::Mu, &payload, (i * 160) as u32, &mut |e| events.push(e));
    }
    assert!(det.in_tone());
    det.feed(Law::Mu, &[0xff; 160], 10_000, &mut |e| events.push(e));
    assert!(!det.in_tone());
    assert!(
        matches!(
            events.as_slice(),
            [
                InbandEvent::Started { digit: '4', .. },
                InbandEvent::Ended { digit: '4', .. }
            ]
        ),
        "{events:?}"
    );
}

#[test]
fn a_timestamp_jump_backwards_restarts_rather_than_deafens() {
    use super::InbandDetector;
    let s = Signal::default()
        .silence(40)
        .tone('8', 100, Pair::level(-10.0))
        .silence(100);
    let mut det = InbandDetector::new();
    let mut events = Vec::new();
    for base in [1_000_000u32, 5_000] {
        for (i, chunk) in s.samples.chunks(160).enumerate() {
            let payload: Vec<u8> = chunk.iter().map(|x| Law::A.encode(*x as i16)).collect();
            det.feed(Law::A, &payload, base + (i * 160) as u32, &mut |e| {
                events.push(e)
            });
        }
    }
    assert_eq!(started(&events), "88");
}
