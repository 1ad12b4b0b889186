//! Request validation: the one pass every received request goes through before the call core
//! acts on it, ending in at most one [`Rejection`] that says how to answer.
//!
//! - [`syntax`](SipMessage::validate_request): is the request well formed (RFC 3261 §16.3,
//!   RFC 4475)? Also [`SipMessage::validate_response`] for responses.
//! - `policy`: may this proxy act on it (size, numeric ranges, single-valued headers,
//!   extensions, bodies it must read)?
//! - [`answer_unparseable`]: what to answer to a datagram that did not parse at all.
//! - [`is_scanner`]: whether a request comes from a known SIP scanner, to be dropped unanswered.

mod policy;
mod rejection;
mod scanner;
mod syntax;
mod unparseable;

pub use rejection::Rejection;
pub use scanner::{
    DEFAULT_SCANNER_USER_AGENTS, default_scanner_user_agents, is_scanner, is_scanner_user_agent,
};
pub use unparseable::answer_unparseable;

use crate::sip::SipMessage;

/// Validates a received request: syntax first, then the proxy's policy. `Err` carries the
/// answer (build it with [`Rejection::response_to`]); the request is then neither processed
/// nor forwarded. An ACK is never answered, whatever the verdict.
pub fn check_request(msg: &SipMessage) -> Result<(), Rejection> {
    msg.validate_request()?;
    policy::check(msg)
}

/// An RFC 4475 torture message from the project's copy, for the tests of this folder.
#[cfg(test)]
fn torture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/data/rfc4475/{name}.dat",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).unwrap()
}
