//! The measured media: G.711-sized RTP packets carrying a send timestamp and sequence, paced per
//! stream at 50 packets per second by a few sender threads walking deadlines in order.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::tally::{Direction, Path, Tally};

/// RTP header length.
pub(crate) const HEADER_LEN: usize = 12;
/// A 20 ms G.711 payload.
pub(crate) const PAYLOAD_LEN: usize = 160;
/// Whole packet length.
pub(crate) const PACKET_LEN: usize = HEADER_LEN + PAYLOAD_LEN;
/// Packet interval of one stream (50 packets per second).
pub(crate) const PACKET_INTERVAL: Duration = Duration::from_millis(20);
/// RTP timestamp increment per packet at 8 kHz.
const SAMPLES_PER_PACKET: u32 = 160;
/// Payload type of PCMA.
pub(crate) const PCMA: u8 = 8;
/// Marks the payload as ours, so stray packets are never counted.
const MAGIC: &[u8; 4] = b"MFPL";
/// Seed of the shuffle that deals the streams' phases (fixed: every run sends alike).
const PHASE_SEED: u64 = 0x6d66_705f_6c6f_6164;
/// A deadline closer than this is sent at once instead of sleeping.
pub(crate) const SLEEP_THRESHOLD: Duration = Duration::from_micros(200);
/// PCMA silence.
const SILENCE: u8 = 0xD5;

/// What a measurement packet says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Nanoseconds since the tool's start when the packet was handed to the kernel.
    pub sent_ns: u64,
    /// Index of the sending stream.
    pub stream: u32,
    /// Per-stream packet number.
    pub seq: u32,
}

/// Reads the stamp of a PCMA measurement packet; `None` for anything else.
pub(crate) fn read_stamp(packet: &[u8]) -> Option<Stamp> {
    let payload_type = packet.get(1)? & 0x7f;
    if payload_type != PCMA || packet.get(HEADER_LEN..HEADER_LEN + 4)? != MAGIC {
        return None;
    }
    let field = |at: usize, len: usize| packet.get(HEADER_LEN + at..HEADER_LEN + at + len);
    Some(Stamp {
        sent_ns: u64::from_be_bytes(field(4, 8)?.try_into().ok()?),
        stream: u32::from_be_bytes(field(12, 4)?.try_into().ok()?),
        seq: u32::from_be_bytes(field(16, 4)?.try_into().ok()?),
    })
}

/// One paced RTP stream: a socket and where it sends.
pub(crate) struct SendStream {
    /// Stream index, also its SSRC and the index into the tally's stream table.
    pub id: u32,
    /// The call it belongs to (`None` for direct baseline pairs).
    pub call: Option<u32>,
    /// Sending socket (bound to the endpoint the SDP announced).
    pub socket: UdpSocket,
    /// The socket's group: streams of one group share the socket (`--shared-endpoints`).
    pub group: u32,
    /// Destination: the proxy's anchor, or the other endpoint for direct pairs.
    pub dest: SocketAddr,
    /// Path and direction, for the tally.
    pub path: Path,
    /// Direction, for the tally.
    pub direction: Direction,
    /// Next RTP sequence number.
    pub rtp_seq: u16,
    /// Next RTP timestamp.
    pub rtp_timestamp: u32,
    /// Packets sent so far.
    pub sent: u32,
}

impl SendStream {
    /// Writes the next packet of this stream into `packet`, stamped with `sent_ns`.
    pub(crate) fn fill(&self, packet: &mut [u8; PACKET_LEN], sent_ns: u64) {
        packet.fill(SILENCE);
        packet[0] = 0x80;
        packet[1] = PCMA;
        packet[2..4].copy_from_slice(&self.rtp_seq.to_be_bytes());
        packet[4..8].copy_from_slice(&self.rtp_timestamp.to_be_bytes());
        packet[8..12].copy_from_slice(&self.id.to_be_bytes());
        packet[12..16].copy_from_slice(MAGIC);
        packet[16..24].copy_from_slice(&sent_ns.to_be_bytes());
        packet[24..28].copy_from_slice(&self.id.to_be_bytes());
        packet[28..32].copy_from_slice(&self.sent.to_be_bytes());
    }

    /// Advances sequence and timestamp after a packet went out.
    pub(crate) fn advance(&mut self) {
        self.rtp_seq = self.rtp_seq.wrapping_add(1);
        self.rtp_timestamp = self.rtp_timestamp.wrapping_add(SAMPLES_PER_PACKET);
        self.sent = self.sent.wrapping_add(1);
    }
}

/// Shared timing of a media phase.
#[derive(Clone)]
pub(crate) struct Pacing {
    /// The tool's clock origin for send stamps.
    pub epoch: Instant,
    /// When the first stream's first packet is due.
    pub start: Instant,
    /// Packets per stream.
    pub packets: u32,
}

/// Spreads `streams` over `threads` sender threads with phases evenly spaced over one packet
/// interval, and starts them; `batched` sends with `sendmmsg` per shared socket. Each thread
/// returns its streams when done.
///
/// The phases are dealt out in a shuffled (seeded, so repeatable) order, not in stream order:
/// real calls start at unrelated moments, so a stream's phase says nothing of when its call
/// was set up or which path it takes. Phases in stream order sent every proxied stream in the
/// first part of each interval and the direct pairs in the rest (each relay served its
/// packets in one burst per interval), and every group of consecutive calls (those a relay
/// puts on one thread) in a burst of its own.
pub(crate) fn start_senders(
    streams: Vec<SendStream>,
    threads: usize,
    batched: bool,
    pacing: &Pacing,
    tally: &Arc<Tally>,
) -> std::io::Result<Vec<JoinHandle<Vec<SendStream>>>> {
    let total = streams.len().max(1) as u32;
    let threads = threads.max(1);
    let mut shares: Vec<Vec<(Duration, SendStream)>> = (0..threads).map(|_| Vec::new()).collect();
    let slots = phase_slots(total);
    for (position, stream) in streams.into_iter().enumerate() {
        let slot = slots.get(position).copied().unwrap_or(0);
        let phase = PACKET_INTERVAL * slot / total;
        // By position, as before the phases were shuffled: with two threads one sends every
        // a→b stream and the other every b→a one, so each socket (and each shared socket's
        // batch) has one writer.
        if let Some(share) = shares.get_mut(position % threads) {
            share.push((phase, stream));
        }
    }
    for share in &mut shares {
        share.sort_by_key(|(phase, _)| *phase);
    }
    shares
        .into_iter()
        .enumerate()
        .map(|(n, share)| {
            let pacing = pacing.clone();
            let tally = Arc::clone(tally);
            std::thread::Builder::new()
                .name(format!("rtp-send-{n}"))
                .spawn(move || {
                    if batched {
                        crate::batched_sender::send_paced(share, &pacing, &tally)
                    } else {
                        send_paced(share, &pacing, &tally)
                    }
                })
        })
        .collect()
}

/// The phase slot (of `total` evenly spaced in the packet interval) of each stream, in stream
/// order: every slot once, shuffled with [`PHASE_SEED`].
fn phase_slots(total: u32) -> Vec<u32> {
    let mut slots: Vec<u32> = (0..total).collect();
    fastrand::Rng::with_seed(PHASE_SEED).shuffle(&mut slots);
    slots
}

/// Sends every stream's packets at their deadlines; the share is sorted by phase, so walking
/// it in order for each round visits deadlines in time order.
fn send_paced(
    mut share: Vec<(Duration, SendStream)>,
    pacing: &Pacing,
    tally: &Tally,
) -> Vec<SendStream> {
    let mut packet = [0u8; PACKET_LEN];
    for round in 0..pacing.packets {
        let round_start = pacing.start + PACKET_INTERVAL * round;
        for (phase, stream) in &mut share {
            let deadline = round_start + *phase;
            let now = Instant::now();
            if deadline > now + SLEEP_THRESHOLD {
                std::thread::sleep(deadline - now);
            }
            let sent_ns = pacing.epoch.elapsed().as_nanos() as u64;
            stream.fill(&mut packet, sent_ns);
            match stream.socket.send_to(&packet, stream.dest) {
                Ok(_) => tally.count_sent(stream.path, stream.direction),
                Err(_) => tally.count_send_error(),
            }
            stream.advance();
        }
    }
    share.into_iter().map(|(_, stream)| stream).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_every_slot_once_shuffled_and_repeatable() {
        let slots = phase_slots(1000);
        let mut sorted = slots.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<u32>>());
        assert_eq!(slots, phase_slots(1000));
        // Consecutive streams (consecutive calls) are not neighbours in the interval.
        let neighbours = slots
            .windows(2)
            .filter(|pair| pair[0].abs_diff(pair[1]) == 1)
            .count();
        assert!(
            neighbours < 20,
            "{neighbours} consecutive pairs kept adjacent phases"
        );
    }

    #[test]
    fn stamps_survive_the_packet_layout() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let stream = SendStream {
            id: 42,
            call: Some(3),
            dest: socket.local_addr().unwrap(),
            socket,
            group: 0,
            path: Path::Proxied,
            direction: Direction::AToB,
            rtp_seq: 9,
            rtp_timestamp: 160,
            sent: 5,
        };
        let mut packet = [0u8; PACKET_LEN];
        stream.fill(&mut packet, 123_456_789);
        let stamp = read_stamp(&packet).unwrap();
        assert_eq!(
            stamp,
            Stamp {
                sent_ns: 123_456_789,
                stream: 42,
                seq: 5
            }
        );
        packet[1] = 101;
        assert_eq!(read_stamp(&packet), None);
        assert_eq!(read_stamp(&packet[..20]), None);
    }
}
