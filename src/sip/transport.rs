//! Transport-neutral addressing for SIP messages.
//!
//! The B2BUA core names a destination as a transport plus a socket address; the shell owns the
//! sockets (one UDP socket, and TCP connections reused per remote address).

use std::fmt;
use std::net::SocketAddr;

/// A SIP transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagrams: one message per packet, retransmissions by the transaction layer.
    Udp,
    /// A byte stream framed by Content-Length; the transport itself is reliable.
    Tcp,
}

impl Transport {
    /// Whether the transport itself retransmits (no Timer A/E/G retransmissions needed).
    pub fn is_reliable(self) -> bool {
        match self {
            Transport::Udp => false,
            Transport::Tcp => true,
        }
    }

    /// The token used in Via headers.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// Where a message comes from or goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The transport to use.
    pub transport: Transport,
    /// The remote socket address.
    pub addr: SocketAddr,
}

impl Peer {
    /// A UDP peer.
    pub fn udp(addr: SocketAddr) -> Self {
        Peer {
            transport: Transport::Udp,
            addr,
        }
    }

    /// A TCP peer.
    pub fn tcp(addr: SocketAddr) -> Self {
        Peer {
            transport: Transport::Tcp,
            addr,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            self.transport.via_token().to_lowercase(),
            self.addr
        )
    }
}
