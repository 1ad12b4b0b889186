use super::*;
use crate::audio::g711::Law;

const PCMU: u8 = 0;

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn header(p: &[u8]) -> (bool, u8, u16, u32, u32) {
    (
        p[1] & 0x80 != 0,
        p[1] & 0x7f,
        u16::from_be_bytes([p[2], p[3]]),
        u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
    )
}

fn format() -> PlayFormat {
    PlayFormat {
        map: G711Map::default(),
        preferred: Some(PCMU),
        ptime_ms: 20,
    }
}

fn playback(id: u64, samples: Vec<i16>, looped: bool, mix: bool) -> Playback {
    Playback {
        id,
        clip: Clip::new(samples),
        looped,
        mix,
        format: format(),
    }
}

/// Relays `n` 20 ms PCMU packets starting at sequence `seq0`, time `t0_us`; returns them as
/// forwarded (or `None` when dropped).
fn relay_run(out: &mut Outbound, seq0: u16, t0_us: u64, n: u16) -> Vec<Option<Vec<u8>>> {
    (0..n)
        .map(|i| {
            let seq = seq0.wrapping_add(i);
            let mut p = rtp(PCMU, seq, u32::from(seq) * 160, 0xAAAA, &[0xFF; 160]);
            let now = t0_us + u64::from(i) * 20_000;
            (out.on_relayed(&mut p, now) == Verdict::Forward).then_some(p)
        })
        .collect()
}

#[test]
fn a_direction_that_plays_nothing_forwards_packets_unchanged() {
    let mut out = Outbound::new(7);
    let mut p = rtp(PCMU, 10, 1600, 0xAAAA, &[0x12; 160]);
    let before = p.clone();
    assert_eq!(out.on_relayed(&mut p, 0), Verdict::Forward);
    assert_eq!(p, before);
    assert_eq!(out.next_due_us(), None);
}

#[test]
fn a_sound_replaces_the_relayed_audio_and_continues_its_stream_both_ways() {
    let mut out = Outbound::new(7);
    let sent = relay_run(&mut out, 100, 0, 5);
    assert!(sent.iter().all(Option::is_some));
    // 5 packets relayed (seq 100..=104, last at 80 ms); a 50 ms sound starts at 100 ms.
    let tone: Vec<i16> = (0..400)
        .map(|n| if n % 2 == 0 { 4000 } else { -4000 })
        .collect();
    assert_eq!(out.play(playback(1, tone, false, false), 100_000), None);
    let mut own = Vec::new();
    let mut buf = [0u8; PACKET_BUFFER_LEN];
    for step in 0..3u64 {
        let now = 100_000 + step * 20_000;
        // Relayed audio arriving meanwhile is replaced.
        let mut p = rtp(PCMU, 105 + step as u16, 0, 0xAAAA, &[0xFF; 160]);
        assert_eq!(out.on_relayed(&mut p, now), Verdict::Drop);
        if let Some(len) = out.poll_packet(now, &mut buf) {
            own.push(buf[..len].to_vec());
        }
    }
    assert_eq!(own.len(), 3, "50 ms is three 20 ms packets");
    let heads: Vec<_> = own.iter().map(|p| header(p)).collect();
    assert_eq!(heads[0], (true, PCMU, 105, 104 * 160 + 160, 0xAAAA));
    assert_eq!(heads[1].2, 106);
    assert_eq!(heads[2].3, heads[1].3 + 160);
    assert!(
        own[0][12..].iter().any(|&b| b != 0xFF),
        "the sound is in the payload"
    );
    assert_eq!(out.take_ended(), Some((1, PlaybackEnd::Finished)));
    // Relayed audio resumes (two of its packets lost on the way): same SSRC, the next sequence
    // number, a later timestamp, marker.
    let mut p = rtp(PCMU, 110, 110 * 160, 0xAAAA, &[0xFF; 160]);
    assert_eq!(out.on_relayed(&mut p, 180_000), Verdict::Forward);
    let (marker, _, seq, ts, ssrc) = header(&p);
    assert!(marker);
    assert_eq!((seq, ssrc), (108, 0xAAAA));
    assert!(ts > heads[2].3);
    let mut p = rtp(PCMU, 111, 111 * 160, 0xAAAA, &[0xFF; 160]);
    out.on_relayed(&mut p, 200_000);
    assert_eq!(header(&p).2, 109);
}

#[test]
fn a_leg_that_received_nothing_gets_a_stream_in_its_preferred_codec() {
    let mut out = Outbound::new(0x1234_5678_9abc_def0);
    out.play(playback(3, vec![1000; 320], false, false), 0);
    let mut buf = [0u8; PACKET_BUFFER_LEN];
    let len = out.poll_packet(0, &mut buf).unwrap();
    assert_eq!(len, 12 + 160);
    let (marker, pt, _, _, ssrc) = header(&buf);
    assert!(marker);
    assert_eq!((pt, ssrc), (PCMU, 0x1234_5678));
    assert_eq!(
        out.poll_packet(10_000, &mut buf),
        None,
        "not due before 20 ms"
    );
    assert!(out.poll_packet(20_000, &mut buf).is_some());
    assert_eq!(out.take_ended(), Some((3, PlaybackEnd::Finished)));
}

#[test]
fn a_codec_that_cannot_be_encoded_fails_the_playback() {
    let mut out = Outbound::new(1);
    let mut p = Playback {
        format: PlayFormat {
            preferred: None,
            ..format()
        },
        ..playback(4, vec![0; 160], false, false)
    };
    p.format.ptime_ms = 20;
    out.play(p, 0);
    let mut buf = [0u8; PACKET_BUFFER_LEN];
    assert_eq!(out.poll_packet(0, &mut buf), None);
    assert!(matches!(
        out.take_ended(),
        Some((4, PlaybackEnd::Failed(_)))
    ));
}

#[test]
fn music_on_hold_loops_until_stopped() {
    let mut out = Outbound::new(1);
    out.play(playback(5, vec![500; 160], true, false), 0);
    let mut buf = [0u8; PACKET_BUFFER_LEN];
    for i in 0..50 {
        assert!(out.poll_packet(i * 20_000, &mut buf).is_some());
    }
    assert_eq!(out.take_ended(), None);
    assert_eq!(
        out.stop(Some(99)),
        None,
        "another playback's id stops nothing"
    );
    assert_eq!(out.stop(Some(5)), Some(5));
    assert_eq!(out.next_due_us(), None);
}

#[test]
fn held_directions_forward_nothing_until_released() {
    let mut out = Outbound::new(1);
    out.set_held(true);
    assert!(relay_run(&mut out, 1, 0, 3).iter().all(Option::is_none));
    out.set_held(false);
    assert!(
        relay_run(&mut out, 4, 60_000, 3)
            .iter()
            .all(Option::is_some)
    );
}

fn rms(law: Law, payload: &[u8]) -> f64 {
    let sum: f64 = payload
        .iter()
        .map(|&b| f64::from(law.decode(b)).powi(2))
        .sum();
    (sum / payload.len() as f64).sqrt()
}

#[test]
fn gain_scales_and_mute_silences_the_relayed_audio() {
    let loud: Vec<u8> = (0..160)
        .map(|n| Law::Mu.encode(((n as f32 * 0.3).sin() * 8000.0) as i16))
        .collect();
    let before = rms(Law::Mu, &loud);
    let mut out = Outbound::new(1);
    out.set_gain(Gain::from_level(-2), G711Map::default());
    let mut p = rtp(PCMU, 1, 0, 9, &loud);
    out.on_relayed(&mut p, 0);
    let ratio = rms(Law::Mu, &p[12..]) / before;
    assert!((ratio - 0.6).abs() < 0.03, "ratio {ratio}");
    out.set_gain(Gain::Mute, G711Map::default());
    let mut p = rtp(PCMU, 2, 160, 9, &loud);
    out.on_relayed(&mut p, 20_000);
    assert!(rms(Law::Mu, &p[12..]) < 10.0);
    out.set_gain(Gain::Unity, G711Map::default());
    let mut p = rtp(PCMU, 3, 320, 9, &loud);
    out.on_relayed(&mut p, 40_000);
    assert_eq!(&p[12..], &loud[..]);
}

#[test]
fn a_mixed_sound_rides_on_the_relayed_audio_and_fills_its_gaps() {
    let mut out = Outbound::new(1);
    relay_run(&mut out, 1, 0, 2);
    out.play(playback(6, vec![3000; 800], false, true), 40_000);
    let mut p = rtp(PCMU, 3, 480, 0xAAAA, &[Law::Mu.encode(1000); 160]);
    assert_eq!(out.on_relayed(&mut p, 40_000), Verdict::Forward);
    let mixed = Law::Mu.decode(p[20]);
    assert!((3800..=4200).contains(&mixed), "{mixed}");
    let mut buf = [0u8; PACKET_BUFFER_LEN];
    assert_eq!(out.poll_packet(40_000, &mut buf), None, "audio is flowing");
    // The other leg goes quiet: the sound goes on by itself.
    assert!(out.poll_packet(120_000, &mut buf).is_some());
}

#[test]
fn an_endless_clip_loops_even_when_played_once() {
    let mut out = Outbound::new(1);
    let clip = Clip::new(vec![700; 160]).endless();
    out.play(
        Playback {
            clip,
            ..playback(8, Vec::new(), false, false)
        },
        0,
    );
    let mut buf = [0u8; PACKET_BUFFER_LEN];
    for i in 0..10 {
        assert!(out.poll_packet(i * 20_000, &mut buf).is_some());
    }
    assert_eq!(out.take_ended(), None);
}

#[test]
fn released_digits_do_not_reach_a_held_leg() {
    let mut out = Outbound::new(1);
    let mut event = rtp(101, 5, 800, 0xAAAA, &[1, 10, 0, 160]);
    assert_eq!(out.on_injected(&mut event, 0), Verdict::Forward);
    out.set_held(true);
    assert_eq!(out.on_injected(&mut event, 20_000), Verdict::Drop);
}

#[test]
fn an_end_stays_until_it_is_reported() {
    let mut out = Outbound::new(1);
    let mut buf = [0u8; PACKET_BUFFER_LEN];
    out.play(playback(1, vec![0; 160], false, false), 0);
    out.poll_packet(0, &mut buf);
    out.play(playback(2, vec![0; 160], false, false), 20_000);
    out.poll_packet(20_000, &mut buf);
    // The relay could not report yet: both ends wait, oldest first.
    assert_eq!(out.next_ended(), Some((1, PlaybackEnd::Finished)));
    assert_eq!(
        out.next_ended(),
        Some((1, PlaybackEnd::Finished)),
        "still there"
    );
    out.ended_sent();
    assert_eq!(out.take_ended(), Some((2, PlaybackEnd::Finished)));
    assert_eq!(out.next_ended(), None);
}

/// The kernel may forward a direction that never heard a sound as is, none while the sound
/// plays or its packets were the last sent, and again once relayed audio resumed here, with
/// the shift that continues the sound's stream (what this direction itself applies).
#[test]
fn the_kernel_gets_the_direction_back_with_the_shift_once_audio_resumed() {
    let mut out = Outbound::new(7);
    relay_run(&mut out, 100, 0, 5);
    assert_eq!(out.kernel_shift(), Some(None), "untouched");
    out.play(playback(1, vec![0; 160], false, false), 100_000);
    assert_eq!(out.kernel_shift(), None, "a sound plays");
    let mut buf = [0u8; PACKET_BUFFER_LEN];
    assert!(out.poll_packet(100_000, &mut buf).is_some());
    assert!(out.take_ended().is_some());
    assert_eq!(
        out.kernel_shift(),
        None,
        "the sound's packet is the last sent"
    );
    let mut p = rtp(PCMU, 110, 110 * 160, 0xAAAA, &[0xFF; 160]);
    assert_eq!(out.on_relayed(&mut p, 140_000), Verdict::Forward);
    let shift = out.kernel_shift().flatten().expect("a settled shift");
    assert_eq!(shift.from_ssrc, 0xAAAA);
    let (_, _, seq, ts, ssrc) = header(&p);
    assert_eq!(
        (
            110u16.wrapping_add(shift.seq),
            (110u32 * 160).wrapping_add(shift.ts),
            shift.ssrc
        ),
        (seq, ts, ssrc),
        "the kernel would write what this direction wrote"
    );
}
