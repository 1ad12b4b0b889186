//! One call between two SIPp parties through a proxy, and what it leaves behind: the messages
//! each party saw, the proxy's event log and its active-call gauge.

use std::ops::Deref;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::ports::CallPorts;
use super::proxy::{Proxy, metric_sum};
use super::sipp::{RunningSipp, Sipp, SippResult, header, sdp_audio_port, sdp_connection_ip};

/// How long the proxy may take to report no active call once both parties have exited.
const IDLE_WAIT: Duration = Duration::from_secs(2);
/// How often the event log and the metrics are read again while waiting on them.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A proxy started with a `--metaflows` file. The file lives in its own temporary directory,
/// outside the proxy's data directory, for as long as the proxy; the proxy itself is reached
/// through `Deref`.
pub struct MetaflowsProxy {
    proxy: Proxy,
    _metaflows_dir: tempfile::TempDir,
}

impl MetaflowsProxy {
    /// Writes `metaflows` (JSON text, checked to parse) to a file and starts a proxy with it.
    pub fn start(metaflows: &str) -> MetaflowsProxy {
        serde_json::from_str::<Value>(metaflows).expect("test metaflows must be JSON");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("metaflows.json");
        std::fs::write(&file, metaflows).unwrap();
        let proxy = Proxy::start(&["--metaflows", file.to_str().unwrap()]);
        MetaflowsProxy {
            proxy,
            _metaflows_dir: dir,
        }
    }
}

impl Deref for MetaflowsProxy {
    type Target = Proxy;

    fn deref(&self) -> &Proxy {
        &self.proxy
    }
}

/// The callee of a call through `proxy`: scenario `uas` on the proxy's upstream port and the
/// callee's media port, not started yet.
pub fn callee(proxy: &Proxy, uas: &str, sipp_timeout_secs: u32) -> Sipp {
    Sipp::uas(uas)
        .local_port(proxy.upstream_port())
        .media_port(proxy.ports().uas_media)
        .timeout_secs(sipp_timeout_secs)
}

/// The caller of a call through `proxy`: scenario `uac` towards the proxy's SIP address from
/// the caller's SIP and media ports, not started yet.
pub fn caller(proxy: &Proxy, uac: &str, sipp_timeout_secs: u32) -> Sipp {
    let ports = proxy.ports();
    Sipp::uac(uac, &proxy.sip_addr())
        .local_port(ports.uac_sip)
        .media_port(ports.uac_media)
        .timeout_secs(sipp_timeout_secs)
}

/// Starts the callee (`uas`) and then the caller (`uac`) through `proxy`; returns
/// (caller, callee).
pub fn spawn_call(
    proxy: &Proxy,
    uas: &str,
    uac: &str,
    sipp_timeout_secs: u32,
) -> (RunningSipp, RunningSipp) {
    let callee = callee(proxy, uas, sipp_timeout_secs).spawn();
    let caller = caller(proxy, uac, sipp_timeout_secs).spawn();
    (caller, callee)
}

/// Waits for the caller and then the callee (each killed after `run_limit`); returns
/// (caller, callee) whatever their outcome.
pub fn wait_call(
    caller: RunningSipp,
    callee: RunningSipp,
    run_limit: Duration,
) -> (SippResult, SippResult) {
    let caller = caller.wait(run_limit);
    let callee = callee.wait(run_limit);
    (caller, callee)
}

/// Both SIPp runs succeeded (each panics with its logs otherwise, the caller first).
pub fn assert_both_succeeded(caller: &SippResult, callee: &SippResult) {
    // When both failed, the callee's log usually explains the caller's (a callee that never
    // listened leaves the proxy only a 408 to give): report it first.
    if !caller.success && !callee.success {
        callee.assert_success("callee (UAS), the caller failed too");
    }
    caller.assert_success("caller (UAC)");
    callee.assert_success("callee (UAS)");
}

/// Runs the callee scenario then the caller scenario through `proxy`, waits for both,
/// requires both to exit 0 and returns (caller, callee).
pub fn run_call(
    proxy: &Proxy,
    uas: &str,
    uac: &str,
    sipp_timeout_secs: u32,
    run_limit: Duration,
) -> (SippResult, SippResult) {
    let (caller, callee) = spawn_call(proxy, uas, uac, sipp_timeout_secs);
    let (caller, callee) = wait_call(caller, callee, run_limit);
    assert_both_succeeded(&caller, &callee);
    (caller, callee)
}

/// Every event of the proxy's `events.jsonl` once each event named in `wanted` is logged;
/// panics with what the log holds after `within`.
pub fn wait_for_events(proxy: &Proxy, wanted: &[&str], within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let events = proxy.events();
        if wanted.iter().all(|name| !named(&events, name).is_empty()) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "events.jsonl lacks one of {wanted:?}: {events:#?}"
        );
        thread::sleep(POLL_INTERVAL);
    }
}

/// The events named `name`, in order.
pub fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|event| event["event"] == name)
        .collect()
}

/// Waits (2 s) until `/metrics` reports no active call: both legs are gone.
pub fn assert_no_active_call(proxy: &Proxy) {
    let deadline = Instant::now() + IDLE_WAIT;
    loop {
        let text = proxy.metrics();
        if metric_sum(&text, "metaflow_proxy_active_calls", &[]) == Some(0.0) {
            return;
        }
        assert!(Instant::now() < deadline, "calls still active:\n{text}");
        thread::sleep(POLL_INTERVAL);
    }
}

/// Whether `party` received a BYE request.
pub fn got_bye(party: &SippResult) -> bool {
    party.received().iter().any(|m| m.starts_with("BYE "))
}

/// Whether `party` sent a BYE request.
pub fn sent_bye(party: &SippResult) -> bool {
    party.sent().iter().any(|m| m.starts_with("BYE "))
}

/// The Call-ID of the caller's INVITE: the call's id in events, channels and sidecars.
pub fn caller_call_id(caller: &SippResult) -> String {
    let invite = caller
        .sent()
        .into_iter()
        .find(|message| message.starts_with("INVITE "))
        .expect("the caller sent no INVITE");
    header(&invite, "Call-ID").expect("INVITE without Call-ID")
}

/// `message`, an offer or answer the proxy sent (`what` names it), carries SDP that points at
/// the proxy: connection address 127.0.0.1 and an audio port in the proxy's RTP range.
pub fn assert_sdp_anchored(ports: &CallPorts, what: &str, message: &str) {
    assert_eq!(
        sdp_connection_ip(message).as_deref(),
        Some("127.0.0.1"),
        "{what}:\n{message}"
    );
    let port = sdp_audio_port(message).unwrap_or_else(|| panic!("{what}: no m=audio"));
    assert!(
        ports.in_rtp_range(port),
        "{what}: m=audio {port} is not in the proxy's range {}:\n{message}",
        ports.rtp_range()
    );
}
