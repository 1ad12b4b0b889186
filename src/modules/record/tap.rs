//! The relay's side of a recording: a cheap, cloneable handle that copies packets into a bounded
//! queue without ever waiting, allocating per packet or logging.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use crate::base::Leg;

use crate::media::{PacketKind, PacketTap};

use super::types::StopReason;

/// Largest packet a queue slot holds; bigger packets are dropped and counted.
pub const SLOT_BYTES: usize = 1536;
/// Packets that may wait for the writer (about 5 s of both legs at 20 ms) before drops start.
pub const QUEUE_PACKETS: usize = 512;

/// One copied packet, stored by value so the queue's recycled slots hold it without allocation.
#[derive(Clone, Debug)]
pub(crate) struct TappedPacket {
    /// Leg the packet arrived from.
    pub leg: Leg,
    /// RTP or RTCP.
    pub kind: PacketKind,
    /// Sender as seen by the proxy.
    pub src: SocketAddr,
    /// Receiver (the proxy socket).
    pub dst: SocketAddr,
    /// Arrival time on the relay's monotonic clock, microseconds.
    pub arrival_us: u64,
    len: u16,
    bytes: [u8; SLOT_BYTES],
}

impl TappedPacket {
    /// Copies `packet`; `None` when it does not fit a slot.
    pub(crate) fn copy_of(
        leg: Leg,
        kind: PacketKind,
        src: SocketAddr,
        dst: SocketAddr,
        packet: &[u8],
        arrival_us: u64,
    ) -> Option<Self> {
        let len = u16::try_from(packet.len()).ok()?;
        let mut bytes = [0u8; SLOT_BYTES];
        bytes.get_mut(..packet.len())?.copy_from_slice(packet);
        Some(Self {
            leg,
            kind,
            src,
            dst,
            arrival_us,
            len,
            bytes,
        })
    }

    /// The packet as it was offered.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

/// What travels from the taps and the handle to the writer, in order.
// The packet variant is large on purpose: boxing it would allocate on the relay path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Envelope {
    /// A copied packet.
    Packet(TappedPacket),
    /// Finish the file now.
    Stop(StopReason),
    /// PCI masking of `leg` begins (`masked`) or ends: the packets after this one in the queue
    /// are (or no longer are) written as silence. `at` dates the span in the sidecar.
    Mask {
        /// The leg whose audio is masked.
        leg: Leg,
        /// Whether masking begins or ends.
        masked: bool,
        /// When it was asked for.
        at: std::time::SystemTime,
    },
}

/// Hands copies of relayed packets to one recording. Clone it into each stream's relay.
#[derive(Clone, Debug)]
pub struct RecorderTap {
    queue: mpsc::Sender<Envelope>,
    dropped: Arc<AtomicU64>,
}

impl RecorderTap {
    pub(crate) fn new(queue: mpsc::Sender<Envelope>, dropped: Arc<AtomicU64>) -> Self {
        Self { queue, dropped }
    }

    /// Packets dropped so far (queue full or too big).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Whether the recording this tap feeds has ended; the relay may then forget the tap.
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    fn count_drop(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

impl PacketTap for RecorderTap {
    /// Offers a copy of one relayed packet. Never blocks: when the queue is full or the packet is
    /// too big for a slot, the packet is counted as dropped; after the recording has ended it is
    /// ignored.
    fn offer(
        &self,
        from: Leg,
        kind: PacketKind,
        src: SocketAddr,
        dst: SocketAddr,
        packet: &[u8],
        arrival_us: u64,
    ) {
        if packet.len() > SLOT_BYTES {
            self.count_drop();
            return;
        }
        let permit = match self.queue.try_reserve() {
            Ok(permit) => permit,
            Err(mpsc::error::TrySendError::Full(())) => {
                self.count_drop();
                return;
            }
            // The recording is over (time limit, stop): packets after its end are not losses.
            Err(mpsc::error::TrySendError::Closed(())) => return,
        };
        match TappedPacket::copy_of(from, kind, src, dst, packet, arrival_us) {
            Some(copy) => permit.send(Envelope::Packet(copy)),
            None => self.count_drop(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    #[test]
    fn full_queue_counts_drops_instead_of_waiting() {
        let (queue, mut receiver) = mpsc::channel(4);
        let tap = RecorderTap::new(queue, Arc::new(AtomicU64::new(0)));
        for n in 0..10u8 {
            tap.offer(
                Leg::A,
                PacketKind::Rtp,
                addr(1),
                addr(2),
                &[n; 20],
                u64::from(n),
            );
        }
        assert_eq!(tap.dropped(), 6);
        let mut kept = Vec::new();
        while let Ok(Envelope::Packet(packet)) = receiver.try_recv() {
            kept.push(packet.bytes()[0]);
        }
        assert_eq!(
            kept,
            vec![0, 1, 2, 3],
            "the first packets are kept, in order"
        );
    }

    #[test]
    fn oversized_packets_count_as_drops_and_closed_recordings_ignore_offers() {
        let (queue, receiver) = mpsc::channel(4);
        let tap = RecorderTap::new(queue, Arc::new(AtomicU64::new(0)));
        tap.offer(
            Leg::B,
            PacketKind::Rtcp,
            addr(1),
            addr(2),
            &[0; SLOT_BYTES + 1],
            0,
        );
        assert_eq!(tap.dropped(), 1);
        drop(receiver);
        assert!(tap.is_closed());
        tap.offer(Leg::B, PacketKind::Rtp, addr(1), addr(2), &[0; 12], 0);
        assert_eq!(
            tap.dropped(),
            1,
            "a packet after the end is not a loss of the recording"
        );
    }

    #[test]
    fn copies_keep_every_field() {
        let payload: Vec<u8> = (0..=255).collect();
        let copy = TappedPacket::copy_of(Leg::B, PacketKind::Rtcp, addr(5), addr(6), &payload, 42)
            .unwrap();
        assert_eq!(copy.bytes(), &payload[..]);
        assert_eq!(
            (copy.leg, copy.kind, copy.arrival_us),
            (Leg::B, PacketKind::Rtcp, 42)
        );
        assert_eq!((copy.src, copy.dst), (addr(5), addr(6)));
    }
}
