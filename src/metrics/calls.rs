//! Counts the feature series from the typed [`CallEvent`]s the shell publishes, so that the
//! event log, the live-call view and the metrics can never disagree about what happened.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::base::{CallEvent, Leg};

use super::FeatureMetrics;

/// Turns call events into counts and latencies. It keeps, per call in progress, the instant of
/// the last digit of each leg and of a pending decision; they go when the call ends.
#[derive(Debug)]
pub struct CallEventMetrics {
    metrics: Arc<FeatureMetrics>,
    /// When the last key press of each call and leg arrived: the one that decides a code
    /// dialed on that leg.
    last_digit: HashMap<(String, Leg), Instant>,
    /// Calls whose code matched and whose module has not started yet: the deciding digit.
    deciding_digit: HashMap<String, Instant>,
}

impl CallEventMetrics {
    /// Counts into `metrics`.
    pub fn new(metrics: Arc<FeatureMetrics>) -> Self {
        CallEventMetrics {
            metrics,
            last_digit: HashMap::new(),
            deciding_digit: HashMap::new(),
        }
    }

    /// Accounts for `event` of call `call_id`, published at `now`.
    pub fn observe(&mut self, call_id: &str, event: &CallEvent, now: Instant) {
        let m = &self.metrics;
        match event {
            CallEvent::Digit { leg, source, .. } => {
                m.digit(*leg, source);
                self.last_digit.insert((call_id.to_owned(), *leg), now);
            }
            CallEvent::MetaflowMatch {
                leg, module, early, ..
            } => {
                m.matched(module, *early);
                if let Some(at) = self.last_digit.remove(&(call_id.to_owned(), *leg)) {
                    self.deciding_digit.insert(call_id.to_owned(), at);
                }
            }
            CallEvent::MetaflowNoMatch { leg, .. } => {
                m.no_match(*leg);
                self.last_digit.remove(&(call_id.to_owned(), *leg));
            }
            // Only a module started by a dialed code has a deciding digit; one run through the
            // API has none and is not a decision.
            CallEvent::ModuleRun { .. } => {
                if let Some(at) = self.deciding_digit.remove(call_id) {
                    m.decision(now.saturating_duration_since(at));
                }
            }
            CallEvent::ModuleOutcome { module, outcome } => m.module_run(module, outcome),
            CallEvent::RecordingStarted { .. } => m.recording_started(),
            CallEvent::RecordingStopped { bytes, dropped, .. } => {
                m.recording_finished(*bytes, *dropped)
            }
            CallEvent::RecordingFailed { .. } => m.recording_failed(),
            CallEvent::RecordingMasked { recording, .. } => m.recording_mask(true, *recording),
            CallEvent::RecordingUnmasked { recording, .. } => m.recording_mask(false, *recording),
            CallEvent::RecordingDiscarded { .. } => m.recording_discarded(),
            CallEvent::TransferSucceeded { .. } => m.transfer("succeeded"),
            CallEvent::TransferFailed { .. } => m.transfer("failed"),
            CallEvent::TransferWithdrawn { .. } => m.transfer("withdrawn"),
            CallEvent::Playback { source, state, .. } => m.playback(source, state),
            CallEvent::CallEnded { .. } => {
                for leg in [Leg::A, Leg::B] {
                    self.last_digit.remove(&(call_id.to_owned(), leg));
                }
                self.deciding_digit.remove(call_id);
            }
            _ => {}
        }
    }
}
