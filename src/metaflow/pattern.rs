//! A compiled `patterns` key. Kazoo hands patterns to Erlang's `re` (PCRE), so documents written
//! for Kazoo may use look-around (`^(?!911)\d+$`) and backreferences (`^(\d)\1$`), which the
//! `regex` crate refuses by design. A pattern that `regex` accepts stays on `regex` (linear time,
//! and its DFA lets the collector decide early, see `liveness`); one that needs PCRE's extras is
//! compiled by `fancy-regex`, a backtracking engine whose steps are bounded, and the collector
//! waits for the digit timeout on it, as Kazoo always does.

use std::fmt;

/// Most backtracking steps one match of a PCRE-only pattern may take (on at most 64 digits);
/// beyond it the pattern counts as not matching, and the refusal is logged.
pub const BACKTRACK_LIMIT: usize = 100_000;

/// One compiled pattern, in whichever engine can run it.
#[derive(Clone)]
pub struct Pattern {
    engine: Engine,
}

/// The two engines, as compiled.
#[derive(Clone)]
enum Engine {
    /// A regular pattern: `regex`'s finite automata.
    Regular(regex::Regex),
    /// Look-around or backreferences: `fancy-regex`'s bounded backtracking.
    Backtracking(fancy_regex::Regex),
}

impl Pattern {
    /// A pattern on `regex`.
    pub(crate) fn regular(regex: regex::Regex) -> Self {
        Self {
            engine: Engine::Regular(regex),
        }
    }

    /// A pattern on `fancy-regex`.
    pub(crate) fn backtracking(regex: fancy_regex::Regex) -> Self {
        Self {
            engine: Engine::Backtracking(regex),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        match &self.engine {
            Engine::Regular(regex) => regex.as_str(),
            Engine::Backtracking(regex) => regex.as_str(),
        }
    }

    /// Whether the pattern is regular, so that the early decision can reason about it.
    pub fn is_regular(&self) -> bool {
        matches!(self.engine, Engine::Regular(_))
    }

    /// Whether the pattern matches somewhere in `text` (searched, not anchored, as `re:run`).
    pub fn is_match(&self, text: &str) -> bool {
        match &self.engine {
            Engine::Regular(regex) => regex.is_match(text),
            Engine::Backtracking(regex) => regex
                .is_match(text)
                .unwrap_or_else(|error| over_limit(regex, &error)),
        }
    }

    /// The capture groups (group 1 on) of the first match in `text`, a group that took no part
    /// in it as `""` (as `re:run` reports it); `None` when the pattern does not match.
    pub fn captures(&self, text: &str) -> Option<Vec<String>> {
        fn texts<'t>(groups: impl Iterator<Item = Option<&'t str>>) -> Vec<String> {
            groups
                .skip(1)
                .map(|group| group.unwrap_or_default().to_owned())
                .collect()
        }
        match &self.engine {
            Engine::Regular(regex) => regex
                .captures(text)
                .map(|groups| texts(groups.iter().map(|group| group.map(|m| m.as_str())))),
            Engine::Backtracking(regex) => match regex.captures(text) {
                Ok(groups) => {
                    groups.map(|groups| texts(groups.iter().map(|group| group.map(|m| m.as_str()))))
                }
                Err(error) => {
                    over_limit(regex, &error);
                    None
                }
            },
        }
    }
}

/// Logs a backtracking match given up at [`BACKTRACK_LIMIT`]; the pattern counts as not matching.
fn over_limit(regex: &fancy_regex::Regex, error: &fancy_regex::Error) -> bool {
    tracing::warn!(pattern = regex.as_str(), %error, "pattern match given up: no match");
    false
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.as_str()).finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::metaflow::limits::compile_pattern;

    #[test]
    fn regular_patterns_stay_on_regex_and_pcre_ones_run_on_the_backtracker() {
        let regular = compile_pattern(r"2(\d+)").unwrap();
        assert!(regular.is_regular());
        assert_eq!(regular.captures("921234"), Some(vec!["1234".to_owned()]));

        let lookahead = compile_pattern(r"^(?!911)(\d{3})$").unwrap();
        assert!(!lookahead.is_regular());
        assert!(!lookahead.is_match("911"));
        assert_eq!(lookahead.captures("912"), Some(vec!["912".to_owned()]));

        let backreference = compile_pattern(r"^(\d)\1$").unwrap();
        assert!(backreference.is_match("77"));
        assert!(!backreference.is_match("78"));

        let optional = compile_pattern(r"^(?<=)7(8)?(9)?$").unwrap();
        assert_eq!(
            optional.captures("79"),
            Some(vec![String::new(), "9".into()])
        );
    }

    #[test]
    fn a_catastrophic_pcre_pattern_gives_up_instead_of_spinning() {
        let evil = compile_pattern(r"^(\d+)+\1x$").unwrap();
        let started = std::time::Instant::now();
        assert!(!evil.is_match(&"1".repeat(64)));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
