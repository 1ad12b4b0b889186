//! A party whose RTP the test itself is: a loopback socket that sends PCMA audio and RFC 4733
//! key presses, and counts what it hears from other parties. Parties are told apart by a tag at
//! the start of their audio payload, not by SSRC: the proxy renumbers relayed packets (SSRC
//! included) to continue the stream a sound it played started.

use std::net::UdpSocket;
use std::time::Duration;

/// One party's RTP stream.
pub struct RtpParty {
    socket: UdpSocket,
    /// Names the party in every packet it sends; listeners tell parties apart by it.
    pub ssrc: u32,
    seq: u16,
    ts: u32,
}

/// Starts the audio payload of every party, followed by its SSRC.
const TAG: &[u8] = b"PRTY";
/// Telephone-event payload type the scenarios declare.
const EVENT_PT: u8 = 101;

impl RtpParty {
    /// A party on a fresh loopback port, sending as `ssrc`.
    pub fn bind(ssrc: u32) -> RtpParty {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        RtpParty {
            socket,
            ssrc,
            seq: 0,
            ts: 0,
        }
    }

    /// The port the party receives on (to write into its SDP).
    pub fn port(&self) -> u16 {
        self.socket.local_addr().unwrap().port()
    }

    fn header(&mut self, pt: u8, marker: bool) -> Vec<u8> {
        let mut p = vec![0x80, pt | if marker { 0x80 } else { 0 }];
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&self.ts.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        p
    }

    /// Sends 20 ms of PCMA to the proxy's `port`: the party's tag, then silence.
    pub fn send_audio(&mut self, port: u16) {
        let mut p = self.header(8, false);
        p.extend_from_slice(TAG);
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        p.extend(std::iter::repeat_n(0xD5u8, 160 - TAG.len() - 4));
        self.ts = self.ts.wrapping_add(160);
        self.socket.send_to(&p, ("127.0.0.1", port)).unwrap();
    }

    /// Presses `digit` (0-9, *, #) as RFC 4733 events towards the proxy's `port`: three
    /// updates and three end packets, 20 ms apart, then 100 ms of quiet.
    pub fn press(&mut self, port: u16, digit: char) {
        let event = match digit {
            '*' => 10,
            '#' => 11,
            d => d.to_digit(10).unwrap() as u8,
        };
        for n in 1..=6u16 {
            let end = n > 3;
            let duration = 160 * n.min(4);
            let mut p = self.header(EVENT_PT, n == 1);
            p.extend_from_slice(&[event, if end { 0x80 | 10 } else { 10 }]);
            p.extend_from_slice(&duration.to_be_bytes());
            self.socket.send_to(&p, ("127.0.0.1", port)).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        self.ts = self.ts.wrapping_add(160 * 10);
        std::thread::sleep(Duration::from_millis(100));
    }

    /// Counts the packets waiting that carry the audio of one of the parties whose SSRC is in
    /// `from` (per entry), dropping the rest.
    pub fn heard(&self, from: &[u32]) -> Vec<usize> {
        let mut counts = vec![0; from.len()];
        let mut buf = [0u8; 2048];
        while let Ok(len) = self.socket.recv(&mut buf) {
            let payload = buf[..len].get(12..20);
            let ssrc = payload
                .filter(|p| p.starts_with(TAG))
                .map(|p| u32::from_be_bytes([p[4], p[5], p[6], p[7]]));
            if let Some(i) = from.iter().position(|f| Some(*f) == ssrc) {
                counts[i] += 1;
            }
        }
        counts
    }

    /// Forgets what waits on the socket.
    pub fn clear(&self) {
        let _ = self.heard(&[]);
    }
}

/// 25 packets each way, 20 ms apart: `a` sends to the proxy's `a_to`, `b` to `b_to`. Returns
/// how many of `a`'s reached `b` and of `b`'s reached `a`; `bystanders` count what they heard of
/// either (their totals come last).
pub fn exchange(
    a: &mut RtpParty,
    a_to: u16,
    b: &mut RtpParty,
    b_to: u16,
    bystanders: &[&RtpParty],
) -> (usize, usize, usize) {
    a.clear();
    b.clear();
    for party in bystanders {
        party.clear();
    }
    let (mut b_heard, mut a_heard, mut overheard) = (0, 0, 0);
    let mut listen = |a: &RtpParty, b: &RtpParty| {
        b_heard += b.heard(&[a.ssrc])[0];
        a_heard += a.heard(&[b.ssrc])[0];
        for party in bystanders {
            overheard += party.heard(&[a.ssrc, b.ssrc]).iter().sum::<usize>();
        }
    };
    for _ in 0..25 {
        a.send_audio(a_to);
        b.send_audio(b_to);
        std::thread::sleep(Duration::from_millis(20));
        listen(a, b);
    }
    std::thread::sleep(Duration::from_millis(100));
    listen(a, b);
    (b_heard, a_heard, overheard)
}
