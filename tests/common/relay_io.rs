//! A synthetic RTP packet, a party's sockets and a bounded receive for relay tests, shared by
//! the userspace and kernel path tests (included with `#[path]`, without the rest of `common`).

#![allow(dead_code)] // each test binary uses its own subset

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::timeout;

/// An RTP packet whose header fields and payload all depend on `seq`, so any rewrite shows.
pub fn rtp(payload_type: u8, seq: u16, ssrc: u32) -> Vec<u8> {
    let mut packet = vec![0x80, payload_type];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend((0..160u16).map(|i| (i as u8) ^ (seq as u8)));
    packet
}

/// The next datagram on `socket` and its source; panics when none comes within `wait`.
pub async fn recv_within(socket: &UdpSocket, wait: Duration) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (len, from) = timeout(wait, socket.recv_from(&mut buf))
        .await
        .expect("packet not relayed in time")
        .unwrap();
    (buf[..len].to_vec(), from)
}

/// One party's endpoint: an RTP and an RTCP socket on a loopback address.
pub struct Endpoint {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

impl Endpoint {
    /// An endpoint on `ip` (127.0.0.2, 127.0.0.3...: sources then differ by IP, not only by
    /// port; `::1` for IPv6).
    pub async fn bind_on(ip: impl Into<IpAddr>) -> Self {
        let ip = ip.into();
        Self {
            rtp: UdpSocket::bind((ip, 0)).await.unwrap(),
            rtcp: UdpSocket::bind((ip, 0)).await.unwrap(),
        }
    }

    pub fn rtp_addr(&self) -> SocketAddr {
        self.rtp.local_addr().unwrap()
    }

    pub fn rtcp_addr(&self) -> SocketAddr {
        self.rtcp.local_addr().unwrap()
    }
}
