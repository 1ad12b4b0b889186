//! Process-wide counters rendered in the Prometheus text format (version 0.0.4) on `GET /metrics`.
//!
//! Counters are plain atomics so that recording never blocks; other parts of the proxy (the media
//! engine, the event log) add their own figures through [`MetricsSource`]. The feature's series
//! and the `process_*` series live in a `prometheus-client` registry rendered after them (see
//! docs/DECISIONS.md, "Metrics").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use prometheus_client::registry::Registry;

mod calls;
mod exposition;
mod feature;
pub mod process;

#[cfg(test)]
mod feature_tests;
#[cfg(test)]
mod tests;

pub use calls::CallEventMetrics;
pub use exposition::{write_header, write_sample};
pub use feature::{FeatureMetrics, TRANSFER_OUTCOMES, WEBHOOK_RESULTS};

/// Prefix of every metric name the proxy exposes.
pub const PREFIX: &str = "metaflow_proxy_";

/// SIP methods counted under their own label; any other method is counted as `other`.
const KNOWN_METHODS: [&str; 14] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "REFER",
    "NOTIFY",
    "SUBSCRIBE",
    "INFO",
    "UPDATE",
    "PRACK",
    "MESSAGE",
    "PUBLISH",
];
/// Slots per method counter: the known methods and `other`.
const METHOD_SLOTS: usize = KNOWN_METHODS.len() + 1;
/// Labels of the response-class counters: 1xx to 6xx, then `other` for codes outside 100-699.
const RESPONSE_CLASSES: [&str; 7] = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "other"];

/// How a call ended, for `calls_total{outcome=...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// The call was answered (2xx to the INVITE) and later ended.
    Answered,
    /// The caller cancelled before an answer.
    Cancelled,
    /// The callee or the proxy answered the INVITE with a final error (including 503 at capacity).
    Rejected,
    /// The call failed for a network or internal reason.
    Failed,
    /// The call ended because a SIP or media timer expired.
    Timeout,
}

impl CallOutcome {
    /// Every outcome, in the order they are rendered.
    pub const ALL: [CallOutcome; 5] = [
        CallOutcome::Answered,
        CallOutcome::Cancelled,
        CallOutcome::Rejected,
        CallOutcome::Failed,
        CallOutcome::Timeout,
    ];

    /// The label value used in metrics and events.
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Answered => "answered",
            CallOutcome::Cancelled => "cancelled",
            CallOutcome::Rejected => "rejected",
            CallOutcome::Failed => "failed",
            CallOutcome::Timeout => "timeout",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// A label that names no [`CallOutcome`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown call outcome \"{0}\"")]
pub struct UnknownOutcome(pub String);

impl TryFrom<&str> for CallOutcome {
    type Error = UnknownOutcome;

    /// Reads a label as written by [`CallOutcome::as_str`].
    fn try_from(label: &str) -> Result<Self, Self::Error> {
        CallOutcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == label)
            .ok_or_else(|| UnknownOutcome(label.to_owned()))
    }
}

/// Anything that adds its own figures to `GET /metrics`, e.g. the media engine's packet counters.
pub trait MetricsSource: Send + Sync {
    /// Appends complete metric families (with `# HELP` and `# TYPE`) to `out`; use
    /// [`write_header`] and [`write_sample`] so names and escaping stay consistent.
    fn render_prometheus(&self, out: &mut String);
}

/// Counters shared by the whole process (wrap it in an `Arc`).
pub struct Metrics {
    active_calls: AtomicU64,
    calls_total: [AtomicU64; CallOutcome::ALL.len()],
    sip_in_requests: [AtomicU64; METHOD_SLOTS],
    sip_out_requests: [AtomicU64; METHOD_SLOTS],
    sip_in_responses: [AtomicU64; RESPONSE_CLASSES.len()],
    sip_out_responses: [AtomicU64; RESPONSE_CLASSES.len()],
    sip_malformed: AtomicU64,
    sources: RwLock<Vec<Arc<dyn MetricsSource>>>,
    /// The `prometheus-client` registry: the feature families and the process collector.
    registry: Registry,
    /// Handles on the feature families registered in `registry`.
    feature: Arc<FeatureMetrics>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(process::ProcessCollector));
        let feature = FeatureMetrics::register(registry.sub_registry_with_prefix("metaflow_proxy"));
        Metrics {
            active_calls: AtomicU64::default(),
            calls_total: Default::default(),
            sip_in_requests: Default::default(),
            sip_out_requests: Default::default(),
            sip_in_responses: Default::default(),
            sip_out_responses: Default::default(),
            sip_malformed: AtomicU64::default(),
            sources: RwLock::default(),
            registry,
            feature: Arc::new(feature),
        }
    }
}

/// Index of `method` in the method counters; unknown methods share the last slot.
fn method_slot(method: &str) -> usize {
    KNOWN_METHODS
        .iter()
        .position(|known| *known == method)
        .unwrap_or(KNOWN_METHODS.len())
}

/// Index of a status code's class; codes outside 100-699 share the last slot.
fn class_slot(code: u16) -> usize {
    match code {
        100..=699 => usize::from(code / 100 - 1),
        _ => RESPONSE_CLASSES.len() - 1,
    }
}

/// Adds one to the counter at `slot` if it exists.
fn bump(counters: &[AtomicU64], slot: usize) {
    if let Some(counter) = counters.get(slot) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Creates zeroed counters with no extra sources; share it as `Arc<Metrics>`.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Registers a source whose figures are appended to every rendering.
    pub fn add_source(&self, source: Arc<dyn MetricsSource>) {
        self.sources
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(source);
    }

    /// The feature families (digits, modules, recordings, API, histograms), shared.
    pub fn feature(&self) -> Arc<FeatureMetrics> {
        self.feature.clone()
    }

    /// A request with `method` that the proxy sent got its final response after `elapsed`.
    pub fn record_sip_transaction(&self, method: &str, elapsed: Duration) {
        let method = KNOWN_METHODS
            .iter()
            .find(|known| **known == method)
            .copied()
            .unwrap_or("other");
        self.feature.sip_transaction(method, elapsed);
    }

    /// A call was accepted and is now in progress.
    pub fn call_started(&self) {
        self.active_calls.fetch_add(1, Ordering::Relaxed);
    }

    /// A call that was counted by [`Metrics::call_started`] ended with `outcome`: a
    /// [`CallOutcome`] or its label (`"answered"`, `"timeout"`, ...). A label outside the known
    /// set counts as `failed`, so that every ended call is counted once.
    pub fn call_ended(&self, outcome: impl TryInto<CallOutcome>) {
        let outcome = outcome.try_into().unwrap_or(CallOutcome::Failed);
        // Saturating: a mismatched end must not wrap the gauge to 2^64.
        let _ = self
            .active_calls
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        self.record_call_outcome(outcome);
    }

    /// An INVITE was refused before a call was set up (capacity, shutdown, unusable SDP):
    /// counted as `rejected` without touching the active-calls gauge.
    pub fn call_refused(&self) {
        self.record_call_outcome(CallOutcome::Rejected);
    }

    /// Counts a call outcome without touching the active-calls gauge.
    pub fn record_call_outcome(&self, outcome: CallOutcome) {
        bump(&self.calls_total, outcome.slot());
    }

    /// Sets the active-calls gauge directly, for owners that track their calls in a map.
    pub fn set_active_calls(&self, count: usize) {
        let count = u64::try_from(count).unwrap_or(u64::MAX);
        self.active_calls.store(count, Ordering::Relaxed);
    }

    /// Calls currently in progress.
    pub fn active_calls(&self) -> u64 {
        self.active_calls.load(Ordering::Relaxed)
    }

    /// Calls that ended with `outcome` so far.
    pub fn calls_total(&self, outcome: CallOutcome) -> u64 {
        self.calls_total
            .get(outcome.slot())
            .map_or(0, |counter| counter.load(Ordering::Relaxed))
    }

    /// A SIP request with `method` (e.g. `"INVITE"`, case-sensitive as in SIP) was received.
    pub fn record_sip_in_request(&self, method: &str) {
        bump(&self.sip_in_requests, method_slot(method));
    }

    /// A SIP request with `method` was sent.
    pub fn record_sip_out_request(&self, method: &str) {
        bump(&self.sip_out_requests, method_slot(method));
    }

    /// A SIP response with status `code` was received.
    pub fn record_sip_in_response(&self, code: u16) {
        bump(&self.sip_in_responses, class_slot(code));
    }

    /// A SIP response with status `code` was sent.
    pub fn record_sip_out_response(&self, code: u16) {
        bump(&self.sip_out_responses, class_slot(code));
    }

    /// A SIP message could not be parsed or validated; it was dropped or answered 400.
    pub fn record_sip_malformed(&self) {
        self.sip_malformed.fetch_add(1, Ordering::Relaxed);
    }

    /// Received requests counted for `method` (`other` methods share one counter).
    pub fn sip_in_requests(&self, method: &str) -> u64 {
        self.sip_in_requests
            .get(method_slot(method))
            .map_or(0, |counter| counter.load(Ordering::Relaxed))
    }

    /// Everything, in the Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let name = "build_info";
        write_header(
            &mut out,
            name,
            "gauge",
            "Version of the running proxy, always 1.",
        );
        write_sample(&mut out, name, &[("version", env!("CARGO_PKG_VERSION"))], 1);

        let name = "active_calls";
        write_header(&mut out, name, "gauge", "Calls currently in progress.");
        write_sample(&mut out, name, &[], self.active_calls());

        let name = "calls_total";
        write_header(&mut out, name, "counter", "Calls ended, by outcome.");
        for outcome in CallOutcome::ALL {
            let labels = [("outcome", outcome.as_str())];
            write_sample(&mut out, name, &labels, self.calls_total(outcome));
        }

        render_by_method(
            &mut out,
            "sip_requests_received_total",
            &self.sip_in_requests,
        );
        render_by_method(&mut out, "sip_requests_sent_total", &self.sip_out_requests);
        render_by_class(
            &mut out,
            "sip_responses_received_total",
            &self.sip_in_responses,
        );
        render_by_class(
            &mut out,
            "sip_responses_sent_total",
            &self.sip_out_responses,
        );

        let name = "sip_malformed_total";
        let help = "SIP messages that could not be parsed or validated (dropped or answered 400).";
        write_header(&mut out, name, "counter", help);
        write_sample(
            &mut out,
            name,
            &[],
            self.sip_malformed.load(Ordering::Relaxed),
        );

        let sources = self.sources.read().unwrap_or_else(PoisonError::into_inner);
        for source in sources.iter() {
            source.render_prometheus(&mut out);
        }
        self.render_registry_into(&mut out);
        out
    }

    /// Appends the `prometheus-client` registry's part of the scrape (the feature families and
    /// the process series) to `out`; also what the scrape-cost measurement times on its own.
    pub fn render_registry_into(&self, out: &mut String) {
        if prometheus_client::encoding::prometheus_text::encode(out, &self.registry).is_err() {
            // Writing to a String cannot fail; a collector that does only loses its own lines.
            tracing::warn!("metrics registry could not be rendered");
        }
    }
}

fn render_by_method(out: &mut String, name: &str, counters: &[AtomicU64]) {
    let direction = if name.contains("received") {
        "received"
    } else {
        "sent"
    };
    let help = format!("SIP requests {direction}, by method.");
    write_header(out, name, "counter", &help);
    let methods = KNOWN_METHODS.iter().chain(std::iter::once(&"other"));
    for (method, counter) in methods.zip(counters) {
        write_sample(
            out,
            name,
            &[("method", method)],
            counter.load(Ordering::Relaxed),
        );
    }
}

fn render_by_class(out: &mut String, name: &str, counters: &[AtomicU64]) {
    let direction = if name.contains("received") {
        "received"
    } else {
        "sent"
    };
    let help = format!("SIP responses {direction}, by status class.");
    write_header(out, name, "counter", &help);
    for (class, counter) in RESPONSE_CLASSES.iter().zip(counters) {
        write_sample(
            out,
            name,
            &[("class", class)],
            counter.load(Ordering::Relaxed),
        );
    }
}
