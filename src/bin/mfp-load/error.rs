//! Why a load run could not be carried out, worded for the operator.

use std::net::SocketAddr;

/// A failure that stops the run before or during set-up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// A socket could not be bound.
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        /// Which socket.
        what: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// rtpengine refused or did not answer a command (`--direct-via-rtpengine`).
    #[error("rtpengine at {control}: {reason}; is it running with --listen-ng {control}?")]
    Rtpengine {
        /// Its ng control address.
        control: SocketAddr,
        /// What went wrong, or what it answered.
        reason: String,
    },
    /// Nothing answered OPTIONS at the proxy's SIP address.
    #[error(
        "no SIP answer from the proxy at {0} within 3 s; is metaflow-proxy running with \
         --sip-listen {0}? (see mfp-load --help)"
    )]
    ProxyUnreachable(SocketAddr),
    /// The proxy's HTTP API did not serve /metrics.
    #[error("cannot read http://{addr}/metrics: {reason}; is the proxy's --api-listen {addr}?")]
    Metrics {
        /// The API address.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// No call could be set up, so there is nothing to measure.
    #[error(
        "no call was set up through the proxy ({0}); is the proxy's --upstream this tool's \
         --upstream?"
    )]
    NoCalls(String),
    /// `--direct-via`'s port plus two per baseline pair passes 65535.
    #[error("--direct-via {0}: the baseline pairs need ports beyond 65535; use a lower port")]
    ViaPorts(SocketAddr),
    /// Any other I/O failure.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}
