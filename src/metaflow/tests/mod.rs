//! Unit tests of the metaflow engine, driven by a fake clock.

mod collector_tests;
mod early_tests;
mod engine_tests;
mod validate_tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::base::Leg;
use crate::metaflow::{Collector, Decision, Metaflows, parse_metaflows};

/// Parses a metaflow document that must be valid.
pub(super) fn flows(json: Value) -> Arc<Metaflows> {
    Arc::new(parse_metaflows(&json).unwrap())
}

/// A fake clock: instants as milliseconds after a fixed origin.
pub(super) struct Clock(Instant);

impl Clock {
    pub(super) fn new() -> Self {
        Self(Instant::now())
    }

    pub(super) fn at(&self, millis: u64) -> Instant {
        self.0 + Duration::from_millis(millis)
    }
}

/// Presses `digits` on `leg` starting at `start_ms`, one every `step_ms`; returns all decisions.
pub(super) fn press(
    collector: &mut Collector,
    clock: &Clock,
    leg: Leg,
    digits: &str,
    start_ms: u64,
    step_ms: u64,
) -> Vec<Decision> {
    let mut decisions = Vec::new();
    for (index, digit) in digits.chars().enumerate() {
        let now = clock.at(start_ms + step_ms * index as u64);
        decisions.extend(collector.on_digit(leg, digit, now).decisions);
    }
    decisions
}

/// The (leg, collected, matched, captures, early) of a decision that must be a match.
pub(super) fn match_parts(decision: &Decision) -> (Leg, &str, &str, Vec<&str>, bool) {
    match decision {
        Decision::Match {
            leg,
            collected,
            matched,
            captures,
            early,
            ..
        } => (
            *leg,
            collected.as_str(),
            matched.as_str(),
            captures.iter().map(String::as_str).collect(),
            *early,
        ),
        other => panic!("expected a match, got {other:?}"),
    }
}
