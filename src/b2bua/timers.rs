//! The core's clock: a lazy queue of call-level deadlines (digit collectors, session timers,
//! Timer C and the no-answer limit),
//! and the loop that runs them together with the transaction layer's timers, earliest first.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::sip::txn::TxEvent;

use super::B2bua;
use super::call::Outcome;
use super::entries::{ClientData, ServerData};

/// What a queued call-level deadline refers to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TimerRef {
    /// The metaflow digit collectors of a call.
    Collector(u64),
    /// The RFC 4028 session deadline of a call.
    Session(u64),
    /// The deadline a module set on a call (call, module instance).
    Module(u64, u64),
    /// Timer C of a call's INVITE to the PBX.
    TimerC(u64),
    /// The no-answer limit of a ringing call.
    NoAnswer(u64),
}

/// Deadlines ordered by time. The owner re-checks each popped entry against the state it names,
/// so rescheduling needs no removal; an entry that must not keep the core awake (a call's
/// Timer C once the call is over) is taken out with [`TimerQueue::cancel`]. Ordered by what
/// after the instant, so entries due together fire in the same order on every run.
#[derive(Debug, Default)]
pub(super) struct TimerQueue {
    set: BTreeSet<(Instant, TimerRef)>,
}

impl TimerQueue {
    /// Queues `what` at `at`.
    pub(super) fn schedule(&mut self, at: Instant, what: TimerRef) {
        self.set.insert((at, what));
    }

    /// Takes out the entry for `what` at `at`, if queued.
    pub(super) fn cancel(&mut self, at: Instant, what: TimerRef) {
        self.set.remove(&(at, what));
    }

    /// The earliest queued deadline.
    pub(super) fn next(&self) -> Option<Instant> {
        self.set.first().map(|(at, _)| *at)
    }

    /// Pops one entry due at `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<TimerRef> {
        match self.set.first() {
            Some((at, _)) if *at <= now => self.set.pop_first().map(|(_, r)| r),
            _ => None,
        }
    }
}

impl B2bua {
    /// Runs every timer due at `now`.
    pub(super) fn handle_timers(&mut self, now: Instant) {
        self.fire_timers(now);
        self.publish_sizes();
    }

    /// Runs due call-level and transaction timers in deadline order (transactions first on a
    /// tie), so that what a time-out triggers happens in the order the deadlines fell.
    fn fire_timers(&mut self, now: Instant) {
        loop {
            let call_due = self.timers.next().filter(|at| *at <= now);
            let tx_due = self.txns.poll_timeout().filter(|at| *at <= now);
            match (tx_due, call_due) {
                (Some(tx), Some(call)) if call < tx => self.fire_call_timer(now),
                (Some(_), _) => {
                    if let Some(event) = self.txns.handle_timeout(now) {
                        self.on_tx_event(event, now);
                    }
                }
                (None, Some(_)) => self.fire_call_timer(now),
                (None, None) => break,
            }
        }
    }

    fn fire_call_timer(&mut self, now: Instant) {
        match self.timers.pop_due(now) {
            Some(TimerRef::Collector(call)) => self.collector_timer(call, now),
            Some(TimerRef::Session(call)) => self.session_timer(call, now),
            Some(TimerRef::Module(call, id)) => self.module_timer(call, id, now),
            Some(TimerRef::TimerC(call)) => self.timer_c_fired(call, now),
            Some(TimerRef::NoAnswer(call)) => self.no_answer_fired(call, now),
            None => {}
        }
    }

    /// `to` refused a datagram: fail the client transactions waiting on it at once.
    pub(super) fn on_unreachable(&mut self, to: crate::sip::transport::Peer, now: Instant) {
        for event in self.txns.fail_towards(to) {
            self.on_tx_event(event, now);
        }
    }

    /// Acts on what a transaction timer asks for.
    fn on_tx_event(&mut self, event: TxEvent<ServerData, ClientData>, now: Instant) {
        match event {
            TxEvent::Send(transmit) => self.send_raw(transmit.to, transmit.bytes),
            TxEvent::ClientTimeout { key, data, .. } => self.on_client_timeout(&key, data, now),
            TxEvent::ServerAckTimeout { code, data, .. } => {
                if let Some((call, _)) = data
                    && (200..300).contains(&code)
                {
                    // The caller never acknowledged our 2xx: end both dialogs (§13.3.1.4).
                    self.terminate_call(call, Outcome::Failed, "no ACK", now);
                }
            }
        }
    }
}
