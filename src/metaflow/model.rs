//! The checked, in-memory form of a Kazoo metaflow object and its JSON rendering.

use std::sync::OnceLock;
use std::time::Duration;

use crate::metaflow::pattern::Pattern;
use serde_json::{Map, Value};

use crate::metaflow::liveness::PatternAutomata;
use crate::modules::ModuleSpec;

/// Default `binding_digit` (Kazoo default).
pub const DEFAULT_BINDING_DIGIT: char = '*';
/// Default `digit_timeout` (Kazoo default, 800 ms).
pub const DEFAULT_DIGIT_TIMEOUT: Duration = Duration::from_millis(800);

/// What the operator sets for every metaflow, as Kazoo's `system_config/metaflows` does: the
/// digit timeout when neither the metaflow nor its account names one, and `use_fast_rearm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaflowSystem {
    /// Kazoo's `metaflows.digit_timeout_ms` system setting (key `digit-timeout-ms`).
    pub digit_timeout: Duration,
    /// Kazoo's `metaflows.use_fast_rearm` (key `use-fast-rearm`): the binding digit in the
    /// middle of a code starts it over.
    pub fast_rearm: bool,
}

impl Default for MetaflowSystem {
    fn default() -> Self {
        Self {
            digit_timeout: DEFAULT_DIGIT_TIMEOUT,
            fast_rearm: false,
        }
    }
}

/// When the relay listens for DTMF tones in a leg's audio (JSON `inband_dtmf`, beyond Kazoo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InbandMode {
    /// JSON `"auto"`: only on legs whose SDP offers no telephone-event.
    #[default]
    Auto,
    /// JSON `"on"`: on every leg listened to, also next to RFC 4733.
    On,
    /// JSON `"off"`: never.
    Off,
}

impl InbandMode {
    /// Parses the JSON spelling; `None` for anything else.
    pub fn from_json_str(text: &str) -> Option<Self> {
        match text {
            "auto" => Some(Self::Auto),
            "on" => Some(Self::On),
            "off" => Some(Self::Off),
            _ => None,
        }
    }

    /// The JSON spelling.
    pub fn as_json_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::On => "on",
            Self::Off => "off",
        }
    }

    /// Whether tones are listened for on a leg that does (`has_events`) or does not offer
    /// telephone-event.
    pub fn listens(self, has_events: bool) -> bool {
        match self {
            Self::Auto => !has_events,
            Self::On => true,
            Self::Off => false,
        }
    }
}

/// Which leg(s) of a call are listened to for codes, relative to the leg that owns the metaflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListenOn {
    /// JSON `"self"`: only the owner's leg (the a-leg for account-level metaflows).
    #[default]
    SelfLeg,
    /// JSON `"peer"`: only the leg opposite the owner.
    Peer,
    /// JSON `"both"`: both legs, each with its own collection state.
    Both,
}

impl ListenOn {
    /// Parses the Kazoo JSON spelling; `None` for anything else.
    pub fn from_json_str(text: &str) -> Option<Self> {
        match text {
            "self" => Some(Self::SelfLeg),
            "peer" => Some(Self::Peer),
            "both" => Some(Self::Both),
            _ => None,
        }
    }

    /// The Kazoo JSON spelling, so that stored metaflows read back as written.
    pub fn as_json_str(self) -> &'static str {
        match self {
            Self::SelfLeg => "self",
            Self::Peer => "peer",
            Self::Both => "both",
        }
    }
}

/// One node of a metaflow tree: the module to run, its arguments, and where to go next by outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaflowNode {
    /// Name of the module to execute (`transfer`, `record_call`, `hangup`, ...).
    pub module: String,
    /// Module arguments as written in the JSON (`{}` when absent), kept to render the node back
    /// and to hand the code's additions to the module.
    pub data: Map<String, Value>,
    /// The module with its `data` checked, parsed once at validation so that a call never
    /// re-reads JSON to run it.
    pub spec: std::sync::Arc<ModuleSpec>,
    /// Child nodes keyed by the outcome of this node's module (`"_"` is the fallback), in JSON order.
    pub children: Vec<(String, MetaflowNode)>,
}

/// A validated metaflow object: the codes one owner (account, user, device) can dial on a call.
///
/// Build it with [`crate::metaflow::parse_metaflows`] (or `Default` and then fill in fields); it is
/// meant to be shared read-only between calls behind an `Arc`.
#[derive(Debug, Clone)]
pub struct Metaflows {
    /// The DTMF digit that arms a leg (one of `0-9`, `*`, `#`).
    pub binding_digit: char,
    /// Quiet time after the last digit before the collected code is evaluated.
    pub digit_timeout: Duration,
    /// Which legs are listened to.
    pub listen_on: ListenOn,
    /// Exact codes (digits after the binding digit), looked up first, in JSON order.
    pub numbers: Vec<(String, MetaflowNode)>,
    /// Regular-expression codes, tried in JSON order after `numbers`; first match wins.
    pub patterns: Vec<(String, Pattern, MetaflowNode)>,
    /// JSON `suppress_dtmf` (beyond Kazoo, opt-in): keep a code's digits from reaching the other
    /// leg, delivering them late only when they turn out not to be a code.
    pub suppress: bool,
    /// JSON `inband_dtmf` (beyond Kazoo): when the relay listens for DTMF tones in the audio.
    pub inband: InbandMode,
    /// Prefix automata for the patterns, built on first use by a collector.
    pub(crate) automata: OnceLock<PatternAutomata>,
}

impl Default for Metaflows {
    fn default() -> Self {
        Self {
            binding_digit: DEFAULT_BINDING_DIGIT,
            digit_timeout: DEFAULT_DIGIT_TIMEOUT,
            listen_on: ListenOn::default(),
            numbers: Vec::new(),
            patterns: Vec::new(),
            suppress: false,
            inband: InbandMode::Auto,
            automata: OnceLock::new(),
        }
    }
}

impl Metaflows {
    /// Prefix automata for `patterns`, built once (patterns must not change after first use).
    pub(crate) fn automata(&self) -> &PatternAutomata {
        self.automata
            .get_or_init(|| PatternAutomata::build(self.patterns.iter().map(|(text, _, _)| text)))
    }
}

/// Renders metaflows back to Kazoo JSON (the form the API stores and returns).
pub fn to_json(flows: &Metaflows) -> Value {
    let mut object = Map::new();
    object.insert(
        "binding_digit".into(),
        Value::String(flows.binding_digit.to_string()),
    );
    let timeout_ms = u64::try_from(flows.digit_timeout.as_millis()).unwrap_or(u64::MAX);
    object.insert("digit_timeout".into(), Value::from(timeout_ms));
    object.insert(
        "listen_on".into(),
        Value::String(flows.listen_on.as_json_str().into()),
    );
    let numbers: Map<String, Value> = flows
        .numbers
        .iter()
        .map(|(key, node)| (key.clone(), node_to_json(node)))
        .collect();
    object.insert("numbers".into(), Value::Object(numbers));
    let patterns: Map<String, Value> = flows
        .patterns
        .iter()
        .map(|(key, _, node)| (key.clone(), node_to_json(node)))
        .collect();
    object.insert("patterns".into(), Value::Object(patterns));
    object.insert("suppress_dtmf".into(), Value::Bool(flows.suppress));
    if flows.inband != InbandMode::Auto {
        let mode = Value::String(flows.inband.as_json_str().into());
        object.insert("inband_dtmf".into(), mode);
    }
    Value::Object(object)
}

/// Renders one node; `children` is written only when there are any, as Kazoo does.
fn node_to_json(node: &MetaflowNode) -> Value {
    let mut object = Map::new();
    object.insert("module".into(), Value::String(node.module.clone()));
    object.insert("data".into(), Value::Object(node.data.clone()));
    if !node.children.is_empty() {
        let children: Map<String, Value> = node
            .children
            .iter()
            .map(|(key, child)| (key.clone(), node_to_json(child)))
            .collect();
        object.insert("children".into(), Value::Object(children));
    }
    Value::Object(object)
}
