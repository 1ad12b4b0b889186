//! Replays the digits found in a capture through the metaflow engine, so an operator can see
//! what the proxy would have executed on that call and why.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::base::Leg;
use crate::metaflow::{Collector, Decision, Metaflows};

use super::report::{AnalyzeReport, StreamId};

/// One engine decision taken while replaying a stream's digits.
#[derive(Debug, Clone)]
pub struct ReplayDecision {
    /// The stream whose digits led to it.
    pub stream: StreamId,
    /// Seconds since the capture start at which it was taken.
    pub time_s: f64,
    /// The decision itself.
    pub decision: Decision,
}

/// A stream, its sending leg, and its digits with their capture times (µs).
type StreamDigits = (StreamId, Leg, Vec<(u64, char)>);

/// Feeds every stream's digits (in capture time) to its own collector. The stream's sender is
/// the leg (a-leg when the capture has no SIP to tell); the metaflow is owned by the a-leg, as an
/// account-level metaflow is.
pub fn replay(report: &AnalyzeReport, flows: &Arc<Metaflows>) -> Vec<ReplayDecision> {
    let base = Instant::now();
    let mut per_stream: BTreeMap<String, StreamDigits> = BTreeMap::new();
    for d in report.digits() {
        let leg = d.sender_leg.unwrap_or(Leg::A);
        per_stream
            .entry(d.stream.to_string())
            .or_insert_with(|| (d.stream, leg, Vec::new()))
            .2
            .push((d.at_us, d.digit));
    }
    let start_us = report.capture_start_us;
    let to_s = |at: Instant| at.saturating_duration_since(base).as_secs_f64();
    let mut out = Vec::new();
    for (_, (stream, leg, digits)) in per_stream {
        let mut collector = Collector::new(flows.clone(), Leg::A);
        let mut push = |at: Instant, decisions: Vec<Decision>| {
            for decision in decisions {
                out.push(ReplayDecision {
                    stream,
                    time_s: to_s(at),
                    decision,
                });
            }
        };
        for (at_us, digit) in digits {
            let now = base + Duration::from_micros(at_us.saturating_sub(start_us));
            while let Some(due) = collector.poll_timeout().filter(|due| *due <= now) {
                let decisions = collector.on_timeout(due);
                push(due, decisions);
            }
            let outcome = collector.on_digit(leg, digit, now);
            push(now, outcome.decisions);
        }
        while let Some(due) = collector.poll_timeout() {
            let decisions = collector.on_timeout(due);
            push(due, decisions);
        }
    }
    out
}

/// The decision as a JSON line object (`match`, `no_match`, `armed`, `release`).
pub fn decision_json(d: &ReplayDecision) -> Value {
    let stream = d.stream.to_string();
    match &d.decision {
        Decision::Armed { leg } => {
            json!({"type": "armed", "stream": stream, "time": d.time_s, "leg": leg.as_str()})
        }
        Decision::Match {
            leg,
            collected,
            node,
            captures,
            matched,
            early,
        } => json!({
            "type": "match", "stream": stream, "time": d.time_s, "leg": leg.as_str(),
            "collected": collected, "matched": matched, "captures": captures,
            "module": node.module, "data": node.data, "early": early,
        }),
        Decision::NoMatch { leg, collected } => json!({
            "type": "no_match", "stream": stream, "time": d.time_s, "leg": leg.as_str(),
            "collected": collected,
        }),
        Decision::Release { leg, digits } => json!({
            "type": "release", "stream": stream, "time": d.time_s, "leg": leg.as_str(),
            "digits": digits,
        }),
    }
}

/// The decision as a line of text for people.
pub fn decision_text(d: &ReplayDecision) -> String {
    let head = format!("{:>9.3}s {}", d.time_s, d.stream);
    match &d.decision {
        Decision::Armed { leg } => {
            format!("{head}: {}-leg armed by the binding digit", leg.as_str())
        }
        Decision::Match {
            leg,
            collected,
            node,
            matched,
            early,
            ..
        } => format!(
            "{head}: MATCH {}-leg dialed {collected:?}, matched {matched:?} -> module {} ({})",
            leg.as_str(),
            node.module,
            if *early {
                "decided at the last digit"
            } else {
                "after digit_timeout"
            }
        ),
        Decision::NoMatch { leg, collected } => format!(
            "{head}: no match for {collected:?} dialed by the {}-leg",
            leg.as_str()
        ),
        Decision::Release { leg, digits } => {
            format!(
                "{head}: released held digits {digits:?} of the {}-leg",
                leg.as_str()
            )
        }
    }
}
