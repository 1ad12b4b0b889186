//! The command line as an operator types it: defaults, config checks, a bad metaflows file, and
//! `analyze` on a real capture.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_metaflow-proxy");

fn testdata(path: &str) -> String {
    let full = format!("{}/../shared/testdata/{path}", env!("CARGO_MANIFEST_DIR"));
    assert!(
        std::path::Path::new(&full).exists(),
        "{full} is missing: the shared test data must sit beside the repository"
    );
    full
}

#[test]
fn a_bad_metaflows_file_stops_start_up_naming_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mf.json");
    std::fs::write(
        &file,
        r#"{"binding_digit": "x", "numbers": {"1a": {"module": "fax"}},
            "patterns": {"2(": {"module": "transfer", "data": {"transfer_type": "attended"}}}}"#,
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--sip-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--metaflows")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for path in [
        "binding_digit",
        "numbers.1a",
        "patterns.2(",
        "data.transfer_type",
    ] {
        assert!(err.contains(path), "{path} not named in:\n{err}");
    }
}

#[test]
fn check_config_accepts_the_example_and_names_an_unknown_key() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/metaflow-proxy.toml");
    let ok = Command::new(BIN)
        .args(["check-config", "--config", example])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("config OK"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "sip-listen = \"127.0.0.1:5060\"\nmedia_timeout = 5\n").unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("media_timeout"));
}

#[test]
fn analyze_prints_the_digits_and_the_engines_decisions() {
    let capture = testdata("pcaps/SIP_DTMF2.cap");
    let dir = tempfile::tempdir().unwrap();
    let flows = dir.path().join("mf.json");
    std::fs::write(&flows, r#"{"binding_digit": "6", "digit_timeout": 2000, "numbers": {"789": {"module": "hangup"}}}"#)
        .unwrap();
    let out = Command::new(BIN)
        .args(["analyze", &capture, "--json", "--metaflows"])
        .arg(&flows)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let digits: String = lines
        .iter()
        .filter(|l| l["type"] == "digit")
        .map(|l| l["digit"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(digits, "6789123");
    assert!(
        lines
            .iter()
            .filter(|l| l["type"] == "digit")
            .all(|l| l["payload_type"] == 96)
    );
    let matched: Vec<&serde_json::Value> = lines.iter().filter(|l| l["type"] == "match").collect();
    assert_eq!(matched.len(), 1, "{lines:#?}");
    assert_eq!(matched[0]["collected"], "789");
    assert_eq!(matched[0]["module"], "hangup");
}

#[test]
fn no_arguments_runs_on_the_embedded_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let ready = loop {
        let probe = std::net::TcpStream::connect("127.0.0.1:8000").and_then(|mut s| {
            use std::io::{Read, Write};
            s.write_all(b"GET /ready HTTP/1.0\r\nHost: x\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        });
        match probe {
            Ok(text) if text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200") => {
                break true;
            }
            _ if Instant::now() > deadline => break false,
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert!(
        ready,
        "no /ready on 127.0.0.1:8000 with the defaults:\n{err}"
    );
    assert!(status.success(), "{err}");
    assert!(err.contains("127.0.0.1:5060"), "{err}");
    assert!(
        dir.path().join("data/events.jsonl").exists(),
        "data under ./data"
    );
}
