//! Decoder tests replaying the exact telephone-event packets of the reference captures
//! (header fields and arrival times as listed by tshark; see testdata/pcaps/README.md).

use super::*;

/// (arrival µs, seq, timestamp, marker, event, end, volume, duration) of one packet.
type Pkt = (u64, u16, u32, bool, u8, bool, u8, u16);

fn packet_bytes(ssrc: u32, pt: u8, p: &Pkt) -> [u8; 16] {
    let (_, seq, ts, marker, event, end, volume, duration) = *p;
    let mut b = [0u8; 16];
    b[0] = 0x80;
    b[1] = pt | if marker { 0x80 } else { 0 };
    b[2..4].copy_from_slice(&seq.to_be_bytes());
    b[4..8].copy_from_slice(&ts.to_be_bytes());
    b[8..12].copy_from_slice(&ssrc.to_be_bytes());
    b[12] = event;
    b[13] = volume | if end { 0x80 } else { 0 };
    b[14..16].copy_from_slice(&duration.to_be_bytes());
    b
}

/// Drives the decoder like a real-time caller: due timers fire before each packet and after it.
fn run(dec: &mut DtmfDecoder, ssrc: u32, pt: u8, pkts: &[Pkt], until_us: u64) -> Vec<DtmfEvent> {
    let mut out = Vec::new();
    let fire = |dec: &mut DtmfDecoder, now: u64, out: &mut Vec<DtmfEvent>| {
        while let Some(due) = dec.poll_timeout().filter(|d| *d <= now) {
            match dec.on_timeout(due) {
                Some(ev) => out.push(ev),
                None => break,
            }
        }
    };
    for p in pkts {
        fire(dec, p.0, &mut out);
        let bytes = packet_bytes(ssrc, pt, p);
        let view = RtpView::parse(&bytes).unwrap();
        out.extend(dec.on_packet(&view, p.0));
        fire(dec, p.0, &mut out);
    }
    fire(dec, until_us, &mut out);
    out
}

/// Checks strict Started/Ended pairing and returns (digit, duration ms, timed out) per press.
fn presses(events: &[DtmfEvent]) -> Vec<(char, u32, bool)> {
    assert_eq!(events.len() % 2, 0, "unpaired events: {events:?}");
    events
        .chunks(2)
        .map(|pair| match (pair[0], pair[1]) {
            (
                DtmfEvent::Started {
                    digit: d1,
                    rtp_timestamp: t1,
                    ..
                },
                DtmfEvent::Ended {
                    digit: d2,
                    rtp_timestamp: t2,
                    duration_ms,
                    timed_out,
                    ..
                },
            ) => {
                assert_eq!((d1, t1), (d2, t2), "pair mismatch: {pair:?}");
                (d1, duration_ms, timed_out)
            }
            other => panic!("expected Started then Ended, got {other:?}"),
        })
        .collect()
}

fn cfg(pt: u8, rate: u32) -> Option<EventConfig> {
    Some(EventConfig {
        payload_type: pt,
        clock_rate: rate,
    })
}

/// Seconds-with-µs helper for arrival times copied from tshark.
const fn us(t: f64) -> u64 {
    (t * 1_000_000.0) as u64
}

/// SIPp dtmf_2833_2.pcap: 8 updates 20 ms apart, end sent 3x with the same seq.
fn sipp_digit_2(offset_us: u64) -> Vec<Pkt> {
    let mut v: Vec<Pkt> = (0..8u16)
        .map(|i| {
            (
                offset_us + u64::from(i) * 20_000,
                8042 + i,
                23200,
                i == 0,
                2,
                false,
                10,
                i * 320,
            )
        })
        .collect();
    for extra_us in [139_815, 139_892, 139_902] {
        v.push((offset_us + extra_us, 8049, 23200, false, 2, true, 10, 2240));
    }
    v
}

#[test]
fn sip_dtmf2_single_end_packet_30ms_steps() {
    let pkts: [Pkt; 5] = [
        (us(81.528601), 62676, 3931130841, true, 6, false, 7, 0),
        (us(81.558587), 62677, 3931130841, false, 6, false, 7, 240),
        (us(81.588601), 62678, 3931130841, false, 6, false, 7, 480),
        (us(81.618622), 62679, 3931130841, false, 6, false, 7, 720),
        (us(81.648600), 62680, 3931130841, false, 6, true, 7, 960),
    ];
    let mut dec = DtmfDecoder::new(cfg(96, 8000));
    let events = run(&mut dec, 0x5711_bf84, 96, &pkts, us(90.0));
    assert!(
        matches!(events[0], DtmfEvent::Started { digit: '6', at_us, .. } if at_us == us(81.528601))
    );
    assert_eq!(presses(&events), vec![('6', 120, false)]);
}

#[test]
fn sipp_pcap_gives_280ms_and_identical_replay_counts_twice() {
    let mut dec = DtmfDecoder::new(cfg(101, 8000));
    let mut pkts = sipp_digit_2(0);
    pkts.extend(sipp_digit_2(500_000));
    let events = run(&mut dec, 0x0e05_384e, 101, &pkts, 2_000_000);
    assert_eq!(presses(&events), vec![('2', 280, false), ('2', 280, false)]);
}

#[test]
fn identical_replay_without_pause_still_counts_twice() {
    let mut dec = DtmfDecoder::new(cfg(101, 8000));
    let mut pkts = sipp_digit_2(0);
    pkts.extend(sipp_digit_2(160_000));
    let events = run(&mut dec, 0x0e05_384e, 101, &pkts, 2_000_000);
    assert_eq!(presses(&events).len(), 2);
}

#[test]
fn replay_with_lost_start_packets_counts_after_gap() {
    let mut dec = DtmfDecoder::new(cfg(101, 8000));
    let mut pkts = sipp_digit_2(0);
    pkts.extend(sipp_digit_2(400_000).into_iter().skip(2));
    let events = run(&mut dec, 0x0e05_384e, 101, &pkts, 2_000_000);
    assert_eq!(presses(&events), vec![('2', 280, false), ('2', 280, false)]);
}

#[test]
fn rtpproxy_marker_on_every_packet_and_true_duplicates() {
    // Stream A digit 1: start sent 3x (same seq), marker everywhere, end sent 3x (same seq).
    let mut pkts: Vec<Pkt> = vec![
        (0, 27137, 432586443, true, 1, false, 0, 160),
        (4_828, 27137, 432586443, true, 1, false, 0, 160),
        (14_685, 27137, 432586443, true, 1, false, 0, 160),
        (24_700, 27138, 432586443, true, 1, false, 0, 320),
        (34_864, 27139, 432586443, true, 1, false, 0, 480),
        (54_894, 27140, 432586443, true, 1, false, 0, 640),
        (79_942, 27141, 432586443, true, 1, false, 0, 800),
        (99_901, 27142, 432586443, true, 1, true, 0, 960),
        (104_910, 27142, 432586443, true, 1, true, 0, 960),
        (109_869, 27142, 432586443, true, 1, true, 0, 960),
    ];
    // Digit 2 follows 200 ms later with the same pattern.
    pkts.extend([
        (310_090, 27152, 432588843, true, 2, false, 0, 160),
        (315_065, 27152, 432588843, true, 2, false, 0, 160),
        (325_031, 27152, 432588843, true, 2, false, 0, 160),
        (330_104, 27153, 432588843, true, 2, false, 0, 320),
        (430_313, 27158, 432588843, true, 2, true, 0, 1120),
        (435_290, 27158, 432588843, true, 2, true, 0, 1120),
        (450_226, 27158, 432588843, true, 2, true, 0, 1120),
    ]);
    let mut dec = DtmfDecoder::new(cfg(101, 8000));
    let events = run(&mut dec, 0x37ed_87f3, 101, &pkts, 1_000_000);
    assert_eq!(presses(&events), vec![('1', 120, false), ('2', 140, false)]);
}

#[test]
fn rtpproxy_distinct_seq_end_copies() {
    let mut pkts: Vec<Pkt> = (0..9u16)
        .map(|i| {
            (
                5_856_309 + u64::from(i) * 20_000,
                25423 + i,
                1051100,
                i == 0,
                5,
                false,
                10,
                160 * (i + 1),
            )
        })
        .collect();
    pkts.extend([
        (6_036_670, 25432, 1051100, false, 5, true, 10, 1600),
        (6_056_326, 25433, 1051100, false, 5, true, 10, 1600),
        (6_076_271, 25434, 1051100, false, 5, true, 10, 1600),
        (6_256_374, 25443, 1054300, true, 4, false, 10, 160),
        (6_276_278, 25444, 1054300, false, 4, false, 10, 320),
    ]);
    let mut dec = DtmfDecoder::new(cfg(101, 8000));
    let events = run(&mut dec, 0xee69_3e61, 101, &pkts, 7_000_000);
    // The trailing '4' has no end packet in this excerpt: it times out at 40 ms.
    assert_eq!(presses(&events), vec![('5', 200, false), ('4', 40, true)]);
}

#[test]
fn asterisk_broken_dtmf_end_before_last_update() {
    let pkts: Vec<Pkt> = vec![
        (0, 8314, 3659342064, true, 1, false, 4, 320),
        (19_969, 8315, 3659342064, false, 1, false, 4, 480),
        (39_938, 8316, 3659342064, false, 1, false, 4, 640),
        (50_122, 8318, 3659342064, false, 1, true, 4, 720),
        (50_271, 8317, 3659342064, false, 1, false, 4, 720),
        (59_956, 8319, 3659342064, false, 1, true, 4, 720),
        (69_990, 8320, 3659342064, false, 1, true, 4, 720),
        (569_957, 8343, 3659346624, true, 0, false, 4, 320),
        (590_125, 8344, 3659346624, false, 0, false, 4, 480),
        (609_994, 8345, 3659346624, false, 0, false, 4, 640),
        (630_263, 8347, 3659346624, false, 0, true, 4, 800),
        (630_268, 8346, 3659346624, false, 0, false, 4, 800),
        (640_097, 8348, 3659346624, false, 0, true, 4, 800),
        (649_982, 8349, 3659346624, false, 0, true, 4, 800),
        (1_190_335, 8375, 3659351584, true, 0, false, 4, 320),
        (1_250_091, 8378, 3659351584, false, 0, false, 4, 800),
        (1_250_241, 8379, 3659351584, false, 0, true, 4, 800),
        (1_260_077, 8380, 3659351584, false, 0, true, 4, 800),
        (1_270_060, 8381, 3659351584, false, 0, true, 4, 800),
    ];
    let mut dec = DtmfDecoder::new(cfg(101, 8000));
    let events = run(&mut dec, 0x1234_5678, 101, &pkts, 2_000_000);
    assert_eq!(
        presses(&events),
        vec![('1', 90, false), ('0', 100, false), ('0', 100, false)]
    );
}

#[test]
fn asterisk_noend_times_out_once() {
    let pkts: Vec<Pkt> = [0u64, 19_992, 39_881, 59_911, 79_983, 99_925, 119_865]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                *t,
                7984 + i as u16,
                13280,
                i == 0,
                1,
                false,
                10,
                320 * i as u16,
            )
        })
        .collect();
    let mut dec = DtmfDecoder::new(cfg(101, 8000));
    assert_eq!(
        run(&mut dec, 0x0e05_384e, 101, &pkts[..], 119_865),
        vec![DtmfEvent::Started {
            digit: '1',
            ssrc: 0x0e05_384e,
            rtp_timestamp: 13280,
            at_us: 0
        }]
    );
    assert_eq!(dec.poll_timeout(), Some(119_865 + EVENT_TIMEOUT_US));
    let ended = dec.on_timeout(119_865 + EVENT_TIMEOUT_US).unwrap();
    assert!(matches!(
        ended,
        DtmfEvent::Ended {
            digit: '1',
            duration_ms: 240,
            timed_out: true,
            ..
        }
    ));
    assert_eq!(dec.poll_timeout(), None);
    // A late end copy of the timed-out press is absorbed.
    let late = packet_bytes(
        0x0e05_384e,
        101,
        &(400_000, 7991, 13280, false, 1, true, 10, 2240),
    );
    assert_eq!(
        dec.on_packet(&RtpView::parse(&late).unwrap(), 400_000),
        None
    );
}

#[test]
fn speex_capture_long_press_10ms_updates_lost_start() {
    // Digit 6 of sipp_uac_Media_DTMF_Speex.pcap: seq 449..=587 every 10 ms, durations
    // 240 + 80k, then 3 end packets (seq 588..=590) with 11360 at the same instant.
    let mut pkts: Vec<Pkt> = (0..139u16)
        .map(|k| {
            (
                13_490_850 + u64::from(k) * 10_000,
                449 + k,
                62418,
                k == 0,
                6,
                false,
                9,
                240 + 80 * k,
            )
        })
        .collect();
    for seq in 588..=590u16 {
        pkts.push((14_880_770, seq, 62418, false, 6, true, 9, 11360));
    }
    let mut dec = DtmfDecoder::new(cfg(98, 8000));
    let events = run(&mut dec, 0x4219_70fe, 98, &pkts, 16_000_000);
    assert_eq!(presses(&events), vec![('6', 1420, false)]);
}

#[test]
fn opus_call_uses_48k_event_clock() {
    let pkts: [Pkt; 8] = [
        (1_143_137, 6926, 55680, true, 2, false, 10, 960),
        (1_157_069, 6927, 55680, false, 2, true, 10, 1600),
        (1_177_453, 6928, 55680, false, 2, true, 10, 1600),
        (1_201_192, 6929, 55680, false, 2, true, 10, 1600),
        (1_775_842, 6958, 86080, true, 0, false, 10, 960),
        (1_796_999, 6959, 86080, false, 0, true, 10, 1600),
        (1_815_866, 6960, 86080, false, 0, true, 10, 1600),
        (1_841_687, 6961, 86080, false, 0, true, 10, 1600),
    ];
    let mut dec = DtmfDecoder::new(cfg(101, 48000));
    let events = run(&mut dec, 0x1c2c_77ca, 101, &pkts, 3_000_000);
    assert_eq!(presses(&events), vec![('2', 33, false), ('0', 33, false)]);
}

#[test]
fn fax_ans_tone_and_cisco_nse_are_not_digits() {
    let mut dec = DtmfDecoder::new(cfg(102, 8000));
    let ans: Pkt = (29_809_064, 101, 1741640081, true, 32, false, 0, 883);
    assert!(run(&mut dec, 0x0eaf_0eaf, 102, &[ans], 40_000_000).is_empty());
    let nse: Vec<Pkt> = [(39_419_619, 946), (39_439_631, 949), (39_459_591, 952)]
        .iter()
        .map(|(t, seq)| (*t, *seq, 146984, *seq == 946, 194, true, 0, 0))
        .collect();
    assert!(run(&mut dec, 0x17d9_0134, 100, &nse, 40_000_000).is_empty());
    // Even a key-shaped payload on PT 100 is ignored when PT 102 is negotiated.
    let key_on_100: Pkt = (41_000_000, 953, 150000, true, 5, true, 0, 800);
    assert!(run(&mut dec, 0x17d9_0134, 100, &[key_on_100], 42_000_000).is_empty());
}

#[test]
fn lone_end_packet_gives_one_press() {
    let mut dec = DtmfDecoder::new(cfg(101, 8000));
    let pkts: [Pkt; 2] = [
        (0, 8049, 23200, false, 2, true, 10, 2240),
        (80, 8049, 23200, false, 2, true, 10, 2240),
    ];
    assert_eq!(
        presses(&run(&mut dec, 1, 101, &pkts, 1_000_000)),
        vec![('2', 280, false)]
    );
}

#[test]
fn next_event_supersedes_press_without_end() {
    let pkts: [Pkt; 4] = [
        (0, 10, 1000, true, 3, false, 0, 0),
        (20_000, 11, 1000, false, 3, false, 0, 160),
        (40_000, 12, 2000, true, 4, false, 0, 0),
        (60_000, 13, 2000, false, 4, true, 0, 320),
    ];
    let mut dec = DtmfDecoder::new(cfg(101, 8000));
    let events = run(&mut dec, 7, 101, &pkts, 1_000_000);
    assert_eq!(presses(&events), vec![('3', 20, true), ('4', 40, false)]);
}

#[test]
fn long_event_segments_add_up() {
    // RFC 4733 §2.5.1.3: updates every 50 ms up to 64800, then a second segment starting at
    // ts + 64800 without marker, ended at 320: one press of 65120 units.
    let mut pkts: Vec<Pkt> = (0..=162u16)
        .map(|k| (u64::from(k) * 50_000, k, 5000, k == 0, 0, false, 0, 400 * k))
        .collect();
    pkts.push((8_150_000, 163, 69800, false, 0, false, 0, 160));
    pkts.push((8_170_000, 164, 69800, false, 0, true, 0, 320));
    let mut dec = DtmfDecoder::new(cfg(101, 8000));
    let events = run(&mut dec, 7, 101, &pkts, 9_000_000);
    assert_eq!(presses(&events), vec![('0', 8140, false)]);
}

#[test]
fn unconfigured_or_renegotiated_payload_type() {
    let bytes = packet_bytes(1, 101, &(0, 1, 1, true, 5, false, 0, 0));
    let view = RtpView::parse(&bytes).unwrap();
    let mut dec = DtmfDecoder::new(None);
    assert_eq!(dec.on_packet(&view, 0), None);
    dec.set_config(cfg(101, 8000));
    assert!(matches!(
        dec.on_packet(&view, 0),
        Some(DtmfEvent::Started { digit: '5', .. })
    ));
}
