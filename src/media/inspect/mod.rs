//! Packet inspection on the relay path: the [`PacketInspector`] hook through which an inspector
//! sees relayed RTP, and the inspector the proxy ships ([`DtmfInspector`]: RFC 4733 decoding,
//! suppression of a code's digits and their late release).

mod dtmf;
mod suppress;

pub use dtmf::DtmfInspector;

use std::sync::Arc;

use crate::base::CallKey;
use crate::base::Leg;

/// Looks at every RTP packet of one stream in both directions, without copying it, and may stop
/// it from being forwarded or rewrite its header in place (DTMF suppression renumbers the
/// sequence so that the receiver sees no gap where events were withheld). It sees packets from
/// the latched source of each leg only, before the destination check, and never RTCP. One
/// instance per stream, owned by that stream's relay, so it needs no locking.
///
/// It may also produce packets of its own (late delivery of withheld digits): the relay asks
/// [`PacketInspector::next_injection_us`] when to wake up and then drains
/// [`PacketInspector::take_injection`], sending each packet towards the other leg.
pub trait PacketInspector: Send + 'static {
    /// `from` = the leg that sent the packet. Return whether to forward it. The packet may be
    /// modified in place; it is then forwarded as modified.
    fn inspect(
        &mut self,
        from: Leg,
        packet: &mut [u8],
        now_us: u64,
        out: &mut dyn FnMut(InspectorEvent),
    ) -> Verdict;
    /// Called periodically (about every 100 ms) so time-based events (e.g. a digit whose end
    /// packet was lost) can be emitted without packets arriving.
    fn on_tick(&mut self, now_us: u64, out: &mut dyn FnMut(InspectorEvent));
    /// Applies what the SDP of the sending leg negotiated (e.g. telephone-event PT and clock).
    fn configure(&mut self, from: Leg, cfg: InspectorConfig);
    /// The digits withheld from `from` formed a code: forget them and stop withholding. An
    /// inspector that never withholds ignores it.
    fn discard_held(&mut self, from: Leg) {
        let _ = from;
    }
    /// The digits withheld from `from` were not a code: stop withholding and deliver `digits`
    /// (in press order) to the other leg as packets of the inspector's own, from `now_us` on.
    /// An inspector that cannot synthesize packets ignores it.
    fn release_held(&mut self, from: Leg, digits: &str, now_us: u64) {
        let _ = (from, digits, now_us);
    }
    /// What the inspector adds to the sequence numbers of `from`'s packets it forwards (DTMF
    /// suppression closes the holes withheld packets leave): the kernel path applies the same
    /// to the packets it forwards without the inspector.
    fn seq_offset(&self, from: Leg) -> u16 {
        let _ = from;
        0
    }
    /// Packets of `from` were forwarded without the inspector (by the kernel path); `header`
    /// (sequence number as sent, timestamp, SSRC) is the last one's, sent at `at_us`, so that
    /// packets the inspector makes later continue that stream.
    fn forwarded_elsewhere(&mut self, from: Leg, header: (u16, u32, u32), at_us: u64) {
        let _ = (from, header, at_us);
    }
    /// A packet from `from` is about to be received: start loading into cache what
    /// [`PacketInspector::inspect`] will read for it (the relay asks before its receive system
    /// call, which hides the loads). Optional: a hint only.
    fn prefetch(&self, from: Leg) {
        let _ = from;
    }
    /// When (engine clock, microseconds) the next synthesized packet is due, if one is pending.
    fn next_injection_us(&self) -> Option<u64> {
        None
    }
    /// Writes the next synthesized packet due at `now_us` into `buf` and says which leg it
    /// speaks for; `None` when nothing is due (or `buf` is too small).
    fn take_injection(&mut self, now_us: u64, buf: &mut [u8]) -> Option<Injection> {
        let _ = (now_us, buf);
        None
    }
}

/// A packet an inspector synthesized, ready in the buffer passed to
/// [`PacketInspector::take_injection`]: the relay sends it towards the other leg of `from`, from
/// the socket that leg receives `from`'s media on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Injection {
    /// The leg whose stream the packet continues (its SSRC and sequence space).
    pub from: Leg,
    /// Length of the packet at the start of the buffer.
    pub len: usize,
}

/// What the relay should do with an inspected packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Relay the packet unchanged.
    Forward,
    /// Swallow the packet (e.g. a telephone-event that must not reach the other leg).
    Drop,
}

/// Per sending leg settings for the inspector, taken from that leg's SDP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InspectorConfig {
    /// RTP payload type and clock rate of `telephone-event`, when the leg offered it.
    pub event_payload_type: Option<(u8, u32)>,
    /// Suppression mode (metaflow `suppress_dtmf`): the binding digit whose press from this leg
    /// starts withholding its telephone-events from the other leg; `None` never withholds.
    pub suppress_binding: Option<char>,
    /// Listen for DTMF tones in this leg's G.711 audio (metaflow `inband_dtmf`), with the
    /// stream's G.711 payload types; `None` does not.
    pub inband: Option<crate::media::playout::G711Map>,
}

/// Something an inspector noticed, passed on to the application through `MediaEvent::Inspector`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InspectorEvent {
    /// A telephone-event digit started on `leg` at `at_us` (engine clock, microseconds).
    Digit {
        /// Leg that sent the digit.
        leg: Leg,
        /// The digit: `0`-`9`, `*`, `#`, `A`-`D`.
        digit: char,
        /// Engine clock time of the first packet of the digit, in microseconds.
        at_us: u64,
    },
    /// A DTMF tone pair was recognised in `leg`'s audio (in-band), at `at_us` (engine clock).
    InbandDigit {
        /// Leg that sent the tone.
        leg: Leg,
        /// The digit: `0`-`9`, `*`, `#`, `A`-`D`.
        digit: char,
        /// Engine clock time of the packet that completed the recognition, in microseconds.
        at_us: u64,
    },
    /// A telephone-event digit (or an in-band tone) ended on `leg` after `duration_ms`.
    DigitEnded {
        /// Leg that sent the digit.
        leg: Leg,
        /// The digit that ended.
        digit: char,
        /// How long the digit lasted, in milliseconds.
        duration_ms: u32,
    },
}

/// Builds the inspector of a new stream from its call and m= line index.
pub type InspectorFactory = Arc<dyn Fn(CallKey, usize) -> Box<dyn PacketInspector> + Send + Sync>;
