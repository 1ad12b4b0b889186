//! The RTP side of the replay: one socket per side, packets sent exactly as captured (only the
//! addresses change), packets from the proxy counted.

use std::collections::{HashMap, HashSet};
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
    /// Sequence numbers received per side, for the loss in sequence.
    pub sequences: (SeqTracker, SeqTracker),
}

/// Sequence numbers seen per SSRC, extended past wrap-around, to count the numbers that never
/// arrived between the lowest and the highest of each stream.
#[derive(Debug, Default)]
pub(super) struct SeqTracker {
    streams: HashMap<u32, (u64, HashSet<u64>)>,
}

impl SeqTracker {
    /// Notes one received RTP packet; anything shorter than an RTP header is ignored.
    pub(super) fn observe(&mut self, packet: &[u8]) {
        let Ok(view) = RtpView::parse(packet) else {
            return;
        };
        let seq = u64::from(view.sequence());
        let (last, seen) = self
            .streams
            .entry(view.ssrc())
            .or_insert_with(|| (seq + (1 << 16), HashSet::new()));
        let mut ext = (*last & !0xFFFF) | seq;
        if ext + (1 << 15) < *last {
            ext += 1 << 16;
        } else if ext > *last + (1 << 15) && ext >= 1 << 16 {
            ext -= 1 << 16;
        }
        *last = (*last).max(ext);
        seen.insert(ext);
    }

    /// Numbers missing between each stream's lowest and highest received one, summed.
    pub(super) fn lost(&self) -> u64 {
        self.streams
            .values()
            .map(|(_, seen)| {
                let low = seen.iter().min().copied().unwrap_or(0);
                let high = seen.iter().max().copied().unwrap_or(0);
                (high - low + 1).saturating_sub(seen.len() as u64)
            })
            .sum()
    }
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
            sequences: (SeqTracker::default(), SeqTracker::default()),
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
                if let Ok((n, _)) = r && n >= 12 {
                    self.received.0 += 1;
                    self.sequences.0.observe(a.get(..n).unwrap_or_default());
                }
                Side::Caller
            }
            r = self.callee.recv_from(&mut b) => {
                if let Ok((n, _)) = r && n >= 12 {
                    self.received.1 += 1;
                    self.sequences.1.observe(b.get(..n).unwrap_or_default());
                }
                Side::Callee
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 7]);
        p
    }

    #[test]
    fn gaps_are_counted_across_wrap_around_and_duplicates_are_not() {
        let mut seqs = SeqTracker::default();
        for seq in [65_533, 65_534, 65_534, 0, 2, 1, 4] {
            seqs.observe(&packet(seq));
        }
        // 65533..=4 is 8 numbers; 65535 and 3 never came.
        assert_eq!(seqs.lost(), 2);
        seqs.observe(b"short");
        assert_eq!(seqs.lost(), 2);
    }
}
