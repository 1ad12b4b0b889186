//! What happened to a call, as one typed value: the call core, the modules and the application
//! shell emit a [`CallEvent`]; the event log writes it as one JSON line and the API's live-call
//! view updates from it. A typo in an event name is a compile error, not a silent gap in a log.

use serde::Serialize;
use serde_json::{Map, Value};

use super::Leg;

/// Fields of an event as they are written next to `ts`, `event` and `call_id`.
pub type EventFields = Map<String, Value>;

/// A metaflow attached to a new call, so an operator can see whose codes run on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachedMetaflow {
    /// The leg whose endpoint owns it (`self` of `listen_on`).
    pub owner: Leg,
    /// The layers merged into it, lowest first: `account`, `callflow`, `device`, `user`
    /// joined by `+`.
    pub scope: String,
}

/// One thing that happened to a call. The variant name, in snake case, is the `event` value
/// written to `events.jsonl`; the fields follow in declaration order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CallEvent {
    /// A new call was accepted and its INVITE sent on towards the PBX.
    CallStarted {
        /// The caller's URI (From of the caller's INVITE).
        from: String,
        /// The called URI (To of the caller's INVITE).
        to: String,
        /// The Call-ID of the PBX-side dialog.
        b_call_id: String,
        /// Where the INVITE came from (`transport:address`).
        source: String,
        /// The account the caller belongs to, when the directory knows it.
        #[serde(skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
        /// The metaflows attached to the call: whose codes run, merged from which layers.
        metaflows: Vec<AttachedMetaflow>,
    },
    /// The PBX answered with a 2xx.
    CallAnswered,
    /// The PBX refused the call with a final error response.
    CallRejected {
        /// The status code relayed to the caller.
        code: u16,
    },
    /// The caller cancelled before answer.
    CallCancelled,
    /// The proxy itself ended the call (metaflow, media timeout, shutdown, API).
    CallTerminated {
        /// Why.
        reason: String,
    },
    /// The call is over and its state is gone.
    CallEnded {
        /// `answered`, `cancelled`, `rejected`, `failed` or `timeout`.
        outcome: &'static str,
        /// Whether the call was ever answered.
        answered: bool,
    },
    /// A key press started on a leg.
    Digit {
        /// The leg that pressed it.
        leg: Leg,
        /// `0`-`9`, `*`, `#`, `A`-`D`.
        digit: char,
        /// `rtp` (RFC 4733) or `info` (SIP INFO).
        source: &'static str,
    },
    /// An RFC 4733 key press ended.
    DigitEnded {
        /// The leg that pressed it.
        leg: Leg,
        /// The digit.
        digit: char,
        /// How long it was held.
        duration_ms: u32,
    },
    /// A binding digit started collecting a code.
    MetaflowArmed {
        /// The dialing leg.
        leg: Leg,
    },
    /// A dialed code matched a metaflow number or pattern.
    MetaflowMatch {
        /// The dialing leg.
        leg: Leg,
        /// The digits collected after the binding digit.
        collected: String,
        /// The number or pattern that matched.
        matched: String,
        /// The pattern's capture groups.
        captures: Vec<String>,
        /// The module of the matched node.
        module: String,
        /// Whether it matched before the inter-digit timeout (Kazoo's early match).
        early: bool,
    },
    /// A dialed code matched nothing.
    MetaflowNoMatch {
        /// The dialing leg.
        leg: Leg,
        /// The digits collected.
        collected: String,
    },
    /// Suppressed digits that were no code went on to the other leg.
    MetaflowRelease {
        /// The dialing leg.
        leg: Leg,
        /// The digits released, binding digit first.
        digits: String,
    },
    /// A module node started on the call.
    ModuleRun {
        /// The module's name.
        module: String,
        /// The leg it acts for.
        leg: Leg,
        /// The node's data with the engine's additions (`collected`, `captures`, `dtmf_leg`).
        data: EventFields,
    },
    /// A module node finished.
    ModuleOutcome {
        /// The module's name.
        module: String,
        /// The outcome that selects its child (`success`, `failure`, ...).
        outcome: String,
    },
    /// A `record_call` node changed nothing (e.g. `stop` with no recording running).
    RecordingUnchanged {
        /// The node's action.
        action: String,
    },
    /// A recording file was opened.
    RecordingStarted {
        /// The file being written.
        path: String,
    },
    /// A recording was finished and renamed to its final name.
    RecordingStopped {
        /// The finished file.
        path: String,
        /// Its JSON sidecar.
        sidecar: String,
        /// Why it stopped.
        reason: String,
        /// Audio frames (or packets) written.
        frames: u64,
        /// Size of the finished file.
        bytes: u64,
        /// Packets the relay could not hand over (queue full).
        dropped: u64,
    },
    /// A recording could not start or failed while writing.
    RecordingFailed {
        /// What went wrong.
        error: String,
    },
    /// The proxy sent a REFER for a blind transfer.
    TransferReferSent {
        /// The `Refer-To` URI.
        refer_to: String,
        /// The `Referred-By` URI.
        referred_by: String,
        /// The leg that dialed the transfer.
        dialing_leg: Leg,
    },
    /// The transferee accepted the REFER.
    TransferAccepted {
        /// The response's status.
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
    },
    /// A NOTIFY reported the transferee's progress.
    TransferNotify {
        /// The sipfrag status.
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
    },
    /// The transfer completed.
    TransferSucceeded {
        /// The status that completed it.
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
    },
    /// The transfer failed (or could not start).
    TransferFailed {
        /// The status that failed it.
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// Why it could not start.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The dialing party took the transfer back.
    TransferWithdrawn {
        /// The status at that time.
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
    },
    /// The proxy placed a call of its own through the PBX to take the place of `leg` (a
    /// transfer the far end would not take as a REFER).
    LegOriginated {
        /// The leg whose place the new call is to take.
        leg: Leg,
        /// The Request-URI of the new call.
        target: String,
        /// The new call's Call-ID (the PBX sees this one).
        call_id: String,
    },
    /// The call the proxy placed for `leg` ended without being used (busy, declined, no
    /// answer, given up, or an answer without usable SDP): `leg`'s party stays.
    LegOriginationFailed {
        /// The leg the call was to take.
        leg: Leg,
        /// The final status (408 for no answer, 487 when it was given up).
        status: u16,
    },
    /// The call the proxy placed was answered and now stands in `leg`'s place: the party that
    /// was there got a BYE, the other party's media goes to the new call.
    LegReplaced {
        /// The leg now held by the new call.
        leg: Leg,
        /// The new call's Call-ID.
        call_id: String,
    },
    /// The party an attended transfer called answered: it talks with `leg`'s party while the
    /// other party is on hold.
    LegConsulted {
        /// The leg that talks with it (the transferor).
        leg: Leg,
        /// Its call's Call-ID.
        call_id: String,
    },
    /// The consulted party left without taking a leg's place (it hung up, or was hung up by a
    /// takeback): `leg`'s party talks with the other party again.
    LegConsultEnded {
        /// The leg that talked with it.
        leg: Leg,
        /// Its call's Call-ID.
        call_id: String,
    },
    /// A sound started or ended on a leg (music on hold, a media file, a tone, speech).
    Playback {
        /// The leg that hears it.
        leg: Leg,
        /// The kind of source: `moh`, `media`, `tone`, `url`, `tts`, `say`.
        source: &'static str,
        /// Which sound (a media id, a tone, the speech engine and voice; never the spoken text).
        sound: String,
        /// `started`, `finished`, `stopped` or `failed`.
        state: &'static str,
        /// Why it failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The audio towards a leg was held, released or had its volume changed.
    MediaControl {
        /// The leg whose received audio changed.
        leg: Leg,
        /// `hold`, `unhold`, `gain` or `mute`.
        action: &'static str,
        /// The factor for `gain`.
        #[serde(skip_serializing_if = "Option::is_none")]
        factor: Option<f32>,
    },
    /// A `record_call` mask: what `leg` says is written as silence from now on.
    RecordingMasked {
        /// The masked leg (the one that dialed the code).
        leg: Leg,
        /// Whether a recording was running; without one nothing is masked.
        recording: bool,
    },
    /// A `record_call` unmask: `leg` is recorded again.
    RecordingUnmasked {
        /// The unmasked leg.
        leg: Leg,
        /// Whether a recording was running.
        recording: bool,
    },
    /// A recording shorter than `record_min_sec` was deleted (no file, no upload).
    RecordingDiscarded {
        /// How long it was.
        duration_ms: u64,
        /// The configured minimum.
        min_sec: u64,
    },
    /// A `record_call` with `record_on_answer` ran before the answer: the recording starts
    /// when the call is answered.
    RecordingDeferred,
}

/// Every `event` value a [`CallEvent`] can have, in declaration order: what a filter of event
/// kinds (the `webhook-events` key) is checked against.
pub const CALL_EVENT_KINDS: [&str; 35] = [
    "call_started",
    "call_answered",
    "call_rejected",
    "call_cancelled",
    "call_terminated",
    "call_ended",
    "digit",
    "digit_ended",
    "metaflow_armed",
    "metaflow_match",
    "metaflow_no_match",
    "metaflow_release",
    "module_run",
    "module_outcome",
    "recording_unchanged",
    "recording_started",
    "recording_stopped",
    "recording_failed",
    "transfer_refer_sent",
    "transfer_accepted",
    "transfer_notify",
    "transfer_succeeded",
    "transfer_failed",
    "transfer_withdrawn",
    "leg_originated",
    "leg_origination_failed",
    "leg_replaced",
    "leg_consulted",
    "leg_consult_ended",
    "playback",
    "media_control",
    "recording_masked",
    "recording_unmasked",
    "recording_discarded",
    "recording_deferred",
];

impl CallEvent {
    /// The `event` value written to the log (`call_started`, `metaflow_match`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CallStarted { .. } => "call_started",
            Self::CallAnswered => "call_answered",
            Self::CallRejected { .. } => "call_rejected",
            Self::CallCancelled => "call_cancelled",
            Self::CallTerminated { .. } => "call_terminated",
            Self::CallEnded { .. } => "call_ended",
            Self::Digit { .. } => "digit",
            Self::DigitEnded { .. } => "digit_ended",
            Self::MetaflowArmed { .. } => "metaflow_armed",
            Self::MetaflowMatch { .. } => "metaflow_match",
            Self::MetaflowNoMatch { .. } => "metaflow_no_match",
            Self::MetaflowRelease { .. } => "metaflow_release",
            Self::ModuleRun { .. } => "module_run",
            Self::ModuleOutcome { .. } => "module_outcome",
            Self::RecordingUnchanged { .. } => "recording_unchanged",
            Self::RecordingStarted { .. } => "recording_started",
            Self::RecordingStopped { .. } => "recording_stopped",
            Self::RecordingFailed { .. } => "recording_failed",
            Self::TransferReferSent { .. } => "transfer_refer_sent",
            Self::TransferAccepted { .. } => "transfer_accepted",
            Self::TransferNotify { .. } => "transfer_notify",
            Self::TransferSucceeded { .. } => "transfer_succeeded",
            Self::TransferFailed { .. } => "transfer_failed",
            Self::TransferWithdrawn { .. } => "transfer_withdrawn",
            Self::LegOriginated { .. } => "leg_originated",
            Self::LegReplaced { .. } => "leg_replaced",
            Self::LegOriginationFailed { .. } => "leg_origination_failed",
            Self::LegConsulted { .. } => "leg_consulted",
            Self::LegConsultEnded { .. } => "leg_consult_ended",
            Self::Playback { .. } => "playback",
            Self::MediaControl { .. } => "media_control",
            Self::RecordingMasked { .. } => "recording_masked",
            Self::RecordingUnmasked { .. } => "recording_unmasked",
            Self::RecordingDiscarded { .. } => "recording_discarded",
            Self::RecordingDeferred => "recording_deferred",
        }
    }

    /// The event's own fields, in declaration order, without the `event` tag.
    pub fn fields(&self) -> EventFields {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut map)) => {
                map.shift_remove("event");
                map
            }
            // Every variant is a struct or unit variant of plain data: it always serialises to
            // an object. Nothing else can happen; an empty map keeps the event's name.
            _ => Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_kind_is_the_serialised_tag_of_every_variant() {
        let samples = [
            CallEvent::CallAnswered,
            CallEvent::CallEnded {
                outcome: "answered",
                answered: true,
            },
            CallEvent::MetaflowNoMatch {
                leg: Leg::B,
                collected: "9".into(),
            },
            CallEvent::TransferFailed {
                status: None,
                reason: Some("no target".into()),
            },
        ];
        for event in samples {
            let value = serde_json::to_value(&event).unwrap();
            assert_eq!(value["event"], json!(event.kind()));
        }
    }

    #[test]
    fn the_kinds_list_names_every_kind() {
        let samples = [
            CallEvent::CallAnswered,
            CallEvent::CallCancelled,
            CallEvent::TransferWithdrawn { status: None },
            CallEvent::LegOriginated {
                leg: Leg::A,
                target: "sip:1234@pbx".into(),
                call_id: "x".into(),
            },
            CallEvent::LegReplaced {
                leg: Leg::A,
                call_id: "x".into(),
            },
            CallEvent::LegOriginationFailed {
                leg: Leg::B,
                status: 486,
            },
            CallEvent::LegConsulted {
                leg: Leg::A,
                call_id: "x".into(),
            },
            CallEvent::LegConsultEnded {
                leg: Leg::A,
                call_id: "x".into(),
            },
            CallEvent::RecordingMasked {
                leg: Leg::A,
                recording: true,
            },
            CallEvent::RecordingUnmasked {
                leg: Leg::B,
                recording: false,
            },
            CallEvent::RecordingDiscarded {
                duration_ms: 1,
                min_sec: 2,
            },
            CallEvent::RecordingDeferred,
        ];
        for event in samples {
            let value = serde_json::to_value(&event).unwrap();
            assert_eq!(value["event"], json!(event.kind()));
            assert!(CALL_EVENT_KINDS.contains(&event.kind()));
        }
        let mut unique = CALL_EVENT_KINDS.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), CALL_EVENT_KINDS.len());
    }

    #[test]
    fn fields_keep_declaration_order_and_skip_absent_options() {
        let event = CallEvent::Digit {
            leg: Leg::A,
            digit: '*',
            source: "rtp",
        };
        let fields = event.fields();
        let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
        assert_eq!(keys, ["leg", "digit", "source"]);
        assert_eq!(fields["leg"], json!("a"));
        assert_eq!(fields["digit"], json!("*"));
        let accepted = CallEvent::TransferAccepted { status: None }.fields();
        assert!(accepted.is_empty());
    }
}
