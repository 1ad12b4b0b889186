//! Timeline tests: every scenario checks each output frame against where the audio belongs.

use super::*;

/// Distinct non-zero sample for timeline position `at` on `leg` (a-leg positive, b-leg negative).
fn signal(leg: Leg, at: i64) -> i16 {
    let value = (at % 1000 + 1) as i16;
    if leg == Leg::A { value } else { -value }
}

/// A packet of `leg` covering `len` samples from RTP timestamp `ts`, whose audio is the signal at
/// timeline position `audio_at`, arriving at `arrival_us`.
struct Sent {
    leg: Leg,
    ts: u32,
    seq: u16,
    ssrc: u32,
    audio_at: i64,
    len: usize,
    arrival_us: u64,
}

fn packet(leg: Leg, seq: u16, ts: u32, len: usize, arrival_us: u64) -> Sent {
    Sent {
        leg,
        ts,
        seq,
        ssrc: 7,
        audio_at: i64::from(ts),
        len,
        arrival_us,
    }
}

/// Feeds packets in the given order, draining as the recorder does; returns all frames.
fn run(aligner: &mut Aligner, packets: &[Sent]) -> Vec<[i16; 2]> {
    let mut frames = Vec::new();
    for sent in packets {
        let samples: Vec<i16> = (0..sent.len as i64)
            .map(|i| signal(sent.leg, sent.audio_at + i))
            .collect();
        let audio = AudioPacket {
            timestamp: sent.ts,
            sequence: sent.seq,
            ssrc: sent.ssrc,
            arrival_us: sent.arrival_us,
            samples: &samples,
        };
        aligner.push(sent.leg, audio);
        while aligner.drain_ready(&mut frames, 1000) > 0 {}
    }
    while aligner.drain_all(&mut frames, 1000) > 0 {}
    frames
}

/// A continuous stream on `leg`: `count` packets of `len` samples from timestamp 0.
fn stream(leg: Leg, count: u16, len: usize) -> Vec<Sent> {
    (0..count)
        .map(|n| {
            let ts = u32::from(n) * len as u32;
            packet(leg, n, ts, len, u64::from(ts) * 125)
        })
        .collect()
}

fn by_arrival(mut packets: Vec<Sent>) -> Vec<Sent> {
    packets.sort_by_key(|p| p.arrival_us);
    packets
}

fn channel(frames: &[[i16; 2]], leg: Leg) -> Vec<i16> {
    frames.iter().map(|f| f[leg_index(leg)]).collect()
}

#[test]
fn continuous_stream_is_copied_sample_for_sample() {
    let mut aligner = Aligner::new(AlignConfig::default());
    let frames = run(&mut aligner, &stream(Leg::A, 50, 160));
    assert_eq!(frames.len(), 50 * 160);
    for (at, frame) in frames.iter().enumerate() {
        assert_eq!(*frame, [signal(Leg::A, at as i64), 0], "frame {at}");
    }
    assert_eq!(aligner.frames_written(), 8000);
    assert_eq!(aligner.stats(), AlignStats::default());
}

#[test]
fn lost_packets_become_silence_of_the_same_length() {
    let mut packets = stream(Leg::A, 20, 160);
    packets.retain(|p| p.seq != 5 && p.seq != 6);
    let frames = run(&mut Aligner::default(), &packets);
    assert_eq!(frames.len(), 20 * 160);
    let left = channel(&frames, Leg::A);
    for (at, sample) in left.iter().enumerate() {
        let lost = (5 * 160..7 * 160).contains(&at);
        let expected = if lost { 0 } else { signal(Leg::A, at as i64) };
        assert_eq!(*sample, expected, "frame {at}");
    }
}

#[test]
fn reordering_within_the_window_is_corrected() {
    let mut packets = stream(Leg::A, 20, 160);
    // Packet 4 is overtaken by 5 and 6 (arrives 45 ms late), 10 and 11 swap.
    packets[4].arrival_us += 45_000;
    packets[10].arrival_us += 25_000;
    let frames = run(&mut Aligner::default(), &by_arrival(packets));
    let expected: Vec<i16> = (0..20 * 160).map(|at| signal(Leg::A, at)).collect();
    assert_eq!(channel(&frames, Leg::A), expected);
}

#[test]
fn packets_later_than_the_window_are_dropped_and_counted() {
    let mut packets = stream(Leg::A, 30, 160);
    packets[4].arrival_us += 150_000;
    let mut aligner = Aligner::default();
    let frames = run(&mut aligner, &by_arrival(packets));
    assert_eq!(aligner.stats().late_packets, 1);
    let left = channel(&frames, Leg::A);
    assert!(left[4 * 160..5 * 160].iter().all(|s| *s == 0));
    assert_eq!(
        left[5 * 160],
        signal(Leg::A, 5 * 160),
        "the stream goes on in place"
    );
}

#[test]
fn duplicates_are_ignored() {
    let mut packets = stream(Leg::A, 10, 160);
    let copy = packet(Leg::A, 3, 480, 160, 480 * 125 + 5_000);
    packets.insert(4, copy);
    let mut aligner = Aligner::default();
    let frames = run(&mut aligner, &packets);
    assert_eq!(aligner.stats().duplicate_packets, 1);
    assert_eq!(frames.len(), 1600);
}

#[test]
fn silence_suppression_gap_becomes_silence_and_the_talkspurt_lands_in_place() {
    // 10 packets, then 1.5 s of silence (timestamp and clock both jump), then 10 more.
    let mut packets = stream(Leg::A, 10, 160);
    let resume_ts = 1600 + 12_000;
    for n in 0..10u16 {
        let ts = resume_ts + u32::from(n) * 160;
        packets.push(packet(Leg::A, 10 + n, ts, 160, u64::from(ts) * 125 + 3_000));
    }
    let mut aligner = Aligner::default();
    let frames = run(&mut aligner, &packets);
    assert_eq!(frames.len(), resume_ts as usize + 1600);
    let left = channel(&frames, Leg::A);
    assert!(left[1600..resume_ts as usize].iter().all(|s| *s == 0));
    assert_eq!(
        left[resume_ts as usize],
        signal(Leg::A, i64::from(resume_ts))
    );
    assert_eq!(
        aligner.stats().resyncs,
        0,
        "timestamps agreed with the clock"
    );
}

#[test]
fn hold_on_one_leg_keeps_both_channels_aligned() {
    // The a-leg talks for 5 s. The b-leg talks for 1 s, is on hold for 3 s, then resumes with
    // timestamps that did not advance during the hold (so it must be re-anchored on arrival).
    let mut packets = stream(Leg::A, 250, 160);
    for n in 0..50u16 {
        let ts = 90_000 + u32::from(n) * 160;
        let mut sent = packet(Leg::B, n, ts, 160, u64::from(n) * 20_000);
        sent.audio_at = i64::from(n) * 160;
        packets.push(sent);
    }
    for n in 0..50u16 {
        let ts = 90_000 + (50 + u32::from(n)) * 160;
        let arrival_us = 4_000_000 + u64::from(n) * 20_000;
        let mut sent = packet(Leg::B, 50 + n, ts, 160, arrival_us);
        sent.audio_at = 32_000 + i64::from(n) * 160;
        packets.push(sent);
    }
    let mut aligner = Aligner::default();
    let frames = run(&mut aligner, &by_arrival(packets));
    assert_eq!(frames.len(), 40_000);
    for (at, frame) in frames.iter().enumerate() {
        let talking = !(8000..32_000).contains(&at);
        let right = if talking {
            signal(Leg::B, at as i64)
        } else {
            0
        };
        assert_eq!(*frame, [signal(Leg::A, at as i64), right], "frame {at}");
    }
    assert_eq!(aligner.stats().resyncs, 1);
}

#[test]
fn a_leg_that_starts_later_begins_with_silence() {
    let mut packets = stream(Leg::A, 100, 160);
    for n in 0..20u16 {
        let ts = 5_000 + u32::from(n) * 160;
        let mut sent = packet(Leg::B, n, ts, 160, 1_000_000 + u64::from(n) * 20_000);
        sent.audio_at = 8000 + i64::from(n) * 160;
        packets.push(sent);
    }
    let frames = run(&mut Aligner::default(), &by_arrival(packets));
    let right = channel(&frames, Leg::B);
    assert!(right[..8000].iter().all(|s| *s == 0));
    assert_eq!(
        right[8000..11_200],
        (8000..11_200)
            .map(|at| signal(Leg::B, at))
            .collect::<Vec<_>>()
    );
}

#[test]
fn mixed_ptime_legs_interleave_without_gaps() {
    // a-leg 20 ms packets, b-leg 30 ms packets, both continuous for 3 s, arriving interleaved
    // with a little jitter (not on the first packets: they anchor each leg's timeline).
    let mut packets = stream(Leg::A, 150, 160);
    packets.extend(stream(Leg::B, 100, 240));
    for (n, sent) in packets
        .iter_mut()
        .enumerate()
        .filter(|(_, sent)| sent.seq != 0)
    {
        sent.arrival_us += (n as u64 * 7_919) % 15_000;
    }
    let mut aligner = Aligner::default();
    let frames = run(&mut aligner, &by_arrival(packets));
    assert_eq!(frames.len(), 24_000);
    for (at, frame) in frames.iter().enumerate() {
        let expected = [signal(Leg::A, at as i64), signal(Leg::B, at as i64)];
        assert_eq!(*frame, expected, "frame {at}");
    }
    assert_eq!(aligner.stats(), AlignStats::default());
}

#[test]
fn a_new_ssrc_re_anchors_on_arrival() {
    let mut packets = stream(Leg::A, 10, 160);
    for n in 0..10u16 {
        let mut sent = packet(Leg::A, 500 + n, 777_777 + u32::from(n) * 160, 160, 0);
        sent.ssrc = 99;
        sent.arrival_us = 200_000 + u64::from(n) * 20_000;
        sent.audio_at = 1600 + i64::from(n) * 160;
        packets.push(sent);
    }
    let mut aligner = Aligner::default();
    let frames = run(&mut aligner, &packets);
    let expected: Vec<i16> = (0..3200).map(|at| signal(Leg::A, at)).collect();
    assert_eq!(channel(&frames, Leg::A), expected);
    assert_eq!(aligner.stats().resyncs, 1);
}

#[test]
fn drain_respects_the_frame_limit() {
    let mut aligner = Aligner::default();
    let samples = [1i16; 160];
    for n in 0..10u16 {
        let ts = u32::from(n) * 160;
        let audio = AudioPacket {
            timestamp: ts,
            sequence: n,
            ssrc: 1,
            arrival_us: u64::from(ts) * 125,
            samples: &samples,
        };
        aligner.push(Leg::A, audio);
    }
    let mut frames = Vec::new();
    assert_eq!(aligner.drain_all(&mut frames, 100), 100);
    assert_eq!(frames.len(), 100);
    while aligner.drain_all(&mut frames, 100) > 0 {}
    assert_eq!(frames.len(), 1600);
}
