//! Tests of the telephone-event synthesizer: packet bytes, pacing, and that the crate's own
//! decoder reads back exactly the digits injected.

use super::*;
use crate::dtmf::{DtmfDecoder, DtmfEvent, EventConfig, TelephoneEvent};
use crate::rtp::RtpView;

const STREAM: InjectedStream = InjectedStream {
    payload_type: 101,
    clock_rate: 8000,
    ssrc: 0xdead_beef,
};
const ANCHOR: ClockAnchor = ClockAnchor {
    timestamp: 50_000,
    at_us: 1_000_000,
};

/// (due µs, bytes) of every packet the injector writes, driving it exactly at its due times.
fn run_to_end(injector: &mut EventInjector, first_seq: u16) -> Vec<(u64, Vec<u8>)> {
    let mut sent = Vec::new();
    let mut seq = first_seq;
    while let Some(due) = injector.due_us() {
        let mut buf = [0u8; 32];
        let len = injector.write_due(due, seq, ANCHOR, &mut buf).unwrap();
        sent.push((due, buf[..len].to_vec()));
        seq = seq.wrapping_add(1);
        assert!(sent.len() < 1000, "injector never finishes");
    }
    sent
}

fn decode(packets: &[(u64, Vec<u8>)], cfg: EventConfig) -> String {
    let mut decoder = DtmfDecoder::new(Some(cfg));
    let mut digits = String::new();
    for (at, bytes) in packets {
        let view = RtpView::parse(bytes).unwrap();
        if let Some(DtmfEvent::Started { digit, .. }) = decoder.on_packet(&view, *at) {
            digits.push(digit);
        }
    }
    digits
}

#[test]
fn digit_event_inverts_the_digit_table() {
    for code in 0..=15u8 {
        let digit = crate::dtmf::event_digit(code).unwrap();
        assert_eq!(digit_event(digit), Some(code));
    }
    assert_eq!(digit_event('a'), Some(12));
    assert_eq!(digit_event('x'), None);
}

#[test]
fn released_digits_become_paced_rfc4733_presses() {
    let mut injector = EventInjector::default();
    let tones = [(10, DEFAULT_TONE_US), (4, DEFAULT_TONE_US)];
    assert_eq!(injector.enqueue(STREAM, tones, 2_000_000), 2);
    let sent = run_to_end(&mut injector, 65_534);
    // 100 ms at 8 kHz = 800 units in 160-unit steps: 4 updates, then the end packet 3 times.
    assert_eq!(sent.len(), 14);
    assert_eq!(
        decode(
            &sent,
            EventConfig {
                payload_type: 101,
                clock_rate: 8000
            }
        ),
        "*4"
    );
    let views: Vec<RtpView<'_>> = sent
        .iter()
        .map(|(_, b)| RtpView::parse(b).unwrap())
        .collect();
    let seqs: Vec<u16> = views.iter().map(|v| v.sequence()).collect();
    assert_eq!(&seqs[..3], &[65_534, 65_535, 0], "sequence wraps");
    for (index, view) in views.iter().enumerate() {
        assert_eq!(view.payload_type(), 101);
        assert_eq!(view.ssrc(), 0xdead_beef);
        assert_eq!(
            view.marker(),
            index % 7 == 0,
            "marker on each digit's first packet"
        );
        let event = TelephoneEvent::parse(view.payload()).unwrap();
        assert_eq!(event.event, if index < 7 { 10 } else { 4 });
        assert_eq!(event.end, index % 7 >= 4);
        let expected = [160, 320, 480, 640, 800, 800, 800][index % 7];
        assert_eq!(event.duration, expected);
    }
    // Event timestamp: the anchor advanced by the elapsed time at 8 kHz, shared by the press.
    let first_ts = 50_000 + 8_000; // 1 s after the anchor
    assert!(views[..7].iter().all(|v| v.timestamp() == first_ts));
    // Pacing: 20 ms apart, then 60 ms of silence before the second digit.
    let times: Vec<u64> = sent.iter().map(|(at, _)| *at).collect();
    assert_eq!(times[0], 2_000_000);
    assert_eq!(times[6], 2_120_000);
    assert_eq!(times[7], 2_180_000);
    assert_eq!(times[13], 2_300_000);
    assert_eq!(views[7].timestamp(), first_ts + 180 * 8);
}

#[test]
fn wideband_clock_long_press_and_monotonic_event_timestamps() {
    let mut injector = EventInjector::default();
    let stream = InjectedStream {
        payload_type: 96,
        clock_rate: 48_000,
        ssrc: 1,
    };
    // 5 s is cut to 1 s; 10 ms is raised to 40 ms.
    injector.enqueue(stream, [(1, 5_000_000), (2, 10_000)], 0);
    // An anchor in the far past would date events before each other: timestamps stay ordered.
    let sent = run_to_end(&mut injector, 0);
    let views: Vec<RtpView<'_>> = sent
        .iter()
        .map(|(_, b)| RtpView::parse(b).unwrap())
        .collect();
    let last_of_first = TelephoneEvent::parse(views[49 + 2].payload()).unwrap();
    assert_eq!((last_of_first.duration, last_of_first.end), (48_000, true));
    let second = &views[52..];
    assert_eq!(
        second.len(),
        1 + 3,
        "40 ms in 20 ms steps: 1 update and 3 end copies"
    );
    let second_first = TelephoneEvent::parse(second[0].payload()).unwrap();
    assert_eq!((second_first.event, second_first.duration), (2, 960));
    let gap = second[0].timestamp().wrapping_sub(views[0].timestamp());
    assert!(
        gap >= 48_000,
        "second event starts after the first ends ({gap})"
    );
    assert_eq!(views[0].payload_type(), 96);
}

#[test]
fn nothing_is_written_early_into_a_short_buffer_or_beyond_the_queue() {
    let mut injector = EventInjector::default();
    let mut buf = [0u8; PACKET_LEN];
    assert_eq!(injector.write_due(0, 1, ANCHOR, &mut buf), None, "idle");
    injector.enqueue(STREAM, [(5, DEFAULT_TONE_US)], 1_000);
    assert!(!injector.is_due(999));
    assert_eq!(injector.write_due(999, 1, ANCHOR, &mut buf), None);
    assert_eq!(injector.write_due(1_000, 1, ANCHOR, &mut [0u8; 15]), None);
    assert_eq!(
        injector.write_due(1_000, 1, ANCHOR, &mut buf),
        Some(PACKET_LEN)
    );
    // Appending while busy continues after the current digit.
    let tones = std::iter::repeat_n((7, DEFAULT_TONE_US), MAX_QUEUED_DIGITS + 5);
    assert_eq!(
        injector.enqueue(STREAM, tones, 1_000),
        MAX_QUEUED_DIGITS - 1
    );
}
