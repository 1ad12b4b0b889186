//! `/metrics` after a scripted call: the caller dials `*9` with RFC 4733 events, the code
//! matches at once and runs `record_call`, the recording ends at its 2 s time limit, the caller
//! hangs up; then an API request by id. Every feature series must be there (non-zero where the
//! call made it so), and the whole scrape must pass `promtool check metrics` (Debian's
//! `prometheus` package). Scenarios: `record_uac_star9_bye.xml`, `uas_pcap.xml`. Needs `sipp`,
//! `promtool`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::calls::{MetaflowsProxy, assert_no_active_call, run_call, wait_for_events};
use common::proxy::metric_sum;

/// Limit for one SIPp run (the scenario lasts about 6 s).
const RUN_LIMIT: Duration = Duration::from_secs(20);
/// SIPp's own timeout: a message that never comes fails the run before [`RUN_LIMIT`].
const SIPP_TIMEOUT_SECS: u32 = 18;
/// How long the event log may take to show the end of the call and of its recording.
const EVENT_WAIT: Duration = Duration::from_secs(5);

/// `*9` records, for at most 2 s.
const RECORD_ON_9: &str = r#"{"numbers":{"9":{"module":"record_call","data":{"time_limit":2}}}}"#;

/// The value of the series `name` with `labels`; panics with the scrape when it is missing.
fn series(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metric_sum(metrics, name, labels)
        .unwrap_or_else(|| panic!("no series {name}{labels:?} in /metrics:\n{metrics}"))
}

/// Like [`series`], and the value must be above zero.
fn positive(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    let value = series(metrics, name, labels);
    assert!(value > 0.0, "{name}{labels:?} is {value}:\n{metrics}");
    value
}

/// Pipes `metrics` to `promtool check metrics`; panics with its report unless it passes.
fn assert_promtool_accepts(metrics: &str) {
    common::require_tool("promtool");
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must run");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}\n--- scrape ---\n{metrics}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_call_with_a_code_and_a_recording_shows_in_every_feature_series_and_passes_promtool() {
    common::require_tool("promtool");
    let proxy = MetaflowsProxy::start(RECORD_ON_9);
    run_call(
        &proxy,
        "uas_pcap.xml",
        "record_uac_star9_bye.xml",
        SIPP_TIMEOUT_SECS,
        RUN_LIMIT,
    );
    wait_for_events(&proxy, &["call_ended", "recording_stopped"], EVENT_WAIT);
    assert_no_active_call(&proxy);
    let reply = proxy.api("GET", "/v2/accounts/0123456789abcdef/metaflows", None, None);
    let api_status = reply.status.to_string();
    let m = proxy.metrics();

    // Digits and the decision.
    let rfc4733_a = ["source=\"rfc4733\"", "leg=\"a\""];
    assert_eq!(
        positive(&m, "metaflow_proxy_dtmf_digits_total", &rfc4733_a),
        2.0
    );
    series(&m, "metaflow_proxy_dtmf_digits_total", &["source=\"info\""]);
    let matched = ["module=\"record_call\"", "early=\"true\""];
    assert_eq!(
        positive(&m, "metaflow_proxy_metaflow_matches_total", &matched),
        1.0
    );
    series(
        &m,
        "metaflow_proxy_metaflow_no_matches_total",
        &["leg=\"a\""],
    );
    let decided = "metaflow_proxy_metaflow_decision_seconds_count";
    assert_eq!(positive(&m, decided, &[]), 1.0);
    positive(
        &m,
        "metaflow_proxy_metaflow_decision_seconds_bucket",
        &["le=\"+Inf\""],
    );
    series(&m, "metaflow_proxy_metaflow_decision_seconds_sum", &[]);

    // The module and its recording.
    let module = ["module=\"record_call\""];
    positive(&m, "metaflow_proxy_module_runs_total", &module);
    assert_eq!(
        positive(&m, "metaflow_proxy_recordings_started_total", &[]),
        1.0
    );
    // A 2 s stereo WAV of 16-bit samples holds far more than 1 KiB.
    assert!(positive(&m, "metaflow_proxy_recording_bytes_total", &[]) > 1024.0);
    series(&m, "metaflow_proxy_recording_dropped_packets_total", &[]);
    assert_eq!(
        series(&m, "metaflow_proxy_recording_write_failures_total", &[]),
        0.0
    );
    for outcome in ["succeeded", "failed", "withdrawn"] {
        let label = format!("outcome=\"{outcome}\"");
        series(&m, "metaflow_proxy_transfers_total", &[label.as_str()]);
    }

    // SIP transactions of the proxy's own requests: the INVITE and the BYE towards the PBX.
    let invite = ["method=\"INVITE\""];
    let txn = "metaflow_proxy_sip_transaction_seconds_count";
    positive(&m, txn, &invite);
    positive(&m, txn, &["method=\"BYE\""]);
    series(&m, "metaflow_proxy_sip_transaction_seconds_sum", &invite);

    // The API request, by its route template, never by the raw path.
    let route = [
        "route=\"/v2/accounts/{account_id}/metaflows\"",
        "method=\"GET\"",
    ];
    let status = format!("status=\"{api_status}\"");
    let mut labels = route.to_vec();
    labels.push(status.as_str());
    assert_eq!(
        positive(&m, "metaflow_proxy_api_requests_total", &labels),
        1.0
    );
    assert!(
        !m.contains("0123456789abcdef"),
        "a raw path became a label:\n{m}"
    );

    // Process series.
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "process_threads",
        "process_virtual_memory_bytes",
    ] {
        positive(&m, name, &[]);
    }
    series(&m, "process_cpu_seconds_total", &[]);

    // Series that existed before keep their names and labels.
    series(&m, "metaflow_proxy_active_calls", &[]);
    positive(&m, "metaflow_proxy_calls_total", &["outcome=\"answered\""]);
    series(
        &m,
        "metaflow_proxy_sip_dropped_total",
        &["reason=\"scanner\""],
    );
    positive(
        &m,
        "metaflow_proxy_rtp_packets_total",
        &["direction=\"b_to_a\""],
    );

    assert_promtool_accepts(&m);
}
