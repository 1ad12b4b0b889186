//! What one event looks like in a webhook batch: the fields of `events.jsonl` (`ts`, `event`,
//! `call_id` and the event's own) plus the names a Kazoo webhook consumer reads: `hook_event`
//! (Kazoo's hook name where one exists, ours otherwise), `account_id` when the call's account is
//! known, `timestamp` (Unix seconds) and, on `channel_destroy`, a `hangup_cause`.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::base::CallEvent;

/// The `hook_event` of an event kind: Kazoo's channel hooks for the call's start, answer and
/// end, our own event name for everything Kazoo has no hook for.
pub fn hook_event(kind: &str) -> &str {
    match kind {
        "call_started" => "channel_create",
        "call_answered" => "channel_answer",
        "call_ended" => "channel_destroy",
        other => other,
    }
}

/// Kazoo's `hangup_cause` for a `call_ended` outcome.
fn hangup_cause(outcome: &str) -> &'static str {
    match outcome {
        "answered" => "NORMAL_CLEARING",
        "cancelled" => "ORIGINATOR_CANCEL",
        "rejected" => "CALL_REJECTED",
        "timeout" => "NO_ANSWER",
        _ => "NORMAL_TEMPORARY_FAILURE",
    }
}

/// Remembers each call's account from its `call_started`, so every later event of the call
/// carries `account_id` too; a call is forgotten at its `call_ended`.
#[derive(Debug, Default)]
pub struct Accounts {
    by_call: HashMap<String, String>,
}

impl Accounts {
    /// Notes what `event` says about `call_id`'s account and returns the account, if known.
    pub fn track(&mut self, call_id: &str, event: &CallEvent) -> Option<String> {
        match event {
            CallEvent::CallStarted {
                account_id: Some(account),
                ..
            } => {
                self.by_call.insert(call_id.to_owned(), account.clone());
                Some(account.clone())
            }
            CallEvent::CallEnded { .. } => self.by_call.remove(call_id),
            _ => self.by_call.get(call_id).cloned(),
        }
    }
}

/// The JSON object of `event` of call `call_id` at `ts` (RFC 3339) / `unix_secs`.
pub fn event_object(
    call_id: &str,
    event: &CallEvent,
    account_id: Option<&str>,
    ts: &str,
    unix_secs: u64,
) -> Value {
    let kind = event.kind();
    let mut object = Map::new();
    object.insert("ts".into(), Value::String(ts.to_owned()));
    object.insert("event".into(), Value::String(kind.to_owned()));
    object.insert("call_id".into(), Value::String(call_id.to_owned()));
    for (key, value) in event.fields() {
        if !matches!(key.as_str(), "ts" | "event" | "call_id") {
            object.insert(key, value);
        }
    }
    object.insert(
        "hook_event".into(),
        Value::String(hook_event(kind).to_owned()),
    );
    if let Some(account) = account_id {
        object.insert("account_id".into(), Value::String(account.to_owned()));
    }
    object.insert("timestamp".into(), Value::from(unix_secs));
    if let CallEvent::CallEnded { outcome, .. } = event {
        object.insert(
            "hangup_cause".into(),
            Value::String(hangup_cause(outcome).to_owned()),
        );
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn call_events_carry_kazoo_names_and_the_account() {
        let mut accounts = Accounts::default();
        let started = CallEvent::CallStarted {
            from: "sip:1@a".into(),
            to: "sip:2@b".into(),
            b_call_id: "b1".into(),
            source: "udp:127.0.0.1:5061".into(),
            account_id: Some("acc1".into()),
            metaflows: Vec::new(),
        };
        let account = accounts.track("c1", &started);
        let object = event_object("c1", &started, account.as_deref(), "T", 7);
        assert_eq!(object["hook_event"], json!("channel_create"));
        assert_eq!(object["event"], json!("call_started"));
        assert_eq!(object["call_id"], json!("c1"));
        assert_eq!(object["account_id"], json!("acc1"));
        assert_eq!(object["timestamp"], json!(7));
        assert_eq!(object["from"], json!("sip:1@a"));

        let digit = CallEvent::Digit {
            leg: crate::base::Leg::A,
            digit: '*',
            source: "rtp",
        };
        let account = accounts.track("c1", &digit);
        let object = event_object("c1", &digit, account.as_deref(), "T", 8);
        assert_eq!(object["hook_event"], json!("digit"));
        assert_eq!(object["account_id"], json!("acc1"));

        let ended = CallEvent::CallEnded {
            outcome: "answered",
            answered: true,
        };
        let account = accounts.track("c1", &ended);
        let object = event_object("c1", &ended, account.as_deref(), "T", 9);
        assert_eq!(object["hook_event"], json!("channel_destroy"));
        assert_eq!(object["hangup_cause"], json!("NORMAL_CLEARING"));
        assert_eq!(object["account_id"], json!("acc1"));
        assert_eq!(accounts.track("c1", &CallEvent::CallAnswered), None);
    }
}
