//! One RTP stream per direction, whoever speaks: the relayed packets and the proxy's own are
//! numbered as one stream, so a phone sees no sequence gap, no timestamp jump backwards and no
//! new SSRC when a sound starts or stops.
//!
//! Until the proxy sends a packet of its own, relayed packets pass unchanged (only their header
//! is noted: a few loads per packet). The proxy's packets continue the last relayed one: same
//! SSRC, next sequence number, timestamp advanced by the time that passed. When relayed packets
//! resume, a shift is computed once (sequence, timestamp, SSRC) that makes the first of them
//! follow the proxy's last packet, with the marker bit set for the new talk spurt; every later
//! relayed packet gets the same shift. The DTMF suppression shifts sequence numbers before
//! this, for the packets it withholds; this shift composes with it.

/// RTP clock of the audio the proxy speaks (G.711).
const CLOCK_RATE: u64 = 8000;

/// The header of the last packet sent towards the leg, after any rewriting.
#[derive(Clone, Copy, Debug)]
struct Sent {
    ssrc: u32,
    seq: u16,
    ts: u32,
    /// Engine clock when it was sent, to advance the timestamp by the time that passed.
    at_us: u64,
    /// Whether the proxy made it (the next own packet then simply follows it).
    own: bool,
}

/// What is added to every relayed packet once the proxy's packets were interleaved.
#[derive(Clone, Copy, Debug)]
struct Shift {
    /// The relayed SSRC the shift was computed for: a new one (the sender restarted) needs a
    /// new shift.
    from_ssrc: u32,
    /// The SSRC written instead.
    ssrc: u32,
    seq: u16,
    ts: u32,
}

/// The rewrite relayed packets of SSRC `from_ssrc` get to continue the stream towards a leg:
/// handed to the kernel path, which applies it itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StreamShift {
    /// The relayed SSRC it applies to; another SSRC needs a new shift (userspace).
    pub(crate) from_ssrc: u32,
    /// The SSRC written instead.
    pub(crate) ssrc: u32,
    /// Added to the sequence number.
    pub(crate) seq: u16,
    /// Added to the timestamp.
    pub(crate) ts: u32,
}

/// Header bookkeeping of the media towards one leg.
#[derive(Debug)]
pub(crate) struct Continuity {
    /// `None` until a packet went towards the leg.
    last: Option<Sent>,
    /// `None` until the proxy's own packets were interleaved with relayed ones.
    shift: Option<Shift>,
    /// Values for a stream the proxy starts itself (nothing relayed yet): SSRC, first sequence
    /// number and timestamp, from the engine's RNG.
    fresh: (u32, u16, u32),
}

impl Continuity {
    /// `random` seeds the SSRC, sequence and timestamp of a stream the proxy would start.
    pub(crate) fn new(random: u64) -> Self {
        Self {
            last: None,
            shift: None,
            fresh: (
                (random >> 32) as u32,
                (random >> 16) as u16,
                (random as u32) & 0xffff_0000,
            ),
        }
    }

    /// A relayed packet (a valid RTP header of at least 12 bytes) about to be sent at `now_us`:
    /// shifted in place when needed, and noted.
    pub(crate) fn relayed(&mut self, packet: &mut [u8], now_us: u64) {
        let Some((ssrc, seq, ts)) = read_header(packet) else {
            return;
        };
        let resume = self.last.is_some_and(|l| l.own);
        let stale = self.shift.is_some_and(|s| s.from_ssrc != ssrc);
        if (resume || stale)
            && let Some(last) = self.last
        {
            let expected_ts = advance(last, now_us, 1);
            self.shift = Some(Shift {
                from_ssrc: ssrc,
                ssrc: last.ssrc,
                seq: last.seq.wrapping_add(1).wrapping_sub(seq),
                ts: expected_ts.wrapping_sub(ts),
            });
            set_marker(packet);
        }
        let (ssrc, seq, ts) = match self.shift {
            Some(shift) => {
                let out = (
                    shift.ssrc,
                    seq.wrapping_add(shift.seq),
                    ts.wrapping_add(shift.ts),
                );
                write_header(packet, out);
                out
            }
            None => (ssrc, seq, ts),
        };
        self.last = Some(Sent {
            ssrc,
            seq,
            ts,
            at_us: now_us,
            own: false,
        });
    }

    /// What the kernel path must do to relayed packets to send them as this direction does:
    /// `Some(None)` when they leave exactly as they came (no own packet was ever interleaved),
    /// `Some(Some(shift))` once relayed packets flow again after the proxy's own (the first of
    /// them, which carries the marker, went through here), `None` while the proxy's own
    /// packets are the last sent (the next relayed one needs a new shift computed here).
    pub(crate) fn kernel_shift(&self) -> Option<Option<StreamShift>> {
        match (self.shift, self.last) {
            (None, last) if last.is_none_or(|last| !last.own) => Some(None),
            (Some(shift), Some(last)) if !last.own => Some(Some(StreamShift {
                from_ssrc: shift.from_ssrc,
                ssrc: shift.ssrc,
                seq: shift.seq,
                ts: shift.ts,
            })),
            _ => None,
        }
    }

    /// Relayed packets went towards the leg without passing here (the kernel path, only while
    /// untouched); the last one's header, sent at `at_us`, is what the proxy's own continue.
    pub(crate) fn relayed_elsewhere(&mut self, header: (u32, u16, u32), at_us: u64) {
        if self.last.is_some_and(|last| last.at_us > at_us) {
            return;
        }
        let (ssrc, seq, ts) = header;
        self.last = Some(Sent {
            ssrc,
            seq,
            ts,
            at_us,
            own: false,
        });
    }

    /// The header of the proxy's next packet of `samples` samples, sent at `now_us`: (SSRC,
    /// sequence number, timestamp, marker).
    pub(crate) fn own(&mut self, now_us: u64, samples: u32) -> (u32, u16, u32, bool) {
        let (ssrc, seq, ts, marker) = match self.last {
            None => (self.fresh.0, self.fresh.1, self.fresh.2, true),
            Some(last) if last.own => (
                last.ssrc,
                last.seq.wrapping_add(1),
                last.ts.wrapping_add(samples),
                false,
            ),
            Some(last) => (
                last.ssrc,
                last.seq.wrapping_add(1),
                advance(last, now_us, samples),
                true,
            ),
        };
        self.last = Some(Sent {
            ssrc,
            seq,
            ts,
            at_us: now_us,
            own: true,
        });
        (ssrc, seq, ts, marker)
    }
}

/// The timestamp `now_us` stands at after `last`, at least `minimum` samples on.
fn advance(last: Sent, now_us: u64, minimum: u32) -> u32 {
    let elapsed = now_us.saturating_sub(last.at_us) * CLOCK_RATE / 1_000_000;
    let step = u32::try_from(elapsed).unwrap_or(u32::MAX).max(minimum);
    last.ts.wrapping_add(step)
}

fn read_header(packet: &[u8]) -> Option<(u32, u16, u32)> {
    let h: &[u8; 12] = packet.get(..12)?.try_into().ok()?;
    Some((
        u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        u16::from_be_bytes([h[2], h[3]]),
        u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
    ))
}

fn write_header(packet: &mut [u8], (ssrc, seq, ts): (u32, u16, u32)) {
    if let Some(h) = packet.get_mut(2..12) {
        h[..2].copy_from_slice(&seq.to_be_bytes());
        h[2..6].copy_from_slice(&ts.to_be_bytes());
        h[6..10].copy_from_slice(&ssrc.to_be_bytes());
    }
}

fn set_marker(packet: &mut [u8]) {
    if let Some(b) = packet.get_mut(1) {
        *b |= 0x80;
    }
}
