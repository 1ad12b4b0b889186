//! The RTP side of the replay: one socket per side, packets sent exactly as captured (only the
//! addresses change), packets from the proxy counted.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use tokio::net::UdpSocket;

use crate::rtp::RtpView;

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
    /// (SSRC, sequence) pairs sent per side: (caller, callee).
    pub sent_seqs: (SeqSet, SeqSet),
    /// (SSRC, sequence) pairs received per side: (caller, callee).
    pub received_seqs: (SeqSet, SeqSet),
}

/// The (SSRC, sequence number) pairs one side sent or received, to tell which sent packets
/// never arrived, whatever the duplicates and the capture's own gaps.
#[derive(Debug, Default)]
pub(super) struct SeqSet {
    seen: HashSet<(u32, u16)>,
}

impl SeqSet {
    /// Notes one RTP packet; anything that is not RTP is ignored.
    pub(super) fn observe(&mut self, packet: &[u8]) {
        if let Ok(view) = RtpView::parse(packet) {
            self.seen.insert((view.ssrc(), view.sequence()));
        }
    }

    /// How many of `sent`'s packets are not in this set.
    pub(super) fn lost_of(&self, sent: &SeqSet) -> u64 {
        sent.seen.difference(&self.seen).count() as u64
    }
}

impl Media {
    /// Binds one socket per side on `ip` and renders each side's SDP with `advertise` and the
    /// socket's port.
    pub(super) async fn bind(
        ip: IpAddr,
        advertise: IpAddr,
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
            Ok::<_, ReplayError>((socket, SocketAddr::new(advertise, local.port())))
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
            sent_seqs: (SeqSet::default(), SeqSet::default()),
            received_seqs: (SeqSet::default(), SeqSet::default()),
        })
    }

    /// Sends one captured RTP packet from `side` to the proxy.
    pub(super) async fn send(&mut self, side: Side, bytes: &[u8]) {
        let (socket, remote, count, seqs) = match side {
            Side::Caller => (
                &self.caller,
                self.caller_remote,
                &mut self.sent.0,
                &mut self.sent_seqs.0,
            ),
            Side::Callee => (
                &self.callee,
                self.callee_remote,
                &mut self.sent.1,
                &mut self.sent_seqs.1,
            ),
        };
        if let Some(remote) = remote
            && socket.send_to(bytes, remote).await.is_ok()
        {
            *count += 1;
            seqs.observe(bytes);
        }
    }

    /// Waits for one packet on either socket and counts it for its side.
    pub(super) async fn recv(&mut self) {
        let mut a = [0u8; 2048];
        let mut b = [0u8; 2048];
        tokio::select! {
            r = self.caller.recv_from(&mut a) => {
                if let Ok((n, _)) = r && n >= 12 {
                    self.received.0 += 1;
                    self.received_seqs.0.observe(a.get(..n).unwrap_or_default());
                }
            }
            r = self.callee.recv_from(&mut b) => {
                if let Ok((n, _)) = r && n >= 12 {
                    self.received.1 += 1;
                    self.received_seqs.1.observe(b.get(..n).unwrap_or_default());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(ssrc: u8, seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, ssrc]);
        p
    }

    #[test]
    fn lost_counts_sent_packets_that_never_arrived_not_duplicates_or_gaps() {
        let mut sent = SeqSet::default();
        let mut received = SeqSet::default();
        for (ssrc, seq) in [(1, 65_535), (1, 0), (1, 0), (1, 9), (2, 0)] {
            sent.observe(&packet(ssrc, seq));
        }
        for (ssrc, seq) in [(1, 0), (1, 65_535), (2, 0)] {
            received.observe(&packet(ssrc, seq));
        }
        received.observe(b"short");
        assert_eq!(received.lost_of(&sent), 1);
    }
}
