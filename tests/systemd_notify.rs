//! The systemd notify protocol (`Type=notify`, `WatchdogSec=`), tested against a socket of our
//! own standing in for systemd: READY once the proxy serves, watchdog pings while it runs,
//! RELOADING then READY around a SIGHUP, STOPPING on SIGTERM.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::ports::CallPorts;

const BIN: &str = env!("CARGO_BIN_EXE_metaflow-proxy");

/// Every notification received until `until` says a message containing `wanted` arrived (or
/// 10 s passed); returns them all.
fn collect_until(socket: &UnixDatagram, got: &mut Vec<String>, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let done = text.contains(wanted);
            got.push(text);
            if done {
                return;
            }
        }
    }
    panic!("no {wanted} among {got:?}");
}

#[test]
fn ready_watchdog_reloading_and_stopping_reach_the_service_manager() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let ports = CallPorts::reserve();
    let sip = format!("127.0.0.1:{}", ports.proxy_sip);
    let api = format!("127.0.0.1:{}", ports.api);
    // systemd sets WATCHDOG_PID to the service's pid: the shell's $$ becomes the proxy's pid
    // through exec.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" \"$@\"")
        .arg(BIN)
        .args(["--sip-listen", &sip, "--api-listen", &api])
        .args(["--rtp-ports", &ports.rtp_range(), "--shutdown-grace", "0"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut got = Vec::new();
    collect_until(&socket, &mut got, "READY=1");
    assert!(
        got.iter().any(|m| m.contains("STATUS=serving SIP")),
        "{got:?}"
    );
    got.clear();
    collect_until(&socket, &mut got, "WATCHDOG=1");
    collect_until(&socket, &mut got, "WATCHDOG=1");

    got.clear();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    collect_until(&socket, &mut got, "RELOADING=1");
    assert!(
        got.iter().any(|m| m.contains("MONOTONIC_USEC=")),
        "RELOADING carries the monotonic time newer systemd asks for: {got:?}"
    );
    collect_until(&socket, &mut got, "READY=1");

    got.clear();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    collect_until(&socket, &mut got, "STOPPING=1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the proxy did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}
