//! Tests of the relay's inspector: digit reporting, and suppression (withholding, renumbering,
//! draining, late delivery) checked on the bytes the relay would send.

use super::*;
use crate::dtmf::TelephoneEvent;
use crate::media::inspect::suppress::{HOLD_LIMIT_US, TAIL_GAP_US};

const SSRC: u32 = 0x1234_5678;

fn event_packet(seq: u16, ts: u32, marker: bool, event: u8, end: bool, duration: u16) -> Vec<u8> {
    let mut p = vec![0x80, if marker { 0x80 | 101 } else { 101 }];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[event, if end { 0x80 | 10 } else { 10 }]);
    p.extend_from_slice(&duration.to_be_bytes());
    p
}

fn audio_packet(seq: u16, ts: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend(std::iter::repeat_n(0xd5, 160));
    p
}

fn config(pt: u8, binding: Option<char>) -> InspectorConfig {
    InspectorConfig {
        event_payload_type: Some((pt, 8000)),
        suppress_binding: binding,
        inband: None,
    }
}

/// (arrival µs, bytes) of one press: 4 updates 20 ms apart, then the end packet 3 times with
/// the same sequence number (a duplicate must not shift the renumbering).
fn press(seq: u16, ts: u32, at: u64, event: u8) -> Vec<(u64, Vec<u8>)> {
    let mut v: Vec<(u64, Vec<u8>)> = (0..4)
        .map(|i| {
            (
                at + i * 20_000,
                event_packet(seq + i as u16, ts, i == 0, event, false, (i * 160) as u16),
            )
        })
        .collect();
    for _ in 0..3 {
        v.push((
            at + 80_000,
            event_packet(seq + 4, ts, false, event, true, 640),
        ));
    }
    v
}

/// Feeds `packets` from `from`; returns the events and, per packet, the bytes forwarded
/// (`None` when dropped).
fn feed(
    inspector: &mut DtmfInspector,
    from: Leg,
    packets: &[(u64, Vec<u8>)],
) -> (Vec<InspectorEvent>, Vec<Option<Vec<u8>>>) {
    let mut events = Vec::new();
    let mut forwarded = Vec::new();
    for (at, packet) in packets {
        let mut bytes = packet.clone();
        let verdict = inspector.inspect(from, &mut bytes, *at, &mut |e| events.push(e));
        forwarded.push((verdict == Verdict::Forward).then_some(bytes));
    }
    (events, forwarded)
}

fn digits(events: &[InspectorEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            InspectorEvent::Digit { digit, .. } => Some(*digit),
            _ => None,
        })
        .collect()
}

fn seq_of(bytes: &[u8]) -> u16 {
    RtpView::parse(bytes).unwrap().sequence()
}

/// Every synthesized packet up to `until_us`, taken at its due time.
fn take_all(inspector: &mut DtmfInspector, until_us: u64) -> Vec<(u64, Injection, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(due) = inspector.next_injection_us().filter(|due| *due <= until_us) {
        let mut buf = [0u8; 64];
        let injection = inspector.take_injection(due, &mut buf).unwrap();
        out.push((due, injection, buf[..injection.len].to_vec()));
    }
    out
}

#[test]
fn digits_are_reported_per_leg_once_configured() {
    let mut inspector = DtmfInspector::default();
    // Not configured: nothing is a digit.
    let (events, _) = feed(&mut inspector, Leg::A, &press(1, 1000, 0, 5));
    assert!(events.is_empty());
    inspector.configure(Leg::A, config(101, None));
    let (events, forwarded) = feed(&mut inspector, Leg::A, &press(10, 2000, 1_000_000, 5));
    assert_eq!(
        events,
        vec![
            InspectorEvent::Digit {
                leg: Leg::A,
                digit: '5',
                at_us: 1_000_000
            },
            InspectorEvent::DigitEnded {
                leg: Leg::A,
                digit: '5',
                duration_ms: 80
            },
        ]
    );
    // Without suppression every packet goes on byte for byte.
    let sent: Vec<Vec<u8>> = press(10, 2000, 1_000_000, 5)
        .into_iter()
        .map(|p| p.1)
        .collect();
    assert_eq!(forwarded, sent.into_iter().map(Some).collect::<Vec<_>>());
    // The b-leg's decoder is separate and still unconfigured.
    let (events, _) = feed(&mut inspector, Leg::B, &press(20, 3000, 2_000_000, 5));
    assert!(events.is_empty());
}

#[test]
fn identical_replayed_press_counts_twice() {
    let mut inspector = DtmfInspector::default();
    inspector.configure(Leg::B, config(101, None));
    let mut packets = press(7984, 13280, 0, 2);
    packets.extend(press(7984, 13280, 500_000, 2));
    let (events, _) = feed(&mut inspector, Leg::B, &packets);
    assert_eq!(digits(&events), "22");
}

/// Audio 1..=3, then `*` (seq 4..=8), then `event` (seq 9..=13) from the a-leg; returns the
/// outcome with the time just after the second press.
fn star_then(
    inspector: &mut DtmfInspector,
    event: u8,
) -> (Vec<InspectorEvent>, Vec<Option<Vec<u8>>>) {
    let mut packets: Vec<(u64, Vec<u8>)> = (1..=3u16)
        .map(|s| (u64::from(s) * 20_000, audio_packet(s, u32::from(s) * 160)))
        .collect();
    packets.extend(press(4, 1000, 100_000, 10));
    packets.extend(press(9, 3000, 400_000, event));
    feed(inspector, Leg::A, &packets)
}

#[test]
fn binding_digit_and_code_are_withheld_and_later_media_renumbered() {
    let mut inspector = DtmfInspector::default();
    inspector.configure(Leg::A, config(101, Some('*')));
    inspector.configure(Leg::B, config(101, Some('*')));
    let (events, forwarded) = star_then(&mut inspector, 9);
    // The collector still hears both digits...
    assert_eq!(digits(&events), "*9");
    // ...but only the audio before them goes on, untouched.
    assert_eq!(
        forwarded[..3],
        [
            Some(audio_packet(1, 160)),
            Some(audio_packet(2, 320)),
            Some(audio_packet(3, 480))
        ]
    );
    assert!(forwarded[3..].iter().all(Option::is_none));
    inspector.discard_held(Leg::A);
    // The next audio continues right after seq 3; only the sequence number changed.
    let later: Vec<(u64, Vec<u8>)> = (14..=16u16)
        .map(|s| {
            (
                600_000 + u64::from(s) * 20_000,
                audio_packet(s, u32::from(s) * 160),
            )
        })
        .collect();
    let (_, forwarded) = feed(&mut inspector, Leg::A, &later);
    for ((_, original), sent) in later.iter().zip(&forwarded) {
        let sent = sent.as_ref().unwrap();
        assert_eq!(seq_of(sent), seq_of(original) - 10);
        assert_eq!(sent[..2], original[..2]);
        assert_eq!(sent[4..], original[4..]);
    }
    // The other direction never withheld anything and stays byte-identical.
    let (_, forwarded) = feed(&mut inspector, Leg::B, &[(900_000, audio_packet(77, 0))]);
    assert_eq!(forwarded, vec![Some(audio_packet(77, 0))]);
}

#[test]
fn the_press_in_progress_at_the_decision_is_drained_then_digits_pass_again() {
    let mut inspector = DtmfInspector::default();
    inspector.configure(Leg::A, config(101, Some('*')));
    let first = press(4, 1000, 100_000, 10);
    let nine = press(9, 3000, 400_000, 9);
    let (_, forwarded) = feed(&mut inspector, Leg::A, &first);
    assert!(forwarded.iter().all(Option::is_none));
    // The code matches at the first packet of `9` (early decision): its tail must not leak.
    let (events, forwarded) = feed(&mut inspector, Leg::A, &nine[..1]);
    assert_eq!(digits(&events), "9");
    assert!(forwarded[0].is_none());
    inspector.discard_held(Leg::A);
    let (_, forwarded) = feed(&mut inspector, Leg::A, &nine[1..]);
    assert!(
        forwarded.iter().all(Option::is_none),
        "tail of the code leaked"
    );
    // A later ordinary digit reaches the other leg, renumbered by the 10 withheld sequence
    // numbers (the repeated end packets share one).
    let five = press(14, 5000, 1_000_000, 5);
    let (events, forwarded) = feed(&mut inspector, Leg::A, &five);
    assert_eq!(digits(&events), "5");
    let seqs: Vec<u16> = forwarded
        .iter()
        .map(|p| seq_of(p.as_ref().unwrap()))
        .collect();
    assert_eq!(seqs, vec![4, 5, 6, 7, 8, 8, 8]);
    // A pause longer than the tail gap also ends draining, even for an undecodable event.
    inspector.configure(Leg::A, config(101, Some('*')));
    inspector.discard_held(Leg::A);
    let fax = event_packet(21, 9000, true, 32, false, 0);
    let (_, forwarded) = feed(
        &mut inspector,
        Leg::A,
        &[(1_080_000 + TAIL_GAP_US + 1, fax)],
    );
    assert!(forwarded[0].is_some());
}

#[test]
fn released_digits_are_injected_in_the_stream_and_sequence_stays_gap_free() {
    let mut inspector = DtmfInspector::default();
    inspector.configure(Leg::A, config(101, Some('*')));
    // The receiving leg negotiated telephone-event on 96: injected packets use it.
    inspector.configure(Leg::B, config(96, None));
    let (events, forwarded) = star_then(&mut inspector, 4);
    assert_eq!(digits(&events), "*4");
    assert_eq!(forwarded.iter().flatten().count(), 3);
    inspector.release_held(Leg::A, "*4", 600_000);
    let injected = take_all(&mut inspector, 10_000_000);
    assert!(
        injected
            .iter()
            .all(|(_, inj, _)| inj.from == Leg::A && inj.len == 16)
    );
    // Seq continues after the last forwarded packet (3), with no gap.
    let seqs: Vec<u16> = injected.iter().map(|(_, _, b)| seq_of(b)).collect();
    assert_eq!(seqs, (4..4 + seqs.len() as u16).collect::<Vec<_>>());
    // The receiver's decoder reads exactly the released digits, with the sender's SSRC.
    let mut decoder = DtmfDecoder::new(Some(EventConfig {
        payload_type: 96,
        clock_rate: 8000,
    }));
    let mut decoded = String::new();
    for (at, _, bytes) in &injected {
        let view = RtpView::parse(bytes).unwrap();
        assert_eq!(view.ssrc(), SSRC);
        if let Some(DtmfEvent::Started { digit, .. }) = decoder.on_packet(&view, *at) {
            decoded.push(digit);
        }
    }
    assert_eq!(decoded, "*4");
    // The original press lengths (80 ms) are kept: end packets report 640 units.
    let last = TelephoneEvent::parse(
        RtpView::parse(&injected.last().unwrap().2)
            .unwrap()
            .payload(),
    );
    assert_eq!(last.map(|e| (e.end, e.duration)), Some((true, 640)));
    // The event timestamp follows the audio clock: 480 at 60 ms, +540 ms at 8 kHz.
    let first_ts = RtpView::parse(&injected[0].2).unwrap().timestamp();
    assert_eq!(first_ts, 480 + 540 * 8);
    // Audio after the injection continues the renumbered sequence.
    let (_, forwarded) = feed(
        &mut inspector,
        Leg::A,
        &[(2_000_000, audio_packet(14, 4000))],
    );
    let next = seq_of(forwarded[0].as_ref().unwrap());
    assert_eq!(next, seqs.last().unwrap() + 1);
}

#[test]
fn injected_payload_type_falls_back_to_the_senders_and_needs_one() {
    let mut inspector = DtmfInspector::default();
    // Nothing negotiated: nothing can be delivered.
    inspector.release_held(Leg::B, "1", 0);
    assert_eq!(inspector.next_injection_us(), None);
    inspector.configure(Leg::B, config(98, Some('#')));
    inspector.release_held(Leg::B, "1x", 5);
    assert_eq!(inspector.next_injection_us(), Some(5));
    let injected = take_all(&mut inspector, 1_000_000);
    assert_eq!(
        injected.len(),
        4 + 3,
        "one default 100 ms digit; 'x' skipped"
    );
    let view = RtpView::parse(&injected[0].2).unwrap();
    assert_eq!((view.payload_type(), view.marker()), (98, true));
    assert!(injected.iter().all(|(_, inj, _)| inj.from == Leg::B));
    assert!(
        inspector
            .take_injection(2_000_000, &mut [0u8; 64])
            .is_none()
    );
}

#[test]
fn an_undecided_hold_expires_and_no_binding_never_holds() {
    let mut inspector = DtmfInspector::default();
    inspector.configure(Leg::A, config(101, Some('*')));
    let (_, forwarded) = feed(&mut inspector, Leg::A, &press(4, 1000, 0, 10));
    assert!(forwarded.iter().all(Option::is_none));
    let mut events = Vec::new();
    inspector.on_tick(80_000 + HOLD_LIMIT_US + 1, &mut |e| events.push(e));
    let later = 80_000 + HOLD_LIMIT_US + TAIL_GAP_US + 10;
    let (_, forwarded) = feed(&mut inspector, Leg::A, &press(9, 3000, later, 1));
    assert!(forwarded.iter().all(Option::is_some), "leg stayed muted");

    // Clearing the binding digit stops a hold at once (after its press drains).
    inspector.configure(Leg::B, config(101, Some('*')));
    let (_, forwarded) = feed(&mut inspector, Leg::B, &press(4, 1000, 0, 10));
    assert!(forwarded.iter().all(Option::is_none));
    inspector.configure(Leg::B, config(101, None));
    let (_, forwarded) = feed(&mut inspector, Leg::B, &press(9, 3000, 500_000, 10));
    assert!(forwarded.iter().all(Option::is_some));
}

#[test]
fn inspectors_from_the_same_seed_are_the_same() {
    let render = |seed| {
        format!(
            "{:?}",
            DtmfInspector::with_rng(&mut fastrand::Rng::with_seed(seed))
        )
    };
    assert_eq!(render(42), render(42));
    assert_ne!(render(42), render(43));
}

/// 20 ms PCMA packets (payload type 8) of the DTMF pair `low`+`high` Hz for `ms`, or silence
/// when `low` is 0, starting at sequence `seq`, timestamp `ts`, arrival `at`.
fn pcma_tone(seq: u16, ts: u32, at: u64, (low, high): (f64, f64), ms: u32) -> Vec<(u64, Vec<u8>)> {
    use crate::audio::g711::Law;
    (0..ms / 20)
        .map(|i| {
            let mut p = vec![0x80, 8];
            p.extend_from_slice(&(seq + i as u16).to_be_bytes());
            p.extend_from_slice(&(ts + i * 160).to_be_bytes());
            p.extend_from_slice(&SSRC.to_be_bytes());
            p.extend((0..160).map(|n| {
                let t = f64::from(i * 160 + n) / 8000.0;
                let v = 5000.0 * (std::f64::consts::TAU * low * t).sin()
                    + 5000.0 * (std::f64::consts::TAU * high * t).sin();
                Law::A.encode(v as i16)
            }));
            (at + u64::from(i) * 20_000, p)
        })
        .collect()
}

/// Tones in a leg's audio are digits when the metaflow asks for in-band detection; with
/// suppression, from the binding tone's recognition on, tone packets go on as silence.
#[test]
fn tones_in_the_audio_are_digits_and_a_code_goes_on_as_silence() {
    use crate::audio::g711::Law;
    const STAR: (f64, f64) = (941.0, 1209.0);
    const FIVE: (f64, f64) = (770.0, 1336.0);
    const QUIET: (f64, f64) = (0.0, 0.0);
    let mut inspector = DtmfInspector::default();
    inspector.configure(
        Leg::A,
        InspectorConfig {
            event_payload_type: None,
            suppress_binding: Some('*'),
            inband: Some(crate::media::playout::G711Map::default()),
        },
    );
    let mut packets = pcma_tone(1, 0, 0, QUIET, 200);
    packets.extend(pcma_tone(11, 1600, 200_000, STAR, 120));
    packets.extend(pcma_tone(17, 2560, 320_000, QUIET, 100));
    packets.extend(pcma_tone(22, 3360, 420_000, FIVE, 120));
    packets.extend(pcma_tone(28, 4320, 540_000, QUIET, 100));
    let (events, forwarded) = feed(&mut inspector, Leg::A, &packets);
    let found: String = events
        .iter()
        .filter_map(|e| match e {
            InspectorEvent::InbandDigit { digit, .. } => Some(*digit),
            _ => None,
        })
        .collect();
    assert_eq!(found, "*5");
    let silent = |bytes: &Option<Vec<u8>>| {
        bytes
            .as_ref()
            .is_some_and(|b| b[12..].iter().all(|&c| c == Law::A.silence()))
    };
    assert!(
        forwarded.iter().all(Option::is_some),
        "audio is never dropped"
    );
    // Packets: 10 quiet, 6 of `*` (10..16), 5 quiet, 6 of `5` (21..27), 5 quiet.
    // The `5` is part of the code: none of its tone reaches the other leg.
    assert!(forwarded[21..27].iter().all(silent), "the 5 leaked");
    // The binding tone leaks until it is recognised, then goes on as silence.
    assert!(
        !silent(&forwarded[10]),
        "the first packet of * cannot be known yet"
    );
    assert!(
        silent(&forwarded[15]),
        "the * still sounded after its recognition"
    );
}
