//! Replays the reference captures through the analysis and checks every digit against the
//! ground truth in testdata/pcaps/README.md, plus robustness properties on arbitrary bytes.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use metaflow_proxy::capture::{AnalyzeOptions, AnalyzeReport, FrameReader, UdpDatagrams, analyze};
use metaflow_proxy::dtmf::{DtmfDecoder, EventConfig, TelephoneEvent};
use metaflow_proxy::rtp::RtpView;
use proptest::prelude::*;

const PCAPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/pcaps");
const SIPP_PCAPS: &str = "/usr/share/sip-tester";

fn load(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "reference capture {} is missing ({e}); it is required by this test",
            path.display()
        )
    })
}

fn analyze_file(path: &Path) -> AnalyzeReport {
    analyze(&load(path), &AnalyzeOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Expected press on one stream: digit and duration in ms (None when the README gives none).
struct Expected<'a> {
    source: &'a str,
    ssrc: u32,
    digits: &'a str,
    durations_ms: Option<&'a [u32]>,
    /// One packet's duration step in ms: the allowed error.
    step_ms: u32,
    clock_rate: u32,
}

fn check(report: &AnalyzeReport, name: &str, expected: &[Expected<'_>]) {
    let text = report.render_text();
    for exp in expected {
        let src: SocketAddr = exp.source.parse().unwrap();
        let digits: Vec<_> = report
            .digits()
            .iter()
            .filter(|d| d.stream.src == src && d.stream.ssrc == exp.ssrc)
            .collect();
        let got: String = digits.iter().map(|d| d.digit).collect();
        assert_eq!(
            got, exp.digits,
            "{name}: digits of {} (report:\n{text})",
            exp.source
        );
        for d in &digits {
            assert_eq!(d.clock_rate, exp.clock_rate, "{name}: clock rate\n{text}");
        }
        if let Some(durations) = exp.durations_ms {
            for (d, want) in digits.iter().zip(durations) {
                assert!(
                    d.duration_ms.abs_diff(*want) <= exp.step_ms,
                    "{name}: digit {} lasted {} ms, expected {want} ms\n{text}",
                    d.digit,
                    d.duration_ms
                );
            }
        }
    }
    let total: usize = expected.iter().map(|e| e.digits.chars().count()).sum();
    assert_eq!(
        report.digits().len(),
        total,
        "{name}: digits on unexpected streams\n{text}"
    );
}

fn units_to_ms(units: &[u32], rate: u32) -> Vec<u32> {
    units.iter().map(|u| u * 1000 / rate).collect()
}

#[test]
fn sip_dtmf2_delayed_offer_hairpin() {
    let report = analyze_file(&Path::new(PCAPS).join("SIP_DTMF2.cap"));
    check(
        &report,
        "SIP_DTMF2",
        &[Expected {
            source: "192.168.105.172:4376",
            ssrc: 0x5711_bf84,
            digits: "6789123",
            durations_ms: Some(&[120; 7]),
            step_ms: 30,
            clock_rate: 8000,
        }],
    );
    let starts: Vec<f64> = report.digits().iter().map(|d| d.time_s).collect();
    let readme = [81.529, 83.059, 83.539, 83.989, 84.589, 85.099, 85.669];
    for (got, want) in starts.iter().zip(readme) {
        assert!((got - want).abs() < 0.002, "start {got} vs {want}");
    }
}

#[test]
fn sipp_speex_long_press_and_10ms_updates() {
    let report = analyze_file(&Path::new(PCAPS).join("sipp_uac_Media_DTMF_Speex.pcap"));
    let durations = units_to_ms(&[3280, 2960, 3600, 11360, 2880, 3120], 8000);
    check(
        &report,
        "Speex",
        &[Expected {
            source: "213.64.235.116:28832",
            ssrc: 0x4219_70fe,
            digits: "98765#",
            durations_ms: Some(&durations),
            step_ms: 10,
            clock_rate: 8000,
        }],
    );
}

#[test]
fn fax_call_has_no_digits() {
    let report =
        analyze_file(&Path::new(PCAPS).join("FAX-Call-t38-CA-TDM-SIP-FB-1.ndpi-trimmed.pcap"));
    assert!(report.digits().is_empty(), "{}", report.render_text());
    assert!(
        !report.streams.is_empty(),
        "the capture's RTP streams are found"
    );
}

#[test]
fn rtpproxy_two_streams() {
    let report = analyze_file(&Path::new(PCAPS).join("rtp-only/rtpproxy-catch_dtmf.pcap"));
    let a = units_to_ms(
        &[
            960, 1120, 1040, 960, 1040, 1040, 880, 960, 1040, 960, 880, 880, 3440,
        ],
        8000,
    );
    let b = units_to_ms(&[1600, 960, 800, 800, 640, 480], 8000);
    check(
        &report,
        "rtpproxy",
        &[
            Expected {
                source: "10.10.0.82:19438",
                ssrc: 0x37ed_87f3,
                digits: "123456789*0#5",
                durations_ms: Some(&a),
                step_ms: 20,
                clock_rate: 8000,
            },
            Expected {
                source: "10.10.0.84:56890",
                ssrc: 0xee69_3e61,
                digits: "54321#",
                durations_ms: Some(&b),
                step_ms: 20,
                clock_rate: 8000,
            },
        ],
    );
}

#[test]
fn asterisk_broken_dtmf_out_of_order_end() {
    let report = analyze_file(&Path::new(PCAPS).join("rtp-only/asterisk-broken_dtmf.pcap"));
    let src = "216.135.82.202:10122";
    let ssrc = report.digits().first().map_or(0, |d| d.stream.ssrc);
    check(
        &report,
        "broken_dtmf",
        &[Expected {
            source: src,
            ssrc,
            digits: "1000",
            durations_ms: None,
            step_ms: 20,
            clock_rate: 8000,
        }],
    );
}

#[test]
fn asterisk_noend_times_out() {
    let report = analyze_file(&Path::new(PCAPS).join("rtp-only/asterisk-dtmf_2833_1_noend.pcap"));
    check(
        &report,
        "noend",
        &[Expected {
            source: "192.168.0.3:49176",
            ssrc: 0x0e05_384e,
            digits: "1",
            durations_ms: Some(&[240]),
            step_ms: 40,
            clock_rate: 8000,
        }],
    );
    assert!(report.digits().iter().all(|d| d.timed_out));
}

#[test]
fn asterisk_opus_48k_event_clock() {
    let report = analyze_file(&Path::new(PCAPS).join("rtp-only/asterisk-opus-2013785496.pcap"));
    check(
        &report,
        "opus",
        &[Expected {
            source: "10.0.0.51:4002",
            ssrc: 0x1c2c_77ca,
            digits: "2013785496",
            durations_ms: Some(&[33; 10]),
            step_ms: 20,
            clock_rate: 48000,
        }],
    );
    let readme = [1.14, 1.78, 2.64, 3.82, 4.44, 5.78, 7.32, 8.66, 10.11, 10.58];
    for (d, want) in report.digits().iter().zip(readme) {
        assert!(
            (d.time_s - want).abs() < 0.01,
            "{} at {} vs {want}",
            d.digit,
            d.time_s
        );
    }
}

fn sipp_file(digit: &str) -> PathBuf {
    Path::new(SIPP_PCAPS).join(format!("dtmf_2833_{digit}.pcap"))
}

#[test]
fn sipp_stock_pcaps_one_digit_280ms_each() {
    let names = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "star", "pound",
    ];
    for (name, digit) in names.iter().zip("0123456789*#".chars()) {
        let report = analyze_file(&sipp_file(name));
        let digits = report.digits();
        assert_eq!(digits.len(), 1, "{name}: {}", report.render_text());
        assert_eq!(
            (digits[0].digit, digits[0].duration_ms),
            (digit, 280),
            "{name}"
        );
        assert_eq!(digits[0].payload_type, 101);
    }
    let audio = analyze_file(&Path::new(SIPP_PCAPS).join("g711a.pcap"));
    assert!(audio.digits().is_empty());
    assert_eq!(audio.streams.len(), 1);
    assert_eq!(audio.streams[0].packets, 236);
}

/// Concatenates classic little-endian µs pcaps, shifting each file to start `gap_us` after
/// the previous one's last packet: what SIPp sends when it plays them one after the other.
fn concatenate(files: &[Vec<u8>], gap_us: u64) -> Vec<u8> {
    let mut out = files[0][..24].to_vec();
    let mut next_start = 1_000_000_000u64 * 1_000_000;
    for file in files {
        assert_eq!(&file[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "expected LE µs pcap");
        let mut pos = 24;
        let mut first_ts = None;
        let mut last = next_start;
        while pos + 16 <= file.len() {
            let field = |at: usize| u32::from_le_bytes(file[at..at + 4].try_into().unwrap());
            let ts = u64::from(field(pos)) * 1_000_000 + u64::from(field(pos + 4));
            let len = field(pos + 8) as usize;
            let base = *first_ts.get_or_insert(ts);
            let shifted = next_start + (ts - base);
            last = shifted;
            out.extend_from_slice(&((shifted / 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&((shifted % 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&file[pos + 8..pos + 16 + len]);
            pos += 16 + len;
        }
        next_start = last + gap_us;
    }
    out
}

#[test]
fn sipp_replay_of_star_2_2_5_counts_repeated_digit_twice() {
    let files: Vec<Vec<u8>> = ["star", "2", "2", "5"]
        .iter()
        .map(|n| load(&sipp_file(n)))
        .collect();
    for gap_us in [150_000, 400_000, 1_000_000] {
        let capture = concatenate(&files, gap_us);
        let report = analyze(&capture, &AnalyzeOptions::default()).unwrap();
        let digits: String = report.digits().iter().map(|d| d.digit).collect();
        assert_eq!(digits, "*225", "gap {gap_us} µs:\n{}", report.render_text());
    }
}

#[test]
fn forced_payload_type_overrides_inference() {
    let capture = load(&Path::new(PCAPS).join("rtp-only/asterisk-opus-2013785496.pcap"));
    let forced = AnalyzeOptions {
        event_pt: Some((101, Some(8000))),
    };
    let report = analyze(&capture, &forced).unwrap();
    assert_eq!(report.digits().len(), 10);
    assert!(
        report.digits().iter().all(|d| d.duration_ms == 200),
        "8 kHz misreads 1600 as 200 ms"
    );
    let json = report.render_json_lines();
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "digit");
    assert_eq!(first["digit"], "2");
    assert_eq!(
        first["stream"],
        "10.0.0.51:4002->10.0.0.45:12906 ssrc=0x1c2c77ca"
    );
    assert_eq!(first["payload_type"], 101);
    assert_eq!(first["source"], "rtp");
    assert_eq!(first["sender"], "10.0.0.51:4002");
    assert!(first["time"].as_f64().unwrap() > 1.1);
}

#[test]
fn garbage_and_truncated_files_give_errors_not_panics() {
    assert!(analyze(b"not a capture at all", &AnalyzeOptions::default()).is_err());
    let full = load(&Path::new(PCAPS).join("rtp-only/asterisk-broken_dtmf.pcap"));
    let cut = &full[..full.len() - 7];
    let report = analyze(cut, &AnalyzeOptions::default()).unwrap();
    assert_eq!(
        report.warnings.len(),
        1,
        "truncated last record is reported"
    );
    assert_eq!(
        report.digits().len(),
        4,
        "digits before the damage still count"
    );
}

proptest! {
    #[test]
    fn no_bytes_panic_the_rtp_and_event_parsers(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut decoder = DtmfDecoder::new(Some(EventConfig { payload_type: 101, clock_rate: 8000 }));
        let _ = TelephoneEvent::parse(&bytes);
        if let Ok(pkt) = RtpView::parse(&bytes) {
            prop_assert!(pkt.header_len() + pkt.payload().len() <= bytes.len());
            let _ = decoder.on_packet(&pkt, 1_000);
            let _ = decoder.on_timeout(u64::MAX);
        }
    }

    #[test]
    fn no_packet_sequence_panics_the_decoder(
        packets in proptest::collection::vec((any::<[u8; 4]>(), 0u16..4, 0u32..3, any::<bool>(), 0u64..400_000), 0..40)
    ) {
        let mut decoder = DtmfDecoder::new(Some(EventConfig { payload_type: 101, clock_rate: 8000 }));
        let mut now = 0u64;
        let (mut started, mut ended) = (0, 0);
        for (payload, seq, ts, marker, dt) in packets {
            now += dt;
            let mut bytes = vec![0x80, 101 | if marker { 0x80 } else { 0 }, 0, seq as u8, 0, 0, 0, ts as u8, 0, 0, 0, 1];
            bytes.extend_from_slice(&payload);
            let pkt = RtpView::parse(&bytes).unwrap();
            for ev in decoder.on_packet(&pkt, now).into_iter().chain(std::iter::from_fn(|| {
                decoder.poll_timeout().filter(|d| *d <= now).and_then(|d| decoder.on_timeout(d))
            })) {
                match ev {
                    metaflow_proxy::dtmf::DtmfEvent::Started { .. } => started += 1,
                    metaflow_proxy::dtmf::DtmfEvent::Ended { .. } => ended += 1,
                }
                prop_assert!(ended <= started && started <= ended + 1, "presses stay paired");
            }
        }
    }

    #[test]
    fn no_bytes_panic_the_capture_reader(
        header in prop_oneof![
            Just(vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0]),
            Just(vec![0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 113]),
            Just(vec![0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0]),
            Just(Vec::new()),
        ],
        body in proptest::collection::vec(any::<u8>(), 0..512)
    ) {
        let mut bytes = header;
        bytes.extend_from_slice(&body);
        if let Ok(frames) = FrameReader::new(&bytes) {
            for _ in frames.take(1000) {}
        }
        if let Ok(datagrams) = UdpDatagrams::new(&bytes) {
            for _ in datagrams.take(1000) {}
        }
        let _ = analyze(&bytes, &AnalyzeOptions::default());
    }
}
