//! Readers of a node's `data` members shared by the media modules, each reporting a wrong value
//! as Kazoo's 400 names it (`data.FIELD`, rule, message).

use serde_json::{Map, Value};

use crate::base::{Leg, Problem};

/// A string member; `None` when absent, a `type` problem when not a string.
pub fn string(data: &Map<String, Value>, key: &str, problems: &mut Vec<Problem>) -> Option<String> {
    match data.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            problems.push(Problem::in_data(key, "type", "must be a string"));
            None
        }
    }
}

/// A string member that must be one of `allowed`; `default` when absent.
pub fn one_of(
    data: &Map<String, Value>,
    key: &str,
    allowed: &[&'static str],
    default: &'static str,
    problems: &mut Vec<Problem>,
) -> &'static str {
    let Some(text) = string(data, key, problems) else {
        return default;
    };
    match allowed.iter().find(|a| **a == text) {
        Some(found) => found,
        None => {
            let message = format!("must be one of {}", allowed.join(", "));
            problems.push(Problem::in_data(key, "enum", message));
            default
        }
    }
}

/// An integer member within `min..=max`; `None` when absent.
pub fn integer(
    data: &Map<String, Value>,
    key: &str,
    min: i64,
    max: i64,
    problems: &mut Vec<Problem>,
) -> Option<i64> {
    let value = data.get(key)?;
    if value.is_null() {
        return None;
    }
    let Some(n) = value.as_i64() else {
        // An integer beyond i64 is still an integer, only too large.
        let (rule, message) = match value.as_u64() {
            Some(_) => ("maximum", format!("must be at most {max}")),
            None => ("type", "must be an integer".to_string()),
        };
        problems.push(Problem::in_data(key, rule, message));
        return None;
    };
    if n < min {
        problems.push(Problem::in_data(
            key,
            "minimum",
            format!("must be at least {min}"),
        ));
        return None;
    }
    if n > max {
        problems.push(Problem::in_data(
            key,
            "maximum",
            format!("must be at most {max}"),
        ));
        return None;
    }
    Some(n)
}

/// A boolean member; `None` when absent.
pub fn boolean(data: &Map<String, Value>, key: &str, problems: &mut Vec<Problem>) -> Option<bool> {
    match data.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::Null => None,
        _ => {
            problems.push(Problem::in_data(key, "type", "must be a boolean"));
            None
        }
    }
}

/// Kazoo's `leg` of the play-like modules, relative to the dialing leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The leg that dialed the code.
    Own,
    /// The other leg.
    Peer,
    /// Both legs.
    Both,
}

impl Target {
    /// Reads `key` (`self`, `peer`, `both`), `default` when absent.
    pub fn parse(
        data: &Map<String, Value>,
        key: &str,
        default: &'static str,
        problems: &mut Vec<Problem>,
    ) -> Self {
        match one_of(data, key, &["self", "peer", "both"], default, problems) {
            "self" => Self::Own,
            "peer" => Self::Peer,
            _ => Self::Both,
        }
    }

    /// The legs it names, for a code dialed on `dialing`.
    pub fn legs(self, dialing: Leg) -> &'static [Leg] {
        match (self, dialing) {
            (Self::Both, _) => &[Leg::A, Leg::B],
            (Self::Own, Leg::A) | (Self::Peer, Leg::B) => &[Leg::A],
            (Self::Own, Leg::B) | (Self::Peer, Leg::A) => &[Leg::B],
        }
    }
}
