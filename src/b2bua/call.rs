//! The state the core keeps for one call: its two dialogs and where the call stands.

use std::time::Instant;

use crate::sip::txn::{ClientKey, ServerKey};

use super::Leg;
use super::dialog::Dialog;

/// Where a call stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallState {
    /// INVITE sent to the b-leg, no provisional answer with a tag yet.
    Inviting,
    /// A provisional response with a To tag came back (ringing, early media).
    Early,
    /// The b-leg answered; the a-leg has not acknowledged yet.
    Answered,
    /// Both dialogs are confirmed.
    Confirmed,
    /// A BYE or CANCEL is under way; the call is being torn down.
    Ending,
}

/// How a call ended, for metrics and the event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The call was answered (and later hung up normally).
    Answered,
    /// The caller cancelled before answer.
    Cancelled,
    /// The callee (or the proxy) refused with a final error response.
    Rejected,
    /// No response, or no ACK, in time.
    Failed,
    /// Ended by the proxy because media stopped flowing.
    MediaTimeout,
}

impl Outcome {
    /// The label used in metrics and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Cancelled => "cancelled",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
            Outcome::MediaTimeout => "timeout",
        }
    }
}

/// An ACK the proxy owes one leg once the other leg acknowledges a 2xx.
#[derive(Clone, Debug)]
pub(super) struct PendingAck {
    /// The leg whose ACK we wait for.
    pub from: Leg,
    /// CSeq number of the INVITE on that leg.
    pub from_cseq: u32,
    /// CSeq number of the matching INVITE we sent on the other leg.
    pub to_cseq: u32,
    /// Branch of our INVITE on the other leg (its client transaction keeps our ACK for resends).
    pub to_branch: ClientKey,
    /// Key of the server transaction that sent the 2xx to `from`.
    pub server_key: ServerKey,
}

/// One call through the proxy.
#[derive(Debug)]
pub(super) struct Call {
    /// The account the call belongs to, as resolved at its INVITE (recordings are filed under
    /// it).
    pub account_id: Option<String>,
    /// The caller's Call-ID, which names the call in logs and events for its whole life, also
    /// after a call the proxy placed took the caller's place.
    pub id: String,
    /// Dialog with the caller (or with the call that took the caller's place).
    pub a: Dialog,
    /// Dialog with the PBX (or with the call that took the callee's place).
    pub b: Dialog,
    /// The call the proxy is placing for a module to take one leg's place, until it is
    /// answered (then it becomes that leg's dialog) or fails.
    pub origination: Option<super::originate::Origination>,
    /// The party an attended transfer consults, once it answered, until it leaves or takes a
    /// leg's place.
    pub consult: Option<super::consult::Consulted>,
    /// Where the call stands.
    pub state: CallState,
    /// Server transaction of the caller's initial INVITE.
    pub a_invite_key: ServerKey,
    /// Branch of the initial INVITE we sent to the b-leg.
    pub b_invite_branch: ClientKey,
    /// 2xx responses waiting for an ACK to relay.
    pub pending_acks: Vec<PendingAck>,
    /// When the b-leg answered.
    pub answered: Option<Instant>,
    /// Whether media ports were allocated (released at the end).
    pub has_media: bool,
    /// What each leg's SDP declared (telephone-event payload types, codecs).
    pub sdp_state: super::anchor::SdpState,
    /// When the session expires unless refreshed (RFC 4028), if a session timer is in use.
    pub session_deadline: Option<Instant>,
    /// When Timer C runs out (RFC 3261 §16.6 step 11) unless the PBX sends a provisional or
    /// final response first; only meaningful before the final response.
    pub timer_c: Option<Instant>,
    /// When the no-answer limit runs out, counted from the PBX's first provisional response,
    /// if the limit is configured.
    pub no_answer_at: Option<Instant>,
    /// Whether a recording of the call is running.
    pub recording: bool,
    /// Modules that went on working after they started (a transfer awaiting its NOTIFYs).
    pub modules: Vec<super::host::ActiveModule>,
    /// Sounds the modules asked for, from the request until they end.
    pub playbacks: Vec<super::sounds::ActivePlayback>,
    /// Whether the audio towards each leg (a, b) is held by a module.
    pub held: [bool; 2],
    /// One digit collector per metaflow that applies to the call.
    pub collectors: Vec<super::codes::CallCollector>,
    /// A recording asked for with `record_on_answer` before the answer: it starts then.
    pub deferred_recording: Option<(
        Box<crate::modules::record::RecordingInfo>,
        std::time::Duration,
    )>,
}

impl Call {
    /// The dialog of `leg`.
    pub(super) fn dialog(&self, leg: Leg) -> &Dialog {
        match leg {
            Leg::A => &self.a,
            Leg::B => &self.b,
        }
    }

    /// The dialog of `leg`, mutably.
    pub(super) fn dialog_mut(&mut self, leg: Leg) -> &mut Dialog {
        match leg {
            Leg::A => &mut self.a,
            Leg::B => &mut self.b,
        }
    }

    /// The Call-ID the log lines of this call carry (the caller's).
    pub(super) fn call_id(&self) -> &str {
        &self.id
    }
}

/// The other leg of a call.
pub(super) fn other(leg: Leg) -> Leg {
    match leg {
        Leg::A => Leg::B,
        Leg::B => Leg::A,
    }
}
