//! `ctl stats`: a short human summary of `GET /metrics` (the Prometheus text exposition): active
//! calls, calls by outcome, DTMF digits, metaflow module runs and what was dropped.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Map, Value, json};

use super::{Api, CtlError};

/// One sample: the metric name, its labels, its value.
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Sample {
    fn label(&self, key: &str) -> &str {
        self.labels
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
            .unwrap_or("")
    }
}

/// The samples of an exposition; comments and lines that do not parse are skipped.
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.trim().rsplit_once(' ')?;
            let value = value.parse::<f64>().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)),
                None => (series, Vec::new()),
            };
            Some(Sample {
                name: name.to_owned(),
                labels,
                value,
            })
        })
        .collect()
}

/// `a="x",b="y"` (the proxy's label values hold no quotes or commas).
fn parse_labels(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((
                key.trim().to_owned(),
                value.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect()
}

/// Sums of metric `name` per value of label `by` (all of them under `""` when `by` is empty).
fn by_label(samples: &[Sample], name: &str, by: &str) -> BTreeMap<String, u64> {
    let mut sums = BTreeMap::new();
    for sample in samples.iter().filter(|s| s.name == name) {
        *sums.entry(sample.label(by).to_owned()).or_insert(0) += as_count(sample.value);
    }
    sums
}

fn as_count(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        value.round() as u64
    } else {
        0
    }
}

/// The summary, as the JSON `ctl stats --json` prints.
fn summary(samples: &[Sample]) -> Value {
    let p = "metaflow_proxy_";
    let total = |name: &str| -> u64 { by_label(samples, &format!("{p}{name}"), "").values().sum() };
    let mut module_runs: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for sample in samples
        .iter()
        .filter(|s| s.name == format!("{p}module_runs_total"))
    {
        let runs = module_runs
            .entry(sample.label("module").to_owned())
            .or_default();
        let outcome = sample.label("outcome").to_owned();
        let before = runs.get(&outcome).and_then(Value::as_u64).unwrap_or(0);
        runs.insert(outcome, json!(before + as_count(sample.value)));
    }
    let mut drops = Map::new();
    for (reason, count) in by_label(samples, &format!("{p}rtp_dropped_total"), "reason") {
        drops.insert(format!("rtp_{reason}"), json!(count));
    }
    for (reason, count) in by_label(samples, &format!("{p}sip_dropped_total"), "reason") {
        drops.insert(format!("sip_{reason}"), json!(count));
    }
    drops.insert("sip_malformed".into(), json!(total("sip_malformed_total")));
    for (limit, count) in by_label(samples, &format!("{p}limit_rejections_total"), "limit") {
        drops.insert(format!("limit_{limit}"), json!(count));
    }
    drops.insert("events".into(), json!(total("events_dropped_total")));
    drops.insert(
        "media_events".into(),
        json!(total("media_events_dropped_total")),
    );
    json!({
        "active_calls": total("active_calls"),
        "calls": by_label(samples, &format!("{p}calls_total"), "outcome"),
        "digits": by_label(samples, &format!("{p}dtmf_digits_total"), "source"),
        "module_runs": module_runs,
        "drops": drops,
    })
}

/// `a 1, b 2` for the members of `object` (numbers, or `{outcome: n}` per module).
fn members(object: &Value) -> (u64, String) {
    let mut sum = 0;
    let mut parts = Vec::new();
    for (key, value) in object.as_object().into_iter().flatten() {
        match value {
            Value::Object(inner) => {
                for (outcome, count) in inner {
                    let count = count.as_u64().unwrap_or(0);
                    sum += count;
                    parts.push(format!("{key}/{outcome} {count}"));
                }
            }
            other => {
                let count = other.as_u64().unwrap_or(0);
                sum += count;
                parts.push(format!("{key} {count}"));
            }
        }
    }
    (sum, parts.join(", "))
}

/// `ctl stats`.
pub(super) fn show(api: &Api<'_>, json: bool, out: &mut dyn Write) -> Result<(), CtlError> {
    let answer = api.public("/metrics")?;
    if answer.status != 200 {
        return Err(CtlError::Api {
            status: answer.status,
            message: answer.body.trim().to_owned(),
        });
    }
    let summary = summary(&parse(&answer.body));
    if json {
        writeln!(out, "{summary}")?;
        return Ok(());
    }
    writeln!(out, "active calls: {}", summary["active_calls"])?;
    for (title, key) in [
        ("calls ended", "calls"),
        ("dtmf digits", "digits"),
        ("module runs", "module_runs"),
    ] {
        let (sum, parts) = members(&summary[key]);
        if parts.is_empty() {
            writeln!(out, "{title}: {sum}")?;
        } else {
            writeln!(out, "{title}: {sum} ({parts})")?;
        }
    }
    // Only the kinds of drop that happened: the full list is in --json.
    let mut happened = summary["drops"].clone();
    if let Value::Object(kinds) = &mut happened {
        kinds.retain(|_, count| count.as_u64().unwrap_or(0) > 0);
    }
    let (sum, parts) = members(&happened);
    if parts.is_empty() {
        writeln!(out, "drops: {sum}")?;
    } else {
        writeln!(out, "drops: {sum} ({parts})")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = "# TYPE metaflow_proxy_active_calls gauge\n\
metaflow_proxy_active_calls 2\n\
metaflow_proxy_calls_total{outcome=\"answered\"} 3\n\
metaflow_proxy_calls_total{outcome=\"cancelled\"} 1\n\
metaflow_proxy_dtmf_digits_total{source=\"rfc4733\",leg=\"a\"} 4\n\
metaflow_proxy_dtmf_digits_total{source=\"rfc4733\",leg=\"b\"} 1\n\
metaflow_proxy_module_runs_total{module=\"hangup\",outcome=\"success\"} 2\n\
metaflow_proxy_rtp_dropped_total{reason=\"foreign_source\"} 7\n\
metaflow_proxy_sip_dropped_total{reason=\"scanner\"} 1\n\
metaflow_proxy_sip_malformed_total 0\n\
process_open_fds 26.0\n";

    #[test]
    fn the_exposition_is_summed_by_label() {
        let summary = summary(&parse(EXPOSITION));
        assert_eq!(summary["active_calls"], 2);
        assert_eq!(summary["calls"], json!({"answered": 3, "cancelled": 1}));
        assert_eq!(summary["digits"], json!({"rfc4733": 5}));
        assert_eq!(summary["module_runs"], json!({"hangup": {"success": 2}}));
        assert_eq!(summary["drops"]["rtp_foreign_source"], 7);
        assert_eq!(summary["drops"]["sip_scanner"], 1);
        let (sum, parts) = members(&summary["module_runs"]);
        assert_eq!((sum, parts.as_str()), (2, "hangup/success 2"));
    }
}
