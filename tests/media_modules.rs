//! End-to-end media modules: a SIPp caller plays a phone-like stream (PCMA and RFC 4733 key
//! presses in one SSRC) through the real proxy to a SIPp callee, dialing codes that hold,
//! resume and change the volume of the call, while tshark captures what each party receives.
//! The G.711 is decoded and compared with what was sent and with the proxy's built-in music on
//! hold. Scenarios: `tests/sipp/suppress_uac_stream_bye.xml`, `uas_wait_bye.xml`. Needs `sipp`
//! and `tshark`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;
#[path = "dtmf_suppress/phone_stream.rs"]
#[allow(dead_code)] // shared with dtmf_suppress, which uses the rest
mod phone_stream;
#[path = "media_modules/signal.rs"]
mod signal;
#[path = "media_modules/stream_call.rs"]
mod stream_call;

use std::collections::HashSet;
use std::time::Duration;

use common::calls::{assert_both_succeeded, wait_call, wait_for_events};
use common::capture::{Capture, RtpPacket, to_port};
use phone_stream::{AUDIO_PT, PhoneStream, STREAM_SSRC};
use signal::{correlation, decode_alaw, rms};
use stream_call::{Received, outcomes, run};

/// Limit for one SIPp run.
const RUN_LIMIT: Duration = Duration::from_secs(20);
/// SIPp's own timeout.
const SIPP_TIMEOUT_SECS: u32 = 16;
/// RFC 4733 event codes.
const STAR: u8 = 10;
const ONE: u8 = 1;
const TWO: u8 = 2;
const SIX: u8 = 6;
const SEVEN: u8 = 7;
const EIGHT: u8 = 8;

const METAFLOWS: &str = r#"{"numbers": {
    "1": {"module": "hold"},
    "2": {"module": "resume"},
    "6": {"module": "audio_level", "data": {"mode": "read", "level": -2}},
    "7": {"module": "audio_level", "data": {"mode": "read", "action": "stop"}},
    "8": {"module": "audio_level", "data": {"mode": "read", "mute": true}}
}}"#;

/// The audio payloads of `stream` sent between the `from`-th and the `to`-th key press.
fn audio_between(stream: &PhoneStream, from: usize, to: usize) -> Vec<Vec<u8>> {
    let mut presses = 0;
    let mut out = Vec::new();
    let mut last_pt = AUDIO_PT;
    for p in &stream.packets {
        if p.pt != AUDIO_PT && last_pt == AUDIO_PT {
            presses += 1;
        }
        last_pt = p.pt;
        if p.pt == AUDIO_PT && presses >= from && presses < to {
            out.push(p.payload.clone());
        }
    }
    out
}

/// Panics unless the distinct sequence numbers of `packets` follow each other (RFC 4733 end
/// packets are sent three times with one number) under one SSRC.
fn assert_one_gap_free_stream(packets: &[RtpPacket], what: &str) {
    let ssrcs: HashSet<u32> = packets.iter().map(|p| p.ssrc).collect();
    assert_eq!(ssrcs.len(), 1, "{what}: SSRCs {ssrcs:x?}");
    let mut seqs: Vec<u16> = packets.iter().map(|p| p.seq).collect();
    seqs.dedup();
    let breaks: Vec<_> = seqs
        .windows(2)
        .filter(|w| w[1] != w[0].wrapping_add(1))
        .map(|w| (w[0], w[1]))
        .collect();
    assert!(breaks.is_empty(), "{what}: sequence breaks {breaks:?}");
}

/// The proxy's own packets among `packets`: PCMA whose payload the caller never sent.
fn not_sent<'a>(packets: &'a [RtpPacket], stream: &PhoneStream) -> Vec<&'a RtpPacket> {
    let sent: HashSet<&[u8]> = stream
        .packets
        .iter()
        .map(|p| p.payload.as_slice())
        .collect();
    packets
        .iter()
        .filter(|p| p.pt == AUDIO_PT && !sent.contains(p.payload.as_slice()))
        .collect()
}

/// Checks a hold that lasted from key press `held.0` to key press `held.1` of `stream` (counted
/// from 0) and that `release` (the unhold key or `*2`) ended: panics with what differs.
fn check_hold(stream: &PhoneStream, got: &Received, held: (usize, usize), release: &str) {
    let moh = metaflow_proxy::audio::moh::default_moh();
    // The held party: music, none of the holder's audio, one stream throughout.
    assert_one_gap_free_stream(&got.callee, "callee");
    assert_eq!(
        got.callee[0].ssrc, STREAM_SSRC,
        "the caller's stream continues"
    );
    let during: HashSet<Vec<u8>> = audio_between(stream, held.0, held.1).into_iter().collect();
    let leaked = got
        .callee
        .iter()
        .filter(|p| during.contains(&p.payload))
        .count();
    assert_eq!(
        leaked, 0,
        "the holder's audio reached the held party ({release})"
    );
    let music = not_sent(&got.callee, stream);
    assert!(
        music.len() >= 90,
        "{} music packets ({release})",
        music.len()
    );
    let samples = decode_alaw(music.iter().map(|p| p.payload.as_slice()));
    let r = correlation(&samples, moh.samples());
    eprintln!(
        "held party: {} music packets, correlation {r:.4}",
        music.len()
    );
    assert!(r >= 0.9, "music on hold correlation {r:.3} ({release})");
    // After the release the caller's audio flows again.
    let after: HashSet<Vec<u8>> = audio_between(stream, held.1, 99).into_iter().collect();
    let resumed = got
        .callee
        .iter()
        .filter(|p| after.contains(&p.payload))
        .count();
    assert!(
        resumed + 3 >= after.len(),
        "{resumed} of {} packets after {release}",
        after.len()
    );
    // The holder heard music too, and none once released.
    assert!(
        got.caller.len() >= 90,
        "holder got {} packets",
        got.caller.len()
    );
    assert_one_gap_free_stream(&got.caller, "caller");
    let heard = decode_alaw(got.caller.iter().map(|p| p.payload.as_slice()));
    let r = correlation(&heard, moh.samples());
    assert!(r >= 0.9, "holder's music correlation {r:.3}");
    assert_eq!(
        outcomes(&got.events, "hold"),
        ["success"],
        "{:#?}",
        got.events
    );
}

#[test]
fn hold_gives_the_other_party_music_and_the_unhold_key_reconnects() {
    let stream = PhoneStream::new()
        .audio(25)
        .press(STAR)
        .audio(15)
        .press(ONE)
        .audio(100)
        .press(ONE)
        .audio(75);
    let got = run(METAFLOWS, &stream);
    // Presses: *, 1, 1: the hold lasts from the 2nd to the 3rd.
    check_hold(&stream, &got, (2, 3), "unhold key");
    let last = got.caller.last().unwrap().time_us;
    let release = got
        .callee
        .iter()
        .filter(|p| p.pt == AUDIO_PT)
        .rev()
        .nth(60)
        .unwrap()
        .time_us;
    assert!(
        last < release,
        "the holder's music went on after the unhold key"
    );
}

#[test]
fn resume_reconnects_a_held_call() {
    let stream = PhoneStream::new()
        .audio(25)
        .press(STAR)
        .audio(15)
        .press(ONE)
        .audio(100)
        .press(STAR)
        .audio(5)
        .press(TWO)
        .audio(70);
    let got = run(METAFLOWS, &stream);
    // Presses: *, 1, *, 2: the hold lasts from the 2nd to the 4th.
    check_hold(&stream, &got, (2, 4), "*2");
    assert_eq!(outcomes(&got.events, "resume"), ["success"]);
}

#[test]
fn audio_level_scales_one_direction_and_mute_silences_it() {
    let stream = PhoneStream::new()
        .audio(25)
        .press(STAR)
        .audio(5)
        .press(SIX)
        .audio(50)
        .press(STAR)
        .audio(5)
        .press(EIGHT)
        .audio(50)
        .press(STAR)
        .audio(5)
        .press(SEVEN)
        .audio(40);
    let got = run(METAFLOWS, &stream);
    assert_one_gap_free_stream(&got.callee, "callee");
    // Match what arrived with what was sent by sequence number (nothing was inserted).
    let sent: std::collections::HashMap<u16, &[u8]> = stream
        .packets
        .iter()
        .filter(|p| p.pt == AUDIO_PT)
        .map(|p| (p.seq, p.payload.as_slice()))
        .collect();
    let ratio_in = |seqs: std::ops::Range<usize>| {
        let window: Vec<&RtpPacket> = got
            .callee
            .iter()
            .filter(|p| p.pt == AUDIO_PT)
            .skip(seqs.start)
            .take(seqs.len())
            .collect();
        let sent_rms = rms(&decode_alaw(window.iter().map(|p| sent[&p.seq])));
        let got_rms = rms(&decode_alaw(window.iter().map(|p| p.payload.as_slice())));
        got_rms / sent_rms
    };
    // Audio packets in order: 25 + 5 before the level, 50 at level -2 (skip the first 5: the
    // code takes effect a few milliseconds after its key), 5 more, then 50 muted, 5, 40 back.
    let before = ratio_in(0..25);
    let lowered = ratio_in(35..80);
    let muted = ratio_in(92..135);
    let restored = ratio_in(147..185);
    eprintln!(
        "RMS ratios: before {before:.4}, level -2 {lowered:.4}, mute {muted:.4}, stop {restored:.4}"
    );
    assert!((before - 1.0).abs() < 0.01, "before {before:.3}");
    assert!(
        (lowered - 0.6).abs() < 0.05,
        "level -2 gives {lowered:.3}, want 0.6"
    );
    assert!(muted < 0.01, "mute gives {muted:.3}");
    assert!((restored - 1.0).abs() < 0.01, "stop gives {restored:.3}");
    assert_eq!(outcomes(&got.events, "audio_level"), ["success"; 3]);
}

/// Waits until the proxy lists one answered channel; returns its Call-ID.
fn answered_call_id(proxy: &common::proxy::Proxy, token: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let listed = proxy.api("GET", "/v2/accounts/default/channels", Some(token), None);
        let body = listed.json();
        if let Some(channel) = body["data"]
            .as_array()
            .and_then(|list| list.iter().find(|c| c["answered"] == true))
        {
            return channel["call_id"].as_str().unwrap().to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no answered channel: {body:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The channels API runs the media modules on a live call where nobody sends audio: `hold`
/// makes the proxy start a stream of its own towards each party (in the codec of its SDP), the
/// music plays until `resume`, and an unknown media id ends `play` with `failure`.
#[test]
fn the_channels_api_holds_and_resumes_a_silent_call() {
    const TOKEN: &str = "media-token";
    let proxy = common::proxy::Proxy::start(&["--api-auth-token", TOKEN]);
    let ports = proxy.ports();
    let capture = Capture::start(&[ports.uas_media, ports.uac_media]);
    let (caller, callee) = common::calls::spawn_call(
        &proxy,
        "uas_wait_bye.xml",
        "uac_wait_bye.xml",
        SIPP_TIMEOUT_SECS,
    );
    let call_id = answered_call_id(&proxy, TOKEN);
    let path = format!("/v2/accounts/default/channels/{call_id}");
    let run = |node: &str| {
        let body = format!(r#"{{"data":{{"action":"metaflow","data":{node}}}}}"#);
        let reply = proxy.api("PUT", &path, Some(TOKEN), Some(&body));
        assert_eq!(reply.status, 202, "{}", reply.body);
    };
    run(r#"{"module":"play","data":{"id":"no-such-media","leg":"peer"}}"#);
    // Its failure first: a hold started meanwhile would stop it (outcome `success`).
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while outcomes(&proxy.events(), "play").is_empty() {
        assert!(std::time::Instant::now() < deadline, "play never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    run(r#"{"module":"hold"}"#);
    std::thread::sleep(Duration::from_secs(2));
    run(r#"{"module":"resume"}"#);
    std::thread::sleep(Duration::from_millis(500));
    run(r#"{"module":"hangup"}"#);
    let (caller, callee) = wait_call(caller, callee, RUN_LIMIT);
    let packets = capture.stop();
    assert_both_succeeded(&caller, &callee);
    let events = wait_for_events(&proxy, &["call_ended"], Duration::from_secs(3));
    assert_eq!(outcomes(&events, "play"), ["failure"], "{events:#?}");
    assert_eq!(outcomes(&events, "hold"), ["success"], "{events:#?}");
    assert_eq!(outcomes(&events, "resume"), ["success"], "{events:#?}");
    let moh = metaflow_proxy::audio::moh::default_moh();
    for (who, port) in [("callee", ports.uas_media), ("caller", ports.uac_media)] {
        let got = to_port(&packets, port);
        assert!(
            (80..=120).contains(&got.len()),
            "{who}: {} packets for 2 s of music",
            got.len()
        );
        assert!(got.iter().all(|p| p.pt == 8), "{who}: PCMA as its SDP says");
        assert_one_gap_free_stream(&got, who);
        let heard = decode_alaw(got.iter().map(|p| p.payload.as_slice()));
        let r = correlation(&heard, moh.samples());
        eprintln!("{who}: {} packets, correlation {r:.4}", got.len());
        assert!(r >= 0.9, "{who}: correlation {r:.3}");
    }
}
