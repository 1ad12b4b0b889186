//! SIGHUP as logrotate and `systemctl reload` send it: the proxy reloads what can change while
//! calls run, reopens `events.jsonl`, logs what changed and what waits for a restart, and the
//! call in progress goes on. Also what the `metaflows` file owns across restarts.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::calls::{assert_both_succeeded, spawn_call, wait_call};
use common::proxy::{Proxy, metric_sum};

const TOKEN: &str = "reload-test-token";
const METAFLOWS: &str = "/v2/accounts/default/metaflows";

fn signal(proxy: &Proxy, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &proxy.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_until(what: &str, proxy: &Proxy, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} never happened:\n{}",
            proxy.output()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Whether an OPTIONS with `user_agent` gets any answer within a second.
fn options_answered(proxy: &Proxy, user_agent: &str) -> bool {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let local = socket.local_addr().unwrap();
    let target = proxy.sip_addr();
    let options = format!(
        "OPTIONS sip:{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKhup{}\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{local}>;tag=p\r\nTo: <sip:{target}>\r\nCall-ID: hup-{}@test\r\nCSeq: 1 OPTIONS\r\nUser-Agent: {user_agent}\r\nContent-Length: 0\r\n\r\n",
        local.port(),
        local.port()
    );
    socket.send_to(options.as_bytes(), &target).unwrap();
    let mut buf = [0u8; 2048];
    socket.recv_from(&mut buf).is_ok()
}

fn write_config(dir: &Path, extra: &str) {
    std::fs::write(
        dir.join("proxy.toml"),
        format!("metaflows = \"flows.json\"\n{extra}"),
    )
    .unwrap();
}

fn stored_codes(proxy: &Proxy) -> Vec<String> {
    let reply = proxy.api("GET", METAFLOWS, Some(TOKEN), None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["data"]["numbers"]
        .as_object()
        .map(|numbers| numbers.keys().cloned().collect())
        .unwrap_or_default()
}

/// A call is up; the configuration changes (a scanner prefix, the metaflows file's content,
/// the log level, the shutdown grace, and a key that needs a restart) and logrotate renames
/// events.jsonl; SIGHUP. The proxy stays up with the call, applies and logs the changes, names
/// the one that waits for a restart, writes later events to a new events.jsonl, and the call
/// still ends normally on both legs.
#[test]
fn sighup_applies_changes_keeps_the_call_and_reopens_the_event_log() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("flows.json"),
        r#"{"numbers": {"1": {"module": "hangup"}}}"#,
    )
    .unwrap();
    write_config(dir.path(), "shutdown-grace = 60\n");
    let config = dir.path().join("proxy.toml");
    let mut proxy = Proxy::start(&[
        "--config",
        config.to_str().unwrap(),
        "--api-auth-token",
        TOKEN,
    ]);
    assert_eq!(stored_codes(&proxy), ["1"]);
    assert!(options_answered(&proxy, "Evil-Dialer/1.0"));

    let (caller, callee) = spawn_call(&proxy, "uas_wait_bye.xml", "uac_wait_bye.xml", 30);
    wait_until("the call coming up", &proxy, || {
        metric_sum(&proxy.metrics(), "metaflow_proxy_active_calls", &[]) == Some(1.0)
    });

    let events = proxy.data_dir().join("events.jsonl");
    let rotated = proxy.data_dir().join("events.jsonl.1");
    std::fs::rename(&events, &rotated).unwrap();
    std::fs::write(
        dir.path().join("flows.json"),
        r#"{"numbers": {"2": {"module": "hangup"}}}"#,
    )
    .unwrap();
    write_config(
        dir.path(),
        "shutdown-grace = 0\nlog-level = \"debug\"\nrtp-latch = \"strict\"\n\
         scanner-user-agents = [\"friendly-scanner\", \"evil-dialer\"]\n",
    );
    signal(&proxy, "HUP");
    wait_until("the reload", &proxy, || {
        proxy.output().contains("SIGHUP: configuration reloaded")
    });
    let log = proxy.output();
    let line = log
        .lines()
        .find(|l| l.contains("SIGHUP: configuration reloaded"))
        .unwrap();
    for key in ["log-level", "scanner-user-agents", "shutdown-grace"] {
        assert!(line.contains(key), "{key} not applied: {line}");
    }
    assert!(
        line.contains("need_restart=[\"rtp-latch\"]"),
        "rtp-latch waits for a restart: {line}"
    );
    assert!(
        proxy.wait_exit(Duration::from_millis(200)).is_none(),
        "still running"
    );
    assert_eq!(
        metric_sum(&proxy.metrics(), "metaflow_proxy_active_calls", &[]),
        Some(1.0),
        "the call is untouched"
    );
    assert!(
        !options_answered(&proxy, "Evil-Dialer/1.0"),
        "the new scanner prefix is dropped"
    );
    assert_eq!(
        stored_codes(&proxy),
        ["2"],
        "the metaflows file is read again"
    );

    // shutdown-grace is now 0: SIGTERM hangs the call up at once, with BYE on both legs.
    signal(&proxy, "TERM");
    let (caller, callee) = wait_call(caller, callee, Duration::from_secs(20));
    assert_both_succeeded(&caller, &callee);
    assert!(proxy.wait_exit(Duration::from_secs(10)).is_some());
    let kinds = |path: &Path| -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|e| e["event"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let before = kinds(&rotated);
    let after = kinds(&events);
    assert!(before.contains(&"call_started".to_owned()), "{before:?}");
    assert!(after.contains(&"call_ended".to_owned()), "{after:?}");
    assert!(!before.contains(&"call_ended".to_owned()), "{before:?}");
}

/// A configuration that does not load is refused by SIGHUP with its reason, and nothing
/// changes: the proxy keeps running on what it had.
#[test]
fn a_bad_configuration_on_sighup_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("flows.json"),
        r#"{"numbers": {"1": {"module": "hangup"}}}"#,
    )
    .unwrap();
    write_config(dir.path(), "");
    let config = dir.path().join("proxy.toml");
    let mut proxy = Proxy::start(&[
        "--config",
        config.to_str().unwrap(),
        "--api-auth-token",
        TOKEN,
    ]);
    write_config(
        dir.path(),
        "scanner-user-agents = [\"evil-dialer\"]\nmax-calls = 0\n",
    );
    signal(&proxy, "HUP");
    wait_until("the refusal", &proxy, || {
        proxy.output().contains("the configuration does not load")
    });
    assert!(
        proxy.output().contains("max-calls"),
        "the reason names the key"
    );
    assert!(proxy.wait_exit(Duration::from_millis(200)).is_none());
    assert!(
        options_answered(&proxy, "Evil-Dialer/1.0"),
        "nothing changed"
    );
    assert_eq!(stored_codes(&proxy), ["1"]);
}

/// The metaflows file owns the document it stored: given, it is the default account's
/// metaflows; no longer given, that document is emptied at the next start, unless it was
/// edited through the API meanwhile (then it stays, the API's now).
#[test]
fn the_metaflows_file_owns_what_it_stored() {
    let dir = tempfile::tempdir().unwrap();
    let flows = dir.path().join("flows.json");
    std::fs::write(&flows, r#"{"numbers": {"1": {"module": "hangup"}}}"#).unwrap();
    let flows = flows.to_str().unwrap().to_owned();
    let mut proxy = Proxy::start(&["--api-auth-token", TOKEN, "--metaflows", &flows]);
    assert_eq!(stored_codes(&proxy), ["1"]);
    proxy.kill_and_restart(&["--api-auth-token", TOKEN]);
    assert!(stored_codes(&proxy).is_empty(), "dropped with the file");

    proxy.kill_and_restart(&["--api-auth-token", TOKEN, "--metaflows", &flows]);
    assert_eq!(stored_codes(&proxy), ["1"]);
    let edit = r#"{"data": {"numbers": {"7": {"module": "hangup"}}}}"#;
    let reply = proxy.api("POST", METAFLOWS, Some(TOKEN), Some(edit));
    assert_eq!(reply.status, 200, "{}", reply.body);
    proxy.kill_and_restart(&["--api-auth-token", TOKEN]);
    assert_eq!(stored_codes(&proxy), ["7"], "an API edit is kept");
}
