//! RFC 3261 §17 transaction state machines (with the RFC 6026 "Accepted" states), sans-IO.
//!
//! A transaction never touches a socket: the owner feeds it responses, requests and `now`, asks
//! for its next deadline, and performs what it returns (retransmit, give up, forget). Timer
//! names follow RFC 3261: A/B/D (client INVITE), E/F/K (client non-INVITE), G/H/I (server
//! INVITE), J (server non-INVITE); L and M (RFC 6026) keep a transaction that saw a 2xx around
//! long enough to absorb retransmitted 2xx responses and ACKs.

use std::time::{Duration, Instant};

/// The SIP timer base values (RFC 3261 §17.1.1.1), configurable for tests and odd networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate; retransmissions start at T1 and double.
    pub t1: Duration,
    /// Maximum retransmission interval for non-INVITE requests and INVITE responses.
    pub t2: Duration,
    /// Maximum time a message stays in the network.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_millis(4000),
            t4: Duration::from_millis(5000),
        }
    }
}

impl Timers {
    /// 64*T1: the overall transaction timeout (timers B, F, H, J, L, M).
    pub fn t64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

/// INVITE transactions follow different rules than all other methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxKind {
    /// INVITE (ACK for non-2xx is part of it).
    Invite,
    /// Every other method except ACK.
    NonInvite,
}

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientState {
    Calling,
    Proceeding,
    Completed,
    Accepted,
    Terminated,
}

/// A client transaction (RFC 3261 §17.1): retransmits our request over unreliable transports
/// until a response arrives, and absorbs retransmitted responses afterwards.
#[derive(Clone, Debug)]
pub struct ClientTx {
    kind: TxKind,
    state: ClientState,
    reliable: bool,
    interval: Duration,
    retransmit_at: Option<Instant>,
    timeout_at: Option<Instant>,
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

    /// Whether a final response has been received.
    pub fn has_final(&self) -> bool {
        matches!(
            self.state,
            ClientState::Completed | ClientState::Accepted | ClientState::Terminated
        )
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerState {
    Proceeding,
    Completed,
    Accepted,
    Confirmed,
    Terminated,
}

/// A server transaction (RFC 3261 §17.2): remembers the last response so that retransmitted
/// requests are answered without reaching the other leg, and retransmits final INVITE
/// responses until the ACK arrives.
#[derive(Clone, Debug)]
pub struct ServerTx {
    kind: TxKind,
    state: ServerState,
    reliable: bool,
    last_response: Option<Vec<u8>>,
    last_code: u16,
    interval: Duration,
    retransmit_at: Option<Instant>,
    timeout_at: Option<Instant>,
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
