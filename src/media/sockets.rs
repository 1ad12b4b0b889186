//! The four sockets of a media stream and the latches that decide who may send to them.

use std::io;
use std::net::SocketAddr;

use std::net::UdpSocket;

use socket2::{SockAddr, SockAddrStorage, SockRef};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::base::Leg;
use crate::media::latch::{Latch, LatchPolicy};
use crate::media::stats::PacketKind;

/// The four bound, non-blocking sockets of a stream, as the engine hands them to a relay worker.
#[derive(Debug)]
pub(crate) struct StreamSockets {
    /// RTP socket advertised to the a-leg.
    pub a_rtp: UdpSocket,
    /// RTCP socket advertised to the a-leg.
    pub a_rtcp: UdpSocket,
    /// RTP socket advertised to the b-leg.
    pub b_rtp: UdpSocket,
    /// RTCP socket advertised to the b-leg.
    pub b_rtcp: UdpSocket,
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
    /// Every socket of a stream, in `Port::index` order.
    pub(crate) const ALL: [Port; 4] = [Port::ARtp, Port::ARtcp, Port::BRtp, Port::BRtcp];

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

    /// Position in arrays kept per socket, in the order a-rtp, a-rtcp, b-rtp, b-rtcp.
    pub(crate) fn index(self) -> usize {
        match self {
            Port::ARtp => 0,
            Port::ARtcp => 1,
            Port::BRtp => 2,
            Port::BRtcp => 3,
        }
    }

    /// The socket `leg` sends its `kind` packets to.
    pub(crate) fn of(leg: Leg, kind: PacketKind) -> Port {
        match (leg, kind) {
            (Leg::A, PacketKind::Rtp) => Port::ARtp,
            (Leg::A, PacketKind::Rtcp) => Port::ARtcp,
            (Leg::B, PacketKind::Rtp) => Port::BRtp,
            (Leg::B, PacketKind::Rtcp) => Port::BRtcp,
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

/// The stream's sockets as the relay worker uses them: non-blocking, read once per readiness
/// report of the worker's level-triggered epoll, and written without waiting (a full send
/// buffer drops the packet and counts it). `repr(C)`: the four descriptors first, in one line.
#[repr(C)]
pub(crate) struct RelaySockets {
    pub a_rtp: UdpSocket,
    pub a_rtcp: UdpSocket,
    pub b_rtp: UdpSocket,
    pub b_rtcp: UdpSocket,
    /// Local addresses in `Port` order (a-rtp, a-rtcp, b-rtp, b-rtcp), read once for recordings.
    local: [SocketAddr; 4],
}

impl RelaySockets {
    /// Takes the bound sockets of a stream and reads their local addresses once.
    pub(crate) fn new(sockets: StreamSockets) -> io::Result<Self> {
        let local = [
            sockets.a_rtp.local_addr()?,
            sockets.a_rtcp.local_addr()?,
            sockets.b_rtp.local_addr()?,
            sockets.b_rtcp.local_addr()?,
        ];
        Ok(Self {
            a_rtp: sockets.a_rtp,
            a_rtcp: sockets.a_rtcp,
            b_rtp: sockets.b_rtp,
            b_rtcp: sockets.b_rtcp,
            local,
        })
    }

    /// Receives one datagram waiting on `port`; `WouldBlock` when none is.
    pub(crate) fn recv_from(&self, port: Port, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        recv_from(self.get(port), buf)
    }

    /// Sends `packet` from `port` to `destination` without waiting.
    pub(crate) fn send_to(
        &self,
        port: Port,
        packet: &[u8],
        destination: SocketAddr,
    ) -> io::Result<usize> {
        send_to(self.get(port), packet, destination)
    }

    /// Sends `packet` from `port` to the peer it is connected to, without waiting.
    pub(crate) fn send(&self, port: Port, packet: &[u8]) -> io::Result<usize> {
        rustix::net::send(self.get(port), packet, rustix::net::SendFlags::empty())
            .map_err(Into::into)
    }

    /// Connects `port` to `peer`: the kernel then routes once instead of per send, and drops
    /// datagrams from any other source before they reach the relay. A socket bound to the
    /// wildcard is left unconnected: connect(2) would pin its local address to the one the
    /// route towards `peer` picks, and the peer's packets, sent to the advertised or another
    /// local address, would no longer reach it (the relay's latch filters sources anyway).
    pub(crate) fn connect(&self, port: Port, peer: SocketAddr) -> io::Result<()> {
        if self.local_addr(port).ip().is_unspecified() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "bound to the wildcard address",
            ));
        }
        self.get(port).connect(peer)
    }

    /// Undoes [`RelaySockets::connect`] so that any source may be received (and latched) again.
    pub(crate) fn disconnect(&self, port: Port) -> io::Result<()> {
        // connect(2) with an AF_UNSPEC address dissolves a datagram socket's association.
        let storage = SockAddrStorage::zeroed();
        let len = storage.size_of();
        // SAFETY: an all-zero storage is an initialised `sockaddr_storage` whose family is
        // AF_UNSPEC (0), and `len` is that storage's own size.
        let unspecified = unsafe { SockAddr::new(storage, len) };
        SockRef::from(self.get(port)).connect(&unspecified)
    }

    /// The local address of the socket `port`.
    pub(crate) fn local_addr(&self, port: Port) -> SocketAddr {
        self.local[port.index()]
    }

    /// Puts a consulted party's sockets in place of `leg`'s (an attended transfer completing):
    /// `leg`'s own sockets are closed (which takes them out of the worker's epoll) and its
    /// party now sends to the consulted party's ports.
    pub(crate) fn replace(&mut self, leg: Leg, consult: ConsultSockets) {
        let ConsultSockets { rtp, rtcp, local } = consult;
        let (rtp_slot, rtcp_slot) = match leg {
            Leg::A => (&mut self.a_rtp, &mut self.a_rtcp),
            Leg::B => (&mut self.b_rtp, &mut self.b_rtcp),
        };
        *rtp_slot = rtp;
        *rtcp_slot = rtcp;
        let [rtp_local, rtcp_local] = local;
        self.local[Port::of(leg, PacketKind::Rtp).index()] = rtp_local;
        self.local[Port::of(leg, PacketKind::Rtcp).index()] = rtcp_local;
    }

    /// The socket `port`.
    pub(crate) fn get(&self, port: Port) -> &UdpSocket {
        match port {
            Port::ARtp => &self.a_rtp,
            Port::ARtcp => &self.a_rtcp,
            Port::BRtp => &self.b_rtp,
            Port::BRtcp => &self.b_rtcp,
        }
    }
}

/// Receives one datagram from `socket` with the system call itself: std's goes through libc's
/// wrapper, whose thread-cancellation bookkeeping cost 2-3 % of the relay's time per packet.
pub(crate) fn recv_from(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    let (len, _, source) = rustix::net::recvfrom(socket, buf, rustix::net::RecvFlags::empty())?;
    let source = source
        .and_then(|source| SocketAddr::try_from(source).ok())
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "datagram without an IP source")
        })?;
    Ok((len, source))
}

/// Sends `packet` from `socket` to `destination` with the system call itself (see
/// [`recv_from`]).
pub(crate) fn send_to(
    socket: &UdpSocket,
    packet: &[u8],
    destination: SocketAddr,
) -> io::Result<usize> {
    rustix::net::sendto(
        socket,
        packet,
        rustix::net::SendFlags::empty(),
        &destination,
    )
    .map_err(Into::into)
}

/// Registers a non-blocking socket with the current tokio reactor for readability only: the
/// load tool's receivers, which never wait to send. (`tokio::net::UdpSocket` registers for
/// writability too: then every datagram the far end consumes frees send-buffer space and raises
/// `EPOLLOUT`, an event nobody waits for.)
pub fn register_readable(socket: UdpSocket) -> io::Result<AsyncFd<UdpSocket>> {
    // SAFETY: the `UdpSocket` owns its descriptor, which therefore stays open and unchanged
    // until the `AsyncFd` that owns the socket is dropped; `as_raw_fd` always returns it.
    unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }.map_err(Into::into)
}

/// The RTP and RTCP sockets of a third party on a stream (the target an attended transfer
/// consults), registered with the worker's epoll by the relay that receives them.
pub(crate) struct ConsultSockets {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    /// Local addresses (RTP, RTCP).
    pub local: [SocketAddr; 2],
}

impl ConsultSockets {
    /// Takes a bound, non-blocking pair.
    pub(crate) fn new(rtp: UdpSocket, rtcp: UdpSocket) -> io::Result<Self> {
        let local = [rtp.local_addr()?, rtcp.local_addr()?];
        Ok(Self { rtp, rtcp, local })
    }

    /// The socket of `kind`.
    pub(crate) fn get(&self, kind: PacketKind) -> &UdpSocket {
        match kind {
            PacketKind::Rtp => &self.rtp,
            PacketKind::Rtcp => &self.rtcp,
        }
    }
}

/// Latches of both legs' RTP and RTCP flows.
pub(crate) struct StreamLatches {
    a_rtp: Latch,
    a_rtcp: Latch,
    b_rtp: Latch,
    b_rtcp: Latch,
}

impl StreamLatches {
    /// Four fresh latches following `policy`.
    pub(crate) fn new(policy: LatchPolicy) -> Self {
        let latch = Latch::new(policy);
        StreamLatches {
            a_rtp: latch,
            a_rtcp: latch,
            b_rtp: latch,
            b_rtcp: latch,
        }
    }

    /// Puts `latches` (RTP, RTCP) in place of `leg`'s: the party that takes the leg keeps what
    /// its flows learnt.
    pub(crate) fn replace(&mut self, leg: Leg, latches: [Latch; 2]) {
        let [rtp, rtcp] = latches;
        *self.get_mut(leg, PacketKind::Rtp) = rtp;
        *self.get_mut(leg, PacketKind::Rtcp) = rtcp;
    }

    /// The latch of `leg`'s `kind` flow.
    pub(crate) fn get(&self, leg: Leg, kind: PacketKind) -> &Latch {
        match (leg, kind) {
            (Leg::A, PacketKind::Rtp) => &self.a_rtp,
            (Leg::A, PacketKind::Rtcp) => &self.a_rtcp,
            (Leg::B, PacketKind::Rtp) => &self.b_rtp,
            (Leg::B, PacketKind::Rtcp) => &self.b_rtcp,
        }
    }

    pub(crate) fn get_mut(&mut self, leg: Leg, kind: PacketKind) -> &mut Latch {
        match (leg, kind) {
            (Leg::A, PacketKind::Rtp) => &mut self.a_rtp,
            (Leg::A, PacketKind::Rtcp) => &mut self.a_rtcp,
            (Leg::B, PacketKind::Rtp) => &mut self.b_rtp,
            (Leg::B, PacketKind::Rtcp) => &mut self.b_rtcp,
        }
    }
}
