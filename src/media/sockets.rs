//! The four sockets of a media stream and the latches that decide who may send to them.

use std::io;
use std::net::SocketAddr;

use tokio::net::UdpSocket;

use crate::media::latch::Latch;
use crate::media::stats::PacketKind;
use crate::metaflow::Leg;

/// The four bound, non-blocking sockets of a stream, still in their std form so that they can
/// be created from synchronous code and registered with the reactor inside the task.
#[derive(Debug)]
pub(crate) struct StreamSockets {
    /// RTP socket advertised to the a-leg.
    pub a_rtp: std::net::UdpSocket,
    /// RTCP socket advertised to the a-leg.
    pub a_rtcp: std::net::UdpSocket,
    /// RTP socket advertised to the b-leg.
    pub b_rtp: std::net::UdpSocket,
    /// RTCP socket advertised to the b-leg.
    pub b_rtcp: std::net::UdpSocket,
}

/// Which of the four sockets a packet arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Port {
    ARtp,
    ARtcp,
    BRtp,
    BRtcp,
}

impl Port {
    /// The RTP socket `leg` sends its media to.
    pub(crate) fn rtp_of(leg: Leg) -> Port {
        match leg {
            Leg::A => Port::ARtp,
            Leg::B => Port::BRtp,
        }
    }

    /// The leg that sends to this socket.
    pub(crate) fn sender(self) -> Leg {
        match self {
            Port::ARtp | Port::ARtcp => Leg::A,
            Port::BRtp | Port::BRtcp => Leg::B,
        }
    }

    pub(crate) fn kind(self) -> PacketKind {
        match self {
            Port::ARtp | Port::BRtp => PacketKind::Rtp,
            Port::ARtcp | Port::BRtcp => PacketKind::Rtcp,
        }
    }

    /// The socket that relays this socket's packets towards the other leg.
    pub(crate) fn peer(self) -> Port {
        match self {
            Port::ARtp => Port::BRtp,
            Port::ARtcp => Port::BRtcp,
            Port::BRtp => Port::ARtp,
            Port::BRtcp => Port::ARtcp,
        }
    }
}

/// The stream's sockets registered with the reactor.
pub(crate) struct AsyncSockets {
    pub a_rtp: UdpSocket,
    pub a_rtcp: UdpSocket,
    pub b_rtp: UdpSocket,
    pub b_rtcp: UdpSocket,
    /// Local addresses in `Port` order (a-rtp, a-rtcp, b-rtp, b-rtcp), read once for recordings.
    local: [SocketAddr; 4],
}

impl AsyncSockets {
    pub(crate) fn register(sockets: StreamSockets) -> io::Result<Self> {
        let local = [
            sockets.a_rtp.local_addr()?,
            sockets.a_rtcp.local_addr()?,
            sockets.b_rtp.local_addr()?,
            sockets.b_rtcp.local_addr()?,
        ];
        Ok(Self {
            a_rtp: UdpSocket::from_std(sockets.a_rtp)?,
            a_rtcp: UdpSocket::from_std(sockets.a_rtcp)?,
            b_rtp: UdpSocket::from_std(sockets.b_rtp)?,
            b_rtcp: UdpSocket::from_std(sockets.b_rtcp)?,
            local,
        })
    }

    /// The local address of the socket `port`.
    pub(crate) fn local_addr(&self, port: Port) -> SocketAddr {
        let [a_rtp, a_rtcp, b_rtp, b_rtcp] = self.local;
        match port {
            Port::ARtp => a_rtp,
            Port::ARtcp => a_rtcp,
            Port::BRtp => b_rtp,
            Port::BRtcp => b_rtcp,
        }
    }

    pub(crate) fn get(&self, port: Port) -> &UdpSocket {
        match port {
            Port::ARtp => &self.a_rtp,
            Port::ARtcp => &self.a_rtcp,
            Port::BRtp => &self.b_rtp,
            Port::BRtcp => &self.b_rtcp,
        }
    }
}

/// Latches of both legs' RTP and RTCP flows.
#[derive(Default)]
pub(crate) struct StreamLatches {
    a_rtp: Latch,
    a_rtcp: Latch,
    b_rtp: Latch,
    b_rtcp: Latch,
}

impl StreamLatches {
    pub(crate) fn get_mut(&mut self, leg: Leg, kind: PacketKind) -> &mut Latch {
        match (leg, kind) {
            (Leg::A, PacketKind::Rtp) => &mut self.a_rtp,
            (Leg::A, PacketKind::Rtcp) => &mut self.a_rtcp,
            (Leg::B, PacketKind::Rtp) => &mut self.b_rtp,
            (Leg::B, PacketKind::Rtcp) => &mut self.b_rtcp,
        }
    }
}
