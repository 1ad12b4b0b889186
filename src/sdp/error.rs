//! Errors of SDP parsing and rewriting.

use thiserror::Error;

/// Why an SDP body could not be parsed or rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    /// The body is not UTF-8 text.
    #[error("SDP body is not valid UTF-8")]
    NonUtf8,
    /// The body does not start with a `v=` line.
    #[error("SDP does not start with v=")]
    MissingVersion,
    /// A line is not of the form `<letter>=<value>`.
    #[error("malformed SDP line {line}: {text}")]
    MalformedLine {
        /// 1-based line number.
        line: usize,
        /// The offending line (shortened).
        text: String,
    },
    /// An `m=` line lacks media, a numeric port or a protocol.
    #[error("malformed media line {line}: {text}")]
    BadMediaLine {
        /// 1-based line number.
        line: usize,
        /// The offending line (shortened).
        text: String,
    },
}

/// Longest excerpt of an offending line quoted inside an error.
const EXCERPT_CHARS: usize = 80;

/// Shortens an offending line for error messages.
pub(crate) fn excerpt(s: &str) -> String {
    match s.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}...", s.get(..cut).unwrap_or_default()),
        None => s.to_string(),
    }
}
