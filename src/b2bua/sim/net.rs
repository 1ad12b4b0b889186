//! The simulated network between the phone, the proxy and the PBX: every datagram is delayed by
//! a one-way latency plus a random jitter (which reorders datagrams sent close together), may be
//! lost, and can be dropped or held back on purpose by a rule a test sets. One seeded RNG draws
//! every delay and every loss, so a run is reproducible from its seed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How the network treats datagrams.
#[derive(Clone, Copy, Debug)]
pub(super) struct NetConfig {
    /// Base one-way delay of every datagram: keeps request and response apart on the clock,
    /// as on a real network.
    pub(super) latency: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` per datagram; two datagrams sent less than
    /// `jitter` apart may arrive in the opposite order.
    pub(super) jitter: Duration,
    /// Probability that a datagram is lost (0.0 to 1.0); retransmissions must recover it.
    pub(super) loss: f64,
}

impl Default for NetConfig {
    /// A clean LAN: 10 ms one way, no jitter, no loss, so a scripted test sees FIFO order.
    fn default() -> Self {
        NetConfig {
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: 0.0,
        }
    }
}

/// One UDP datagram on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Datagram {
    /// Sender: the core learns peers from the source address, so it must be right.
    pub(super) from: SocketAddr,
    /// Receiver: selects the endpoint (or the proxy) it is delivered to.
    pub(super) to: SocketAddr,
    /// The raw SIP message, exactly as sent.
    pub(super) data: Vec<u8>,
}

impl Datagram {
    /// The first line of the message (`INVITE sip:.. SIP/2.0`, `SIP/2.0 200 OK`): what rules and
    /// failure messages match on.
    pub(super) fn first_line(&self) -> &str {
        let text = std::str::from_utf8(&self.data).unwrap_or("");
        text.split("\r\n").next().unwrap_or("")
    }
}

/// What a rule does to the datagram it matches.
#[derive(Clone, Copy, Debug)]
pub(super) enum Fate {
    /// Lose it: a targeted loss, independent of the random loss rate.
    Drop,
    /// Deliver it this much later than it would have been: a targeted reordering.
    Delay(Duration),
}

/// A predicate on datagrams, boxed so that rules of different closures share one list.
type Matcher = Box<dyn Fn(&Datagram) -> bool>;

/// A targeted fault: the next `remaining` datagrams matching `matches` meet `fate`.
struct Rule {
    /// Which datagrams the rule applies to.
    matches: Matcher,
    /// What happens to them.
    fate: Fate,
    /// How many more matching datagrams it applies to; the rule is gone at zero.
    remaining: usize,
}

/// The datagrams in flight, ordered by delivery time, and the faults applied to new ones.
pub(super) struct Network {
    /// How every datagram is treated.
    cfg: NetConfig,
    /// The only source of randomness of the network: same seed, same delays and losses.
    rng: fastrand::Rng,
    /// In flight, keyed by (delivery time, send order) so that equal times stay FIFO.
    queue: BTreeMap<(Instant, u64), Datagram>,
    /// Send order counter: the tie-breaker of equal delivery times.
    sent: u64,
    /// Targeted faults set by the test, applied in order before the random loss.
    rules: Vec<Rule>,
    /// Every datagram lost (randomly or by a rule), so a test can tell what the recovery had to
    /// make up for.
    pub(super) lost: Vec<Datagram>,
}

impl Network {
    /// An empty network drawing from `rng`.
    pub(super) fn new(cfg: NetConfig, rng: fastrand::Rng) -> Self {
        Network {
            cfg,
            rng,
            queue: BTreeMap::new(),
            sent: 0,
            rules: Vec::new(),
            lost: Vec::new(),
        }
    }

    /// Puts a datagram on the wire at `now`.
    pub(super) fn send(&mut self, now: Instant, dgram: Datagram) {
        // Draw for every datagram, lost or not, so that the random sequence only depends on
        // the number of datagrams sent.
        let roll = self.rng.f64();
        let jitter_nanos = u64::try_from(self.cfg.jitter.as_nanos()).unwrap_or(u64::MAX);
        let jitter = Duration::from_nanos(self.rng.u64(0..=jitter_nanos));
        let mut delay = self.cfg.latency + jitter;
        if let Some(i) = self.rules.iter().position(|r| (r.matches)(&dgram)) {
            let rule = &mut self.rules[i];
            rule.remaining -= 1;
            let fate = rule.fate;
            if rule.remaining == 0 {
                self.rules.remove(i);
            }
            match fate {
                Fate::Drop => return self.lost.push(dgram),
                Fate::Delay(extra) => delay += extra,
            }
        } else if roll < self.cfg.loss {
            return self.lost.push(dgram);
        }
        self.sent += 1;
        self.queue.insert((now + delay, self.sent), dgram);
    }

    /// Applies `fate` to the next `count` datagrams for which `matches` is true.
    pub(super) fn rule(
        &mut self,
        count: usize,
        fate: Fate,
        matches: impl Fn(&Datagram) -> bool + 'static,
    ) {
        self.rules.push(Rule {
            matches: Box::new(matches),
            fate,
            remaining: count,
        });
    }

    /// When the next datagram arrives, if any is in flight.
    pub(super) fn next_delivery(&self) -> Option<Instant> {
        self.queue.keys().next().map(|(at, _)| *at)
    }

    /// Takes the next datagram due at `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<Datagram> {
        let (&key, _) = self.queue.iter().next()?;
        if key.0 > now {
            return None;
        }
        self.queue.remove(&key)
    }

    /// How many datagrams are in flight.
    pub(super) fn in_flight(&self) -> usize {
        self.queue.len()
    }
}
