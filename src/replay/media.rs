//! The RTP side of the replay: one socket per side, packets sent exactly as captured (only the
//! addresses change), packets from the proxy counted.

use std::net::{IpAddr, SocketAddr};

use tokio::net::UdpSocket;

use super::ReplayError;
use super::offer::Offer;
use super::plan::Side;

/// Both sides' media sockets and counters.
#[derive(Debug)]
pub(super) struct Media {
    caller: UdpSocket,
    callee: UdpSocket,
    /// Where the proxy receives the caller's RTP (its 200 OK's SDP).
    pub caller_remote: Option<SocketAddr>,
    /// Where the proxy receives the callee's RTP (its INVITE's SDP).
    pub callee_remote: Option<SocketAddr>,
    /// SDP the caller offers.
    pub caller_sdp: String,
    /// SDP the callee answers.
    pub callee_sdp: String,
    /// RTP packets sent: (caller, callee).
    pub sent: (u64, u64),
    /// RTP packets received: (caller, callee).
    pub received: (u64, u64),
}

impl Media {
    /// Binds one socket per side on `ip` and renders each side's SDP with its address.
    pub(super) async fn bind(
        ip: IpAddr,
        caller: &Offer,
        callee: &Offer,
    ) -> Result<Media, ReplayError> {
        let open = |what: &'static str| async move {
            let socket = UdpSocket::bind(SocketAddr::new(ip, 0))
                .await
                .map_err(|source| ReplayError::Network {
                    what: format!("cannot bind the {what} RTP socket on {ip}"),
                    source,
                })?;
            let local = socket.local_addr().map_err(|source| ReplayError::Network {
                what: format!("{what} RTP socket"),
                source,
            })?;
            Ok::<_, ReplayError>((socket, local))
        };
        let (caller_socket, caller_local) = open("caller").await?;
        let (callee_socket, callee_local) = open("callee").await?;
        let session = u64::from(caller_local.port());
        Ok(Media {
            caller: caller_socket,
            callee: callee_socket,
            caller_remote: None,
            callee_remote: None,
            caller_sdp: caller.render(caller_local, session),
            callee_sdp: callee.render(callee_local, session + 1),
            sent: (0, 0),
            received: (0, 0),
        })
    }

    /// Sends one captured RTP packet from `side` to the proxy.
    pub(super) async fn send(&mut self, side: Side, bytes: &[u8]) {
        let (socket, remote, count) = match side {
            Side::Caller => (&self.caller, self.caller_remote, &mut self.sent.0),
            Side::Callee => (&self.callee, self.callee_remote, &mut self.sent.1),
        };
        if let Some(remote) = remote
            && socket.send_to(bytes, remote).await.is_ok()
        {
            *count += 1;
        }
    }

    /// Waits for one packet on either socket and counts it for its side.
    pub(super) async fn recv(&mut self) -> Side {
        let mut a = [0u8; 2048];
        let mut b = [0u8; 2048];
        tokio::select! {
            r = self.caller.recv_from(&mut a) => {
                if r.is_ok_and(|(n, _)| n >= 12) {
                    self.received.0 += 1;
                }
                Side::Caller
            }
            r = self.callee.recv_from(&mut b) => {
                if r.is_ok_and(|(n, _)| n >= 12) {
                    self.received.1 += 1;
                }
                Side::Callee
            }
        }
    }
}
