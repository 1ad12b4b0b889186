//! SIP message parsing and serialisation (RFC 3261), written by hand so that
//! compact headers, line folding and Content-Length framing are handled exactly.
//! Everything here is sans-IO: bytes in, values out.

pub mod digest;
pub mod error;
pub mod header;
pub mod message;
pub mod method;
pub mod name_addr;
pub mod names;
pub mod params;
pub mod parse;
pub mod uri;
pub mod validate;
pub mod via;

pub mod tcp;
pub mod transport;
pub mod txn;

#[cfg(test)]
mod message_tests;

pub use error::ParseError;
pub use header::{Header, canonical_name, canonical_ref, is_list_header, split_list};
pub use message::{SipMessage, StartLine, parse_cseq};
pub use method::{Method, is_token};
pub use name_addr::NameAddr;
pub use params::{Params, find_param, parse_params};
pub use parse::{MAX_HEADERS, MAX_MESSAGE_SIZE};
pub use uri::{SipUri, unescape};
pub use validate::Rejection;
pub use via::{BRANCH_MAGIC_COOKIE, Via};
