//! Graceful shutdown: on SIGTERM the proxy stops taking calls (503, /ready 503), lets calls in
//! progress go on for `shutdown-grace`, then ends them with BYE on both legs and exits 0.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::calls::spawn_call;
use common::proxy::{Proxy, http_get};
use metaflow_proxy::modules::record::sidecar::TEMP_SUFFIX;

/// A minimal INVITE from a throwaway socket; returns the status of the final response.
fn invite_status(proxy_sip: &str) -> Option<u16> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let local = socket.local_addr().ok()?;
    let invite = format!(
        "INVITE sip:late@{proxy_sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKlate1\r\nMax-Forwards: 70\r\nFrom: <sip:late@{local}>;tag=l1\r\nTo: <sip:late@{proxy_sip}>\r\nCall-ID: late-call@test\r\nCSeq: 1 INVITE\r\nContact: <sip:late@{local}>\r\nContent-Length: 0\r\n\r\n"
    );
    socket.send_to(invite.as_bytes(), proxy_sip).ok()?;
    let mut buf = [0u8; 4096];
    loop {
        let (n, _) = socket.recv_from(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]);
        let code: u16 = text.get(8..11)?.parse().ok()?;
        if code >= 200 {
            return Some(code);
        }
    }
}

#[test]
fn sigterm_drains_then_hangs_up_both_legs_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proxy.toml");
    std::fs::write(&config, "shutdown-grace = 2\n").unwrap();
    let mut proxy = Proxy::start(&["--config", config.to_str().unwrap()]);
    let (caller, callee) = spawn_call(&proxy, "uas_wait_bye.xml", "uac_wait_bye.xml", 20);
    // Wait until the call is up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while common::proxy::metric_sum(&proxy.metrics(), "metaflow_proxy_active_calls", &[])
        != Some(1.0)
    {
        assert!(
            Instant::now() < deadline,
            "the call never came up:\n{}",
            proxy.output()
        );
        thread::sleep(Duration::from_millis(100));
    }
    let sent_at = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &proxy.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // On SIGTERM the proxy turns /ready to 503 and, in the same step, tells the SIP side to
    // refuse new calls: wait for the first before sending the INVITE below.
    let api = proxy.api_addr().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match http_get(api, "/ready") {
            Ok((503, _)) => break,
            answer => assert!(
                Instant::now() < deadline,
                "/ready never answered 503 (not ready while draining) after SIGTERM; last \
                 answer {answer:?}:\n{}",
                proxy.output()
            ),
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        invite_status(&proxy.sip_addr()),
        Some(503),
        "new calls are refused while draining"
    );

    let caller = caller.wait(Duration::from_secs(25));
    let callee = callee.wait(Duration::from_secs(25));
    caller.assert_success("caller (UAC)");
    callee.assert_success("callee (UAS)");
    assert!(
        sent_at.elapsed() >= Duration::from_secs(2),
        "the call was given its grace period"
    );
    let exit = proxy.wait_exit(Duration::from_secs(10));
    assert!(
        exit.is_some_and(|s| s.success()),
        "the proxy exits 0 after draining: {exit:?}\n{}",
        proxy.output()
    );
    let events = std::fs::read_to_string(proxy.data_dir().join("events.jsonl")).unwrap();
    assert!(events.contains("\"reason\":\"shutdown\""), "{events}");
    assert!(events.contains("\"event\":\"call_ended\""), "{events}");
}

#[test]
fn a_recording_in_progress_is_finished_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proxy.toml");
    std::fs::write(&config, "shutdown-grace = 1\n").unwrap();
    let flows = dir.path().join("mf.json");
    std::fs::write(
        &flows,
        r#"{"listen_on": "peer", "numbers": {"9": {"module": "record_call"}}}"#,
    )
    .unwrap();
    let mut proxy = Proxy::start(&[
        "--config",
        config.to_str().unwrap(),
        "--metaflows",
        flows.to_str().unwrap(),
    ]);
    let (caller, callee) = spawn_call(&proxy, "record_uas_star9.xml", "uac_pcap_wait_bye.xml", 20);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !proxy
        .events()
        .iter()
        .any(|e| e["event"] == "recording_started")
    {
        assert!(
            Instant::now() < deadline,
            "no recording started:\n{}",
            proxy.output()
        );
        thread::sleep(Duration::from_millis(100));
    }
    // Some audio into the file: the recording is written to `<path>.part` until it ends; wait
    // until that holds more than the second of stereo audio checked below.
    let started = proxy
        .events()
        .into_iter()
        .find(|e| e["event"] == "recording_started")
        .unwrap();
    let part = format!("{}{TEMP_SUFFIX}", started["path"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let written = std::fs::metadata(&part).map_or(0, |m| m.len());
        if written > 44 + 8000 * 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{part} never held a second of stereo audio (only {written} bytes):\n{}",
            proxy.output()
        );
        thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-TERM", &proxy.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    caller
        .wait(Duration::from_secs(25))
        .assert_success("caller (UAC)");
    callee
        .wait(Duration::from_secs(25))
        .assert_success("callee (UAS)");
    let exit = proxy.wait_exit(Duration::from_secs(15));
    assert!(
        exit.is_some_and(|s| s.success()),
        "{exit:?}\n{}",
        proxy.output()
    );

    let events = proxy.events();
    let stopped = events
        .iter()
        .find(|e| e["event"] == "recording_stopped")
        .unwrap_or_else(|| panic!("no recording_stopped event: {events:#?}"));
    assert_eq!(stopped["reason"], "shutdown", "{stopped}");
    let wav = std::path::PathBuf::from(stopped["path"].as_str().unwrap());
    let bytes = std::fs::read(&wav).unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    let riff_len = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    assert_eq!(
        riff_len + 8,
        bytes.len(),
        "the WAV header is patched: the file is complete"
    );
    assert!(
        bytes.len() > 44 + 8000 * 4,
        "at least a second of stereo audio"
    );
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(wav.with_extension("json")).unwrap()).unwrap();
    assert_eq!(sidecar["stop_reason"], "shutdown", "{sidecar}");
}
