//! Building the `Refer-To` URI of a blind transfer: which user part (the node's `target` or the
//! first capture of the dialed code) at which host (`data.domain` or the upstream PBX's host).
//!
//! Targets come from stored configuration or from digits a party dialed, so they are checked
//! against the SIP user-part grammar (RFC 3261 §25.1) before they reach a SIP message: letters,
//! digits and the marks `-_.!~*'()&=+$,/` pass as they are, `#` (dialable, not allowed raw) is
//! escaped as `%23`, anything else is refused.

use super::params::{NO_MATCH_CAPTURE, TransferParams};

/// Longest user part accepted: far above any dial string, low enough to bound a header.
const USER_PART_MAX_CHARS: usize = 128;
/// Longest host accepted (a DNS name is at most 253 characters; a port may follow).
const HOST_MAX_CHARS: usize = 260;
/// Marks a user part may carry unescaped (RFC 3261 `mark` and `user-unreserved`, minus `;?`
/// which would read as URI parameters or headers to many parsers).
const USER_PART_MARKS: &str = "-_.!~*'()&=+$,/";

/// Why no `Refer-To` URI could be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// Neither `data.target` nor a capture of the dialed code names a destination.
    #[error("no transfer target: set data.target or capture the number in the pattern")]
    NoTarget,
    /// The destination is not a usable SIP user part.
    #[error("transfer target {target:?} is not a valid SIP user part: {reason}")]
    InvalidTarget {
        /// The offending destination, as configured or dialed.
        target: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The host (from `data.domain` or the upstream address) is not a host name or address.
    #[error("transfer host {0:?} is not a host name or IP address")]
    InvalidHost(String),
}

/// The `Refer-To` URI for a transfer, e.g. `sip:1234@pbx.example.com`: the user part is
/// `params.target` if set, else the first capture (Kazoo's `no_match` placeholder counts as
/// none); the host is `params.domain` if set, else `default_host` (the upstream PBX's host).
pub fn refer_target(
    params: &TransferParams,
    captures: &[String],
    default_host: &str,
) -> Result<String, TransferError> {
    let user = params
        .target
        .as_deref()
        .or_else(|| captures.first().map(String::as_str))
        .filter(|user| !user.is_empty() && *user != NO_MATCH_CAPTURE)
        .ok_or(TransferError::NoTarget)?;
    if let Some(reason) = user_part_problem(user) {
        return Err(TransferError::InvalidTarget {
            target: user.to_owned(),
            reason,
        });
    }
    let host = params.domain.as_deref().unwrap_or(default_host);
    if !is_valid_host(host) {
        return Err(TransferError::InvalidHost(host.to_owned()));
    }
    let host = bracket_bare_ipv6(host);
    Ok(format!("sip:{}@{host}", escape_user_part(user)))
}

/// `None` when `user` can be written as a SIP user part (after escaping `#`), else the reason.
pub(crate) fn user_part_problem(user: &str) -> Option<String> {
    if user.is_empty() {
        return Some("it is empty".to_owned());
    }
    if user.chars().count() > USER_PART_MAX_CHARS {
        return Some(format!(
            "it is longer than {USER_PART_MAX_CHARS} characters"
        ));
    }
    user.chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || USER_PART_MARKS.contains(c) || c == '#'))
        .map(|c| format!("character {c:?} is not allowed"))
}

/// Percent-escapes the characters of a checked user part that may not appear raw (`#`).
fn escape_user_part(user: &str) -> String {
    user.replace('#', "%23")
}

/// True for `host` or `host:port` where host is a DNS name, an IPv4 address, or an IPv6
/// address (bracketed when a port follows, bare otherwise).
pub(crate) fn is_valid_host(text: &str) -> bool {
    if text.is_empty() || text.len() > HOST_MAX_CHARS {
        return false;
    }
    if let Some(rest) = text.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((address, tail)) => {
                is_ipv6(address) && (tail.is_empty() || tail.strip_prefix(':').is_some_and(is_port))
            }
            None => false,
        };
    }
    if text.matches(':').count() > 1 {
        return is_ipv6(text);
    }
    let (name, port) = match text.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (text, None),
    };
    is_dns_name(name) && port.is_none_or(is_port)
}

fn is_ipv6(text: &str) -> bool {
    text.parse::<std::net::Ipv6Addr>().is_ok()
}

fn is_port(text: &str) -> bool {
    text.parse::<u16>().is_ok_and(|port| port != 0)
}

/// Dotted labels of letters, digits and inner hyphens (IPv4 addresses pass as well).
fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// An IPv6 host written bare (as a socket address's IP prints) gets the brackets a URI needs.
fn bracket_bare_ipv6(host: &str) -> String {
    if !host.starts_with('[') && host.matches(':').count() > 1 {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}
