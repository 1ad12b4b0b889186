//! End-to-end DTMF suppression (`"suppress_dtmf": true`): a SIPp caller dials metaflow codes with
//! RFC 4733 telephone-events through the real proxy, and tshark captures what the SIPp callee
//! receives. A matched code must never reach the callee and the audio around it must arrive
//! gap-free; an unmatched code must be delivered late as fresh events in the caller's stream;
//! without the option the events pass byte for byte. Callers play either SIPp's stock pcaps or a
//! generated phone-like stream (one SSRC for audio and events, see `phone_stream`).
//! Scenarios: `tests/sipp/suppress_*.xml`, `record_uac_star9_pcap.xml`, `uas_wait_bye.xml`.
//! Needs `sipp` and `tshark`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;
#[path = "dtmf_suppress/phone_stream.rs"]
mod phone_stream;

use std::time::Duration;

use common::calls::{
    MetaflowsProxy, assert_both_succeeded, callee, caller, named, wait_call, wait_for_events,
};
use common::capture::{Capture, G711A_PCAP, RtpPacket, g711a_reference, read_rtp, to_port};
use phone_stream::{
    AUDIO_PT, EVENT_PT, PRESS_DURATION, PhoneStream, ReceivedPress, STREAM_SSRC, assert_gap_free,
    presses,
};
use serde_json::Value;

/// Limit for one SIPp run (the longest call lasts about 9.4 s).
const RUN_LIMIT: Duration = Duration::from_secs(20);
/// SIPp's own timeout: a message that never comes fails the run before [`RUN_LIMIT`].
const SIPP_TIMEOUT_SECS: u32 = 16;
/// SSRC of SIPp's stock `dtmf_2833_*.pcap` key presses.
const STOCK_DTMF_SSRC: u32 = 0x0e05_384e;
/// RFC 4733 event codes.
const STAR: u8 = 10;
const NINE: u8 = 9;
const FIVE: u8 = 5;

/// `*9` starts recording (a module that keeps the call up); `*9` is decided at the `9`.
const SUPPRESS_RECORD_ON_9: &str =
    r#"{"suppress_dtmf":true,"numbers":{"9":{"module":"record_call"}}}"#;
/// Same, plus `55`, so that `*5` might still become a code and waits for the 800 ms timeout.
const SUPPRESS_RECORD_ON_9_OR_55: &str = r#"{"suppress_dtmf":true,"digit_timeout":800,
    "numbers":{"9":{"module":"record_call"},"55":{"module":"hangup"}}}"#;
/// The default: no suppression.
const RECORD_ON_9: &str = r#"{"numbers":{"9":{"module":"record_call"}}}"#;

/// A proxy with a `--metaflows` file.
struct SuppressProxy {
    proxy: MetaflowsProxy,
}

impl SuppressProxy {
    fn start(metaflows: &str) -> SuppressProxy {
        SuppressProxy {
            proxy: MetaflowsProxy::start(metaflows),
        }
    }

    /// Runs `uas_wait_bye.xml` and the caller scenario `uac` (with `-key` pairs), requires both
    /// to exit 0 and returns every RTP packet the callee's media port received, in order.
    fn call(&self, uac: &str, keys: &[(&str, &str)]) -> Vec<RtpPacket> {
        let ports = self.proxy.ports();
        let capture = Capture::start(&[ports.uas_media]);
        let callee = callee(&self.proxy, "uas_wait_bye.xml", SIPP_TIMEOUT_SECS).spawn();
        let mut caller = caller(&self.proxy, uac, SIPP_TIMEOUT_SECS);
        for (name, value) in keys {
            caller = caller.key(name, value);
        }
        let (caller, callee) = wait_call(caller.spawn(), callee, RUN_LIMIT);
        let received = to_port(&capture.stop(), ports.uas_media);
        assert_both_succeeded(&caller, &callee);
        received
    }

    /// Every event of `events.jsonl` once the call has ended; panics after 3 s without one.
    fn events_after_call(&self) -> Vec<Value> {
        wait_for_events(&self.proxy, &["call_ended"], Duration::from_secs(3))
    }
}

/// Panics unless the a-leg's code `9` matched once, ran `record_call`, and nothing was released.
fn assert_matched_record(events: &[Value]) {
    let matches = named(events, "metaflow_match");
    assert_eq!(matches.len(), 1, "{events:#?}");
    assert_eq!(matches[0]["leg"], "a", "{events:#?}");
    assert_eq!(matches[0]["collected"], "9", "{events:#?}");
    assert_eq!(matches[0]["module"], "record_call", "{events:#?}");
    assert!(named(events, "metaflow_release").is_empty(), "{events:#?}");
}

/// Panics unless the a-leg's `*5` matched nothing and was released for delivery.
fn assert_released_star5(events: &[Value]) {
    assert!(named(events, "metaflow_match").is_empty(), "{events:#?}");
    let releases = named(events, "metaflow_release");
    assert_eq!(releases.len(), 1, "{events:#?}");
    assert_eq!(releases[0]["leg"], "a", "{events:#?}");
    assert_eq!(releases[0]["digits"], "*5", "{events:#?}");
}

/// The presses delivered in `received`: panics unless they are `*5`, each well formed with its
/// end packet sent 3 times.
fn delivered_star5(received: &[RtpPacket]) -> Vec<ReceivedPress> {
    let got = presses(received);
    let digits: String = got.iter().map(|press| press.digit).collect();
    assert_eq!(digits, "*5", "delivered presses: {got:#?}");
    for press in &got {
        press.assert_well_formed();
        assert_eq!(
            press.end_packets(),
            3,
            "end packet sent 3 times: {press:#?}"
        );
    }
    got
}

/// The packets of `packets` with payload type `pt`.
fn with_pt(packets: &[RtpPacket], pt: u8) -> Vec<RtpPacket> {
    packets.iter().filter(|p| p.pt == pt).cloned().collect()
}

/// Writes `stream` as a pcap in a fresh directory; returns the directory and the file path.
fn stream_pcap(stream: &PhoneStream) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.pcap");
    stream.write_pcap(&path);
    let path = path.to_str().unwrap().to_owned();
    (dir, path)
}

/// Panics unless `received` holds exactly the stream's audio, in order, with the stream's
/// SSRC and unchanged timestamps and payloads.
fn assert_audio_intact(received: &[RtpPacket], stream: &PhoneStream) {
    let audio = with_pt(received, AUDIO_PT);
    let sent = stream.audio_packets();
    assert_eq!(audio.len(), sent.len(), "audio packets received vs sent");
    for (got, want) in audio.iter().zip(&sent) {
        assert!(
            got.ssrc == STREAM_SSRC && got.ts == want.ts && got.payload == want.payload,
            "audio altered: got seq {} ts {} ssrc {:#x}, sent seq {} ts {}",
            got.seq,
            got.ts,
            got.ssrc,
            want.seq,
            want.ts
        );
    }
}

#[test]
fn matched_code_never_reaches_the_callee_and_the_audio_stays_gap_free() {
    let proxy = SuppressProxy::start(SUPPRESS_RECORD_ON_9);
    let received = proxy.call("record_uac_star9_pcap.xml", &[]);
    assert_matched_record(&proxy.events_after_call());

    let events = with_pt(&received, EVENT_PT);
    assert!(events.is_empty(), "telephone-events leaked: {events:?}");
    let reference = g711a_reference();
    assert_eq!(received.len(), reference.len(), "only {G711A_PCAP}'s audio");
    for (got, want) in received.iter().zip(&reference) {
        assert!(
            (got.pt, got.ts, got.ssrc, &got.payload)
                == (want.pt, want.ts, want.ssrc, &want.payload),
            "audio altered: got {got:?}, sent {want:?}"
        );
    }
    assert_gap_free(&received, "audio after a suppressed *9");
}

#[test]
fn matched_code_inside_one_stream_is_cut_out_without_a_sequence_gap() {
    let stream = PhoneStream::new()
        .audio(25)
        .press(STAR)
        .audio(15)
        .press(NINE)
        .audio(100);
    let (_dir, pcap) = stream_pcap(&stream);
    let proxy = SuppressProxy::start(SUPPRESS_RECORD_ON_9);
    let received = proxy.call("suppress_uac_stream_bye.xml", &[("rtp_pcap", &pcap)]);
    assert_matched_record(&proxy.events_after_call());

    let events = with_pt(&received, EVENT_PT);
    assert!(events.is_empty(), "telephone-events leaked: {events:?}");
    assert_audio_intact(&received, &stream);
    assert_gap_free(&received, "one stream with *9 cut out");
    let first = (received[0].seq, stream.packets[0].seq);
    assert_eq!(
        first.0, first.1,
        "packets before the code keep their numbers"
    );
}

#[test]
fn unmatched_code_is_delivered_late_in_the_callers_own_stream() {
    let stream = PhoneStream::new()
        .audio(25)
        .press(STAR)
        .audio(15)
        .press(FIVE)
        .audio(125);
    let (_dir, pcap) = stream_pcap(&stream);
    let proxy = SuppressProxy::start(SUPPRESS_RECORD_ON_9_OR_55);
    let received = proxy.call("suppress_uac_stream_bye.xml", &[("rtp_pcap", &pcap)]);
    assert_released_star5(&proxy.events_after_call());

    assert_audio_intact(&received, &stream);
    let foreign: Vec<&RtpPacket> = received.iter().filter(|p| p.ssrc != STREAM_SSRC).collect();
    assert!(
        foreign.is_empty(),
        "packets outside the caller's SSRC: {foreign:?}"
    );
    let got = delivered_star5(&received);
    for press in &got {
        let length = i32::from(press.final_duration()) - i32::from(PRESS_DURATION);
        assert!(length.abs() <= 160, "press length not kept: {press:#?}");
        let min_span = (press.packets.len() as u64 - 1) * 15_000;
        assert!(
            press.span_us() >= min_span,
            "not paced in real time: {press:#?}"
        );
        // The event is dated by the stream's clock: right after the audio packet before it.
        let first_seq = press.packets[0].seq;
        let before = received
            .iter()
            .take_while(|p| p.seq != first_seq)
            .filter(|p| p.pt == AUDIO_PT)
            .last()
            .expect("audio before the delivered digit");
        let lead = press.ts.wrapping_sub(before.ts) as i32;
        assert!(
            (0..=480).contains(&lead),
            "event ts {} vs audio {}",
            press.ts,
            before.ts
        );
    }
    let first_end = got[0].ts.wrapping_add(u32::from(got[0].final_duration()));
    assert!(
        got[1].ts.wrapping_sub(first_end) as i32 >= 0,
        "overlapping events: {got:#?}"
    );
    // Delivered only after the digit timeout that followed the 5.
    let five_ts = stream
        .packets
        .iter()
        .find(|p| p.pt == EVENT_PT && p.payload[0] == FIVE);
    let five_ts = five_ts.unwrap().ts;
    let last_audio_before_five = received.iter().find(|p| p.ts.wrapping_add(160) == five_ts);
    let waited = got[0].packets[0].time_us - last_audio_before_five.unwrap().time_us;
    assert!(
        (700_000..2_000_000).contains(&waited),
        "delivered {waited} µs after the 5"
    );
    assert_gap_free(&received, "audio with *5 delivered late");
}

#[test]
fn unmatched_code_without_audio_is_delivered_with_the_callers_ssrc() {
    let proxy = SuppressProxy::start(SUPPRESS_RECORD_ON_9);
    let received = proxy.call("suppress_uac_star5_bye.xml", &[]);
    assert_released_star5(&proxy.events_after_call());

    assert!(with_pt(&received, AUDIO_PT).is_empty(), "{received:?}");
    delivered_star5(&received);
    assert_gap_free(&received, "*5 delivered late");
    let ssrcs: Vec<u32> = received.iter().map(|p| p.ssrc).collect();
    assert!(
        ssrcs.iter().all(|ssrc| *ssrc == STOCK_DTMF_SSRC),
        "delivered with SSRC {ssrcs:#x?}, the caller's stream is {STOCK_DTMF_SSRC:#x}"
    );
}

#[test]
fn without_suppress_dtmf_the_events_pass_unchanged() {
    let proxy = SuppressProxy::start(RECORD_ON_9);
    let received = proxy.call("record_uac_star9_pcap.xml", &[]);
    assert_matched_record(&proxy.events_after_call());

    let heuristic = ["-o".to_owned(), "rtp.heuristic_rtp:TRUE".to_owned()];
    let stock = |name: &str| {
        let path = format!("/usr/share/sip-tester/dtmf_2833_{name}.pcap");
        read_rtp(std::path::Path::new(&path), &heuristic)
    };
    let sent: Vec<RtpPacket> = stock("star").into_iter().chain(stock("9")).collect();
    let got = with_pt(&received, EVENT_PT);
    let fields = |p: &RtpPacket| (p.seq, p.ts, p.ssrc, p.pt, p.payload.clone());
    assert_eq!(
        got.iter().map(fields).collect::<Vec<_>>(),
        sent.iter().map(fields).collect::<Vec<_>>(),
        "the caller's *9 events, byte for byte"
    );
    common::capture::assert_same_stream(
        &with_pt(&received, AUDIO_PT),
        &g711a_reference(),
        "caller audio",
    );
}
