//! Per-call DTMF collection: arming by the binding digit, collecting, timing out and deciding.
//!
//! # What is collected and what is matched
//! The Kazoo documentation reads "a callee could ... press `*9` to initiate a recording" while
//! `numbers` keys must match `^[0-9]+$`, so the `*9` code is the `numbers` key `"9"`; and with the
//! pattern `2(\d+)`, "`*21234` would ... blind-transfer the caller to extension `1234`". So the
//! binding digit that arms a leg is *not* part of the collected string: `*21234` collects `21234`.
//! Every digit pressed while armed is collected, the binding digit included (`**9` collects `*9`,
//! which never equals a digits-only `numbers` key). The collected string is what `data.collected`
//! carries.
//!
//! Patterns are searched, not anchored, exactly like Kazoo's `re:run(Collected, Regex)`:
//! `2(\d+)` matches `21234` with capture `1234`, and would also match `921234`. Write `^...$`
//! to require the whole code. Groups that take no part in the match are captured as `""`, as
//! `re:run` reports them.
//!
//! # Beyond Kazoo
//! * **Act early.** Kazoo always waits for `digit_timeout`. Here a leg is decided at the digit as
//!   soon as *no longer digit string could match anything*: no `numbers` key extends the
//!   collected digits and no pattern can match any extension of them (checked on a DFA, see
//!   `liveness`). The decision is then the same one the timeout would give, flagged `early`.
//!   Consequences: the exact `numbers` key `"9"` acts at once unless a longer key starts with
//!   `9` or some pattern could still match `9…`; an anchored `^2(\d{4})$` acts at its fourth
//!   digit; an unanchored `2(\d+)` (Kazoo's own example) can always take one more digit, so it
//!   and any code it could still reach wait for the timeout. A dead prefix (nothing can match
//!   any more) is decided early as a no-match, so a mistyped code can be re-dialed at once.
//! * **Suppression** (`suppress_dtmf: true`). The binding digit and every digit of an armed leg
//!   are [`RelayVerdict::Hold`]: on a match they are dropped, on a no-match a
//!   [`Decision::Release`] hands them back for late delivery to the other leg.
//! * **Repeats count.** Each `on_digit` call is one key press, so `*99` collects `99`.
//! * **Bounded.** A leg that has collected [`MAX_COLLECTED_DIGITS`] digits is decided at once. A late caller of [`Collector::on_timeout`] loses nothing: expired
//!   timers are handled at the next digit first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::base::Leg;
use crate::metaflow::model::{ListenOn, MetaflowNode, Metaflows};

/// Longest code collected on one leg before it is decided without waiting.
pub const MAX_COLLECTED_DIGITS: usize = 64;
/// Longest inter-digit wait honoured, so that a huge configured timeout cannot overflow a clock.
const MAX_DIGIT_TIMEOUT: Duration = Duration::from_secs(3600);

/// What to do with the digit just received, toward the other leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayVerdict {
    /// Pass the digit to the other leg now.
    Relay,
    /// Suppression mode: keep the digit back; a later [`Decision::Release`] may deliver it.
    Hold,
}

/// A step of the collection state machine that the caller must act upon.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The binding digit armed `leg`; collection starts.
    Armed {
        /// Leg that pressed the binding digit.
        leg: Leg,
    },
    /// The collected code matched: run `node`.
    Match {
        /// Leg that dialed the code.
        leg: Leg,
        /// Digits after the binding digit.
        collected: String,
        /// The node to execute.
        node: MetaflowNode,
        /// Capture groups of the matching pattern (empty for `numbers`).
        captures: Vec<String>,
        /// The `numbers` key or the pattern text that matched.
        matched: String,
        /// True when decided at a digit rather than at the digit timeout.
        early: bool,
    },
    /// The collected code matched nothing; the leg is disarmed.
    NoMatch {
        /// Leg that dialed the digits.
        leg: Leg,
        /// Digits after the binding digit.
        collected: String,
    },
    /// Suppression mode: held digits that were not a code, to deliver now to the other leg.
    Release {
        /// Leg the digits came from.
        leg: Leg,
        /// Held digits in press order, binding digit first.
        digits: String,
    },
}

/// The answer to one digit: what to do with it, plus any decisions it triggered.
#[derive(Debug, Clone, PartialEq)]
pub struct DigitOutcome {
    /// Whether to pass the digit to the other leg now.
    pub relay: RelayVerdict,
    /// Decisions taken at this digit (arming, early match, expired timers); usually empty.
    pub decisions: Vec<Decision>,
}

/// Collection state of one leg.
#[derive(Debug, Clone, Default)]
enum LegState {
    /// Not armed: digits pass untouched; only the binding digit arms.
    #[default]
    Idle,
    /// Armed: collecting until `deadline`.
    Armed {
        collected: String,
        held: String,
        deadline: Instant,
    },
}

/// The metaflow state of one call: which legs are armed, what they collected, and when to decide.
#[derive(Debug, Clone)]
pub struct Collector {
    flows: Arc<Metaflows>,
    owner_leg: Leg,
    /// Kazoo's `use_fast_rearm`: the binding digit pressed again in the middle of a code starts
    /// the code over instead of being collected (a mistyped code is re-dialed without waiting).
    fast_rearm: bool,
    a_state: LegState,
    b_state: LegState,
}

impl Collector {
    /// A collector for one call; `owner_leg` is the "self" leg of `listen_on`.
    pub fn new(flows: Arc<Metaflows>, owner_leg: Leg) -> Self {
        Self {
            flows,
            owner_leg,
            fast_rearm: false,
            a_state: LegState::Idle,
            b_state: LegState::Idle,
        }
    }

    /// The same collector with Kazoo's fast re-arm on or off (off by default, as in Kazoo): with
    /// it, the binding digit after some collected digits empties the code (`*12*9` collects
    /// `9`); right after arming it is collected as usual (`**9` collects `*9`).
    pub fn with_fast_rearm(mut self, on: bool) -> Self {
        self.fast_rearm = on;
        self
    }

    /// Feeds one key press of `leg` received at `now`.
    pub fn on_digit(&mut self, leg: Leg, digit: char, now: Instant) -> DigitOutcome {
        let mut decisions = self.on_timeout(now);
        if !self.listens_to(leg) {
            return DigitOutcome {
                relay: RelayVerdict::Relay,
                decisions,
            };
        }
        let suppress = self.flows.suppress;
        let binding_digit = self.flows.binding_digit;
        let fast_rearm = self.fast_rearm;
        let deadline = now
            .checked_add(self.flows.digit_timeout.min(MAX_DIGIT_TIMEOUT))
            .unwrap_or(now);
        let state = self.state_mut(leg);
        let collected_len = match state {
            LegState::Idle if digit != binding_digit => {
                return DigitOutcome {
                    relay: RelayVerdict::Relay,
                    decisions,
                };
            }
            LegState::Idle => {
                *state = LegState::Armed {
                    collected: String::new(),
                    held: if suppress {
                        digit.to_string()
                    } else {
                        String::new()
                    },
                    deadline,
                };
                decisions.push(Decision::Armed { leg });
                0
            }
            LegState::Armed {
                collected,
                held,
                deadline: armed_deadline,
            } => {
                if fast_rearm && digit == binding_digit && !collected.is_empty() {
                    collected.clear();
                } else {
                    collected.push(digit);
                }
                if suppress {
                    held.push(digit);
                }
                *armed_deadline = deadline;
                collected.len()
            }
        };
        let relay = if suppress {
            RelayVerdict::Hold
        } else {
            RelayVerdict::Relay
        };
        let is_final = collected_len >= MAX_COLLECTED_DIGITS
            || match self.state(leg) {
                LegState::Armed { collected, .. } => !self.can_still_change(collected),
                LegState::Idle => false,
            };
        if is_final {
            self.decide(leg, true, &mut decisions);
        }
        DigitOutcome { relay, decisions }
    }

    /// The earliest instant at which [`Collector::on_timeout`] has work to do, if any leg is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [&self.a_state, &self.b_state]
            .into_iter()
            .filter_map(|state| match state {
                LegState::Armed { deadline, .. } => Some(*deadline),
                LegState::Idle => None,
            })
            .min()
    }

    /// Decides every leg whose digit timeout has passed at `now`, earliest deadline first.
    pub fn on_timeout(&mut self, now: Instant) -> Vec<Decision> {
        let mut expired: Vec<(Instant, Leg)> = [Leg::A, Leg::B]
            .into_iter()
            .filter_map(|leg| match self.state(leg) {
                LegState::Armed { deadline, .. } if *deadline <= now => Some((*deadline, leg)),
                _ => None,
            })
            .collect();
        expired.sort_by_key(|(deadline, _)| *deadline);
        let mut decisions = Vec::new();
        for (_, leg) in expired {
            self.decide(leg, false, &mut decisions);
        }
        decisions
    }

    /// Whether `leg` is listened to under `listen_on`, relative to the owner leg.
    fn listens_to(&self, leg: Leg) -> bool {
        match self.flows.listen_on {
            ListenOn::SelfLeg => leg == self.owner_leg,
            ListenOn::Peer => leg != self.owner_leg,
            ListenOn::Both => true,
        }
    }

    /// Whether a longer digit string could still match a `numbers` key or a pattern.
    fn can_still_change(&self, collected: &str) -> bool {
        let longer_number = self
            .flows
            .numbers
            .iter()
            .any(|(key, _)| key.len() > collected.len() && key.starts_with(collected));
        longer_number || {
            let automata = self.flows.automata();
            (0..self.flows.patterns.len())
                .any(|index| automata.can_extend_to_match(index, collected))
        }
    }

    /// Disarms `leg` and appends the decision for what it collected.
    fn decide(&mut self, leg: Leg, early: bool, decisions: &mut Vec<Decision>) {
        let LegState::Armed {
            collected, held, ..
        } = std::mem::take(self.state_mut(leg))
        else {
            return;
        };
        match evaluate(&self.flows, &collected) {
            Some((matched, node, captures)) => decisions.push(Decision::Match {
                leg,
                collected,
                node: node.clone(),
                captures,
                matched: matched.to_owned(),
                early,
            }),
            None => {
                decisions.push(Decision::NoMatch { leg, collected });
                if self.flows.suppress {
                    decisions.push(Decision::Release { leg, digits: held });
                }
            }
        }
    }

    fn state(&self, leg: Leg) -> &LegState {
        match leg {
            Leg::A => &self.a_state,
            Leg::B => &self.b_state,
        }
    }

    fn state_mut(&mut self, leg: Leg) -> &mut LegState {
        match leg {
            Leg::A => &mut self.a_state,
            Leg::B => &mut self.b_state,
        }
    }
}

/// Kazoo's lookup: `numbers` exactly first, then `patterns` in order; first match wins.
/// Returns the matched key or pattern, its node and the capture groups.
pub(crate) fn evaluate<'a>(
    flows: &'a Metaflows,
    collected: &str,
) -> Option<(&'a str, &'a MetaflowNode, Vec<String>)> {
    if let Some((key, node)) = flows.numbers.iter().find(|(key, _)| key == collected) {
        return Some((key, node, Vec::new()));
    }
    flows.patterns.iter().find_map(|(text, pattern, node)| {
        let captures = pattern.captures(collected)?;
        Some((text.as_str(), node, captures))
    })
}
