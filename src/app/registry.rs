//! The live-call view the HTTP API reads (`GET /v2/accounts/{A}/channels`) and the way it asks
//! the call core to run a metaflow on a call. The SIP task writes the view from the core's call
//! events; the API never touches the core directly.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::api::v2::LiveCalls;
use crate::base::CallEvent;
use crate::cluster::{CallSource, LiveCall};

use super::shell::Control;

/// Summaries of the calls in progress, keyed by the caller's Call-ID.
#[derive(Clone, Default)]
pub struct CallRegistry {
    calls: Arc<Mutex<BTreeMap<String, Map<String, Value>>>>,
}

impl CallRegistry {
    /// Applies one call event (call started, answered, ended; recording started or stopped) to
    /// the view; other events leave it as it is.
    pub fn on_event(&self, call_id: &str, event: &CallEvent, ts: &str) {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            CallEvent::CallStarted { .. } => {
                let mut summary = event.fields();
                summary.insert("call_id".into(), json!(call_id));
                summary.insert("start".into(), json!(ts));
                summary.insert("answered".into(), json!(false));
                summary.insert("recording".into(), json!(false));
                calls.insert(call_id.to_string(), summary);
            }
            CallEvent::CallAnswered => {
                if let Some(c) = calls.get_mut(call_id) {
                    c.insert("answered".into(), json!(true));
                    c.insert("answered_at".into(), json!(ts));
                }
            }
            CallEvent::RecordingStarted { .. }
            | CallEvent::RecordingStopped { .. }
            | CallEvent::RecordingDiscarded { .. } => {
                if let Some(c) = calls.get_mut(call_id) {
                    let on = matches!(event, CallEvent::RecordingStarted { .. });
                    c.insert("recording".into(), json!(on));
                }
            }
            CallEvent::LegOriginated {
                leg,
                target,
                call_id: new_call_id,
            } => {
                if let Some(c) = calls.get_mut(call_id) {
                    let fork = json!({"target": target, "call_id": new_call_id});
                    match c.get_mut("placing").and_then(Value::as_object_mut) {
                        // Several destinations ring at once: each is listed under `forks`.
                        Some(placing) => {
                            if !placing.contains_key("forks") {
                                let first = json!({
                                    "target": placing.get("target").cloned().unwrap_or(Value::Null),
                                    "call_id": placing.get("call_id").cloned().unwrap_or(Value::Null),
                                });
                                placing.insert("forks".into(), json!([first]));
                            }
                            if let Some(forks) =
                                placing.get_mut("forks").and_then(Value::as_array_mut)
                            {
                                forks.push(fork);
                            }
                        }
                        None => {
                            let placing = json!({
                                "leg": leg.as_str(), "target": target, "call_id": new_call_id
                            });
                            c.insert("placing".into(), placing);
                        }
                    }
                }
            }
            CallEvent::LegOriginationFailed { .. } => {
                if let Some(c) = calls.get_mut(call_id) {
                    c.remove("placing");
                }
            }
            CallEvent::LegConsulted {
                leg,
                call_id: new_call_id,
            } => {
                if let Some(c) = calls.get_mut(call_id) {
                    c.remove("placing");
                    let consulting = json!({"leg": leg.as_str(), "call_id": new_call_id});
                    c.insert("consulting".into(), consulting);
                }
            }
            CallEvent::LegConsultEnded { .. } => {
                if let Some(c) = calls.get_mut(call_id) {
                    c.remove("consulting");
                }
            }
            CallEvent::LegReplaced {
                leg,
                call_id: new_call_id,
            } => {
                if let Some(c) = calls.get_mut(call_id) {
                    c.remove("placing");
                    c.remove("consulting");
                    let key = format!("{}_call_id", leg.as_str());
                    c.insert(key, json!(new_call_id));
                }
            }
            CallEvent::CallEnded { .. } => {
                calls.remove(call_id);
            }
            _ => {}
        }
    }

    fn list(&self, account_id: &str) -> Vec<Value> {
        let calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        calls
            .values()
            .filter(|c| c.get("account_id").and_then(Value::as_str).unwrap_or("") == account_id)
            .map(|c| Value::Object(c.clone()))
            .collect()
    }

    /// Every call in progress (cloned under the lock, encoded outside it).
    fn all(&self) -> Vec<(String, Map<String, Value>)> {
        let calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        calls
            .iter()
            .map(|(id, c)| (id.clone(), c.clone()))
            .collect()
    }

    /// Whether call `call_id` is in progress and belongs to `account_id`.
    fn belongs_to(&self, call_id: &str, account_id: &str) -> bool {
        let calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        calls.get(call_id).is_some_and(|c| {
            c.get("account_id").and_then(Value::as_str).unwrap_or("") == account_id
        })
    }
}

impl CallSource for CallRegistry {
    fn snapshot(&self) -> Vec<LiveCall> {
        self.all()
            .into_iter()
            .map(|(call_id, summary)| LiveCall {
                call_id,
                account: summary
                    .get("account_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                channel: Value::Object(summary).to_string(),
            })
            .collect()
    }
}

/// What the API sees of the calls: the registry, plus a channel to the SIP task.
pub struct ApiCalls {
    /// Call summaries.
    pub registry: CallRegistry,
    /// Commands to the SIP task.
    pub control: mpsc::Sender<Control>,
}

impl LiveCalls for ApiCalls {
    fn list(&self, account_id: &str) -> Vec<Value> {
        self.registry.list(account_id)
    }

    fn run_metaflow(&self, account_id: &str, call_id: &str, node: Value) -> Result<(), String> {
        // A call of another account is as unknown as no call: its existence is not told.
        if !self.registry.belongs_to(call_id, account_id) {
            return Err(format!(
                "no call {call_id} in progress in account {account_id}"
            ));
        }
        self.control
            .try_send(Control::RunMetaflow {
                call_id: call_id.to_string(),
                node,
            })
            .map_err(|e| format!("the call core is busy: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::Leg;

    /// The channel view follows a placed call from ringing to consulting to the leg it takes,
    /// and forgets a consultation that ended.
    #[test]
    fn the_view_shows_the_call_being_placed_and_consulted() {
        let registry = CallRegistry::default();
        let started = CallEvent::CallStarted {
            from: "a".into(),
            to: "b".into(),
            b_call_id: "b1".into(),
            source: "udp:127.0.0.1:5060".into(),
            account_id: Some("acc".into()),
            metaflows: Vec::new(),
        };
        registry.on_event("c1", &started, "t0");
        let view = |registry: &CallRegistry| registry.all().remove(0).1;
        let originated = CallEvent::LegOriginated {
            leg: Leg::A,
            target: "sip:1234@pbx".into(),
            call_id: "n1".into(),
        };
        registry.on_event("c1", &originated, "t1");
        assert_eq!(view(&registry)["placing"]["call_id"], "n1");
        assert!(
            view(&registry)["placing"].get("forks").is_none(),
            "one destination"
        );
        let second = CallEvent::LegOriginated {
            leg: Leg::A,
            target: "sip:1235@pbx".into(),
            call_id: "n2".into(),
        };
        registry.on_event("c1", &second, "t1");
        assert_eq!(
            view(&registry)["placing"]["forks"],
            json!([
                {"target": "sip:1234@pbx", "call_id": "n1"},
                {"target": "sip:1235@pbx", "call_id": "n2"}
            ]),
            "every destination ringing at once is listed"
        );
        let consulted = CallEvent::LegConsulted {
            leg: Leg::A,
            call_id: "n1".into(),
        };
        registry.on_event("c1", &consulted, "t2");
        let summary = view(&registry);
        assert!(summary.get("placing").is_none());
        assert_eq!(summary["consulting"], json!({"leg": "a", "call_id": "n1"}));
        let ended = CallEvent::LegConsultEnded {
            leg: Leg::A,
            call_id: "n1".into(),
        };
        registry.on_event("c1", &ended, "t3");
        assert!(view(&registry).get("consulting").is_none());
        registry.on_event("c1", &consulted, "t4");
        let replaced = CallEvent::LegReplaced {
            leg: Leg::A,
            call_id: "n1".into(),
        };
        registry.on_event("c1", &replaced, "t5");
        let summary = view(&registry);
        assert!(summary.get("consulting").is_none());
        assert_eq!(summary["a_call_id"], "n1");
    }
}
