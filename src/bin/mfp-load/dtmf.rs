//! DTMF-to-action latency: every call presses `*` then `0` as RFC 4733 events on its caller
//! stream; the time from the first packet of `0` (the packet that completes the code) to the
//! proxy's BYE at the caller is the action latency.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Payload type offered for telephone-event.
const EVENT_PT: u8 = 101;
/// RFC 4733 event code of `*`.
const EVENT_STAR: u8 = 10;
/// RFC 4733 event code of `0`.
const EVENT_ZERO: u8 = 0;
/// Volume field of every event packet (-10 dBm0).
const VOLUME: u8 = 10;
/// Packet spacing within a press.
const STEP: Duration = Duration::from_millis(20);
/// Start of the `0` press after the start of the `*` press.
const SECOND_PRESS: Duration = Duration::from_millis(200);
/// RTP clock ticks per packet step at 8 kHz.
const TICKS_PER_STEP: u16 = 160;
/// Event packets per press: three growing durations, then the end packet three times.
const PACKETS_PER_PRESS: u16 = 6;

/// The caller stream a call's presses are sent on.
pub(crate) struct PressTarget {
    /// Call index.
    pub call: u32,
    /// The caller's RTP socket.
    pub socket: UdpSocket,
    /// The proxy's a-leg anchor.
    pub dest: SocketAddr,
    /// SSRC of the caller stream.
    pub ssrc: u32,
    /// Next RTP sequence number of the stream.
    pub rtp_seq: u16,
    /// Next RTP timestamp of the stream.
    pub rtp_timestamp: u32,
}

/// One scheduled event packet.
struct Scheduled {
    due: Instant,
    target: usize,
    packet: [u8; 16],
    completes_code: bool,
}

/// Builds the event packet number `n` (0-based) of one press.
fn event_packet(target: &PressTarget, seq: u16, event: u8, start_ts: u32, n: u16) -> [u8; 16] {
    let mut packet = [0u8; 16];
    let last_growing = PACKETS_PER_PRESS / 2 - 1;
    let ended = n > last_growing;
    let duration = TICKS_PER_STEP * (n.min(last_growing + 1) + 1);
    packet[0] = 0x80;
    packet[1] = EVENT_PT | if n == 0 { 0x80 } else { 0 };
    packet[2..4].copy_from_slice(&seq.to_be_bytes());
    packet[4..8].copy_from_slice(&start_ts.to_be_bytes());
    packet[8..12].copy_from_slice(&target.ssrc.to_be_bytes());
    packet[12] = event;
    packet[13] = if ended { 0x80 | VOLUME } else { VOLUME };
    packet[14..16].copy_from_slice(&duration.to_be_bytes());
    packet
}

/// Sends `*` then `0` on every target, calls started `rate` per second from `start`. Returns,
/// per target, when the code-completing packet (first of `0`) was sent.
pub(crate) fn press_star_zero(
    targets: &[PressTarget],
    rate: u32,
    start: Instant,
) -> Vec<Option<Instant>> {
    let gap = Duration::from_secs(1) / rate.max(1);
    let mut schedule = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        let base = start + gap * index as u32;
        let second_ts = target
            .rtp_timestamp
            .wrapping_add(8 * SECOND_PRESS.as_millis() as u32);
        let presses = [
            (EVENT_STAR, target.rtp_timestamp, Duration::ZERO),
            (EVENT_ZERO, second_ts, SECOND_PRESS),
        ];
        let mut seq = target.rtp_seq;
        for (event, start_ts, offset) in presses {
            for n in 0..PACKETS_PER_PRESS {
                schedule.push(Scheduled {
                    due: base + offset + STEP * u32::from(n),
                    target: index,
                    packet: event_packet(target, seq, event, start_ts, n),
                    completes_code: event == EVENT_ZERO && n == 0,
                });
                seq = seq.wrapping_add(1);
            }
        }
    }
    schedule.sort_by_key(|s| s.due);
    let mut completed = vec![None; targets.len()];
    for item in schedule {
        let now = Instant::now();
        if item.due > now {
            std::thread::sleep(item.due - now);
        }
        let Some(target) = targets.get(item.target) else {
            continue;
        };
        // Stamped before the send: the proxy's BYE may be read by another thread before this
        // one runs again.
        if let Some(slot) = completed
            .get_mut(item.target)
            .filter(|_| item.completes_code)
        {
            *slot = Some(Instant::now());
        }
        // After the proxy hung up, its port may be gone; later sends are allowed to fail.
        let _ = target.socket.send_to(&item.packet, target.dest);
    }
    completed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presses_are_marked_then_ended_three_times() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = PressTarget {
            call: 0,
            dest: socket.local_addr().unwrap(),
            socket,
            ssrc: 7,
            rtp_seq: 100,
            rtp_timestamp: 8000,
        };
        let packets: Vec<[u8; 16]> = (0..PACKETS_PER_PRESS)
            .map(|n| event_packet(&target, 100 + n, EVENT_STAR, 8000, n))
            .collect();
        assert_eq!(packets[0][1], 0x80 | EVENT_PT);
        assert_eq!(packets[1][1], EVENT_PT);
        let durations: Vec<u16> = packets
            .iter()
            .map(|p| u16::from_be_bytes([p[14], p[15]]))
            .collect();
        assert_eq!(durations, vec![160, 320, 480, 640, 640, 640]);
        let ends = packets.iter().filter(|p| p[13] & 0x80 != 0).count();
        assert_eq!(ends, 3);
        assert!(packets.iter().all(|p| p[12] == EVENT_STAR));
    }
}
