//! The transaction layer: a table of server and client transactions that the owner (the call
//! core) drives without I/O. The owner hands it every received request and response, asks it
//! to answer on a server transaction or to send a request on a new client transaction, and
//! runs its timers at [`TxLayer::poll_timeout`]. The layer returns what must go on the wire as
//! [`Transmit`]s and tells the owner only what the transaction layer cannot decide itself (a
//! new request, a new response, a time-out), each with the owner's data `S`/`C` that was
//! attached when the transaction began.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::sip::transport::Peer;
use crate::sip::{Method, SipMessage};

use super::client::{ClientTimerEvent, ClientTx, ResponseVerdict, ack_for_non_2xx};
use super::key::{ClientKey, ServerKey};
use super::server::{ServerTimerEvent, ServerTx};
use super::timers::{Timers, TxKind};

/// Bytes to send to a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: Peer,
    /// A serialised SIP message.
    pub bytes: Vec<u8>,
}

/// A request received from a peer, with the state needed to answer it.
#[derive(Debug)]
pub struct ServerTransaction<S> {
    /// The state machine.
    tx: ServerTx,
    /// Kept to build responses from (they copy its Via, From, To, Call-ID and CSeq).
    request: SipMessage,
    /// Responses go back where the request came from.
    source: Peer,
    /// What the owner attached.
    data: S,
    /// The deadline queued for this transaction, so a reschedule can take it out again.
    scheduled: Option<Instant>,
}

impl<S> ServerTransaction<S> {
    /// The request that started the transaction.
    pub fn request(&self) -> &SipMessage {
        &self.request
    }

    /// Where the request came from.
    pub fn source(&self) -> Peer {
        self.source
    }

    /// What the owner attached when the transaction began.
    pub fn data(&self) -> &S {
        &self.data
    }

    /// Whether a final response has been sent.
    pub fn has_final(&self) -> bool {
        self.tx.has_final()
    }

    /// Status code of the last response sent (0 if none).
    pub fn last_code(&self) -> u16 {
        self.tx.last_code()
    }
}

/// A request we sent, with the state needed to retransmit it and match its responses.
#[derive(Debug)]
pub struct ClientTransaction<C> {
    /// The state machine.
    tx: ClientTx,
    /// The request as sent: its CANCEL and its non-2xx ACK are built from it.
    request: SipMessage,
    /// Its bytes, sent again on every retransmission.
    bytes: Vec<u8>,
    /// Where it went.
    dest: Peer,
    /// What the owner attached.
    data: C,
    /// The ACK sent for the final response: a retransmitted final means the ACK was lost.
    ack: Option<Vec<u8>>,
    /// The deadline queued for this transaction, so a reschedule can take it out again.
    scheduled: Option<Instant>,
    /// When the request was first sent, for the transaction-time histogram.
    sent_at: Instant,
}

impl<C> ClientTransaction<C> {
    /// The request as sent.
    pub fn request(&self) -> &SipMessage {
        &self.request
    }

    /// Where the request went.
    pub fn dest(&self) -> Peer {
        self.dest
    }

    /// What the owner attached when the transaction began.
    pub fn data(&self) -> &C {
        &self.data
    }

    /// Whether a final response has arrived.
    pub fn has_final(&self) -> bool {
        self.tx.has_final()
    }

    /// Whether any response, a provisional one included, has arrived.
    pub fn has_response(&self) -> bool {
        self.tx.has_response()
    }
}

/// What a received request means to the transaction layer.
#[derive(Debug, PartialEq, Eq)]
pub enum RequestEvent {
    /// No transaction has it: the owner acts on it (a new request, a CANCEL, or an ACK for a
    /// 2xx, which is a transaction of its own).
    New,
    /// A retransmission of a request a transaction already has: send the last response again
    /// (`None` while none has been sent) and do nothing else.
    Retransmission(Option<Transmit>),
    /// The ACK for a non-2xx final response: it ends the retransmission of that response and is
    /// never passed on.
    AckAbsorbed,
}

/// What a received response means to the transaction layer.
#[derive(Debug)]
pub enum ResponseEvent<'a, C> {
    /// A new response for a client transaction: the owner acts on it. `ack` is the ACK the
    /// layer built for a non-2xx final response to an INVITE, to send before anything else.
    Deliver {
        /// The transaction it belongs to.
        key: ClientKey,
        /// What the owner attached to the transaction.
        data: &'a C,
        /// The request the response answers.
        request: &'a SipMessage,
        /// The ACK to send, if the layer built one.
        ack: Option<Transmit>,
        /// For a final response: how long after the request was first sent it came.
        final_after: Option<Duration>,
    },
    /// A retransmitted response: drop it, re-sending the ACK if one is given.
    Absorbed(Option<Transmit>),
    /// No client transaction matches: drop it.
    Stray,
}

/// What the timers of the layer ask the owner to do.
#[derive(Debug)]
pub enum TxEvent<S, C> {
    /// A retransmission (timer A, E or G, or a 2xx retransmitted until its ACK).
    Send(Transmit),
    /// A client transaction got no final response in time (timer B or F); it is gone, and the
    /// owner acts as if a 408 had arrived.
    ClientTimeout {
        /// The transaction.
        key: ClientKey,
        /// The request that went unanswered.
        request: SipMessage,
        /// What the owner attached.
        data: C,
    },
    /// A final response to an INVITE was never acknowledged (timer H, or 64*T1 for a 2xx); the
    /// transaction is gone.
    ServerAckTimeout {
        /// The transaction.
        key: ServerKey,
        /// The status code of the unacknowledged response.
        code: u16,
        /// What the owner attached.
        data: S,
    },
}

/// A transaction in the deadline queue.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TxRef {
    Server(ServerKey),
    Client(ClientKey),
}

/// The table of transactions of one SIP element; `S` and `C` are what its owner keeps with each
/// server and client transaction (the call and leg, why a request was sent).
#[derive(Debug)]
pub struct TxLayer<S, C> {
    /// Every transaction runs on the same base values.
    timers: Timers,
    /// Requests we received, by the key their retransmissions, ACKs and CANCELs carry.
    servers: HashMap<ServerKey, ServerTransaction<S>>,
    /// Requests we sent, by the key their responses carry.
    clients: HashMap<ClientKey, ClientTransaction<C>>,
    /// The next deadline of every transaction that has one, earliest first. Ordered by key
    /// after the instant, so transactions due together fire in the same order on every run.
    deadlines: BTreeSet<(Instant, TxRef)>,
}

impl<S, C> TxLayer<S, C> {
    /// An empty table whose transactions run on `timers`. How many transactions it may hold
    /// is the owner's policy: it sees [`TxLayer::len`] before starting one.
    pub fn new(timers: Timers) -> Self {
        TxLayer {
            timers,
            servers: HashMap::new(),
            clients: HashMap::new(),
            deadlines: BTreeSet::new(),
        }
    }

    /// The timer values transactions run on.
    pub fn timers(&self) -> &Timers {
        &self.timers
    }

    /// Number of transactions held.
    pub fn len(&self) -> usize {
        self.servers.len() + self.clients.len()
    }

    /// Whether no transaction is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The server transaction of `key`.
    pub fn server(&self, key: &ServerKey) -> Option<&ServerTransaction<S>> {
        self.servers.get(key)
    }

    /// The server transactions still without a final response whose data satisfies `pick`,
    /// in key order (so a run is reproducible): what must still be answered when the dialog
    /// they belong to ends.
    pub fn unanswered_servers(&self, pick: impl Fn(&S) -> bool) -> Vec<ServerKey> {
        let mut keys: Vec<ServerKey> = self
            .servers
            .iter()
            .filter(|(_, tx)| !tx.has_final() && pick(tx.data()))
            .map(|(key, _)| key.clone())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// The client transaction of `key`.
    pub fn client(&self, key: &ClientKey) -> Option<&ClientTransaction<C>> {
        self.clients.get(key)
    }

    /// Matches a received request against the server transactions: retransmissions are
    /// answered with the last response and the ACK of a non-2xx final is absorbed.
    pub fn on_request(&mut self, msg: &SipMessage, now: Instant) -> RequestEvent {
        let is_ack = msg.method() == Some(&Method::Ack);
        let key = ServerKey::of_request(msg);
        let Some(entry) = key.as_ref().and_then(|k| self.servers.get_mut(k)) else {
            return RequestEvent::New;
        };
        if !is_ack {
            let resend = entry.tx.on_request_retransmission().map(|bytes| Transmit {
                to: entry.source,
                bytes: bytes.to_vec(),
            });
            return RequestEvent::Retransmission(resend);
        }
        if entry.tx.last_code() < 300 {
            return RequestEvent::New;
        }
        entry.tx.on_ack(now, &self.timers);
        if let Some(key) = key {
            self.schedule_server(&key);
        }
        RequestEvent::AckAbsorbed
    }

    /// Starts a server transaction for `request`, received from `source`. `reliable` says
    /// whether the transport retransmits for us (normally `source.transport.is_reliable()`).
    /// A transaction already under `key` is replaced.
    pub fn insert_server(
        &mut self,
        key: ServerKey,
        request: SipMessage,
        source: Peer,
        reliable: bool,
        data: S,
    ) {
        let kind = request.method().map_or(TxKind::NonInvite, TxKind::of);
        let entry = ServerTransaction {
            tx: ServerTx::new(kind, reliable),
            request,
            source,
            data,
            scheduled: None,
        };
        if let Some(old) = self.servers.insert(key.clone(), entry)
            && let Some(at) = old.scheduled
        {
            self.deadlines.remove(&(at, TxRef::Server(key)));
        }
    }

    /// Sends `resp` on the server transaction of `key`: records it for retransmissions and
    /// returns the bytes to send to the request's source (`None` if there is no such
    /// transaction). A response after the final one is sent but not recorded.
    pub fn respond(
        &mut self,
        key: &ServerKey,
        resp: &SipMessage,
        now: Instant,
    ) -> Option<Transmit> {
        let entry = self.servers.get_mut(key)?;
        let code = resp.status().unwrap_or(500);
        let bytes = resp.to_bytes();
        entry
            .tx
            .on_send_response(code, bytes.clone(), now, &self.timers);
        let to = entry.source;
        self.schedule_server(key);
        Some(Transmit { to, bytes })
    }

    /// The ACK for the 2xx sent on the server transaction of `key` arrived (an ACK for a 2xx
    /// is a transaction of its own, so the owner matches it and reports it here): the 2xx is
    /// no longer retransmitted.
    pub fn ack_server(&mut self, key: &ServerKey, now: Instant) {
        if let Some(entry) = self.servers.get_mut(key) {
            entry.tx.on_ack(now, &self.timers);
            self.schedule_server(key);
        }
    }

    /// Sends `request` to `dest` on a new client transaction keyed by its top Via branch and
    /// method, and returns the bytes to send. A request without a branch cannot be matched with
    /// responses and gets no transaction.
    pub fn send(&mut self, request: SipMessage, dest: Peer, data: C, now: Instant) -> Transmit {
        let bytes = request.to_bytes();
        let transmit = Transmit {
            to: dest,
            bytes: bytes.clone(),
        };
        let Some(key) = ClientKey::of_request(&request) else {
            return transmit;
        };
        let kind = request.method().map_or(TxKind::NonInvite, TxKind::of);
        let entry = ClientTransaction {
            tx: ClientTx::new(kind, dest.transport.is_reliable(), now, &self.timers),
            request,
            bytes,
            dest,
            data,
            ack: None,
            scheduled: None,
            sent_at: now,
        };
        if let Some(old) = self.clients.insert(key.clone(), entry)
            && let Some(at) = old.scheduled
        {
            self.deadlines.remove(&(at, TxRef::Client(key.clone())));
        }
        self.schedule_client(&key);
        transmit
    }

    /// Remembers the ACK the owner sent for a 2xx to the INVITE of `key`, so that a
    /// retransmitted 2xx (our ACK was lost) is answered with it again.
    pub fn set_ack(&mut self, key: &ClientKey, ack: Vec<u8>) {
        if let Some(entry) = self.clients.get_mut(key) {
            entry.ack = Some(ack);
        }
    }

    /// Notes that a CANCEL for the INVITE of `key` went out at `now`: unless a final response
    /// arrives within 64*T1, the INVITE's transaction ends with [`TxEvent::ClientTimeout`]
    /// (RFC 3261 §9.1), so a peer that never answers with 487 cannot hold it.
    pub fn cancel_sent(&mut self, key: &ClientKey, now: Instant) {
        if let Some(entry) = self.clients.get_mut(key) {
            entry.tx.on_cancel_sent(now, &self.timers);
            self.schedule_client(key);
        }
    }

    /// Matches a received response against the client transactions.
    pub fn on_response(&mut self, msg: &SipMessage, now: Instant) -> ResponseEvent<'_, C> {
        let (Some(key), Some(code)) = (ClientKey::of_response(msg), msg.status()) else {
            return ResponseEvent::Stray;
        };
        let Some(entry) = self.clients.get_mut(&key) else {
            return ResponseEvent::Stray;
        };
        let resend = |entry: &ClientTransaction<C>| {
            entry.ack.clone().map(|bytes| Transmit {
                to: entry.dest,
                bytes,
            })
        };
        match entry.tx.on_response(code, now, &self.timers) {
            ResponseVerdict::Deliver => {}
            ResponseVerdict::Absorb => return ResponseEvent::Absorbed(None),
            ResponseVerdict::AbsorbResendAck | ResponseVerdict::Absorb2xx => {
                return ResponseEvent::Absorbed(resend(entry));
            }
        }
        let final_after = (code >= 200).then(|| now.saturating_duration_since(entry.sent_at));
        let mut ack = None;
        if key.method == Method::Invite && code >= 300 {
            let bytes = ack_for_non_2xx(&entry.request, msg).to_bytes();
            entry.ack = Some(bytes.clone());
            ack = Some(Transmit {
                to: entry.dest,
                bytes,
            });
        }
        self.schedule_client(&key);
        match self.clients.get(&key) {
            Some(entry) => ResponseEvent::Deliver {
                data: &entry.data,
                request: &entry.request,
                key,
                ack,
                final_after,
            },
            None => ResponseEvent::Stray,
        }
    }

    /// The earliest instant at which [`TxLayer::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Runs the timers due at `now` until one produces an event for the owner, and returns it;
    /// call again until it returns `None`. Transactions that end quietly (timers D, I, J, K,
    /// L, M) are dropped on the way.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<TxEvent<S, C>> {
        while self.poll_timeout().is_some_and(|at| at <= now) {
            let Some((_, which)) = self.deadlines.pop_first() else {
                break;
            };
            let event = match which {
                TxRef::Server(key) => self.fire_server(key, now),
                TxRef::Client(key) => self.fire_client(key, now),
            };
            if event.is_some() {
                return event;
            }
        }
        None
    }

    fn fire_server(&mut self, key: ServerKey, now: Instant) -> Option<TxEvent<S, C>> {
        let entry = self.servers.get_mut(&key)?;
        entry.scheduled = None;
        match entry.tx.on_timer(now, &self.timers) {
            Some(ServerTimerEvent::Retransmit) => {
                let resend = entry.tx.on_request_retransmission().map(|bytes| Transmit {
                    to: entry.source,
                    bytes: bytes.to_vec(),
                });
                self.schedule_server(&key);
                resend.map(TxEvent::Send)
            }
            Some(ServerTimerEvent::AckTimeout) => {
                let entry = self.servers.remove(&key)?;
                let code = entry.tx.last_code();
                Some(TxEvent::ServerAckTimeout {
                    key,
                    code,
                    data: entry.data,
                })
            }
            Some(ServerTimerEvent::Terminated) => {
                self.servers.remove(&key);
                None
            }
            None => {
                self.schedule_server(&key);
                None
            }
        }
    }

    fn fire_client(&mut self, key: ClientKey, now: Instant) -> Option<TxEvent<S, C>> {
        let entry = self.clients.get_mut(&key)?;
        entry.scheduled = None;
        match entry.tx.on_timer(now, &self.timers) {
            Some(ClientTimerEvent::Retransmit) => {
                let resend = Transmit {
                    to: entry.dest,
                    bytes: entry.bytes.clone(),
                };
                self.schedule_client(&key);
                Some(TxEvent::Send(resend))
            }
            Some(ClientTimerEvent::Timeout) => {
                let entry = self.clients.remove(&key)?;
                Some(TxEvent::ClientTimeout {
                    key,
                    request: entry.request,
                    data: entry.data,
                })
            }
            Some(ClientTimerEvent::Terminated) => {
                self.clients.remove(&key);
                None
            }
            None => {
                self.schedule_client(&key);
                None
            }
        }
    }

    /// Ends every client transaction sent to `to` (address and transport) that has had no
    /// response at all, as if its Timer B/F had fired, and returns their
    /// [`TxEvent::ClientTimeout`]s (in key order, so a run is reproducible). For an ICMP
    /// unreachable from `to`, or its TCP flow gone: a transaction that did get a response has
    /// a live peer and is left to its timers.
    pub fn fail_towards(&mut self, to: Peer) -> Vec<TxEvent<S, C>> {
        let mut keys: Vec<ClientKey> = self
            .clients
            .iter()
            .filter(|(_, c)| c.dest == to && !c.tx.has_response())
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort_unstable();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(entry) = self.clients.remove(&key) else {
                continue;
            };
            if let Some(at) = entry.scheduled {
                self.deadlines.remove(&(at, TxRef::Client(key.clone())));
            }
            out.push(TxEvent::ClientTimeout {
                key,
                request: entry.request,
                data: entry.data,
            });
        }
        out
    }

    /// Queues the server transaction's next deadline in place of the one queued before.
    fn schedule_server(&mut self, key: &ServerKey) {
        let Some(entry) = self.servers.get_mut(key) else {
            return;
        };
        let next = entry.tx.next_deadline();
        if entry.scheduled != next {
            if let Some(at) = entry.scheduled {
                self.deadlines.remove(&(at, TxRef::Server(key.clone())));
            }
            if let Some(at) = next {
                self.deadlines.insert((at, TxRef::Server(key.clone())));
            }
            entry.scheduled = next;
        }
    }

    /// Queues the client transaction's next deadline in place of the one queued before.
    fn schedule_client(&mut self, key: &ClientKey) {
        let Some(entry) = self.clients.get_mut(key) else {
            return;
        };
        let next = entry.tx.next_deadline();
        if entry.scheduled != next {
            if let Some(at) = entry.scheduled {
                self.deadlines.remove(&(at, TxRef::Client(key.clone())));
            }
            if let Some(at) = next {
                self.deadlines.insert((at, TxRef::Client(key.clone())));
            }
            entry.scheduled = next;
        }
    }
}
