//! Tests of the feature families, the event-driven counting and the process collector.

use std::time::{Duration, Instant};

use super::process::{parse_boot_time, parse_max_fds, parse_stat};
use super::*;
use crate::base::{CallEvent, Leg};

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn digit(leg: Leg, source: &'static str) -> CallEvent {
    CallEvent::Digit {
        leg,
        digit: '9',
        source,
    }
}

fn matched(early: bool) -> CallEvent {
    CallEvent::MetaflowMatch {
        leg: Leg::A,
        collected: "9".into(),
        matched: "9".into(),
        captures: Vec::new(),
        module: "record_call".into(),
        early,
    }
}

fn module_run() -> CallEvent {
    CallEvent::ModuleRun {
        module: "record_call".into(),
        leg: Leg::A,
        data: Default::default(),
    }
}

#[test]
fn call_events_become_counts_and_the_decision_latency() {
    let metrics = Metrics::new();
    let mut events = CallEventMetrics::new(metrics.feature());
    let t0 = Instant::now();
    events.observe("c1", &digit(Leg::A, "rtp"), t0);
    events.observe("c1", &digit(Leg::A, "rtp"), t0 + Duration::from_millis(300));
    events.observe("c1", &digit(Leg::B, "info"), t0);
    events.observe("c1", &matched(false), t0 + Duration::from_millis(1100));
    events.observe("c1", &module_run(), t0 + Duration::from_millis(1100));
    let outcome = CallEvent::ModuleOutcome {
        module: "record_call".into(),
        outcome: "success".into(),
    };
    events.observe("c1", &outcome, t0);
    let no_match = CallEvent::MetaflowNoMatch {
        leg: Leg::B,
        collected: "7".into(),
    };
    events.observe("c1", &no_match, t0);
    // A module run through the API has no deciding digit: no latency is observed.
    events.observe("c1", &module_run(), t0 + Duration::from_secs(9));
    let stopped = CallEvent::RecordingStopped {
        path: "r.wav".into(),
        sidecar: "r.json".into(),
        reason: "call_ended".into(),
        frames: 10,
        bytes: 4044,
        dropped: 3,
    };
    events.observe("c1", &CallEvent::RecordingStarted { path: "r".into() }, t0);
    events.observe("c1", &stopped, t0);
    let failed = CallEvent::RecordingFailed {
        error: "disk full".into(),
    };
    events.observe("c1", &failed, t0);
    for (masked, recording) in [(true, true), (false, true), (true, false)] {
        let leg = Leg::A;
        let event = if masked {
            CallEvent::RecordingMasked { leg, recording }
        } else {
            CallEvent::RecordingUnmasked { leg, recording }
        };
        events.observe("c1", &event, t0);
    }
    let discarded = CallEvent::RecordingDiscarded {
        duration_ms: 900,
        min_sec: 2,
    };
    events.observe("c1", &discarded, t0);
    let transfer = CallEvent::TransferFailed {
        status: Some(486),
        reason: None,
    };
    events.observe("c1", &transfer, t0);
    let ended = CallEvent::CallEnded {
        outcome: "answered",
        answered: true,
    };
    events.observe("c1", &ended, t0);

    let text = metrics.render();
    let p = "metaflow_proxy_";
    let digits = format!("{p}dtmf_digits_total");
    assert_eq!(
        value(&text, &format!("{digits}{{source=\"rfc4733\",leg=\"a\"}}")),
        Some(2.0)
    );
    assert_eq!(
        value(&text, &format!("{digits}{{source=\"info\",leg=\"b\"}}")),
        Some(1.0)
    );
    assert_eq!(
        value(&text, &format!("{digits}{{source=\"info\",leg=\"a\"}}")),
        Some(0.0)
    );
    let matches = format!("{p}metaflow_matches_total{{module=\"record_call\",early=\"false\"}}");
    assert_eq!(value(&text, &matches), Some(1.0));
    let no_matches = format!("{p}metaflow_no_matches_total{{leg=\"b\"}}");
    assert_eq!(value(&text, &no_matches), Some(1.0));
    let runs = format!("{p}module_runs_total{{module=\"record_call\",outcome=\"success\"}}");
    assert_eq!(value(&text, &runs), Some(1.0));
    assert_eq!(
        value(&text, &format!("{p}metaflow_decision_seconds_count")),
        Some(1.0)
    );
    let sum = value(&text, &format!("{p}metaflow_decision_seconds_sum")).unwrap_or(0.0);
    assert!(
        (sum - 0.8).abs() < 1e-9,
        "latency from the last digit: {sum}"
    );
    let bucket = format!("{p}metaflow_decision_seconds_bucket{{le=\"1\"}}");
    assert_eq!(value(&text, &bucket), Some(1.0), "{text}");
    assert_eq!(
        value(&text, &format!("{p}recordings_started_total")),
        Some(1.0)
    );
    assert_eq!(
        value(&text, &format!("{p}recording_bytes_total")),
        Some(4044.0)
    );
    assert_eq!(
        value(&text, &format!("{p}recording_dropped_packets_total")),
        Some(3.0)
    );
    assert_eq!(
        value(&text, &format!("{p}recording_write_failures_total")),
        Some(1.0)
    );
    let masks = |action: &str, recording: &str| {
        let series =
            format!("{p}recording_masks_total{{action=\"{action}\",recording=\"{recording}\"}}");
        value(&text, &series)
    };
    assert_eq!(masks("mask", "true"), Some(1.0));
    assert_eq!(masks("unmask", "true"), Some(1.0));
    assert_eq!(masks("mask", "false"), Some(1.0));
    assert_eq!(
        value(&text, &format!("{p}recordings_discarded_total")),
        Some(1.0)
    );
    let transfers = format!("{p}transfers_total{{outcome=\"failed\"}}");
    assert_eq!(value(&text, &transfers), Some(1.0));
    let withdrawn = format!("{p}transfers_total{{outcome=\"withdrawn\"}}");
    assert_eq!(value(&text, &withdrawn), Some(0.0));
}

#[test]
fn sip_transactions_and_api_requests_are_labelled_by_bounded_values() {
    let metrics = Metrics::new();
    metrics.record_sip_transaction("INVITE", Duration::from_millis(20));
    metrics.record_sip_transaction("FROBNICATE", Duration::from_millis(20));
    metrics
        .feature()
        .api_request("/v2/accounts/{account_id}", "GET", 200);
    let text = metrics.render();
    let p = "metaflow_proxy_sip_transaction_seconds_count";
    assert_eq!(
        value(&text, &format!("{p}{{method=\"INVITE\"}}")),
        Some(1.0)
    );
    assert_eq!(value(&text, &format!("{p}{{method=\"other\"}}")), Some(1.0));
    let api = "metaflow_proxy_api_requests_total{route=\"/v2/accounts/{account_id}\",\
               method=\"GET\",status=\"200\"}";
    assert_eq!(value(&text, api), Some(1.0), "{text}");
    assert!(text.contains("# TYPE metaflow_proxy_sip_transaction_seconds histogram\n"));
    assert!(text.contains("# TYPE metaflow_proxy_api_requests_total counter\n"));
}

#[test]
fn proc_files_are_parsed_even_with_odd_command_names() {
    let stat = "4242 (metaflow (x) proxy) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                150 50 0 0 20 0 7 0 123456 302075904 4495 18446744073709551615";
    let fields = parse_stat(stat).expect("a valid stat line");
    assert_eq!(fields.cpu_ticks, 200);
    assert_eq!(fields.threads, 7);
    assert_eq!(fields.start_ticks, 123456);
    assert_eq!(fields.virtual_bytes, 302_075_904);
    assert_eq!(fields.rss_pages, 4495);
    assert_eq!(parse_stat("4242 (truncated) S 1 2"), None);
    assert_eq!(parse_stat(""), None);
    assert_eq!(
        parse_boot_time("cpu 1 2 3\nbtime 1700000000\nprocesses 9\n"),
        Some(1_700_000_000)
    );
    let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                  Max open files            20000                524288               files\n";
    assert_eq!(parse_max_fds(limits), Some(20000));
    assert_eq!(
        parse_max_fds("Max open files unlimited unlimited files"),
        None
    );
}

#[cfg(target_os = "linux")]
#[test]
fn process_series_are_rendered_without_the_prefix() {
    let text = Metrics::new().render();
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            text.lines()
                .any(|line| line.starts_with(&format!("{name} "))),
            "{name} missing:\n{text}"
        );
    }
    let rss = value(&text, "process_resident_memory_bytes").unwrap_or(0.0);
    assert!(rss > 1e6, "resident memory {rss}");
}
