//! The tool's UDP sockets: one SIP socket per side and one RTP socket per endpoint leg, or
//! (`--shared-endpoints N`) N RTP sockets per side that every call's endpoint on that side shares,
//! so that sends and receives can be batched (`sendmmsg`, `recvmmsg`).

use std::net::{IpAddr, SocketAddr, UdpSocket};

use crate::error::LoadError;

/// One RTP endpoint: the socket and the address it is bound to.
pub(crate) struct Endpoint {
    /// The bound socket (a clone of the pool's socket when endpoints are shared).
    pub socket: UdpSocket,
    /// Its local address, announced in SDP.
    pub addr: SocketAddr,
    /// Which socket this is: endpoints with the same group share one socket, so their sends may
    /// go out in one `sendmmsg` and only one of them needs a receiver.
    pub group: u32,
}

/// Socket buffer asked for a shared endpoint socket: at 500,000 packets/s a few milliseconds of
/// a receiver's lateness must fit.
const SHARED_BUFFER: usize = 16 << 20;

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
            let group = next_group();
            Ok(Endpoint {
                socket,
                addr,
                group,
            })
        })
        .collect()
}

/// Binds `sockets` RTP sockets on `ip` and hands out `count` endpoints over them round-robin.
fn bind_shared(
    what: &'static str,
    ip: IpAddr,
    count: u32,
    sockets: u32,
) -> Result<Vec<Endpoint>, LoadError> {
    let pool = bind_many(what, ip, sockets.min(count))?;
    for endpoint in &pool {
        // Root may exceed net.core.rmem_max; anyone else gets what the limit allows.
        if !crate::batch::force_receive_buffer(&endpoint.socket, SHARED_BUFFER) {
            let socket = socket2::SockRef::from(&endpoint.socket);
            let _ = socket.set_recv_buffer_size(SHARED_BUFFER);
        }
    }
    (0..count as usize)
        .map(|index| {
            let shared = &pool[index % pool.len()];
            Ok(Endpoint {
                socket: shared.socket.try_clone()?,
                addr: shared.addr,
                group: shared.group,
            })
        })
        .collect()
}

/// A fresh socket group number.
fn next_group() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// All sockets of a run.
pub(crate) struct Endpoints {
    /// Caller-side RTP endpoint of each call.
    pub caller: Vec<Endpoint>,
    /// PBX-side RTP endpoint of each call.
    pub pbx: Vec<Endpoint>,
    /// Direct baseline pairs (a side, b side).
    pub direct: Vec<(Endpoint, Endpoint)>,
    /// Whether endpoints share sockets (`--shared-endpoints`).
    pub shared: bool,
}

impl Endpoints {
    /// Binds every RTP endpoint of a run of `calls` calls and `direct_pairs` baseline pairs:
    /// one socket each, or `shared` sockets per side (callers, PBX side, direct a, direct b).
    pub(crate) fn bind_all(
        ip: IpAddr,
        calls: u32,
        direct_pairs: u32,
        shared: Option<u32>,
    ) -> Result<Endpoints, LoadError> {
        let side = |what, count| match shared {
            Some(sockets) => bind_shared(what, ip, count, sockets),
            None => bind_many(what, ip, count),
        };
        let caller = side("a caller RTP socket", calls)?;
        let pbx = side("a PBX-side RTP socket", calls)?;
        let a = side("a direct RTP socket", direct_pairs)?;
        let b = side("a direct RTP socket", direct_pairs)?;
        Ok(Endpoints {
            caller,
            pbx,
            direct: a.into_iter().zip(b).collect(),
            shared: shared.is_some(),
        })
    }

    /// One endpoint per distinct socket: what the receivers watch.
    pub(crate) fn distinct(&self) -> Vec<&Endpoint> {
        let mut seen = std::collections::HashSet::new();
        self.caller
            .iter()
            .chain(&self.pbx)
            .chain(self.direct.iter().flat_map(|(a, b)| [a, b]))
            .filter(|endpoint| seen.insert(endpoint.group))
            .collect()
    }
}
