//! In-band DTMF end to end: a SIPp caller whose SDP offers no telephone-event plays `*0` as
//! tone pairs inside its PCMA audio (a capture the test builds); the proxy hears the code in the
//! audio and its `hangup` module ends both legs. Scenarios: `inband_uac_stream_wait_bye.xml`,
//! `uas_wait_bye.xml`. Needs `sipp`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;
#[path = "dtmf_suppress/phone_stream.rs"]
#[allow(dead_code)] // shared with dtmf_suppress, which uses the rest
mod phone_stream;

use std::time::Duration;

use common::calls::{
    MetaflowsProxy, assert_both_succeeded, callee, caller, got_bye, named, wait_call,
    wait_for_events,
};
use common::tones::tone;
use metaflow_proxy::audio::g711::Law;
use phone_stream::PhoneStream;

/// `ms` of A-law silence.
fn silence(ms: usize) -> Vec<Vec<u8>> {
    vec![vec![Law::A.silence(); 160]; ms / 20]
}

#[test]
fn a_code_dialed_as_tones_ends_the_call() {
    let stream = PhoneStream::new()
        .audio_payloads(silence(500))
        .audio_payloads(tone('*', 100))
        .audio_payloads(silence(100))
        .audio_payloads(tone('0', 100))
        .audio_payloads(silence(2000));
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("tones.pcap");
    stream.write_pcap(&pcap);
    let proxy = MetaflowsProxy::start(r#"{"numbers":{"0":{"module":"hangup"}}}"#);
    let callee = callee(&proxy, "uas_wait_bye.xml", 12).spawn();
    let caller = caller(&proxy, "inband_uac_stream_wait_bye.xml", 12)
        .key("rtp_pcap", pcap.to_str().unwrap())
        .spawn();
    let (caller, callee) = wait_call(caller, callee, Duration::from_secs(15));
    assert_both_succeeded(&caller, &callee);
    assert!(
        got_bye(&caller) && got_bye(&callee),
        "the proxy hung up both legs"
    );
    let events = wait_for_events(&proxy, &["call_ended"], Duration::from_secs(3));
    let digits: Vec<(String, String)> = named(&events, "digit")
        .into_iter()
        .map(|e| {
            (
                e["digit"].as_str().unwrap_or_default().to_string(),
                e["source"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        digits,
        [("*".into(), "inband".into()), ("0".into(), "inband".into())],
        "{events:#?}"
    );
    assert_eq!(named(&events, "metaflow_match").len(), 1, "{events:#?}");
}
