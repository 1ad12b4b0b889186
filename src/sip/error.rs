//! Error types of the SIP parser and of request validation.

use thiserror::Error;

use super::validate::Rejection;

/// Why a SIP message, header value or URI could not be parsed.
///
/// Each variant names the defect so that logs say what a peer sent wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The input held nothing but line breaks.
    #[error("empty message")]
    Empty,
    /// The message exceeds the size limit.
    #[error("message of {size} bytes exceeds the {max} byte limit")]
    TooLarge {
        /// Size seen, in bytes.
        size: usize,
        /// Limit, in bytes.
        max: usize,
    },
    /// The message has more header lines than allowed.
    #[error("more than {max} headers")]
    TooManyHeaders {
        /// Limit on header lines.
        max: usize,
    },
    /// The start line or a header contains bytes that are not UTF-8.
    #[error("message head is not valid UTF-8")]
    NonUtf8,
    /// The start line is neither a request line nor a status line.
    #[error("malformed start line: {0}")]
    BadStartLine(String),
    /// The request method is not a valid token.
    #[error("invalid method token: {0}")]
    BadMethod(String),
    /// The Request-URI is not an absolute URI.
    #[error("invalid Request-URI: {0}")]
    BadRequestUri(String),
    /// The SIP version is not SIP/2.0 (the element should answer 505).
    #[error("unsupported SIP version: {0}")]
    UnsupportedVersion(String),
    /// The status code is not three digits in 100..=699.
    #[error("invalid status code: {0}")]
    BadStatusCode(String),
    /// A header line is missing its colon or has an invalid name.
    #[error("malformed header line: {0}")]
    MalformedHeader(String),
    /// A continuation line appears before any header.
    #[error("continuation line without a preceding header")]
    FoldWithoutHeader,
    /// Content-Length is not a non-negative decimal number.
    #[error("invalid Content-Length: {0}")]
    InvalidContentLength(String),
    /// A stream-framed message has no Content-Length.
    #[error("Content-Length is required on stream transports")]
    MissingContentLength,
    /// Content-Length announces more bytes than the datagram holds.
    #[error("Content-Length {declared} exceeds the {available} body bytes available")]
    BodyTruncated {
        /// Length announced by Content-Length.
        declared: usize,
        /// Body bytes actually present.
        available: usize,
    },
    /// A Via header value is malformed.
    #[error("malformed Via: {0}")]
    BadVia(String),
    /// A SIP or SIPS URI is malformed.
    #[error("malformed URI: {0}")]
    BadUri(String),
    /// A name-addr / addr-spec header value is malformed.
    #[error("malformed address: {0}")]
    BadNameAddr(String),
    /// A `;name=value` parameter list is malformed.
    #[error("malformed parameter: {0}")]
    BadParam(String),
}

impl ParseError {
    /// The answer a server gives when a request failed to parse (505 for a
    /// foreign SIP version, 513 when too large, 400 otherwise).
    pub fn rejection(&self) -> Rejection {
        match self {
            ParseError::UnsupportedVersion(v) => {
                Rejection::new(505, format!("Version Not Supported: {v}"))
            }
            ParseError::TooLarge { .. } => Rejection::new(513, "Message Too Large"),
            other => Rejection::new(400, other.to_string()),
        }
    }
}

/// Longest excerpt of offending input quoted inside an error.
const EXCERPT_CHARS: usize = 80;

/// Shortens offending input for error messages so a hostile 60 KiB line does
/// not end up verbatim in logs.
pub(crate) fn excerpt(s: &str) -> String {
    match s.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}...", s.get(..cut).unwrap_or_default()),
        None => s.to_string(),
    }
}
