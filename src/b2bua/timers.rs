//! A lazy timer queue: entries name a transaction; stale entries are skipped when they fire.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// What a queued deadline refers to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TimerRef {
    /// A server transaction by key.
    Server(String),
    /// A client transaction by branch.
    Client(String),
    /// The metaflow digit collectors of a call.
    Collector(u64),
    /// The RFC 4028 session deadline of a call.
    Session(u64),
    /// The deadline a module set on a call (call, module instance).
    Module(u64, u64),
}

/// Deadlines ordered by time. The owner re-checks each popped entry against the state it names,
/// so rescheduling never needs a removal.
#[derive(Debug, Default)]
pub(super) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, TimerRef)>>,
}

impl TimerQueue {
    /// Queues `what` at `at`.
    pub(super) fn schedule(&mut self, at: Instant, what: TimerRef) {
        self.heap.push(Reverse((at, what)));
    }

    /// The earliest queued deadline.
    pub(super) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops one entry due at `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<TimerRef> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, r))| r),
            _ => None,
        }
    }
}
