//! The client transaction (RFC 3261 §17.1, with the RFC 6026 "Accepted" state): retransmits
//! our request until a response arrives (timers A/E), gives up when none does (B/F), and
//! lingers after the final response to absorb its retransmissions (D/K/M). Also the two
//! requests the transaction layer derives from the request it sent: the ACK for a non-2xx
//! final response (§17.1.1.3) and the CANCEL of a pending INVITE (§9.1).

use std::time::{Duration, Instant};

use crate::sip::names::{CALL_ID, CSEQ, FROM, MAX_FORWARDS, ROUTE, TO, VIA};
use crate::sip::{Method, SipMessage, StartLine};

use super::timers::{Timers, TxKind};

/// What the owner should do with a response a client transaction received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseVerdict {
    /// A new response: pass it up.
    Deliver,
    /// A retransmission: drop it.
    Absorb,
    /// A retransmitted non-2xx final to our INVITE: drop it and re-send the ACK (RFC 3261 §17.1.1.2).
    AbsorbResendAck,
    /// A retransmitted 2xx to our INVITE: our ACK was lost; re-send it if one was sent.
    Absorb2xx,
}

/// What a client transaction asks for when one of its timers fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientTimerEvent {
    /// Timer A or E: send the request again.
    Retransmit,
    /// Timer B or F: no final response in time; act as if a 408 arrived.
    Timeout,
    /// Timer D, K or M: the transaction is over and can be forgotten.
    Terminated,
}

/// Where a client transaction stands (RFC 3261 figures 5 and 6, RFC 6026 figure 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientState {
    /// Request sent, nothing heard yet: retransmitting.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived (any final for non-INVITE, non-2xx for INVITE).
    Completed,
    /// A 2xx to our INVITE arrived; retransmitted 2xx are absorbed (Timer M).
    Accepted,
    /// Over; the owner forgets it.
    Terminated,
}

/// A client transaction (RFC 3261 §17.1): retransmits our request over unreliable transports
/// until a response arrives, and absorbs retransmitted responses afterwards.
#[derive(Clone, Debug)]
pub struct ClientTx {
    /// INVITE and non-INVITE transactions retransmit and linger differently.
    kind: TxKind,
    /// Decides what a response means (new or retransmitted).
    state: ClientState,
    /// Over TCP the transport retransmits, so timers A/E are off and D/K are zero.
    reliable: bool,
    /// The current retransmission interval, doubled per retransmission (capped at T2 for E).
    interval: Duration,
    /// Timer A or E.
    retransmit_at: Option<Instant>,
    /// Timer B or F.
    timeout_at: Option<Instant>,
    /// Timer D, K or M: how long the transaction stays to absorb retransmitted responses.
    linger_until: Option<Instant>,
}

impl ClientTx {
    /// Starts a transaction whose request has just been sent at `now`.
    pub fn new(kind: TxKind, reliable: bool, now: Instant, timers: &Timers) -> Self {
        let retransmit_at = (!reliable).then(|| now + timers.t1);
        ClientTx {
            kind,
            state: ClientState::Calling,
            reliable,
            interval: timers.t1,
            retransmit_at,
            timeout_at: Some(now + timers.t64()),
            linger_until: None,
        }
    }

    /// Whether the transaction is over and can be dropped.
    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }

    /// Whether any response (a provisional one included) has been received: only then may a
    /// CANCEL be sent for an INVITE (RFC 3261 §9.1).
    pub fn has_response(&self) -> bool {
        self.state != ClientState::Calling
    }

    /// Whether a final response has been received.
    pub fn has_final(&self) -> bool {
        matches!(
            self.state,
            ClientState::Completed | ClientState::Accepted | ClientState::Terminated
        )
    }

    /// A CANCEL for this INVITE was sent at `now`. RFC 3261 §9.1: if no final response arrives
    /// within 64*T1 of the CANCEL, the INVITE is considered cancelled and its transaction
    /// destroyed. Timer B stopped at the first provisional, so without this a PBX that never
    /// sends its 487 would hold the transaction (and the call waiting for it) for ever; the
    /// owner sees the end as a time-out.
    pub fn on_cancel_sent(&mut self, now: Instant, timers: &Timers) {
        if self.kind != TxKind::Invite || self.has_final() {
            return;
        }
        let give_up = now + timers.t64();
        self.timeout_at = Some(self.timeout_at.map_or(give_up, |at| at.min(give_up)));
    }

    /// Feeds a response with status `code`.
    pub fn on_response(&mut self, code: u16, now: Instant, timers: &Timers) -> ResponseVerdict {
        let provisional = code < 200;
        match self.state {
            ClientState::Calling | ClientState::Proceeding if provisional => {
                self.state = ClientState::Proceeding;
                if self.kind == TxKind::Invite {
                    // Timer A stops on any provisional response; B keeps running until final.
                    self.retransmit_at = None;
                    self.timeout_at = None;
                } else if let Some(at) = self.retransmit_at.as_mut() {
                    // Timer E continues at T2 in Proceeding (§17.1.2.2).
                    self.interval = timers.t2;
                    *at = now + timers.t2;
                }
                ResponseVerdict::Deliver
            }
            ClientState::Calling | ClientState::Proceeding => {
                self.retransmit_at = None;
                self.timeout_at = None;
                if self.kind == TxKind::Invite && (200..300).contains(&code) {
                    self.state = ClientState::Accepted;
                    self.linger_until = Some(now + timers.t64()); // Timer M
                } else {
                    self.state = ClientState::Completed;
                    let linger = match (self.kind, self.reliable) {
                        (_, true) => Duration::ZERO,
                        (TxKind::Invite, false) => Duration::from_secs(32), // Timer D
                        (TxKind::NonInvite, false) => timers.t4,            // Timer K
                    };
                    self.linger_until = Some(now + linger);
                }
                ResponseVerdict::Deliver
            }
            ClientState::Accepted if (200..300).contains(&code) => ResponseVerdict::Absorb2xx,
            ClientState::Completed if self.kind == TxKind::Invite && code >= 300 => {
                ResponseVerdict::AbsorbResendAck
            }
            _ => ResponseVerdict::Absorb,
        }
    }

    /// The earliest instant at which `on_timer` has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.retransmit_at, self.timeout_at, self.linger_until]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs the timers that are due at `now`; returns at most one event per call.
    pub fn on_timer(&mut self, now: Instant, timers: &Timers) -> Option<ClientTimerEvent> {
        if let Some(at) = self.linger_until
            && now >= at
        {
            self.linger_until = None;
            self.state = ClientState::Terminated;
            return Some(ClientTimerEvent::Terminated);
        }
        if let Some(at) = self.timeout_at
            && now >= at
        {
            self.timeout_at = None;
            self.retransmit_at = None;
            self.state = ClientState::Terminated;
            return Some(ClientTimerEvent::Timeout);
        }
        if let Some(at) = self.retransmit_at
            && now >= at
        {
            self.interval = match self.kind {
                TxKind::Invite => self.interval.saturating_mul(2),
                TxKind::NonInvite => self.interval.saturating_mul(2).min(timers.t2),
            };
            self.retransmit_at = Some(now + self.interval);
            return Some(ClientTimerEvent::Retransmit);
        }
        None
    }
}

/// The ACK for a non-2xx final response to `invite` (RFC 3261 §17.1.1.3): the INVITE's top Via
/// (same branch, so it reaches the same server transaction), its Route set, From and Call-ID,
/// the To of the response (with the tag the UAS chose) and the INVITE's CSeq number.
pub fn ack_for_non_2xx(invite: &SipMessage, resp: &SipMessage) -> SipMessage {
    let mut ack = SipMessage {
        start: invite.start.clone(),
        headers: Vec::new(),
        body: bytes::Bytes::new(),
    };
    if let StartLine::Request { method, .. } = &mut ack.start {
        *method = Method::Ack;
    }
    if let Some(v) = invite.header_values(VIA).first() {
        ack.push_header(VIA, v.to_string());
    }
    ack.push_header(MAX_FORWARDS, "70");
    for r in invite.header_values(ROUTE) {
        ack.push_header(ROUTE, r.to_string());
    }
    for name in [FROM, CALL_ID] {
        if let Some(v) = invite.header(name) {
            ack.push_header(name, v.to_string());
        }
    }
    if let Some(to) = resp.header(TO) {
        ack.push_header(TO, to.to_string());
    }
    let num = invite.cseq().map(|(n, _)| n).unwrap_or(1);
    ack.push_header(CSEQ, format!("{num} ACK"));
    ack
}

/// The CANCEL of a pending `invite` (RFC 3261 §9.1): same Request-URI, Via (so the branch
/// matches the INVITE's server transaction), Route, From, To and Call-ID, and the INVITE's
/// CSeq number with method CANCEL.
pub fn cancel_for(invite: &SipMessage) -> SipMessage {
    let mut cancel = SipMessage {
        start: invite.start.clone(),
        headers: Vec::new(),
        body: bytes::Bytes::new(),
    };
    if let StartLine::Request { method, .. } = &mut cancel.start {
        *method = Method::Cancel;
    }
    for name in [VIA, ROUTE, FROM, TO, CALL_ID] {
        for v in invite.header_values(name) {
            cancel.push_header(name, v.to_string());
        }
    }
    cancel.push_header(MAX_FORWARDS, "70");
    let num = invite.cseq().map(|(n, _)| n).unwrap_or(1);
    cancel.push_header(CSEQ, format!("{num} CANCEL"));
    cancel
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Drives `tx` with a fake clock until `end`, collecting (offset_ms, event).
    fn run_client(tx: &mut ClientTx, t0: Instant, end: Duration) -> Vec<(u128, ClientTimerEvent)> {
        let timers = Timers::default();
        let mut out = Vec::new();
        while let Some(at) = tx.next_deadline() {
            if at > t0 + end {
                break;
            }
            if let Some(ev) = tx.on_timer(at, &timers) {
                out.push(((at - t0).as_millis(), ev));
            }
        }
        out
    }

    #[test]
    fn invite_client_retransmits_with_timer_a_and_times_out_with_b() {
        let t0 = Instant::now();
        let mut tx = ClientTx::new(TxKind::Invite, false, t0, &Timers::default());
        let events = run_client(&mut tx, t0, Duration::from_secs(40));
        let retransmits: Vec<u128> = events
            .iter()
            .filter(|(_, e)| *e == ClientTimerEvent::Retransmit)
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(retransmits, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(events.last(), Some(&(32000, ClientTimerEvent::Timeout)));
        assert!(tx.is_terminated());
    }

    #[test]
    fn non_invite_client_caps_timer_e_at_t2() {
        let t0 = Instant::now();
        let mut tx = ClientTx::new(TxKind::NonInvite, false, t0, &Timers::default());
        let events = run_client(&mut tx, t0, Duration::from_secs(40));
        let times: Vec<u128> = events.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            &times[..7],
            &[500, 1500, 3500, 7500, 11500, 15500, 19500][..]
        );
        assert_eq!(events.last(), Some(&(32000, ClientTimerEvent::Timeout)));
    }

    #[test]
    fn reliable_client_never_retransmits() {
        let t0 = Instant::now();
        let mut tx = ClientTx::new(TxKind::NonInvite, true, t0, &Timers::default());
        let events = run_client(&mut tx, t0, Duration::from_secs(40));
        assert_eq!(events, vec![(32000, ClientTimerEvent::Timeout)]);
    }

    #[test]
    fn invite_client_provisional_stops_a_and_final_absorbs_retransmissions() {
        let timers = Timers::default();
        let t0 = Instant::now();
        let mut tx = ClientTx::new(TxKind::Invite, false, t0, &timers);
        assert_eq!(
            tx.on_response(180, t0 + ms(100), &timers),
            ResponseVerdict::Deliver
        );
        assert_eq!(tx.next_deadline(), None, "A and B stop on 1xx");
        assert_eq!(
            tx.on_response(486, t0 + ms(200), &timers),
            ResponseVerdict::Deliver
        );
        assert_eq!(
            tx.on_response(486, t0 + ms(700), &timers),
            ResponseVerdict::AbsorbResendAck
        );
        // Timer D: 32 s.
        assert_eq!(tx.next_deadline(), Some(t0 + ms(200) + ms(32000)));
        assert_eq!(
            tx.on_timer(t0 + ms(32200), &timers),
            Some(ClientTimerEvent::Terminated)
        );
    }

    #[test]
    fn invite_client_2xx_enters_accepted_and_absorbs_2xx() {
        let timers = Timers::default();
        let t0 = Instant::now();
        let mut tx = ClientTx::new(TxKind::Invite, false, t0, &timers);
        assert_eq!(tx.on_response(200, t0, &timers), ResponseVerdict::Deliver);
        assert_eq!(
            tx.on_response(200, t0 + ms(500), &timers),
            ResponseVerdict::Absorb2xx
        );
        assert_eq!(
            tx.on_timer(t0 + timers.t64(), &timers),
            Some(ClientTimerEvent::Terminated)
        );
    }

    #[test]
    fn invite_client_gives_up_64_t1_after_its_cancel() {
        let timers = Timers::default();
        let t0 = Instant::now();
        let mut tx = ClientTx::new(TxKind::Invite, false, t0, &timers);
        tx.on_response(180, t0 + ms(100), &timers);
        assert_eq!(tx.next_deadline(), None);
        tx.on_cancel_sent(t0 + ms(1000), &timers);
        let give_up = t0 + ms(1000) + timers.t64();
        assert_eq!(tx.next_deadline(), Some(give_up));
        assert_eq!(
            tx.on_timer(give_up, &timers),
            Some(ClientTimerEvent::Timeout)
        );
        assert!(tx.is_terminated());
        // A final response before the give-up stops it, as Timer B would be stopped.
        let mut tx = ClientTx::new(TxKind::Invite, false, t0, &timers);
        tx.on_response(180, t0, &timers);
        tx.on_cancel_sent(t0, &timers);
        tx.on_response(487, t0 + ms(50), &timers);
        assert_eq!(
            tx.next_deadline(),
            Some(t0 + ms(50) + ms(32000)),
            "Timer D only"
        );
    }

    #[test]
    fn non_invite_client_timer_k_after_final() {
        let timers = Timers::default();
        let t0 = Instant::now();
        let mut tx = ClientTx::new(TxKind::NonInvite, false, t0, &timers);
        assert_eq!(
            tx.on_response(200, t0 + ms(10), &timers),
            ResponseVerdict::Deliver
        );
        assert_eq!(
            tx.on_response(200, t0 + ms(20), &timers),
            ResponseVerdict::Absorb
        );
        assert_eq!(tx.next_deadline(), Some(t0 + ms(10) + timers.t4));
    }
}
