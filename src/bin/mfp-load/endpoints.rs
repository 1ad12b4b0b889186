//! The tool's UDP sockets: one SIP socket per side and one RTP socket per endpoint leg.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use crate::error::LoadError;

/// One RTP endpoint: the socket and the address it is bound to.
pub(crate) struct Endpoint {
    /// The bound socket.
    pub socket: UdpSocket,
    /// Its local address, announced in SDP.
    pub addr: SocketAddr,
}

/// Binds a UDP socket, naming it in the error.
pub(crate) fn bind(what: &'static str, addr: SocketAddr) -> Result<UdpSocket, LoadError> {
    UdpSocket::bind(addr).map_err(|source| LoadError::Bind { what, addr, source })
}

/// Binds `count` RTP endpoints on ephemeral ports of `ip`.
pub(crate) fn bind_many(
    what: &'static str,
    ip: IpAddr,
    count: u32,
) -> Result<Vec<Endpoint>, LoadError> {
    (0..count)
        .map(|_| {
            let socket = bind(what, SocketAddr::new(ip, 0))?;
            let addr = socket.local_addr()?;
            Ok(Endpoint { socket, addr })
        })
        .collect()
}

/// All sockets of a run.
pub(crate) struct Endpoints {
    /// Caller-side RTP endpoint of each call.
    pub caller: Vec<Endpoint>,
    /// PBX-side RTP endpoint of each call.
    pub pbx: Vec<Endpoint>,
    /// Direct baseline pairs (a side, b side).
    pub direct: Vec<(Endpoint, Endpoint)>,
}

impl Endpoints {
    /// Binds every RTP endpoint of a run of `calls` calls and `direct_pairs` baseline pairs.
    pub(crate) fn bind_all(
        ip: IpAddr,
        calls: u32,
        direct_pairs: u32,
    ) -> Result<Endpoints, LoadError> {
        let caller = bind_many("a caller RTP socket", ip, calls)?;
        let pbx = bind_many("a PBX-side RTP socket", ip, calls)?;
        let a = bind_many("a direct RTP socket", ip, direct_pairs)?;
        let b = bind_many("a direct RTP socket", ip, direct_pairs)?;
        Ok(Endpoints {
            caller,
            pbx,
            direct: a.into_iter().zip(b).collect(),
        })
    }
}
