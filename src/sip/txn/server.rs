//! The server transaction (RFC 3261 §17.2, with the RFC 6026 "Accepted" state): remembers the
//! last response so that a retransmitted request is answered again without reaching the core,
//! retransmits final INVITE responses until the ACK arrives (timers G/H), and lingers to absorb
//! late retransmissions (I/J/L).

use std::time::{Duration, Instant};

use super::timers::{Timers, TxKind};

/// What a server transaction asks for when one of its timers fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerTimerEvent {
    /// Timer G (or the 2xx retransmit timer of the UAS core): send the last response again.
    Retransmit,
    /// Timer H, or no ACK for a 2xx within 64*T1: the peer never acknowledged.
    AckTimeout,
    /// Timer I, J or L: the transaction is over and can be dropped.
    Terminated,
}

/// Where a server transaction stands (RFC 3261 figures 7 and 8, RFC 6026 figure 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerState {
    /// No final response sent yet.
    Proceeding,
    /// A final response was sent (non-2xx for INVITE, any final for non-INVITE).
    Completed,
    /// A 2xx to an INVITE was sent; it is retransmitted until the ACK arrives.
    Accepted,
    /// The ACK arrived; retransmitted ACKs are absorbed until Timer I or L.
    Confirmed,
    /// Over; the owner forgets it.
    Terminated,
}

/// A server transaction (RFC 3261 §17.2): remembers the last response so that retransmitted
/// requests are answered without reaching the other leg, and retransmits final INVITE
/// responses until the ACK arrives.
#[derive(Clone, Debug)]
pub struct ServerTx {
    /// INVITE and non-INVITE transactions retransmit and linger differently.
    kind: TxKind,
    /// Decides whether a response may still be sent and what an ACK means.
    state: ServerState,
    /// Over TCP a non-2xx final is not retransmitted and timers I/J are zero.
    reliable: bool,
    /// The bytes a retransmitted request is answered with.
    last_response: Option<Vec<u8>>,
    /// Tells the owner whether an unacknowledged final was a 2xx (the dialog then dies).
    last_code: u16,
    /// The current retransmission interval of a final INVITE response (Timer G), capped at T2.
    interval: Duration,
    /// Timer G (or the UAS core's 2xx retransmission).
    retransmit_at: Option<Instant>,
    /// Timer H (or 64*T1 without an ACK for a 2xx).
    timeout_at: Option<Instant>,
    /// Timer I, J or L: how long the transaction stays to absorb retransmitted requests.
    linger_until: Option<Instant>,
}

impl ServerTx {
    /// Starts a transaction for a request received at `now`.
    pub fn new(kind: TxKind, reliable: bool) -> Self {
        ServerTx {
            kind,
            state: ServerState::Proceeding,
            reliable,
            last_response: None,
            last_code: 0,
            interval: Duration::ZERO,
            retransmit_at: None,
            timeout_at: None,
            linger_until: None,
        }
    }

    /// The bytes to send again when the request is retransmitted (None: nothing sent yet).
    pub fn on_request_retransmission(&self) -> Option<&[u8]> {
        match self.state {
            ServerState::Proceeding | ServerState::Completed | ServerState::Accepted => {
                self.last_response.as_deref()
            }
            ServerState::Confirmed | ServerState::Terminated => None,
        }
    }

    /// Status code of the last response sent (0 if none).
    pub fn last_code(&self) -> u16 {
        self.last_code
    }

    /// Whether a final response has been sent.
    pub fn has_final(&self) -> bool {
        self.last_code >= 200
    }

    /// Whether the transaction is over and can be dropped.
    pub fn is_terminated(&self) -> bool {
        self.state == ServerState::Terminated
    }

    /// Records a response the owner has just sent (`bytes` are kept for retransmissions).
    pub fn on_send_response(&mut self, code: u16, bytes: Vec<u8>, now: Instant, timers: &Timers) {
        if self.state != ServerState::Proceeding {
            return;
        }
        self.last_code = code;
        self.last_response = Some(bytes);
        if code < 200 {
            return;
        }
        match self.kind {
            TxKind::Invite => {
                // Non-2xx: Timer G/H. 2xx: the UAS core retransmits until ACK (§13.3.1.4),
                // the RFC 6026 Accepted state absorbs retransmitted INVITEs (Timer L).
                self.state = if (200..300).contains(&code) {
                    ServerState::Accepted
                } else {
                    ServerState::Completed
                };
                self.interval = timers.t1;
                // 2xx is retransmitted end to end even on reliable transports (§13.3.1.4).
                let retransmit = !self.reliable || (200..300).contains(&code);
                self.retransmit_at = retransmit.then(|| now + timers.t1);
                self.timeout_at = Some(now + timers.t64());
            }
            TxKind::NonInvite => {
                self.state = ServerState::Completed;
                let linger = if self.reliable {
                    Duration::ZERO
                } else {
                    timers.t64()
                };
                self.linger_until = Some(now + linger); // Timer J
            }
        }
    }

    /// The ACK for the final response arrived (for a 2xx: the ACK transaction matched this one).
    /// Returns false when the ACK was a retransmission that should be absorbed.
    pub fn on_ack(&mut self, now: Instant, timers: &Timers) -> bool {
        match self.state {
            ServerState::Completed | ServerState::Accepted => {
                let was_accepted = self.state == ServerState::Accepted;
                self.state = ServerState::Confirmed;
                self.retransmit_at = None;
                self.timeout_at = None;
                let linger = if was_accepted {
                    timers.t64() // absorb retransmitted ACKs/INVITEs (Timer L)
                } else if self.reliable {
                    Duration::ZERO
                } else {
                    timers.t4 // Timer I
                };
                self.linger_until = Some(now + linger);
                true
            }
            _ => false,
        }
    }

    /// Whether an ACK for this transaction has already been seen.
    pub fn is_confirmed(&self) -> bool {
        self.state == ServerState::Confirmed
    }

    /// The earliest instant at which `on_timer` has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.retransmit_at, self.timeout_at, self.linger_until]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs the timers that are due at `now`; returns at most one event per call.
    pub fn on_timer(&mut self, now: Instant, timers: &Timers) -> Option<ServerTimerEvent> {
        if let Some(at) = self.linger_until
            && now >= at
        {
            self.linger_until = None;
            self.state = ServerState::Terminated;
            return Some(ServerTimerEvent::Terminated);
        }
        if let Some(at) = self.timeout_at
            && now >= at
        {
            self.timeout_at = None;
            self.retransmit_at = None;
            self.state = ServerState::Terminated;
            return Some(ServerTimerEvent::AckTimeout);
        }
        if let Some(at) = self.retransmit_at
            && now >= at
        {
            self.interval = self.interval.saturating_mul(2).min(timers.t2);
            self.retransmit_at = Some(now + self.interval);
            return Some(ServerTimerEvent::Retransmit);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_server_retransmits_non_2xx_with_g_until_ack_then_i() {
        let timers = Timers::default();
        let t0 = Instant::now();
        let mut tx = ServerTx::new(TxKind::Invite, false);
        assert_eq!(tx.on_request_retransmission(), None);
        tx.on_send_response(100, b"100".to_vec(), t0, &timers);
        assert_eq!(tx.on_request_retransmission(), Some(&b"100"[..]));
        tx.on_send_response(486, b"486".to_vec(), t0, &timers);
        assert_eq!(tx.on_request_retransmission(), Some(&b"486"[..]));
        let mut times = Vec::new();
        let mut now = t0;
        for _ in 0..5 {
            now = tx.next_deadline().unwrap();
            assert_eq!(
                tx.on_timer(now, &timers),
                Some(ServerTimerEvent::Retransmit)
            );
            times.push((now - t0).as_millis());
        }
        assert_eq!(times, vec![500, 1500, 3500, 7500, 11500]);
        assert!(tx.on_ack(now, &timers));
        assert!(!tx.on_ack(now, &timers), "a second ACK is absorbed");
        assert_eq!(tx.next_deadline(), Some(now + timers.t4));
        assert_eq!(
            tx.on_timer(now + timers.t4, &timers),
            Some(ServerTimerEvent::Terminated)
        );
    }

    #[test]
    fn invite_server_times_out_with_h_without_ack() {
        let timers = Timers::default();
        let t0 = Instant::now();
        let mut tx = ServerTx::new(TxKind::Invite, false);
        tx.on_send_response(200, b"200".to_vec(), t0, &timers);
        let mut last = None;
        while let Some(at) = tx.next_deadline() {
            last = tx.on_timer(at, &timers).map(|e| (at, e));
            if matches!(last, Some((_, ServerTimerEvent::AckTimeout))) {
                break;
            }
        }
        assert_eq!(
            last,
            Some((t0 + timers.t64(), ServerTimerEvent::AckTimeout))
        );
    }

    #[test]
    fn non_invite_server_answers_retransmissions_until_j() {
        let timers = Timers::default();
        let t0 = Instant::now();
        let mut tx = ServerTx::new(TxKind::NonInvite, false);
        tx.on_send_response(200, b"200".to_vec(), t0, &timers);
        assert_eq!(tx.on_request_retransmission(), Some(&b"200"[..]));
        assert_eq!(tx.next_deadline(), Some(t0 + timers.t64()));
        assert_eq!(
            tx.on_timer(t0 + timers.t64(), &timers),
            Some(ServerTimerEvent::Terminated)
        );
        assert!(tx.is_terminated());
    }
}
