//! The command line as an operator types it: defaults, config checks, a bad metaflows file, and
//! `analyze` on a real capture.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use metaflow_proxy::config::Config;
use metaflow_proxy::config::cli::Cli;

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
            "patterns": {"2(": {"module": "transfer", "data": {"transfer_type": "teleport"}}}}"#,
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
fn no_arguments_means_the_embedded_defaults() {
    // What the binary does with no arguments: parse them, then load the configuration.
    let cli = Cli::try_parse_from(["metaflow-proxy"]).unwrap();
    assert_eq!(cli.command, None, "no arguments runs the proxy");
    let cfg = Config::load(&cli).unwrap();
    assert_eq!(
        cfg.sip_listen,
        "127.0.0.1:5060".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        cfg.api_listen,
        "127.0.0.1:8000".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(cfg.data_dir, Path::new("./data"));
}

/// The addresses a running proxy reported in its "metaflow-proxy ready" log line: (SIP, API).
/// Only a complete line counts (the log is read while the proxy writes it).
fn ready_line_addresses(log: &str) -> Option<(SocketAddr, SocketAddr)> {
    let line = log
        .split_inclusive('\n')
        .find(|line| line.ends_with('\n') && line.contains("metaflow-proxy ready"))?;
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(name))
            .and_then(|value| value.parse().ok())
    };
    Some((field("sip=")?, field("api=")?))
}

/// A minimal HTTP/1.0 GET; the whole answer.
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}

/// Starts the binary in `cwd` with only the listen addresses given (port 0: the kernel picks
/// free ports) and waits until its log says it is ready; returns the child, its log file and
/// the (SIP, API) addresses it reports. A child that cannot bind SIP over TCP on the port the
/// kernel gave it for UDP (another socket holds that TCP port) is started again.
fn start_on_free_ports(cwd: &Path, logs: &Path) -> (Child, PathBuf, (SocketAddr, SocketAddr)) {
    const ATTEMPTS: u32 = 3;
    for attempt in 1..=ATTEMPTS {
        let log_path = logs.join(format!("proxy-{attempt}.log"));
        let mut child = Command::new(BIN)
            .args(["--sip-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"])
            .current_dir(cwd)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(addresses) = ready_line_addresses(&log) {
                return (child, log_path, addresses);
            }
            if let Some(status) = child.try_wait().unwrap() {
                if log.contains("cannot listen for SIP over TCP") && attempt < ATTEMPTS {
                    break;
                }
                panic!("metaflow-proxy exited with {status} before it was ready:\n{log}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("metaflow-proxy logged no \"metaflow-proxy ready\" line in 10 s:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    unreachable!("the last attempt returns or panics")
}

#[test]
fn runs_on_the_embedded_defaults_and_stops_on_sigint() {
    // Everything on the embedded defaults but the listen addresses, whose ports the kernel
    // picks: only this child can be listening there, so no other process can answer for it.
    let dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let (mut child, log_path, (sip, api)) = start_on_free_ports(dir.path(), logs.path());
    let answer = http_get(api, "/ready");
    let alive = child.try_wait().unwrap().is_none();
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let err = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        alive,
        "the child exited before its /ready was probed:\n{err}"
    );
    let answer = answer.unwrap_or_else(|e| panic!("GET /ready on {api} failed: {e}\n{err}"));
    assert!(
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        "GET /ready on {api} (the child's API) answered {answer:?}:\n{err}"
    );
    assert!(status.success(), "{err}");
    // The log reports the addresses really bound: the IP asked for, a port the kernel picked.
    for addr in [sip, api] {
        assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST, "{err}");
        assert_ne!(addr.port(), 0, "{err}");
    }
    assert!(
        dir.path().join("data/events.jsonl").exists(),
        "data under ./data"
    );
    // The way into /v2 on the defaults: a generated token, its file named in the start-up line.
    assert!(
        dir.path().join("data/api-token").exists(),
        "no ./data/api-token on the defaults:\n{err}"
    );
    let ready = err
        .lines()
        .find(|line| line.contains("metaflow-proxy ready"))
        .unwrap_or_default();
    assert!(
        ready.contains("data/api-token") && ready.contains("rtp_ports=\"30000-39999\""),
        "the start-up line names neither the token file nor the RTP range: {ready}"
    );
}

/// `check-config` and start-up agree on a table of bad configurations: each is refused by
/// both with the same message (start-up before it binds anything), and a good one passes both.
#[test]
fn check_config_and_start_up_agree_on_bad_configs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("not-a-dir"), "x").unwrap();
    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"numbers": {"1": {"module": "no_such_module"}}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("good.json"),
        r#"{"numbers": {"2": {"module": "hangup"}}}"#,
    )
    .unwrap();
    let base = "sip-listen = \"127.0.0.1:0\"\napi-listen = \"127.0.0.1:0\"\n";
    let table: [(&str, &str); 6] = [
        (
            "metaflows = \"missing.json\"\ndata-dir = \"d1\"\n",
            "missing.json",
        ),
        ("metaflows = \"bad.json\"\ndata-dir = \"d2\"\n", "numbers.1"),
        ("data-dir = \"not-a-dir\"\n", "not a directory"),
        ("media-timeout = 0\ndata-dir = \"d3\"\n", "media-timeout"),
        (
            "sip-t1-ms = 900\nsip-t2-ms = 800\ndata-dir = \"d4\"\n",
            "sip-t2-ms",
        ),
        ("no-such-key = 1\ndata-dir = \"d5\"\n", "no-such-key"),
    ];
    for (i, (text, named)) in table.iter().enumerate() {
        let file = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&file, format!("{base}{text}")).unwrap();
        let check = Command::new(BIN)
            .args(["check-config", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        let start = Command::new(BIN)
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap();
        let check_err = String::from_utf8_lossy(&check.stderr).to_string();
        let start_err = String::from_utf8_lossy(&start.stderr).to_string();
        assert!(!check.status.success(), "check-config accepted {text:?}");
        assert!(!start.status.success(), "start-up accepted {text:?}");
        assert!(check_err.contains(named), "{named} not in {check_err}");
        assert_eq!(
            check_err.lines().last(),
            start_err.lines().last(),
            "different verdicts for {text:?}"
        );
    }
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        format!("{base}metaflows = \"good.json\"\ndata-dir = \"dgood\"\n"),
    )
    .unwrap();
    let check = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        !dir.path().join("dgood").exists(),
        "check-config created nothing"
    );
}
