//! Prefix liveness of patterns: "can some longer digit string still match this pattern?".
//!
//! Deciding a code before its digit timeout is only safe when no further digit could turn the
//! collected string into a match. For `patterns` that question is answered on a forward DFA built
//! from the matching regex with ASCII classes (which decide DTMF symbols exactly as Unicode ones
//! do) and searched unanchored, exactly as the regex (and
//! Kazoo's `re:run`) searches: feed the collected digits, then explore every continuation over the
//! DTMF alphabet and look for a reachable match. Whatever cannot be proven (a pattern too large
//! for the size limits, a Unicode class outside ASCII, an exploration that grows too big) counts as
//! "can still match", which only means waiting for the timeout as Kazoo always does.

use regex_automata::Anchored;
use regex_automata::dfa::{Automaton, StartKind, dense};
use regex_automata::util::primitives::StateID;
use regex_automata::util::{start, syntax};

/// Every symbol a telephone-event can carry (RFC 4733 events 0-15).
const DTMF_ALPHABET: &[u8] = b"0123456789*#ABCD";
/// Upper bound on DFA memory per pattern; patterns come from the API.
const DFA_SIZE_LIMIT: usize = 256 * 1024;
/// Upper bound on the states explored per question before giving the safe answer.
const MAX_EXPLORED_STATES: usize = 4096;

/// One optional DFA per pattern, index-aligned with `Metaflows::patterns`.
#[derive(Debug, Clone)]
pub(crate) struct PatternAutomata {
    dfas: Vec<Option<dense::DFA<Vec<u32>>>>,
}

impl PatternAutomata {
    /// Builds a DFA per pattern; a pattern whose DFA cannot be built gets `None` (always live).
    pub(crate) fn build<'a>(patterns: impl Iterator<Item = &'a String>) -> Self {
        let config = dense::DFA::config()
            .start_kind(StartKind::Unanchored)
            .dfa_size_limit(Some(DFA_SIZE_LIMIT))
            .determinize_size_limit(Some(DFA_SIZE_LIMIT));
        // Digits are ASCII: ASCII classes decide exactly what Unicode ones would on them, and
        // keep each DFA several times smaller (docs/DECISIONS.md, "Pattern cost limits").
        let syntax = syntax::Config::new().unicode(false).utf8(false);
        let dfas = patterns
            .map(|pattern| {
                dense::Builder::new()
                    .configure(config.clone())
                    .syntax(syntax)
                    .build(pattern)
                    .ok()
            })
            .collect();
        Self { dfas }
    }

    /// True when appending at least one more DTMF symbol to `collected` could make pattern number
    /// `index` match (unanchored search), or when that cannot be ruled out.
    pub(crate) fn can_extend_to_match(&self, index: usize, collected: &str) -> bool {
        match self.dfas.get(index) {
            Some(Some(dfa)) => extension_matches(dfa, collected).unwrap_or(true),
            _ => true,
        }
    }
}

/// `Some(answer)` when proven, `None` when the DFA cannot tell (quit state, too many states).
fn extension_matches(dfa: &dense::DFA<Vec<u32>>, collected: &str) -> Option<bool> {
    let start_config = start::Config::new().anchored(Anchored::No);
    let mut state = dfa.start_state(&start_config).ok()?;
    for byte in collected.bytes() {
        state = dfa.next_state(state, byte);
        if dfa.is_quit_state(state) {
            return None;
        }
        if dfa.is_match_state(state) {
            // A match already ends inside `collected`: every extension still contains it.
            return Some(true);
        }
        if dfa.is_dead_state(state) {
            return Some(false);
        }
    }
    explore_continuations(dfa, state)
}

/// Breadth-first search from `from` over the DTMF alphabet for a state reached after at least
/// one symbol that is a match state or that matches at end of input.
fn explore_continuations(dfa: &dense::DFA<Vec<u32>>, from: StateID) -> Option<bool> {
    let mut seen: Vec<StateID> = vec![from];
    let mut queue: Vec<StateID> = vec![from];
    while let Some(state) = queue.pop() {
        for &symbol in DTMF_ALPHABET {
            let next = dfa.next_state(state, symbol);
            if dfa.is_quit_state(next) {
                return None;
            }
            if dfa.is_match_state(next) || dfa.is_match_state(dfa.next_eoi_state(next)) {
                return Some(true);
            }
            if dfa.is_dead_state(next) || seen.contains(&next) {
                continue;
            }
            if seen.len() >= MAX_EXPLORED_STATES {
                return None;
            }
            seen.push(next);
            queue.push(next);
        }
    }
    Some(false)
}
