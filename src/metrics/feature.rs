//! The metric families of the feature itself (digits, metaflow decisions, modules, recordings,
//! transfers, API requests, latency histograms), kept in a `prometheus-client` registry so that
//! labels, escaping, histogram buckets and the text format come from a maintained crate.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::base::Leg;

/// Upper bounds (seconds) of the decision-latency buckets: an early match acts within
/// milliseconds, a timed-out code after `digit_timeout` (hundreds of ms to seconds).
const DECISION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0,
];
/// Upper bounds (seconds) of the SIP transaction buckets, from a LAN round trip to Timer B/F.
const TRANSACTION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 32.0,
];

/// A histogram with the SIP transaction buckets, one per method.
fn transaction_histogram() -> Histogram {
    Histogram::new(TRANSACTION_BUCKETS)
}

/// Labels of a key press: how it arrived and on which leg.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DigitLabels {
    /// `rfc4733` (telephone-event in RTP) or `info` (SIP INFO).
    source: &'static str,
    /// `a` or `b`.
    leg: &'static str,
}

/// Labels of a metaflow match: which module it runs and whether it matched before the timeout.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MatchLabels {
    /// The module of the matched node.
    module: String,
    /// `true` for Kazoo's early match (at the deciding digit), `false` after `digit_timeout`.
    early: bool,
}

/// Labels naming only a leg.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LegLabels {
    /// `a` or `b`.
    leg: &'static str,
}

/// Labels of a finished module node.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModuleLabels {
    /// The module's name.
    module: String,
    /// The outcome that selected its child (`success`, `failure`, ...).
    outcome: String,
}

/// Labels naming an outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    /// How it ended.
    outcome: &'static str,
}

/// Labels of a sound played into a leg.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlaybackLabels {
    /// The kind of source (`moh`, `media`, `tone`, `url`, `tts`, `say`).
    source: &'static str,
    /// `started`, `finished`, `stopped` or `failed`.
    state: &'static str,
}

/// Labels of an API request: the route template (never the raw path), method and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    /// The matched route template (`/v2/accounts/{account_id}/metaflows`), or `unmatched`.
    route: String,
    /// The HTTP method.
    method: String,
    /// The response status code.
    status: u16,
}

/// Labels of webhook events: what became of them.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookResultLabels {
    /// `sent`, `dropped_queue_full` or `dropped_failed`.
    result: &'static str,
}

/// Labels of webhook requests: the receiver's status code, or `error` when none came.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookStatusLabels {
    /// The HTTP status code, or `error`.
    status: String,
}

/// What became of a webhook event, created at start so the series exist at zero.
pub const WEBHOOK_RESULTS: [&str; 3] = ["sent", "dropped_queue_full", "dropped_failed"];

/// Labels naming a SIP method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    /// The request's method (`other` outside the known set).
    method: &'static str,
}

/// Every feature series; handles are cheap clones of shared atomics, so the shell, the call
/// core and the API layer each count through the same [`FeatureMetrics`].
#[derive(Debug)]
pub struct FeatureMetrics {
    digits: Family<DigitLabels, Counter>,
    matches: Family<MatchLabels, Counter>,
    no_matches: Family<LegLabels, Counter>,
    module_runs: Family<ModuleLabels, Counter>,
    recordings_started: Counter,
    recording_bytes: Counter,
    recording_dropped: Counter,
    recording_failures: Counter,
    transfers: Family<OutcomeLabels, Counter>,
    playbacks: Family<PlaybackLabels, Counter>,
    api_requests: Family<ApiLabels, Counter>,
    decision_seconds: Histogram,
    transaction_seconds: Family<MethodLabels, Histogram>,
    webhook_events: Family<WebhookResultLabels, Counter>,
    webhook_requests: Family<WebhookStatusLabels, Counter>,
    recording_masks: Family<MaskLabels, Counter>,
    recordings_discarded: Counter,
}

/// Labels of the PCI masking counter: `action` is `mask` or `unmask`, `recording` whether a
/// recording was running.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MaskLabels {
    action: &'static str,
    recording: &'static str,
}

/// Outcomes of a blind transfer, created at start so the series exist at zero.
pub const TRANSFER_OUTCOMES: [&str; 3] = ["succeeded", "failed", "withdrawn"];

impl FeatureMetrics {
    /// Creates the families and registers them in `registry` (give it the proxy's prefix).
    pub fn register(registry: &mut Registry) -> FeatureMetrics {
        let metrics = FeatureMetrics {
            digits: Family::default(),
            matches: Family::default(),
            no_matches: Family::default(),
            module_runs: Family::default(),
            recordings_started: Counter::default(),
            recording_bytes: Counter::default(),
            recording_dropped: Counter::default(),
            recording_failures: Counter::default(),
            transfers: Family::default(),
            playbacks: Family::default(),
            api_requests: Family::default(),
            decision_seconds: Histogram::new(DECISION_BUCKETS),
            transaction_seconds: Family::new_with_constructor(transaction_histogram),
            webhook_events: Family::default(),
            webhook_requests: Family::default(),
            recording_masks: Family::default(),
            recordings_discarded: Counter::default(),
        };
        for result in WEBHOOK_RESULTS {
            let _ = metrics
                .webhook_events
                .get_or_create(&WebhookResultLabels { result });
        }
        // Series that exist from the start, so rates and alerts see 0 rather than nothing.
        for source in ["rfc4733", "info", "inband"] {
            for leg in [Leg::A, Leg::B] {
                let leg = leg.as_str();
                let _ = metrics.digits.get_or_create(&DigitLabels { source, leg });
            }
        }
        for leg in [Leg::A, Leg::B] {
            let _ = metrics
                .no_matches
                .get_or_create(&LegLabels { leg: leg.as_str() });
        }
        for outcome in TRANSFER_OUTCOMES {
            let _ = metrics.transfers.get_or_create(&OutcomeLabels { outcome });
        }
        metrics.register_into(registry);
        metrics
    }

    fn register_into(&self, registry: &mut Registry) {
        let r = registry;
        r.register(
            "dtmf_digits",
            "Key presses seen, by source (rfc4733, info) and leg",
            self.digits.clone(),
        );
        r.register(
            "metaflow_matches",
            "Dialed metaflow codes that matched a number or pattern, by module and early match",
            self.matches.clone(),
        );
        r.register(
            "metaflow_no_matches",
            "Dialed metaflow codes that matched nothing, by leg",
            self.no_matches.clone(),
        );
        r.register(
            "module_runs",
            "Module nodes finished, by module and outcome",
            self.module_runs.clone(),
        );
        r.register(
            "recordings_started",
            "Recordings whose file was opened",
            self.recordings_started.clone(),
        );
        r.register(
            "recording_bytes",
            "Bytes of finished recording files",
            self.recording_bytes.clone(),
        );
        r.register(
            "recording_dropped_packets",
            "Packets a recording's queue could not take (recorder too slow)",
            self.recording_dropped.clone(),
        );
        r.register(
            "recording_masks",
            "record_call mask and unmask actions (PCI masking), by whether a recording ran",
            self.recording_masks.clone(),
        );
        r.register(
            "recordings_discarded",
            "Recordings deleted for being shorter than their record_min_sec",
            self.recordings_discarded.clone(),
        );
        r.register(
            "recording_write_failures",
            "Recordings abandoned because their file could not be created or written",
            self.recording_failures.clone(),
        );
        r.register(
            "transfers",
            "Blind transfers (REFER) that ended, by outcome",
            self.transfers.clone(),
        );
        r.register(
            "playbacks",
            "Sounds played into legs, by source (moh, media, tone, url, tts, say) and state \
             (started, finished, stopped, failed)",
            self.playbacks.clone(),
        );
        r.register(
            "api_requests",
            "HTTP API requests answered, by route template, method and status",
            self.api_requests.clone(),
        );
        r.register(
            "metaflow_decision_seconds",
            "Time from the digit that decided a metaflow code to the start of its module",
            self.decision_seconds.clone(),
        );
        r.register(
            "sip_transaction_seconds",
            "Time from a request the proxy sent to its final response, by method",
            self.transaction_seconds.clone(),
        );
        r.register(
            "webhook_events",
            "Call events for webhook receivers, by result (sent, dropped_queue_full, \
             dropped_failed), counted once per receiver",
            self.webhook_events.clone(),
        );
        r.register(
            "webhook_requests",
            "Webhook POSTs (retries included), by the receiver's status or error",
            self.webhook_requests.clone(),
        );
    }

    /// `count` webhook events for one receiver ended as `result` (see [`WEBHOOK_RESULTS`]).
    pub fn webhook_events(&self, result: &'static str, count: u64) {
        self.webhook_events
            .get_or_create(&WebhookResultLabels { result })
            .inc_by(count);
    }

    /// A webhook POST was answered with `status` (a code, or `error`).
    pub fn webhook_request(&self, status: String) {
        self.webhook_requests
            .get_or_create(&WebhookStatusLabels { status })
            .inc();
    }

    /// A key press arrived on `leg` by `source` (`rtp` or `rfc4733`, `info`).
    pub fn digit(&self, leg: Leg, source: &str) {
        let source = match source {
            "info" => "info",
            "inband" => "inband",
            _ => "rfc4733",
        };
        let leg = leg.as_str();
        self.digits
            .get_or_create(&DigitLabels { source, leg })
            .inc();
    }

    /// A code matched and runs `module`.
    pub fn matched(&self, module: &str, early: bool) {
        let labels = MatchLabels {
            module: module.to_owned(),
            early,
        };
        self.matches.get_or_create(&labels).inc();
    }

    /// A code dialed on `leg` matched nothing.
    pub fn no_match(&self, leg: Leg) {
        let labels = LegLabels { leg: leg.as_str() };
        self.no_matches.get_or_create(&labels).inc();
    }

    /// A module node finished with `outcome`.
    pub fn module_run(&self, module: &str, outcome: &str) {
        let labels = ModuleLabels {
            module: module.to_owned(),
            outcome: outcome.to_owned(),
        };
        self.module_runs.get_or_create(&labels).inc();
    }

    /// A recording file was opened.
    pub fn recording_started(&self) {
        self.recordings_started.inc();
    }

    /// A recording was finished with `bytes` in its file and `dropped` packets lost.
    pub fn recording_finished(&self, bytes: u64, dropped: u64) {
        self.recording_bytes.inc_by(bytes);
        self.recording_dropped.inc_by(dropped);
    }

    /// A recording could not be created or written.
    pub fn recording_failed(&self) {
        self.recording_failures.inc();
    }

    /// A `record_call` mask (`masked`) or unmask, with or without a recording running.
    pub fn recording_mask(&self, masked: bool, recording: bool) {
        let labels = MaskLabels {
            action: if masked { "mask" } else { "unmask" },
            recording: if recording { "true" } else { "false" },
        };
        self.recording_masks.get_or_create(&labels).inc();
    }

    /// A recording shorter than its `record_min_sec` was deleted.
    pub fn recording_discarded(&self) {
        self.recordings_discarded.inc();
    }

    /// A transfer ended; `outcome` is one of [`TRANSFER_OUTCOMES`].
    pub fn transfer(&self, outcome: &'static str) {
        self.transfers
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// A sound from `source` reached `state`.
    pub fn playback(&self, source: &'static str, state: &'static str) {
        self.playbacks
            .get_or_create(&PlaybackLabels { source, state })
            .inc();
    }

    /// An API request on `route` (a template) was answered with `status`.
    pub fn api_request(&self, route: &str, method: &str, status: u16) {
        let labels = ApiLabels {
            route: route.to_owned(),
            method: method.to_owned(),
            status,
        };
        self.api_requests.get_or_create(&labels).inc();
    }

    /// A metaflow code was acted on `latency` after its deciding digit.
    pub fn decision(&self, latency: Duration) {
        self.decision_seconds.observe(latency.as_secs_f64());
    }

    /// A request with `method` sent by the proxy got its final response after `elapsed`.
    pub fn sip_transaction(&self, method: &'static str, elapsed: Duration) {
        self.transaction_seconds
            .get_or_create(&MethodLabels { method })
            .observe(elapsed.as_secs_f64());
    }
}
