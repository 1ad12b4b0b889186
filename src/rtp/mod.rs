//! RTP (RFC 3550) as the proxy reads it: a zero-copy, validated view of a packet's header that the
//! relay, the DTMF decoder, the recorder and the capture analyser all share. Nothing here
//! allocates; it is on the per-packet path.

mod view;

pub use view::{RtpError, RtpView, is_rtcp};
