//! A scripted SIP endpoint (the phone or the PBX): the test decides every message it sends and
//! takes every new message it received, while the endpoint does what the transaction layer of a
//! real user agent does on its own over UDP, so a lossy network can be survived:
//!
//! * its requests are retransmitted (Timer A/E) until answered;
//! * its final responses to INVITE are retransmitted (Timer G, and 2xx per §13.3.1.4) until the
//!   ACK comes;
//! * a retransmitted request is answered again with the response last sent, and never shown
//!   to the test twice;
//! * a retransmitted response is not shown twice either; a retransmitted final response to an
//!   INVITE already acknowledged gets the same ACK again.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::sip::SipMessage;
use crate::sip::txn::Timers;

use super::dialog::UaDialog;
use super::sip;

/// A message the endpoint keeps sending until something stops it.
#[derive(Debug)]
struct Retransmit {
    /// What stops it: a response key for requests, an ACK key for final responses.
    key: String,
    /// The bytes sent each time.
    bytes: Vec<u8>,
    /// When it goes out again.
    next: Instant,
    /// The current interval, doubling up to `cap`.
    interval: Duration,
    /// The longest interval (T2 for non-INVITE, unbounded for INVITE requests).
    cap: Duration,
    /// When the endpoint gives up (64*T1).
    until: Instant,
}

/// One scripted user agent.
pub(super) struct Endpoint {
    /// `phone` or `pbx`: names its branches, tags and failure messages.
    pub(super) name: &'static str,
    /// Where it receives and sends from.
    pub(super) addr: SocketAddr,
    /// Where everything it sends goes: the proxy.
    proxy: SocketAddr,
    /// Transaction timer values, as the core's.
    timers: Timers,
    /// Whether the endpoint retransmits on its own; a test of the core's own timers may turn it
    /// off to see only what the core does.
    pub(super) retransmit: bool,
    /// New messages the test has not taken yet, in arrival order.
    pub(super) inbox: VecDeque<SipMessage>,
    /// Every message delivered, retransmissions included, with its arrival time.
    pub(super) log: Vec<(Instant, SipMessage)>,
    /// Bytes to put on the network (drained by the harness).
    outbox: Vec<Vec<u8>>,
    /// Counter behind unique branches, tags and Call-IDs.
    next_id: u32,
    /// Our To tag per Call-ID for the requests we answer, so every response of a dialog
    /// carries the same one.
    tags: HashMap<String, String>,
    /// Our requests waiting for an answer, and our INVITE finals waiting for an ACK.
    pending: Vec<Retransmit>,
    /// Requests received, by `branch|method`, with the last response sent to each.
    answered: HashMap<String, Option<Vec<u8>>>,
    /// Responses received (identity), to recognise retransmissions.
    seen: HashSet<String>,
    /// ACKs we sent, by ACK key, re-sent when their final response is retransmitted.
    acks: HashMap<String, Vec<u8>>,
}

impl Endpoint {
    /// An endpoint at `addr` talking to the proxy at `proxy`.
    pub(super) fn new(
        name: &'static str,
        addr: SocketAddr,
        proxy: SocketAddr,
        timers: Timers,
    ) -> Self {
        Endpoint {
            name,
            addr,
            proxy,
            timers,
            retransmit: true,
            inbox: VecDeque::new(),
            log: Vec::new(),
            outbox: Vec::new(),
            next_id: 0,
            tags: HashMap::new(),
            pending: Vec::new(),
            answered: HashMap::new(),
            seen: HashSet::new(),
            acks: HashMap::new(),
        }
    }

    /// A fresh unique token with the endpoint's name.
    fn id(&mut self, kind: &str) -> String {
        self.next_id += 1;
        format!("{}-{kind}-{}", self.name, self.next_id)
    }

    /// A fresh RFC 3261 branch.
    pub(super) fn branch(&mut self) -> String {
        format!("z9hG4bK{}", self.id("br"))
    }

    /// A new INVITE from this endpoint with its own Call-ID and tag.
    pub(super) fn invite(&mut self, sdp: Option<&str>) -> SipMessage {
        let call_id = format!("{}@sim", self.id("call"));
        let tag = self.id("tag");
        let branch = self.branch();
        sip::invite(self.addr, self.proxy, &call_id, &tag, &branch, sdp)
    }

    /// The Contact this endpoint writes.
    pub(super) fn contact(&self) -> String {
        format!("<sip:ua@{}>", self.addr)
    }

    /// A response to `req`: a To tag of ours (the same for every response in a dialog), and
    /// our Contact on a dialog-creating 1xx/2xx.
    pub(super) fn response(&mut self, req: &SipMessage, code: u16) -> SipMessage {
        let call_id = req.call_id().unwrap().to_string();
        let tag = match self.tags.get(&call_id) {
            Some(tag) => tag.clone(),
            None => {
                let tag = self.id("tag");
                self.tags.insert(call_id, tag.clone());
                tag
            }
        };
        let tag = (code > 100).then_some(tag.as_str());
        let creates_dialog = matches!(sip::method_of_cseq(req).as_str(), "INVITE" | "REFER")
            && (101..300).contains(&code);
        let contact = creates_dialog.then(|| self.contact());
        sip::response(req, code, tag, contact.as_deref())
    }

    /// The next request of `dialog` on a new transaction.
    pub(super) fn request(&mut self, dialog: &mut UaDialog, method: &str) -> SipMessage {
        let branch = self.branch();
        dialog.request(method, &branch)
    }

    /// The ACK of the 2xx to our INVITE with CSeq `cseq` in `dialog`.
    pub(super) fn ack(&mut self, dialog: &UaDialog, cseq: u32) -> SipMessage {
        let branch = self.branch();
        dialog.ack(cseq, &branch)
    }

    /// Sends `msg` to the proxy at `now`, and starts its retransmissions if it needs any.
    pub(super) fn send(&mut self, now: Instant, msg: &SipMessage) {
        let bytes = msg.to_bytes();
        let t1 = self.timers.t1;
        let until = now + self.timers.t64();
        if msg.is_request() {
            if sip::method(msg) == "ACK" {
                for key in ack_keys(msg) {
                    self.acks.insert(key, bytes.clone());
                }
            } else if self.retransmit {
                let invite = sip::method(msg) == "INVITE";
                let cap = if invite {
                    Duration::MAX
                } else {
                    self.timers.t2
                };
                self.pending.push(Retransmit {
                    key: tx_key(msg),
                    bytes: bytes.clone(),
                    next: now + t1,
                    interval: t1,
                    cap,
                    until,
                });
            }
        } else {
            let key = tx_key(msg);
            self.answered.insert(key, Some(bytes.clone()));
            let code = msg.status().unwrap_or(0);
            if self.retransmit && sip::method_of_cseq(msg) == "INVITE" && code >= 200 {
                self.pending.push(Retransmit {
                    key: final_ack_key(msg),
                    bytes: bytes.clone(),
                    next: now + t1,
                    interval: t1,
                    cap: self.timers.t2,
                    until,
                });
            }
        }
        self.outbox.push(bytes);
    }

    /// A datagram arrived at `now`.
    pub(super) fn receive(&mut self, now: Instant, data: &[u8]) {
        let msg = SipMessage::parse(data).unwrap_or_else(|e| {
            panic!("{} got unparseable SIP ({e}):\n{}", self.name, lossy(data))
        });
        self.log.push((now, msg.clone()));
        if msg.is_request() {
            if sip::method(&msg) == "ACK" {
                let keys = ack_keys(&msg);
                self.pending.retain(|p| !keys.contains(&p.key));
            }
            let key = tx_key(&msg);
            if let Some(last) = self.answered.get(&key) {
                if let Some(bytes) = last.clone() {
                    self.outbox.push(bytes);
                }
                return;
            }
            self.answered.insert(key, None);
        } else {
            let code = msg.status().unwrap_or(0);
            let key = tx_key(&msg);
            let invite = sip::method_of_cseq(&msg) == "INVITE";
            if invite || code >= 200 {
                self.pending.retain(|p| p.key != key);
            }
            if !self.seen.insert(response_identity(&msg)) {
                if invite
                    && code >= 200
                    && let Some(ack) = self.acks.get(&final_ack_key(&msg))
                {
                    self.outbox.push(ack.clone());
                }
                return;
            }
        }
        self.inbox.push_back(msg);
    }

    /// When a retransmission is next due.
    pub(super) fn next_timer(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.next.min(p.until)).min()
    }

    /// Runs the retransmissions due at `now`; gives up on those past 64*T1.
    pub(super) fn on_timer(&mut self, now: Instant) {
        self.pending.retain(|p| p.until > now);
        for p in &mut self.pending {
            if p.next <= now {
                self.outbox.push(p.bytes.clone());
                p.interval = (p.interval * 2).min(p.cap);
                p.next = now + p.interval;
            }
        }
    }

    /// Takes the datagrams the endpoint wants sent to the proxy.
    pub(super) fn take_outbox(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.outbox)
    }

    /// Where the endpoint sends.
    pub(super) fn proxy(&self) -> SocketAddr {
        self.proxy
    }
}

/// The transaction a request opens, or a response answers: `branch|method`.
fn tx_key(msg: &SipMessage) -> String {
    format!("{}|{}", sip::branch(msg), sip::method_of_cseq(msg))
}

/// What acknowledges a final response to an INVITE: the ACK of a 2xx is matched by Call-ID and
/// CSeq (it is a new transaction), that of a non-2xx by the INVITE's branch.
fn final_ack_key(resp: &SipMessage) -> String {
    if resp.status().is_some_and(|c| (200..300).contains(&c)) {
        format!("ack:{}:{}", resp.call_id().unwrap(), sip::cseq(resp))
    } else {
        format!("ack:{}", sip::branch(resp))
    }
}

/// Both keys an ACK may acknowledge (it cannot tell which kind of final it answers).
fn ack_keys(ack: &SipMessage) -> [String; 2] {
    [
        format!("ack:{}:{}", ack.call_id().unwrap(), sip::cseq(ack)),
        format!("ack:{}", sip::branch(ack)),
    ]
}

/// What makes two responses the same response (a retransmission).
fn response_identity(msg: &SipMessage) -> String {
    format!(
        "{}|{}|{}|{}",
        tx_key(msg),
        msg.status().unwrap_or(0),
        msg.to_tag().unwrap_or_default(),
        msg.header("RSeq").unwrap_or_default()
    )
}

/// Bytes as text for failure messages.
fn lossy(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}
