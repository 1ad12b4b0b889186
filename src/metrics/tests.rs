//! Tests of the counters and their rendering.

use super::*;

fn sample_value(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn calls_are_counted_by_outcome_and_gauge_saturates() {
    let metrics = Arc::new(Metrics::new());
    metrics.call_started();
    metrics.call_started();
    metrics.call_ended(CallOutcome::Answered);
    metrics.record_call_outcome(CallOutcome::Rejected);
    assert_eq!(metrics.active_calls(), 1);
    metrics.call_ended("timeout");
    metrics.call_ended(CallOutcome::Timeout);
    metrics.call_refused();
    metrics.call_ended("no-such-outcome");
    assert_eq!(metrics.active_calls(), 0);
    let text = metrics.render();
    assert_eq!(sample_value(&text, "metaflow_proxy_active_calls"), Some(0));
    let answered = "metaflow_proxy_calls_total{outcome=\"answered\"}";
    assert_eq!(sample_value(&text, answered), Some(1));
    let timeout = "metaflow_proxy_calls_total{outcome=\"timeout\"}";
    assert_eq!(sample_value(&text, timeout), Some(2));
    let rejected = "metaflow_proxy_calls_total{outcome=\"rejected\"}";
    assert_eq!(sample_value(&text, rejected), Some(2));
    let failed = "metaflow_proxy_calls_total{outcome=\"failed\"}";
    assert_eq!(sample_value(&text, failed), Some(1));
    let cancelled = "metaflow_proxy_calls_total{outcome=\"cancelled\"}";
    assert_eq!(sample_value(&text, cancelled), Some(0));
}

#[test]
fn sip_messages_are_counted_by_method_and_class() {
    let metrics = Arc::new(Metrics::new());
    metrics.record_sip_in_request("INVITE");
    metrics.record_sip_in_request("INVITE");
    metrics.record_sip_in_request("invite");
    metrics.record_sip_in_request("FOO");
    metrics.record_sip_out_response(180);
    metrics.record_sip_out_response(503);
    metrics.record_sip_out_response(999);
    metrics.record_sip_malformed();
    metrics.record_sip_malformed();
    assert_eq!(metrics.sip_in_requests("INVITE"), 2);
    let text = metrics.render();
    let series = |suffix: &str| format!("metaflow_proxy_{suffix}");
    let invite = series("sip_requests_received_total{method=\"INVITE\"}");
    assert_eq!(sample_value(&text, &invite), Some(2));
    let other = series("sip_requests_received_total{method=\"other\"}");
    assert_eq!(sample_value(&text, &other), Some(2));
    let five = series("sip_responses_sent_total{class=\"5xx\"}");
    assert_eq!(sample_value(&text, &five), Some(1));
    let odd = series("sip_responses_sent_total{class=\"other\"}");
    assert_eq!(sample_value(&text, &odd), Some(1));
    let malformed = series("sip_malformed_total");
    assert_eq!(sample_value(&text, &malformed), Some(2));
}

#[test]
fn outcome_labels_round_trip() {
    for outcome in CallOutcome::ALL {
        assert_eq!(CallOutcome::try_from(outcome.as_str()), Ok(outcome));
    }
    assert!(CallOutcome::try_from("Answered").is_err());
}

#[test]
fn every_family_has_help_and_type_before_its_samples() {
    let text = Arc::new(Metrics::new()).render();
    let mut declared: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            declared.push(rest.split(' ').next().unwrap().to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            assert!(
                rest.starts_with(PREFIX) || rest.starts_with("process_"),
                "{line}"
            );
            continue;
        }
        let name = line.split(['{', ' ']).next().unwrap();
        assert!(
            name.starts_with(PREFIX) || name.starts_with("process_"),
            "{line}"
        );
        // A histogram's samples are its family name plus `_bucket`, `_sum` or `_count`.
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|base| declared.iter().any(|family| family == base))
            .unwrap_or(name);
        assert!(
            declared.iter().any(|declared| declared == family),
            "undeclared: {line}"
        );
    }
    assert!(declared.len() >= 8);
}

struct FixedSource;
impl MetricsSource for FixedSource {
    fn render_prometheus(&self, out: &mut String) {
        write_header(out, "rtp_packets_total", "counter", "RTP packets relayed.");
        write_sample(out, "rtp_packets_total", &[("leg", "a\"b\\c\nd")], 42);
    }
}

#[test]
fn sources_are_appended_with_escaped_labels() {
    let metrics = Arc::new(Metrics::new());
    metrics.add_source(Arc::new(FixedSource));
    let text = metrics.render();
    assert!(text.contains("# TYPE metaflow_proxy_rtp_packets_total counter\n"));
    assert!(text.contains("metaflow_proxy_rtp_packets_total{leg=\"a\\\"b\\\\c\\nd\"} 42\n"));
}
