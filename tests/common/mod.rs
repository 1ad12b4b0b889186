//! Test harness for end-to-end calls through metaflow-proxy: starts the proxy with its own
//! ports and data directory, runs SIPp scenarios from `tests/sipp/` around it, and captures the
//! RTP the endpoints receive with tshark. Some tests drive real softphones (baresip) and a real
//! Kamailio instead of SIPp.
//!
//! Tests run in parallel safely: every call takes its own block of ports (see [`ports`]), every
//! proxy its own temporary data directory, every SIPp and tshark its own temporary log directory.
//! A test that needs SIPp or tshark fails loudly when the tool is missing; it never passes
//! silently.

#![allow(dead_code)] // each test binary uses its own subset of the harness

pub mod baresip;
pub mod calls;
pub mod capture;
pub mod kamailio;
pub mod ports;
pub mod postgres;
pub mod proxy;
pub mod raw_http;
pub mod receiver;
pub mod rtp_party;
pub mod sipp;
pub mod tones;

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// Starts a peer (`what`: kamailio, baresip) as the leader of its own process group, so that
/// stopping it stops its children too, with no input and its output and errors in `log`;
/// panics naming `what` when it cannot start.
pub fn spawn_peer(command: &mut Command, log: File, what: &str) -> Child {
    command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {what}: {err}"))
}

/// Panics with an install hint unless `tool` can be run (`sipp`, `tshark`, `kamailio`,
/// `baresip`, `promtool`).
pub fn require_tool(tool: &str) {
    let probe = match tool {
        "sipp" | "kamailio" => "-v",
        _ => "--version",
    };
    let found = Command::new(tool)
        .arg(probe)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    let hint = match tool {
        "sipp" => "apt-get install sip-tester",
        "tshark" => "apt-get install tshark (and run as root or in the wireshark group)",
        "kamailio" => "apt-get install kamailio",
        "baresip" => "apt-get install baresip",
        "promtool" => "apt-get install prometheus",
        _ => "install it",
    };
    assert!(found, "{tool} not found: {hint}");
}
