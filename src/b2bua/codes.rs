//! Metaflow codes on live calls: digits in (from RTP events or SIP INFO), collector decisions
//! out, and the modules they run.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use crate::base::CallEvent;
use crate::metaflow::{Collector, Decision, Metaflows, ModuleRun, module_run};
use crate::sip::SipMessage;

use super::timers::TimerRef;
use super::{B2bua, CallKey, Leg};

/// Where a digit came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigitSource {
    /// An RFC 4733 telephone-event in the RTP stream.
    Rtp,
    /// A SIP INFO request (`application/dtmf-relay` or `application/dtmf`).
    Info,
    /// A DTMF tone pair in the audio itself.
    Inband,
}

impl DigitSource {
    fn as_str(self) -> &'static str {
        match self {
            DigitSource::Rtp => "rtp",
            DigitSource::Info => "info",
            DigitSource::Inband => "inband",
        }
    }
}

/// Decides which metaflows apply to a new call, and whose they are.
///
/// Ownership follows Kazoo's endpoints: the party behind the proxy is the endpoint. On a call
/// from a phone (`inbound` false) the caller owns the metaflow (the a-leg); on a call from the
/// PBX to a phone registered through us (`inbound` true) the phone does (the b-leg), and the
/// outside caller owns none.
pub trait MetaflowResolver: Send {
    /// The metaflows for the call set up by `invite` (its Request-URI already the registered
    /// AOR when `inbound`), each with the leg that owns it ("self").
    fn resolve(&self, invite: &SipMessage, inbound: bool) -> Vec<CallMetaflow>;

    /// The account the call belongs to (for the API's channel list): the endpoint's.
    fn account_of(&self, _invite: &SipMessage, _inbound: bool) -> Option<String> {
        None
    }

    /// Username and password answering the PBX's digest challenges to calls the proxy places
    /// for `account_id` (the default account when `None`); none configured by default.
    fn pbx_auth(&self, _account_id: Option<&str>) -> Option<(String, String)> {
        None
    }

    /// The first number of callflow document `id` of `account_id` (the default account when
    /// `None`), for the `callflow` module; none without a store.
    fn callflow_number(&self, _account_id: Option<&str>, _id: &str) -> Option<String> {
        None
    }

    /// The SIP username of device `device_id` of `account_id`, for `move` and `intercept`.
    fn device_sip_user(&self, _account_id: Option<&str>, _device_id: &str) -> Option<String> {
        None
    }

    /// The account a party whose URI host is `host` belongs to (`None` without a directory:
    /// then every host is taken as the call's own).
    fn account_of_host(&self, _host: &str) -> Option<String> {
        None
    }

    /// The SIP usernames of the devices user `owner_id` of `account_id` owns, in id order.
    fn owner_sip_users(&self, _account_id: Option<&str>, _owner_id: &str) -> Vec<String> {
        Vec::new()
    }
}

/// One metaflow attached to a call.
#[derive(Clone, Debug)]
pub struct CallMetaflow {
    /// The metaflow object.
    pub flows: Arc<Metaflows>,
    /// The leg that owns it: `self` in `listen_on`.
    pub owner: Leg,
    /// Where it came from: the merged layers (`account`, `callflow`, `device`, `user`, joined
    /// by `+`), for logs.
    pub scope: String,
    /// The operator's fast re-arm setting (Kazoo's `use_fast_rearm`).
    pub fast_rearm: bool,
}

/// The `--metaflows` file alone: one account-level metaflow owned by the endpoint of every call
/// (the a-leg of a call from a phone, the b-leg of one from the PBX).
pub struct StaticMetaflows(pub Option<Arc<Metaflows>>);

impl MetaflowResolver for StaticMetaflows {
    fn resolve(&self, _invite: &SipMessage, inbound: bool) -> Vec<CallMetaflow> {
        self.0
            .iter()
            .map(|flows| CallMetaflow {
                flows: flows.clone(),
                owner: if inbound { Leg::B } else { Leg::A },
                scope: "account".into(),
                fast_rearm: false,
            })
            .collect()
    }
}

/// A collector with the owner it was built for.
#[derive(Debug)]
pub struct CallCollector {
    /// The per-call state machine.
    pub collector: Collector,
    /// Owner leg of its metaflow.
    pub owner: Leg,
    /// The metaflow it runs.
    pub flows: Arc<Metaflows>,
}

impl CallCollector {
    /// A collector for `mf`.
    pub fn new(mf: &CallMetaflow) -> Self {
        CallCollector {
            collector: Collector::new(mf.flows.clone(), mf.owner).with_fast_rearm(mf.fast_rearm),
            owner: mf.owner,
            flows: mf.flows.clone(),
        }
    }

    /// Whether this metaflow collects digits from `leg`.
    pub fn listens_to(&self, leg: Leg) -> bool {
        match self.flows.listen_on {
            crate::metaflow::ListenOn::SelfLeg => leg == self.owner,
            crate::metaflow::ListenOn::Peer => leg != self.owner,
            crate::metaflow::ListenOn::Both => true,
        }
    }
}

/// Per leg (a, b): when the relay listens for DTMF tones in that leg's audio. No metaflow
/// listening to a leg: never (nobody would act on its digits). One asking `on`: on; all asking
/// `off`: off; else `auto`.
pub fn inband_modes(collectors: &[CallCollector]) -> [crate::metaflow::InbandMode; 2] {
    use crate::metaflow::InbandMode;
    let mode = |leg: Leg| {
        let modes: Vec<InbandMode> = collectors
            .iter()
            .filter(|c| c.listens_to(leg))
            .map(|c| c.flows.inband)
            .collect();
        if modes.contains(&InbandMode::On) {
            InbandMode::On
        } else if modes.iter().all(|m| *m == InbandMode::Off) {
            InbandMode::Off
        } else {
            InbandMode::Auto
        }
    };
    [mode(Leg::A), mode(Leg::B)]
}

/// Per leg (a, b): the binding digit of a suppressing metaflow that listens to that leg.
pub fn suppress_bindings(collectors: &[CallCollector]) -> [Option<char>; 2] {
    let binding = |leg: Leg| {
        collectors
            .iter()
            .find(|c| c.flows.suppress && c.listens_to(leg))
            .map(|c| c.flows.binding_digit)
    };
    [binding(Leg::A), binding(Leg::B)]
}

impl B2bua {
    /// One key press on `leg` of call `key`.
    pub(super) fn on_digit(
        &mut self,
        key: CallKey,
        leg: Leg,
        digit: char,
        source: DigitSource,
        now: Instant,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let call_id = call.id.clone();
        // The modules already running hear the key; one this key starts does not (the `1` that
        // completes a hold code is not its unhold key).
        let listening = super::host::unfinished_modules(call);
        let mut decided = Vec::new();
        for cc in &mut call.collectors {
            let outcome = cc.collector.on_digit(leg, digit, now);
            decided.push((cc.owner, outcome.decisions));
        }
        tracing::info!(call_id = %call_id, leg = leg.as_str(), digit = %digit, source = source.as_str(), "DTMF digit");
        let source = source.as_str();
        self.event(&call_id, CallEvent::Digit { leg, digit, source });
        for (owner, decisions) in decided {
            self.apply_decisions(key, owner, decisions, now);
        }
        self.module_digit(key, &listening, leg, digit, now);
        self.schedule_collectors(key);
    }

    /// Queues the call's next collector deadline.
    pub(super) fn schedule_collectors(&mut self, key: CallKey) {
        let next = self.calls.get(&key).and_then(|c| {
            c.collectors
                .iter()
                .filter_map(|cc| cc.collector.poll_timeout())
                .min()
        });
        if let Some(at) = next {
            self.timers.schedule(at, TimerRef::Collector(key));
        }
    }

    /// A collector deadline passed.
    pub(super) fn collector_timer(&mut self, key: CallKey, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let mut decided = Vec::new();
        for cc in &mut call.collectors {
            if cc.collector.poll_timeout().is_some_and(|at| at <= now) {
                decided.push((cc.owner, cc.collector.on_timeout(now)));
            }
        }
        for (owner, decisions) in decided {
            self.apply_decisions(key, owner, decisions, now);
        }
        self.schedule_collectors(key);
    }

    fn apply_decisions(
        &mut self,
        key: CallKey,
        owner: Leg,
        decisions: Vec<Decision>,
        now: Instant,
    ) {
        for decision in decisions {
            let Some(call_id) = self.call_id_of(key).map(str::to_string) else {
                return;
            };
            match &decision {
                Decision::Armed { leg } => {
                    self.event(&call_id, CallEvent::MetaflowArmed { leg: *leg });
                }
                Decision::Match {
                    leg,
                    collected,
                    matched,
                    early,
                    captures,
                    node,
                } => {
                    tracing::info!(call_id = %call_id, leg = leg.as_str(), collected = %collected, matched = %matched, module = %node.module, early, "metaflow code matched");
                    let event = CallEvent::MetaflowMatch {
                        leg: *leg,
                        collected: collected.clone(),
                        matched: matched.clone(),
                        captures: captures.clone(),
                        module: node.module.clone(),
                        early: *early,
                    };
                    self.event(&call_id, event);
                    self.media.discard_held(key, *leg);
                    if let Some(run) = module_run(&decision, owner) {
                        self.run_module(key, run, now);
                    }
                }
                Decision::NoMatch { leg, collected } => {
                    tracing::info!(call_id = %call_id, leg = leg.as_str(), collected = %collected, "metaflow code matched nothing");
                    let event = CallEvent::MetaflowNoMatch {
                        leg: *leg,
                        collected: collected.clone(),
                    };
                    self.event(&call_id, event);
                }
                Decision::Release { leg, digits } => {
                    self.media.release_held(key, *leg, digits);
                    let event = CallEvent::MetaflowRelease {
                        leg: *leg,
                        digits: digits.clone(),
                    };
                    self.event(&call_id, event);
                }
            }
        }
    }

    /// Runs a node on a call as if its code had been dialed (the API's channel action). The
    /// dialing leg is `data.dtmf_leg` (Kazoo's: the Call-ID of one of the call's legs; also
    /// `"a"` or `"b"`) or `data.dtmf_side`, the a-leg by default.
    pub(super) fn run_node_by_api(&mut self, call_id: &str, node: &Value, now: Instant) {
        // The call's own id first: after a call the proxy placed took the caller's place, the
        // caller's Call-ID names the call but no longer a dialog.
        let by_id = self
            .calls
            .iter()
            .find(|(_, call)| call.id == call_id)
            .map(|(key, _)| *key);
        let Some(key) = by_id.or_else(|| self.by_call_id.get(call_id).map(|&(key, _)| key)) else {
            return;
        };
        let wrapper = json!({ "numbers": { "0": node } });
        let flows = match crate::metaflow::parse_metaflows(&wrapper) {
            Ok(flows) => flows,
            Err(errors) => {
                tracing::warn!(call_id, ?errors, "API metaflow node refused");
                return;
            }
        };
        let Some((_, node)) = flows.numbers.into_iter().next() else {
            return;
        };
        let b_call_id = self.calls.get(&key).map(|call| call.b.call_id.as_str());
        let named = |k: &str| node.data.get(k).and_then(Value::as_str);
        let leg = match (named("dtmf_leg"), named("dtmf_side")) {
            (Some("b"), _) | (_, Some("b")) => Leg::B,
            (Some(call_id), _) if Some(call_id) == b_call_id => Leg::B,
            _ => Leg::A,
        };
        let mut data = node.data.clone();
        data.entry("captures").or_insert_with(|| json!([]));
        data.insert("collected".into(), json!(""));
        data.insert(
            crate::modules::record::TRIGGER_KEY.into(),
            json!(crate::modules::record::TRIGGER_API),
        );
        let run = ModuleRun { leg, node, data };
        self.run_module(key, run, now);
    }
}
