//! Figures of the call core for `/metrics`: what is held in memory and what the limits refused.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::metrics::{MetricsSource, write_header, write_sample};

/// Which limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// `max-transactions`: too many transactions in memory.
    Transactions,
    /// `max-calls`: too many calls (dialog pairs) in memory.
    Calls,
    /// `max-registrations`: too many phones registered through the proxy.
    Registrations,
}

impl Limit {
    const ALL: [Limit; 3] = [Limit::Transactions, Limit::Calls, Limit::Registrations];

    fn label(self) -> &'static str {
        match self {
            Limit::Transactions => "transactions",
            Limit::Calls => "calls",
            Limit::Registrations => "registrations",
        }
    }
}

/// Why a datagram was dropped without any answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// A request whose `User-Agent` names a known SIP scanner (`scanner-user-agents`).
    Scanner,
    /// A datagram from a source over the per-source rate limit, or blocked for it.
    RateLimit,
}

impl DropReason {
    const ALL: [DropReason; 2] = [DropReason::Scanner, DropReason::RateLimit];

    fn label(self) -> &'static str {
        match self {
            DropReason::Scanner => "scanner",
            DropReason::RateLimit => "rate_limit",
        }
    }
}

/// Gauges and counters the core updates as it works (relaxed atomics; SIP path only).
#[derive(Debug, Default)]
pub struct CoreStats {
    transactions: AtomicU64,
    dialogs: AtomicU64,
    registrations: AtomicU64,
    rejected: [AtomicU64; Limit::ALL.len()],
    /// Requests for a dialog the core does not know, refused 481 without keeping any state: a
    /// flood of spoofed in-dialog requests shows here rather than in the transaction table.
    unknown_dialog: AtomicU64,
    /// Datagrams dropped unanswered, by [`DropReason`].
    dropped: [AtomicU64; 2],
    /// Source IPs the rate limiter tracks.
    rate_limit_sources: AtomicU64,
}

impl CoreStats {
    /// Publishes how much state the core holds.
    pub fn set_sizes(&self, transactions: usize, calls: usize, registrations: usize) {
        let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        self.transactions
            .store(as_u64(transactions), Ordering::Relaxed);
        self.dialogs
            .store(as_u64(calls.saturating_mul(2)), Ordering::Relaxed);
        self.registrations
            .store(as_u64(registrations), Ordering::Relaxed);
    }

    /// Counts a request refused by `limit`.
    pub fn rejected(&self, limit: Limit) {
        if let Some(c) = self.rejected.get(limit as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a request refused 481 because it names no dialog the core knows.
    pub fn refused_unknown_dialog(&self) {
        self.unknown_dialog.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a datagram dropped unanswered for `reason`.
    pub fn dropped(&self, reason: DropReason) {
        if let Some(c) = self.dropped.get(reason as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Datagrams dropped for `reason` so far.
    pub fn dropped_total(&self, reason: DropReason) -> u64 {
        self.dropped
            .get(reason as usize)
            .map(|c| c.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Publishes the size of the rate limiter's table.
    pub fn set_rate_limit_sources(&self, tracked: usize) {
        self.rate_limit_sources.store(
            u64::try_from(tracked).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Source IPs the rate limiter tracks, as last published.
    pub fn rate_limit_sources(&self) -> u64 {
        self.rate_limit_sources.load(Ordering::Relaxed)
    }

    /// Requests refused 481 for an unknown dialog so far.
    pub fn unknown_dialog_total(&self) -> u64 {
        self.unknown_dialog.load(Ordering::Relaxed)
    }

    /// Requests refused by `limit` so far.
    pub fn rejected_total(&self, limit: Limit) -> u64 {
        self.rejected
            .get(limit as usize)
            .map(|c| c.load(Ordering::Relaxed))
            .unwrap_or(0)
    }
}

impl MetricsSource for CoreStats {
    fn render_prometheus(&self, out: &mut String) {
        let gauges = [
            (
                "sip_transactions",
                "SIP transactions held in memory.",
                &self.transactions,
            ),
            (
                "sip_dialogs",
                "SIP dialogs held in memory (two per call).",
                &self.dialogs,
            ),
            (
                "registrations",
                "Phone registrations relayed and bound.",
                &self.registrations,
            ),
            (
                "sip_rate_limit_sources",
                "Source IPs tracked by the per-source SIP rate limit.",
                &self.rate_limit_sources,
            ),
        ];
        for (name, help, value) in gauges {
            write_header(out, name, "gauge", help);
            write_sample(out, name, &[], value.load(Ordering::Relaxed));
        }
        let name = "limit_rejections_total";
        write_header(
            out,
            name,
            "counter",
            "Requests refused because a configured limit was reached.",
        );
        for limit in Limit::ALL {
            write_sample(
                out,
                name,
                &[("limit", limit.label())],
                self.rejected_total(limit),
            );
        }
        let name = "sip_unknown_dialog_total";
        write_header(
            out,
            name,
            "counter",
            "In-dialog requests for a dialog the proxy does not know, refused 481 statelessly.",
        );
        write_sample(out, name, &[], self.unknown_dialog_total());
        let name = "sip_dropped_total";
        write_header(
            out,
            name,
            "counter",
            "SIP datagrams dropped without any answer: known scanner User-Agents, sources over \
             the per-source rate limit.",
        );
        for reason in DropReason::ALL {
            write_sample(
                out,
                name,
                &[("reason", reason.label())],
                self.dropped_total(reason),
            );
        }
    }
}
