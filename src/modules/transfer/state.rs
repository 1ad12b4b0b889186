//! The life of one blind transfer, as a sans-IO state machine fed by the SIP core.
//!
//! ```text
//!  new ──REFER sent──▶ AwaitingReferResponse ──1xx──▶ (same)         Step::Pending
//!                         │  2xx (202/200)                           Step::Accepted
//!                         │  405, 501, 603 (REFER not taken) ──────▶ Bridging    Step::Bridge
//!                         │  other ≥300, 481, 408 timeout ─────────▶ Failed      Step::Failed
//!                         ▼
//!                      Bridging ──placed call answered──────────────▶ Succeeded   Step::Bridged
//!                         │  placed call failed (busy, 408...) ────▶ Failed      Step::Failed
//!                         ▼
//!                      Accepted ──NOTIFY sipfrag 1xx / unreadable──▶ (same)      Step::Progress
//!                         │  NOTIFY sipfrag 2xx ───────────────────▶ Succeeded   Step::Succeeded
//!                         │  NOTIFY sipfrag ≥300, or subscription
//!                         │  terminated without a final status ────▶ Failed      Step::Failed
//!  any non-final state ──takeback_dtmf dialed─────────────────────▶ Withdrawn   Step::Withdrawn
//!  any final state ──anything────────────────────────────────────▶ (same)      Step::Ignored
//! ```
//!
//! A NOTIFY arriving before the REFER's 2xx (reordering over UDP) counts as acceptance. The core
//! answers every NOTIFY with 200 whatever the step, never relays it to the other leg, and writes
//! the events of [`Step::events`] to the event log: `transfer_refer_sent` when it sends the REFER,
//! then `transfer_accepted`, `transfer_notify` (each NOTIFY), and one of `transfer_succeeded`,
//! `transfer_failed`, `transfer_withdrawn`.

use crate::base::CallEvent;

use super::params::TransferParams;

/// Status the core reports through [`BlindTransfer::on_refer_response`] when the REFER
/// transaction timed out without a final response.
pub const REFER_TIMEOUT_STATUS: u16 = 408;
/// REFER refusals that mean "this endpoint does not do REFER" (Method Not Allowed, Not
/// Implemented, Decline): the proxy then places the call to the target itself.
pub(super) const REFER_NOT_TAKEN: [u16; 3] = [405, 501, 603];
/// Status carried by [`Step::Progress`] and [`Step::Failed`] when the NOTIFY had no readable
/// sipfrag status line.
pub const NO_STATUS: u16 = 0;

/// What the SIP core must do after feeding an input to a [`BlindTransfer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Provisional answer to the REFER: keep waiting.
    Pending,
    /// The transferee accepted the REFER: wait for NOTIFYs.
    Accepted,
    /// A NOTIFY reported a provisional status (or none readable): answer 200, keep waiting.
    Progress(u16),
    /// The transfer completed: BYE the dialing leg, and the transferee leg unless it already
    /// sent BYE. Module outcome `success`.
    Succeeded,
    /// The REFER was refused or timed out, or the transferee's call failed: the call goes on as
    /// before. Module outcome `failure`.
    Failed(u16),
    /// The dialing party took the transfer back: keep both legs up, ignore later NOTIFYs.
    /// Module outcome `withdrawn`.
    Withdrawn,
    /// The far end does not take REFER: place the call to the target through the PBX, to take
    /// the dialing leg's place.
    Bridge,
    /// The placed call answered and stands in the dialing leg's place (which got a BYE): the
    /// call goes on between the transferee and the target. Module outcome `success`.
    Bridged,
    /// Nothing to do (a late message after the transfer ended, or an ordinary digit).
    Ignored,
}

/// Which input produced a [`Step`], to pick the events to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepSource {
    /// A response to (or the timeout of) the REFER.
    ReferResponse,
    /// A NOTIFY of the implicit subscription.
    Notify,
    /// A DTMF digit from the dialing leg.
    Digit,
    /// The final response to the call the proxy placed.
    Originated,
}

/// Event-log entries of a transfer; [`TransferEvent::name`] is the `event` value written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEvent {
    /// `transfer_accepted`: the transferee answered the REFER 2xx.
    Accepted,
    /// `transfer_notify`: a NOTIFY reported the transferee's progress.
    Notify,
    /// `transfer_succeeded`: the transfer completed.
    Succeeded,
    /// `transfer_failed`: the REFER or the transferee's call failed.
    Failed,
    /// `transfer_withdrawn`: the dialing party took the transfer back.
    Withdrawn,
}

impl TransferEvent {
    /// The call event written for this step, with the SIP status that caused it, if any.
    pub fn with_status(self, status: Option<u16>) -> CallEvent {
        match self {
            Self::Accepted => CallEvent::TransferAccepted { status },
            Self::Notify => CallEvent::TransferNotify { status },
            Self::Succeeded => CallEvent::TransferSucceeded { status },
            Self::Failed => CallEvent::TransferFailed {
                status,
                reason: None,
            },
            Self::Withdrawn => CallEvent::TransferWithdrawn { status },
        }
    }

    /// The `event` value written to `events.jsonl`.
    pub fn name(self) -> &'static str {
        self.with_status(None).kind()
    }
}

impl Step {
    /// The events to log, in order, for this step produced by `source`: a NOTIFY always logs
    /// `transfer_notify` (unless ignored), followed by the outcome event when it ended the transfer.
    pub fn events(self, source: StepSource) -> &'static [TransferEvent] {
        use TransferEvent as E;
        match (source, self) {
            (_, Step::Ignored | Step::Pending | Step::Bridge) => &[],
            (_, Step::Bridged) => &[E::Succeeded],
            (StepSource::Notify, Step::Succeeded) => &[E::Notify, E::Succeeded],
            (StepSource::Notify, Step::Failed(_)) => &[E::Notify, E::Failed],
            (StepSource::Notify, _) | (_, Step::Progress(_)) => &[E::Notify],
            (_, Step::Accepted) => &[E::Accepted],
            (_, Step::Succeeded) => &[E::Succeeded],
            (_, Step::Failed(_)) => &[E::Failed],
            (_, Step::Withdrawn) => &[E::Withdrawn],
        }
    }

    /// The module outcome this step settles (`success`, `failure`, `withdrawn`), if any.
    pub fn outcome(self) -> Option<&'static str> {
        match self {
            Step::Succeeded | Step::Bridged => Some("success"),
            Step::Failed(_) => Some("failure"),
            Step::Withdrawn => Some("withdrawn"),
            _ => None,
        }
    }
}

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// REFER sent, no final response yet.
    AwaitingReferResponse,
    /// REFER accepted, waiting for a final NOTIFY.
    Accepted,
    /// Completed: the transferee reached the target.
    Succeeded,
    /// Refused or failed, with the status that said so ([`NO_STATUS`] if none was readable).
    Failed(u16),
    /// Taken back by the dialing party.
    Withdrawn,
    /// REFER not taken: the proxy places the call to the target itself.
    Bridging,
}

/// One blind transfer in progress on a call.
#[derive(Debug, Clone)]
pub struct BlindTransfer {
    params: TransferParams,
    refer_to: String,
    phase: Phase,
    /// The dialing leg's latest digits, at most as many as `takeback_dtmf` has.
    recent_digits: String,
}

impl BlindTransfer {
    /// A transfer about to send its REFER with `Refer-To: <refer_to>`.
    pub fn new(params: TransferParams, refer_to: String) -> Self {
        Self {
            params,
            refer_to,
            phase: Phase::AwaitingReferResponse,
            recent_digits: String::new(),
        }
    }

    /// The target URI, e.g. `sip:1234@pbx.example.com`.
    pub fn refer_to(&self) -> &str {
        &self.refer_to
    }

    /// The `Refer-To` header value: the URI in angle brackets.
    pub fn refer_to_header(&self) -> String {
        format!("<{}>", self.refer_to)
    }

    /// The node's checked arguments.
    pub fn params(&self) -> &TransferParams {
        &self.params
    }

    /// Where the transfer stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// True once succeeded, failed or withdrawn: every later input is [`Step::Ignored`].
    pub fn is_finished(&self) -> bool {
        matches!(
            self.phase,
            Phase::Succeeded | Phase::Failed(_) | Phase::Withdrawn
        )
    }

    /// Feeds the REFER's response status, or [`REFER_TIMEOUT_STATUS`] on timeout.
    pub fn on_refer_response(&mut self, code: u16) -> Step {
        if self.phase != Phase::AwaitingReferResponse {
            return Step::Ignored;
        }
        match code {
            100..=199 => Step::Pending,
            200..=299 => {
                self.phase = Phase::Accepted;
                Step::Accepted
            }
            code if REFER_NOT_TAKEN.contains(&code) => {
                self.phase = Phase::Bridging;
                Step::Bridge
            }
            _ => self.fail(code),
        }
    }

    /// Skips the REFER (`method: bridge`): the proxy places the call at once. Only before the
    /// REFER's answer.
    pub fn bridge_now(&mut self) -> Step {
        if self.phase != Phase::AwaitingReferResponse {
            return Step::Ignored;
        }
        self.phase = Phase::Bridging;
        Step::Bridge
    }

    /// Feeds the final response to the call the proxy placed while [`Phase::Bridging`] (408
    /// when none came).
    pub fn on_originated(&mut self, code: u16) -> Step {
        if self.phase != Phase::Bridging {
            return Step::Ignored;
        }
        if (200..300).contains(&code) {
            self.phase = Phase::Succeeded;
            return Step::Bridged;
        }
        self.fail(code)
    }

    /// Feeds a NOTIFY's `message/sipfrag` body and its `Subscription-State` header value.
    pub fn on_notify(&mut self, sipfrag_body: &[u8], subscription_state: Option<&str>) -> Step {
        if self.is_finished() {
            return Step::Ignored;
        }
        self.phase = Phase::Accepted;
        let code = super::sipfrag::parse_sipfrag(sipfrag_body).map(|(code, _reason)| code);
        match code {
            Some(200..=299) => {
                self.phase = Phase::Succeeded;
                Step::Succeeded
            }
            Some(code @ 300..=699) => self.fail(code),
            provisional if subscription_ended(subscription_state) => {
                self.fail(provisional.unwrap_or(NO_STATUS))
            }
            provisional => Step::Progress(provisional.unwrap_or(NO_STATUS)),
        }
    }

    /// Feeds a digit dialed by the dialing leg after the transfer started; the transfer is
    /// withdrawn when the latest digits spell `takeback_dtmf` before it completed.
    pub fn on_digit(&mut self, digit: char) -> Step {
        if self.is_finished() {
            return Step::Ignored;
        }
        if takeback_dialed(&mut self.recent_digits, &self.params.takeback_dtmf, digit) {
            self.phase = Phase::Withdrawn;
            return Step::Withdrawn;
        }
        Step::Ignored
    }

    fn fail(&mut self, code: u16) -> Step {
        self.phase = Phase::Failed(code);
        Step::Failed(code)
    }
}

/// Adds `digit` to the dialing party's `recent` digits (kept as long as `takeback`) and says
/// whether they now spell `takeback`.
pub(super) fn takeback_dialed(recent: &mut String, takeback: &str, digit: char) -> bool {
    recent.push(digit.to_ascii_uppercase());
    let keep = takeback.chars().count();
    while recent.chars().count() > keep {
        recent.remove(0);
    }
    !takeback.is_empty() && recent == takeback
}

/// True when a `Subscription-State` value says the subscription is over (`terminated;...`).
fn subscription_ended(state: Option<&str>) -> bool {
    state
        .and_then(|value| value.split(';').next())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("terminated"))
}
