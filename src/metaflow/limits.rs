//! Cost limits on `patterns`: they come from the API and are compiled at every start, so each
//! pattern's compiled size, the number per document and the number held in memory are bounded
//! (figures and the command that measured them: docs/DECISIONS.md, "Pattern cost limits").

use regex::RegexBuilder;

use crate::metaflow::pattern::{BACKTRACK_LIMIT, Pattern};

/// Most `patterns` one metaflow object (or one callflow) may have.
pub const MAX_PATTERNS_PER_DOCUMENT: usize = 100;
/// Longest pattern, in bytes.
pub const MAX_PATTERN_BYTES: usize = 256;
/// Upper bound on one pattern's compiled program (`regex`'s `size_limit`).
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// Upper bound on one pattern's lazy DFA cache (`regex`'s `dfa_size_limit`).
pub const REGEX_DFA_SIZE_LIMIT: usize = 256 * 1024;
/// Most patterns the directory keeps compiled in memory over every stored document; documents
/// beyond it are skipped with a logged error.
pub const MAX_LOADED_PATTERNS: usize = 1000;

/// Compiles `pattern` within the limits; the error says which limit it broke. A regular pattern
/// compiles on `regex`; one that `regex` refuses for PCRE syntax only (look-around,
/// backreferences) compiles on `fancy-regex` within the same size limits.
pub fn compile_pattern(pattern: &str) -> Result<Pattern, PatternError> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(PatternError::TooLong {
            bytes: pattern.len(),
        });
    }
    let regular = RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build();
    match regular {
        Ok(regex) => Ok(Pattern::regular(regex)),
        Err(regex::Error::CompiledTooBig(_)) => Err(PatternError::TooBig),
        Err(first) => fancy_regex::RegexBuilder::new(pattern)
            .backtrack_limit(BACKTRACK_LIMIT)
            .delegate_size_limit(REGEX_SIZE_LIMIT)
            .delegate_dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
            .build()
            .map(Pattern::backtracking)
            .map_err(|error| match error {
                fancy_regex::Error::CompileError(inner)
                    if matches!(&*inner, fancy_regex::CompileError::InnerError(build)
                        if build.size_limit().is_some()) =>
                {
                    PatternError::TooBig
                }
                // Neither engine takes it: `regex`'s message is the more precise one.
                _ => PatternError::Invalid(first.to_string()),
            }),
    }
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Longer than [`MAX_PATTERN_BYTES`].
    #[error("pattern of {bytes} bytes exceeds the {MAX_PATTERN_BYTES} byte limit")]
    TooLong {
        /// Its length.
        bytes: usize,
    },
    /// Its compiled form exceeds [`REGEX_SIZE_LIMIT`].
    #[error("pattern compiles beyond the {REGEX_SIZE_LIMIT} byte size limit; simplify it")]
    TooBig,
    /// Not a valid regular expression.
    #[error("invalid regex: {0}")]
    Invalid(String),
}

impl PatternError {
    /// The JSON-schema rule name reported in a validation error.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::TooLong { .. } => "maxLength",
            Self::TooBig => "size",
            Self::Invalid(_) => "regex",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_patterns_compile_and_costly_ones_are_refused_quickly() {
        assert!(compile_pattern(r"^9(\d{1,20})$").is_ok());
        let long = "1".repeat(MAX_PATTERN_BYTES + 1);
        assert_eq!(
            compile_pattern(&long).map(|_| ()),
            Err(PatternError::TooLong {
                bytes: MAX_PATTERN_BYTES + 1
            })
        );
        let started = std::time::Instant::now();
        let huge = compile_pattern(r"(\w{1,100}){1,100}").map(|_| ());
        assert_eq!(huge, Err(PatternError::TooBig));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(
            compile_pattern("(")
                .map_err(|error| error.rule())
                .map(|_| ()),
            Err("regex")
        );
    }
}
