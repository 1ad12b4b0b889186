//! Settings of the media engine and the errors it reports.

use std::net::IpAddr;
use std::time::Duration;

use crate::media::latch::LatchPolicy;

/// Where and how the proxy anchors media: the address RTP sockets bind to, the UDP port range
/// they are taken from, which sources each leg's packets are accepted from, and how long a
/// confirmed call may stay silent (in and out of hold) before it is reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaConfig {
    /// Local address every RTP/RTCP socket binds to (and that SDP advertises).
    pub media_ip: IpAddr,
    /// Lowest UDP port the engine may use (rounded up to the next even port for RTP).
    pub port_min: u16,
    /// Highest UDP port the engine may use (an RTCP port may be this one at most).
    pub port_max: u16,
    /// Silence on every stream of an answered call for this long raises `MediaEvent::Timeout`.
    pub media_timeout: Duration,
    /// The same while every stream of the call is on hold (SDP `sendonly`, `recvonly`,
    /// `inactive` or `c=0.0.0.0` from either leg), when no RTP is expected; zero: never.
    pub media_timeout_hold: Duration,
    /// Relay worker threads, each with its own epoll loop (0 is taken as 1).
    pub workers: usize,
    /// Which sources a leg's packets are accepted from and when a NATed source may take over
    /// from the SDP address (keys `rtp-latch`, `rtp-learning-ms`, `rtp-source-match`).
    pub latch: LatchPolicy,
}

/// Why the media engine could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The configured range does not hold a single even/odd port pair.
    #[error("port range {min}-{max} holds no RTP/RTCP port pair")]
    InvalidPortRange {
        /// Configured lower bound.
        min: u16,
        /// Configured upper bound.
        max: u16,
    },
    /// Every pair of the range is allocated or bound by another process.
    #[error("no free RTP/RTCP port pair left in the configured range")]
    PortsExhausted,
    /// The call has no media stream to act on (an attended transfer on a call without SDP).
    #[error("the call has no media stream")]
    NoStream,
    /// A freshly bound socket could not be prepared for asynchronous use. The reason is part
    /// of the message and not a separate source, so a chain printed at start-up says it once.
    #[error("preparing a media socket failed: {0}")]
    Socket(std::io::Error),
}

impl From<std::io::Error> for MediaError {
    fn from(err: std::io::Error) -> Self {
        MediaError::Socket(err)
    }
}
