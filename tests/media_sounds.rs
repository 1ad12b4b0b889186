//! End-to-end sounds: a WAV uploaded through Kazoo's media API and played into a live call
//! arrives intact; `tts` speaks audibly for a plausible time; `break` stops a playing tone within
//! 40 ms of the key that asked. SIPp parties on both sides, tshark capturing what each receives.
//! Needs `sipp`, `tshark` and `flite`.
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
use std::time::{Duration, Instant};

use common::calls::{assert_both_succeeded, named, spawn_call, wait_call, wait_for_events};
use common::capture::{Capture, RtpPacket, to_port};
use common::proxy::Proxy;
use phone_stream::{AUDIO_PT, EVENT_PT, PhoneStream};
use serde_json::Value;
use signal::{correlation, decode_alaw, rms};
use stream_call::outcomes;

const TOKEN: &str = "sounds-token";
const RUN_LIMIT: Duration = Duration::from_secs(20);

/// Two seconds of a chord that changes every half second, 16-bit mono at 8 kHz.
fn source_samples() -> Vec<i16> {
    let chords = [
        [440.0, 554.4],
        [392.0, 493.9],
        [349.2, 440.0],
        [329.6, 415.3],
    ];
    (0..16_000)
        .map(|n| {
            let t = n as f32 / 8000.0;
            let [f1, f2] = chords[n / 4000];
            let v = 6000.0 * (std::f32::consts::TAU * f1 * t).sin()
                + 6000.0 * (std::f32::consts::TAU * f2 * t).sin();
            v as i16
        })
        .collect()
}

/// A WAV file of `samples` (mono, 16-bit, 8 kHz), written as the media API tests write theirs.
fn wav(samples: &[i16]) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut out, spec).unwrap();
    for &sample in samples {
        writer.write_sample(sample).unwrap();
    }
    writer.finalize().unwrap();
    out.into_inner()
}

/// Uploads `samples` as a new media document of the default account; returns its id.
fn upload(proxy: &Proxy, samples: &[i16]) -> String {
    let created = proxy.api(
        "PUT",
        "/v2/accounts/default/media",
        Some(TOKEN),
        Some(r#"{"data":{"name":"chord","media_source":"upload"}}"#),
    );
    assert!(
        created.status == 201 || created.status == 200,
        "{}",
        created.body
    );
    let id = created.json()["data"]["id"].as_str().unwrap().to_owned();
    let raw = common::raw_http::request_with_body(
        &proxy.api_addr(),
        "POST",
        &format!("/v2/accounts/default/media/{id}/raw"),
        &[("X-Auth-Token", TOKEN), ("Content-Type", "audio/wav")],
        &wav(samples),
    )
    .unwrap();
    assert_eq!(raw.status, 200, "{}", String::from_utf8_lossy(&raw.body));
    id
}

/// Waits until the proxy lists one answered channel; returns its Call-ID.
fn answered_call_id(proxy: &Proxy) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let body = proxy
            .api("GET", "/v2/accounts/default/channels", Some(TOKEN), None)
            .json();
        if let Some(channel) = body["data"]
            .as_array()
            .and_then(|list| list.iter().find(|c| c["answered"] == true))
        {
            return channel["call_id"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no answered channel: {body:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `node` on the live call `call_id` through the channels API.
fn run_node(proxy: &Proxy, call_id: &str, node: &str) {
    let path = format!("/v2/accounts/default/channels/{call_id}");
    let body = format!(r#"{{"data":{{"action":"metaflow","data":{node}}}}}"#);
    let reply = proxy.api("PUT", &path, Some(TOKEN), Some(&body));
    assert_eq!(reply.status, 202, "{}", reply.body);
}

/// Panics unless `packets` are one SSRC with consecutive sequence numbers.
fn assert_one_stream(packets: &[RtpPacket], what: &str) {
    let ssrcs: HashSet<u32> = packets.iter().map(|p| p.ssrc).collect();
    assert_eq!(ssrcs.len(), 1, "{what}: SSRCs {ssrcs:x?}");
    let breaks = packets
        .windows(2)
        .filter(|w| w[1].seq != w[0].seq.wrapping_add(1))
        .count();
    assert_eq!(breaks, 0, "{what}: sequence breaks");
}

/// A silent call (nobody sends audio), answered; `act` runs on it through the API, then the
/// call is hung up through the API. Returns what the caller and the callee received, and the
/// events.
fn silent_call(
    proxy: &Proxy,
    act: impl FnOnce(&str),
) -> (Vec<RtpPacket>, Vec<RtpPacket>, Vec<Value>) {
    let ports = proxy.ports();
    let capture = Capture::start(&[ports.uac_media, ports.uas_media]);
    let (caller, callee) = spawn_call(proxy, "uas_wait_bye.xml", "uac_wait_bye.xml", 16);
    let call_id = answered_call_id(proxy);
    act(&call_id);
    run_node(proxy, &call_id, r#"{"module":"hangup"}"#);
    let (caller, callee) = wait_call(caller, callee, RUN_LIMIT);
    let packets = capture.stop();
    assert_both_succeeded(&caller, &callee);
    let events = wait_for_events(proxy, &["call_ended"], Duration::from_secs(3));
    (
        to_port(&packets, ports.uac_media),
        to_port(&packets, ports.uas_media),
        events,
    )
}

#[test]
fn an_uploaded_wav_plays_intact_into_the_other_leg() {
    let proxy = Proxy::start(&["--api-auth-token", TOKEN]);
    let source = source_samples();
    let id = upload(&proxy, &source);
    let (to_caller, to_callee, events) = silent_call(&proxy, |call_id| {
        run_node(
            &proxy,
            call_id,
            &format!(r#"{{"module":"play","data":{{"id":"{id}","leg":"peer"}}}}"#),
        );
        std::thread::sleep(Duration::from_millis(2600));
    });
    assert!(
        to_caller.is_empty(),
        "leg peer of the a-leg: the caller hears nothing"
    );
    assert_eq!(to_callee.len(), 100, "2 s in 20 ms packets");
    assert_one_stream(&to_callee, "callee");
    let heard = decode_alaw(to_callee.iter().map(|p| p.payload.as_slice()));
    let r = correlation(&heard, &source);
    eprintln!(
        "played file: {} packets, correlation {r:.4}",
        to_callee.len()
    );
    assert!(r >= 0.9, "correlation {r:.3}");
    assert_eq!(outcomes(&events, "play"), ["success"], "{events:#?}");
    let started = named(&events, "playback")
        .into_iter()
        .any(|e| e["state"] == "started" && e["source"] == "media");
    assert!(started, "{events:#?}");
}

#[test]
fn tts_speaks_audibly_for_a_plausible_time() {
    common::require_tool("flite");
    let proxy = Proxy::start(&["--api-auth-token", TOKEN]);
    let text = "Your call is important to us. Please stay on the line.";
    let (to_caller, _, events) = silent_call(&proxy, |call_id| {
        let node = format!(r#"{{"module":"tts","data":{{"text":"{text}"}}}}"#);
        run_node(&proxy, call_id, &node);
        std::thread::sleep(Duration::from_secs(6));
    });
    assert_one_stream(&to_caller, "caller");
    let seconds = to_caller.len() as f64 * 0.02;
    let speech = decode_alaw(to_caller.iter().map(|p| p.payload.as_slice()));
    let level = rms(&speech);
    eprintln!("tts: {seconds:.2} s of speech, RMS {level:.0}");
    assert!(
        (1.5..=6.0).contains(&seconds),
        "{seconds} s for {} words",
        text.split(' ').count()
    );
    assert!(level > 300.0, "speech RMS {level}");
    assert_eq!(outcomes(&events, "tts"), ["success"], "{events:#?}");
}

#[test]
fn break_stops_a_playing_tone_within_40_ms() {
    const THREE: u8 = 3;
    const FOUR: u8 = 4;
    const STAR: u8 = 10;
    let metaflows = r#"{"numbers": {
        "4": {"module": "play", "data": {"id": "tone_stream://%(10000,0,440)", "leg": "self"}},
        "3": {"module": "break"}
    }}"#;
    let stream = PhoneStream::new()
        .audio(25)
        .press(STAR)
        .audio(5)
        .press(FOUR)
        .audio(60)
        .press(STAR)
        .audio(5)
        .press(THREE)
        .audio(50);
    let got = stream_call::run(metaflows, &stream);
    let (to_caller, to_callee) = (&got.caller, &got.callee);
    // The proxy relays the `3` to the callee as it reads it: its first packet there is when the
    // proxy learnt of the key.
    let three_at = to_callee
        .iter()
        .find(|p| p.pt == EVENT_PT && p.payload.first() == Some(&THREE))
        .expect("the 3 reached the callee")
        .time_us;
    let last_tone = to_caller.last().expect("the caller heard the tone").time_us;
    let after = last_tone.saturating_sub(three_at);
    eprintln!(
        "tone packets {}, last {:.1} ms after the 3",
        to_caller.len(),
        after as f64 / 1000.0
    );
    assert!(to_caller.len() >= 40, "{} tone packets", to_caller.len());
    assert!(after <= 40_000, "the tone went on {after} µs after the 3");
    assert!(to_caller.iter().all(|p| p.pt == AUDIO_PT));
    assert_eq!(
        outcomes(&got.events, "break"),
        ["success"],
        "{:#?}",
        got.events
    );
    assert_eq!(
        outcomes(&got.events, "play"),
        ["success"],
        "{:#?}",
        got.events
    );
}
