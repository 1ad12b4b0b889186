//! Per-source request rate limit, after Kamailio's `pike`: more than `requests` datagrams from
//! one IP within a sampling window of `window` blocks that IP for `block`; its datagrams are
//! dropped unanswered meanwhile. Sans-IO: every decision takes the current time.
//!
//! The table is bounded. Each source's entry expires once its window is over and it is not
//! blocked; expired entries are swept out at most once a window (lazily, on the next datagram,
//! so an idle core keeps no timer for them). When the table is full a new source evicts the
//! oldest entry, so a flood of spoofed sources costs at most `max_sources` entries.
//! Counting is a fixed window: a burst of up to `requests` datagrams is always let through, and
//! over a long run a source gets at most `requests` per `window`.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The limit's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// The most datagrams one source IP may send within one window (at least 1).
    pub requests: u32,
    /// The sampling window (pike's `sampling_time_unit`).
    pub window: Duration,
    /// How long a source that went over the limit stays blocked.
    pub block: Duration,
    /// The most sources tracked at once; a new source beyond it evicts the oldest entry.
    pub max_sources: usize,
}

impl Default for RateLimit {
    /// 200 datagrams per 2 s (100 per second on average, bursts of 200), a 60 s block and
    /// 10,000 sources tracked: far above what a PBX, a phone or a SIPp test sends.
    fn default() -> Self {
        RateLimit {
            requests: 200,
            window: Duration::from_secs(2),
            block: Duration::from_secs(60),
            max_sources: 10_000,
        }
    }
}

/// What the limiter knows of one source IP.
#[derive(Clone, Copy, Debug)]
struct Source {
    /// Identity of this entry, to tell its place in the eviction queue from a stale one.
    id: u64,
    /// When the current window began.
    window_start: Instant,
    /// Datagrams seen in the current window.
    count: u32,
    /// Until when the source is blocked, if it is.
    blocked_until: Option<Instant>,
}

impl Source {
    /// An entry can go once its window is over and no block holds it.
    fn expired(&self, now: Instant, window: Duration) -> bool {
        self.blocked_until.is_none_or(|until| until <= now) && self.window_start + window <= now
    }
}

/// The per-source counters and blocks (see the module docs).
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: RateLimit,
    sources: HashMap<IpAddr, Source>,
    /// Entries in the order they were made (ip, id); stale pairs are skipped and swept.
    order: VecDeque<(IpAddr, u64)>,
    next_id: u64,
    next_sweep: Option<Instant>,
}

impl RateLimiter {
    /// An empty table enforcing `limit`.
    pub(crate) fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit: RateLimit {
                requests: limit.requests.max(1),
                max_sources: limit.max_sources.max(1),
                ..limit
            },
            sources: HashMap::new(),
            order: VecDeque::new(),
            next_id: 0,
            next_sweep: None,
        }
    }

    /// Counts one datagram from `ip` at `now`; false when it must be dropped (the source is
    /// blocked, or this datagram took it over the limit and blocked it).
    pub(crate) fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        self.sweep(now);
        let limit = self.limit;
        if let Some(source) = self.sources.get_mut(&ip) {
            if let Some(until) = source.blocked_until {
                if now < until {
                    return false;
                }
                source.blocked_until = None;
                source.window_start = now;
                source.count = 0;
            }
            if source.window_start + limit.window <= now {
                source.window_start = now;
                source.count = 0;
            }
            source.count = source.count.saturating_add(1);
            if source.count > limit.requests {
                source.blocked_until = Some(now + limit.block);
                tracing::info!(source = %ip, requests = limit.requests, window_ms = limit.window.as_millis(), block_s = limit.block.as_secs(), "source over the SIP rate limit blocked");
                return false;
            }
            return true;
        }
        while self.sources.len() >= limit.max_sources {
            if !self.evict_oldest() {
                break;
            }
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.sources.insert(
            ip,
            Source {
                id,
                window_start: now,
                count: 1,
                blocked_until: None,
            },
        );
        self.order.push_back((ip, id));
        // A limit of one datagram per window still lets the first through.
        true
    }

    /// Sources tracked now.
    pub(crate) fn len(&self) -> usize {
        self.sources.len()
    }

    /// Sources blocked at `now`.
    #[cfg(test)]
    pub(crate) fn blocked(&self, now: Instant) -> usize {
        self.sources
            .values()
            .filter(|s| s.blocked_until.is_some_and(|until| now < until))
            .count()
    }

    /// Removes the oldest live entry; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some((ip, id)) = self.order.pop_front() {
            if self.sources.get(&ip).is_some_and(|s| s.id == id) {
                self.sources.remove(&ip);
                return true;
            }
        }
        false
    }

    /// At most once a window: drops every expired entry and the stale queue pairs.
    fn sweep(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|at| now < at) {
            return;
        }
        self.next_sweep = Some(now + self.limit.window);
        let window = self.limit.window;
        self.sources.retain(|_, s| !s.expired(now, window));
        let sources = &self.sources;
        self.order
            .retain(|(ip, id)| sources.get(ip).is_some_and(|s| s.id == *id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    fn limiter(requests: u32, max_sources: usize) -> RateLimiter {
        RateLimiter::new(RateLimit {
            requests,
            window: Duration::from_secs(2),
            block: Duration::from_secs(30),
            max_sources,
        })
    }

    #[test]
    fn a_burst_up_to_the_limit_passes_and_the_next_one_blocks() {
        let mut rl = limiter(5, 100);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(rl.allow(ip(1), t0));
        }
        assert!(!rl.allow(ip(1), t0), "the sixth in the window");
        assert_eq!(rl.blocked(t0), 1);
        assert!(rl.allow(ip(2), t0), "another source is not affected");
    }

    #[test]
    fn a_new_window_starts_the_count_again() {
        let mut rl = limiter(5, 100);
        let t0 = Instant::now();
        for n in 0..5 {
            assert!(rl.allow(ip(1), t0 + Duration::from_millis(n * 300)));
        }
        for n in 0..5 {
            assert!(rl.allow(ip(1), t0 + Duration::from_millis(2000 + n * 300)));
        }
    }

    #[test]
    fn a_block_holds_for_its_time_then_expires() {
        let mut rl = limiter(2, 100);
        let t0 = Instant::now();
        assert!(rl.allow(ip(1), t0) && rl.allow(ip(1), t0));
        assert!(!rl.allow(ip(1), t0));
        assert!(!rl.allow(ip(1), t0 + Duration::from_secs(29)));
        assert!(!rl.allow(ip(1), t0 + Duration::from_millis(29_999)));
        let later = t0 + Duration::from_secs(30);
        assert!(rl.allow(ip(1), later), "the block is over");
        assert!(rl.allow(ip(1), later));
        assert!(!rl.allow(ip(1), later), "and the limit applies again");
    }

    #[test]
    fn expired_entries_are_swept() {
        let mut rl = limiter(5, 100);
        let t0 = Instant::now();
        for n in 0..50 {
            rl.allow(ip(n), t0);
        }
        assert_eq!(rl.len(), 50);
        rl.allow(ip(1000), t0 + Duration::from_secs(2));
        assert_eq!(rl.len(), 1, "only the newcomer is left");
        assert_eq!(rl.order.len(), 1);
    }

    #[test]
    fn a_blocked_entry_outlives_its_window_until_its_block_ends() {
        let mut rl = limiter(1, 100);
        let t0 = Instant::now();
        rl.allow(ip(1), t0);
        assert!(!rl.allow(ip(1), t0));
        rl.allow(ip(2), t0 + Duration::from_secs(10));
        assert!(!rl.allow(ip(1), t0 + Duration::from_secs(10)));
        rl.allow(ip(2), t0 + Duration::from_secs(31));
        assert_eq!(rl.len(), 1, "the block ended and the entry expired");
    }

    #[test]
    fn a_flood_of_sources_never_grows_the_table_beyond_its_size() {
        let mut rl = limiter(5, 64);
        let t0 = Instant::now();
        for n in 0..100_000 {
            assert!(rl.allow(ip(n), t0 + Duration::from_micros(u64::from(n))));
            assert!(rl.len() <= 64);
            assert!(rl.order.len() <= 64);
        }
        assert_eq!(rl.len(), 64);
    }

    #[test]
    fn a_full_table_evicts_the_oldest_source() {
        let mut rl = limiter(5, 3);
        let t0 = Instant::now();
        for n in 1..=3 {
            rl.allow(ip(n), t0);
        }
        rl.allow(ip(4), t0);
        assert_eq!(rl.len(), 3);
        assert!(!rl.sources.contains_key(&ip(1)));
        assert!(rl.sources.contains_key(&ip(4)));
    }
}
