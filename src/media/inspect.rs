//! Hook through which a packet inspector (the telephone-event decoder) sees relayed RTP.

use std::sync::Arc;

use crate::media::CallKey;
use crate::metaflow::Leg;

/// Looks at every RTP packet of one stream in both directions, without copying it, and may stop
/// it from being forwarded. It sees packets from the latched source of each leg only, before the
/// destination check, and never RTCP. One instance per stream, owned by that stream's relay
/// task, so it needs no locking.
pub trait PacketInspector: Send + 'static {
    /// `from` = the leg that sent the packet. Return whether to forward it.
    fn inspect(
        &mut self,
        from: Leg,
        packet: &[u8],
        now_us: u64,
        out: &mut dyn FnMut(InspectorEvent),
    ) -> Verdict;
    /// Called periodically (about every 100 ms) so time-based events (e.g. a digit whose end
    /// packet was lost) can be emitted without packets arriving.
    fn on_tick(&mut self, now_us: u64, out: &mut dyn FnMut(InspectorEvent));
    /// Applies what the SDP of the sending leg negotiated (e.g. telephone-event PT and clock).
    fn configure(&mut self, from: Leg, cfg: InspectorConfig);
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
    /// A telephone-event digit ended on `leg` after `duration_ms`.
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
