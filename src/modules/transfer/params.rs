//! The `data` object of a `transfer` metaflow node: validation into [`TransferParams`] and the
//! Kazoo-style normalisation of stored nodes.
//!
//! Keys read: `target` (string, a SIP user part), `domain` (host for the `Refer-To` URI),
//! `takeback_dtmf` (DTMF digits, default `*1`), `transfer_type` (`blind` or `attended`),
//! `timeout` (seconds a call the proxy places may ring, default 20), `method` (`refer`, the
//! default, or `bridge`: the proxy's own call at once) and `captures` (list of strings, filled in
//! by the metaflow engine). `null` means absent; other keys
//! (`collected`, `dtmf_leg`, ...) are left to the engine and tolerated.

use crate::base::Problem;
use serde_json::{Map, Value};

use super::target::{is_valid_host, user_part_problem};

/// Digits that withdraw a transfer when `takeback_dtmf` is not given (Kazoo default).
pub const DEFAULT_TAKEBACK_DTMF: &str = "*1";
/// Placeholder Kazoo stores in `captures` when a node has none; never used as a target.
pub const NO_MATCH_CAPTURE: &str = "no_match";
/// Longest `takeback_dtmf` accepted: a short key sequence, not a dial string.
const TAKEBACK_MAX_DIGITS: usize = 16;
/// Characters a DTMF sequence may contain (RFC 4733 events 0-15).
const DTMF_DIGITS: &str = "0123456789*#ABCD";

/// How the transfer is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransferType {
    /// REFER the other leg to the target and drop out once it reports success.
    #[default]
    Blind,
    /// Kazoo's attended transfer: the transferee hears music on hold while the transferor
    /// talks with the target, and the two are bridged when the transferor hangs up.
    Attended,
}

impl TransferType {
    /// The JSON spelling, as stored and returned by the API.
    pub fn as_json_str(self) -> &'static str {
        match self {
            Self::Blind => "blind",
            Self::Attended => "attended",
        }
    }
}

/// Seconds a call the proxy places for a transfer may ring before it is given up (Kazoo's
/// `default_target_timeout_ms`, 20 s).
pub const DEFAULT_TIMEOUT_S: u32 = 20;
/// Kazoo's default ringback (`ecallmgr.default_ringback`): 2 s of 440+480 Hz, 4 s of silence.
pub const DEFAULT_RINGBACK: &str = "%(2000,4000,440,480)";
/// Longest `timeout` accepted.
const TIMEOUT_MAX_S: i64 = 300;

/// How a blind transfer reaches the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransferMethod {
    /// REFER first; the proxy places the call itself only when REFER is not taken.
    #[default]
    Refer,
    /// No REFER: the proxy places the call to the target at once and swaps it in.
    Bridge,
}

/// Checked arguments of one `transfer` node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferParams {
    /// Fixed destination user part (`data.target`); wins over the captures.
    pub target: Option<String>,
    /// Host for the `Refer-To` URI (`data.domain`); the upstream PBX's host when absent.
    pub domain: Option<String>,
    /// Digits the dialing party presses to withdraw a transfer still in progress.
    pub takeback_dtmf: String,
    /// The kind of transfer.
    pub transfer_type: TransferType,
    /// Seconds a call the proxy places may ring (`data.timeout`).
    pub timeout_s: u32,
    /// REFER first, or the proxy's own call at once (`data.method`: `refer`, `bridge`).
    pub method: TransferMethod,
    /// What the transferee hears while the target rings after the transferor left
    /// (`data.ringback`, Kazoo's tone syntax or a media id; Kazoo's default ringback tone).
    pub ringback: String,
    /// What the transferee hears while an attended transfer consults the target (`data.moh`,
    /// a media id or `silence`; the built-in music when absent); unused by a blind one.
    pub moh: Option<String>,
}

impl Default for TransferParams {
    fn default() -> Self {
        Self {
            target: None,
            domain: None,
            takeback_dtmf: DEFAULT_TAKEBACK_DTMF.to_owned(),
            transfer_type: TransferType::Blind,
            timeout_s: DEFAULT_TIMEOUT_S,
            method: TransferMethod::Refer,
            ringback: DEFAULT_RINGBACK.to_owned(),
            moh: None,
        }
    }
}

/// Validates a `transfer` node's `data`, reporting every problem at once.
pub fn parse_params(data: &Map<String, Value>) -> Result<TransferParams, Vec<Problem>> {
    let mut problems = Vec::new();
    let target = optional_string(data, "target", &mut problems).filter(|target| {
        let problem = user_part_problem(target);
        if let Some(message) = &problem {
            problems.push(Problem::in_data("target", "pattern", message.clone()));
        }
        problem.is_none()
    });
    let domain = optional_string(data, "domain", &mut problems).filter(|domain| {
        let valid = is_valid_host(domain);
        if !valid {
            let message = format!("domain {domain:?} is not a host name or IP address");
            problems.push(Problem::in_data("domain", "pattern", message));
        }
        valid
    });
    let takeback_dtmf = optional_string(data, "takeback_dtmf", &mut problems)
        .map(|digits| check_takeback(&digits, &mut problems))
        .unwrap_or_else(|| DEFAULT_TAKEBACK_DTMF.to_owned());
    let transfer_type = optional_string(data, "transfer_type", &mut problems)
        .map(|text| check_transfer_type(&text, &mut problems))
        .unwrap_or_default();
    check_captures(data, &mut problems);
    let timeout_s = crate::modules::data::integer(data, "timeout", 1, TIMEOUT_MAX_S, &mut problems)
        .and_then(|s| u32::try_from(s).ok())
        .unwrap_or(DEFAULT_TIMEOUT_S);
    let method = match crate::modules::data::one_of(
        data,
        "method",
        &["refer", "bridge"],
        "refer",
        &mut problems,
    ) {
        "bridge" => TransferMethod::Bridge,
        _ => TransferMethod::Refer,
    };
    let ringback = crate::modules::data::string(data, "ringback", &mut problems)
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_RINGBACK.to_owned());
    let moh = crate::modules::data::string(data, "moh", &mut problems);
    if problems.is_empty() {
        Ok(TransferParams {
            target,
            domain,
            takeback_dtmf,
            transfer_type,
            timeout_s,
            method,
            ringback,
            moh,
        })
    } else {
        Err(problems)
    }
}

/// Adds the defaults Kazoo shows when a transfer node is stored: `transfer_type: "blind"` and
/// `captures: ["no_match"]`, each only when absent (or `null`).
pub fn normalise(data: &mut Map<String, Value>) {
    if data.get("captures").is_none_or(Value::is_null) {
        let placeholder = Value::String(NO_MATCH_CAPTURE.to_owned());
        data.insert("captures".to_owned(), Value::Array(vec![placeholder]));
    }
    if data.get("transfer_type").is_none_or(Value::is_null) {
        let blind = TransferType::Blind.as_json_str().to_owned();
        data.insert("transfer_type".to_owned(), Value::String(blind));
    }
}

/// The string value of `key`, `None` when absent or `null`; records a `type` error otherwise.
fn optional_string(
    data: &Map<String, Value>,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    match data.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            problems.push(Problem::in_data(
                key,
                "type",
                format!("{key} must be a string"),
            ));
            None
        }
    }
}

/// Upper-cases the digits and checks them against the DTMF alphabet and length limits.
fn check_takeback(digits: &str, problems: &mut Vec<Problem>) -> String {
    let digits = digits.to_ascii_uppercase();
    if digits.is_empty() {
        let message = "takeback_dtmf must hold at least one DTMF digit";
        problems.push(Problem::in_data("takeback_dtmf", "minLength", message));
    } else if digits.chars().count() > TAKEBACK_MAX_DIGITS {
        let message = format!("takeback_dtmf must be at most {TAKEBACK_MAX_DIGITS} digits");
        problems.push(Problem::in_data("takeback_dtmf", "maxLength", message));
    } else if !digits.chars().all(|digit| DTMF_DIGITS.contains(digit)) {
        let message = format!("takeback_dtmf {digits:?} may only contain 0-9, *, # and A-D");
        problems.push(Problem::in_data("takeback_dtmf", "pattern", message));
    }
    digits
}

/// Maps the JSON spelling to a [`TransferType`]; unknown kinds are refused (Kazoo knows
/// `blind` and `attended` only).
fn check_transfer_type(text: &str, problems: &mut Vec<Problem>) -> TransferType {
    for kind in [TransferType::Blind, TransferType::Attended] {
        if text == kind.as_json_str() {
            return kind;
        }
    }
    let message = match text {
        "consultative" | "warm" => {
            format!("transfer_type {text:?} is spelt \"attended\" here, as in Kazoo")
        }
        _ => format!("transfer_type {text:?} is unknown; use \"blind\" or \"attended\""),
    };
    problems.push(Problem::in_data("transfer_type", "enum", message));
    TransferType::Blind
}

/// `captures`, when present, must be a list of strings (the engine fills it from the match).
fn check_captures(data: &Map<String, Value>, problems: &mut Vec<Problem>) {
    match data.get("captures") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
        Some(_) => problems.push(Problem::in_data(
            "captures",
            "type",
            "captures must be a list of strings",
        )),
    }
}
