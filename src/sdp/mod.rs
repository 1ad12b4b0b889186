//! SDP (RFC 4566) parsing and rewriting for media anchoring. Sans-IO: bytes in,
//! values or rewritten bytes out.

pub mod codec;
pub mod error;
pub mod formats;
pub mod lines;
pub mod model;
pub mod rewrite;

#[cfg(test)]
mod tests;

pub use codec::static_payload;
pub use error::SdpError;
pub use model::{Direction, MediaDesc, RtpMap, Sdp};
pub use rewrite::{Anchor, rewrite};
