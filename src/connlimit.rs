//! Caps on accepted TCP connections, shared by SIP over TCP and the HTTP API: at most so many
//! connections from one source IP, and at most so many in total across both listeners so that
//! a flood of idle connections cannot take the file descriptors the RTP relay needs (see
//! docs/DECISIONS.md, "Connection caps and the fd budget").

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// File descriptors kept back for everything that is neither RTP nor an accepted connection:
/// listeners, the store, the event log, recordings, outbound SIP connections, stdio.
pub const FD_RESERVE: u64 = 256;
/// The least total connection budget used even when the fd limit leaves less, so that the API
/// stays reachable on a badly sized host (start-up warns about it).
pub const MIN_CONNECTION_BUDGET: usize = 64;

/// How many accepted TCP connections (SIP and API together) fit in `nofile` descriptors once
/// every port of the RTP range (`rtp_ports`, inclusive; one socket per port, four per
/// stream) and [`FD_RESERVE`] are set aside. Never below [`MIN_CONNECTION_BUDGET`].
pub fn connection_budget(nofile: u64, rtp_ports: (u16, u16)) -> usize {
    let rtp = u64::from(rtp_ports.1.saturating_sub(rtp_ports.0)) + 1;
    let left = nofile.saturating_sub(rtp).saturating_sub(FD_RESERVE);
    usize::try_from(left)
        .unwrap_or(usize::MAX)
        .max(MIN_CONNECTION_BUDGET)
}

/// The total of accepted connections allowed across listeners.
#[derive(Debug)]
pub struct ConnectionBudget {
    max: usize,
    open: AtomicUsize,
}

impl ConnectionBudget {
    /// A budget of `max` connections.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(ConnectionBudget {
            max,
            open: AtomicUsize::new(0),
        })
    }

    /// A budget that never refuses (tests, embedding).
    pub fn unlimited() -> Arc<Self> {
        ConnectionBudget::new(usize::MAX)
    }

    /// Connections currently holding a share of the budget.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    fn try_take(&self) -> bool {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            })
            .is_ok()
    }

    fn give_back(&self) {
        let _ = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                Some(open.saturating_sub(1))
            });
    }
}

/// Why an accepted connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its source IP already has the most connections allowed.
    PerSource,
    /// The total budget across listeners is used up.
    Budget,
}

impl Refusal {
    /// The label used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::PerSource => "per_source",
            Refusal::Budget => "fd_budget",
        }
    }
}

/// Counts one listener's accepted connections per source IP and draws on the shared budget.
#[derive(Debug)]
pub struct SourceLimiter {
    max_per_source: usize,
    budget: Arc<ConnectionBudget>,
    by_source: Mutex<HashMap<IpAddr, usize>>,
}

impl SourceLimiter {
    /// At most `max_per_source` connections per source IP, all drawn from `budget`.
    pub fn new(max_per_source: usize, budget: Arc<ConnectionBudget>) -> Arc<Self> {
        Arc::new(SourceLimiter {
            max_per_source,
            budget,
            by_source: Mutex::new(HashMap::new()),
        })
    }

    fn table(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.by_source
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Admits a connection from `source`, or says why not; the permit frees its place when
    /// dropped.
    pub fn try_admit(self: &Arc<Self>, source: IpAddr) -> Result<ConnPermit, Refusal> {
        let source = source.to_canonical();
        let mut table = self.table();
        let count = table.get(&source).copied().unwrap_or(0);
        if count >= self.max_per_source {
            return Err(Refusal::PerSource);
        }
        if !self.budget.try_take() {
            return Err(Refusal::Budget);
        }
        table.insert(source, count + 1);
        Ok(ConnPermit {
            limiter: Arc::clone(self),
            source,
        })
    }

    /// Connections currently admitted from `source`.
    pub fn open_from(&self, source: IpAddr) -> usize {
        self.table()
            .get(&source.to_canonical())
            .copied()
            .unwrap_or(0)
    }
}

/// One admitted connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct ConnPermit {
    limiter: Arc<SourceLimiter>,
    source: IpAddr,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut table = self.limiter.table();
        if let Some(count) = table.get_mut(&self.source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                table.remove(&self.source);
            }
        }
        drop(table);
        self.limiter.budget.give_back();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_source_cap_and_shared_budget() {
        let budget = ConnectionBudget::new(3);
        let sip = SourceLimiter::new(2, Arc::clone(&budget));
        let api = SourceLimiter::new(2, Arc::clone(&budget));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = sip.try_admit(a).unwrap();
        let _second = sip.try_admit(mapped).unwrap();
        assert_eq!(sip.try_admit(a).unwrap_err(), Refusal::PerSource);
        let _third = api.try_admit(b).unwrap();
        assert_eq!(sip.try_admit(b).unwrap_err(), Refusal::Budget);
        assert_eq!(budget.open(), 3);
        drop(first);
        assert_eq!(sip.open_from(a), 1);
        assert!(sip.try_admit(b).is_ok());
    }

    #[test]
    fn budget_leaves_the_rtp_range_and_a_reserve() {
        assert_eq!(
            connection_budget(65536, (30000, 39999)),
            65536 - 10000 - 256
        );
        assert_eq!(
            connection_budget(1024, (30000, 39999)),
            MIN_CONNECTION_BUDGET
        );
    }
}
