//! Waiting for messages: a test names what an endpoint should receive ([`req`], [`resp`],
//! narrowed with [`Match::and`]) and the simulation runs until it arrives, or fails with what
//! arrived instead. Also the readers of the event log.

use std::time::Duration;

use crate::base::CallEvent;
use crate::sip::SipMessage;

use super::harness::{Side, Sim};

/// How long `expect` waits by default: past Timer B (32 s), so time-outs can be awaited.
const EXPECT_LIMIT: Duration = Duration::from_secs(40);

/// What a test waits for at an endpoint: a description for failure messages and a predicate.
pub(super) struct Match {
    /// Shown when nothing matched.
    desc: String,
    /// Whether a message is the one awaited.
    pred: Box<dyn Fn(&SipMessage) -> bool>,
}

impl Match {
    /// Narrows the match with one more condition.
    pub(super) fn and(self, desc: &str, extra: impl Fn(&SipMessage) -> bool + 'static) -> Match {
        let pred = self.pred;
        Match {
            desc: format!("{} {desc}", self.desc),
            pred: Box::new(move |m| pred(m) && extra(m)),
        }
    }

    /// Whether `msg` matches.
    pub(super) fn matches(&self, msg: &SipMessage) -> bool {
        (self.pred)(msg)
    }
}

/// A request of `method`.
pub(super) fn req(method: &'static str) -> Match {
    Match {
        desc: format!("{method} request"),
        pred: Box::new(move |m| m.method().is_some_and(|x| x.as_str() == method)),
    }
}

/// A response with status `code` to a request of `method`.
pub(super) fn resp(code: u16, method: &'static str) -> Match {
    Match {
        desc: format!("{code} to {method}"),
        pred: Box::new(move |m| {
            m.status() == Some(code) && m.cseq().is_some_and(|(_, x)| x.as_str() == method)
        }),
    }
}

impl Sim {
    /// Runs until `side` has received a new message matching `m` (within 40 s of simulated
    /// time), and takes it out of the endpoint's inbox.
    pub(super) fn expect(&mut self, side: Side, m: Match) -> SipMessage {
        self.expect_within(side, m, EXPECT_LIMIT)
    }

    /// [`Sim::expect`] with a time limit.
    pub(super) fn expect_within(&mut self, side: Side, m: Match, limit: Duration) -> SipMessage {
        let deadline = self.now + limit;
        loop {
            let inbox = &mut self.ep(side).inbox;
            if let Some(i) = inbox.iter().position(|msg| m.matches(msg)) {
                return inbox.remove(i).unwrap();
            }
            if self.next_event().is_none_or(|t| t > deadline) {
                let got: Vec<String> = self.ep(side).inbox.iter().map(first_line).collect();
                panic!(
                    "{side:?} got no {} within {limit:?} (at {:?}); inbox: {got:#?}",
                    m.desc,
                    self.elapsed()
                );
            }
            self.step();
        }
    }

    /// Takes every new message `side` has received so far.
    pub(super) fn take(&mut self, side: Side) -> Vec<SipMessage> {
        self.ep(side).inbox.drain(..).collect()
    }

    /// The kinds of the events emitted so far, in order (`call_started`, ...).
    pub(super) fn event_kinds(&self) -> Vec<&'static str> {
        self.events.iter().map(|(_, e)| e.kind()).collect()
    }

    /// The events of one kind, in order.
    pub(super) fn events_of(&self, kind: &str) -> Vec<CallEvent> {
        self.events
            .iter()
            .filter(|(_, e)| e.kind() == kind)
            .map(|(_, e)| e.clone())
            .collect()
    }
}

/// The first line of a message, for failure messages.
pub(super) fn first_line(msg: &SipMessage) -> String {
    let bytes = msg.to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    let line = text.split("\r\n").next().unwrap_or("");
    format!("{line} ({})", msg.header("CSeq").unwrap_or(""))
}
