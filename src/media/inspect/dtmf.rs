//! The relay's packet inspector: one RFC 4733 decoder per sending leg of a media stream, fed the
//! relayed packets in place. Digits leave through the inspector's event callback.
//!
//! With a binding digit configured (metaflow `suppress_dtmf`), it also withholds a leg's
//! telephone-events from the binding digit until the metaflow decides (see `suppress`), and
//! delivers released digits late as synthesized events (see `synth`), keeping the sequence
//! numbers the receiver sees gap-free.

use std::sync::Arc;

use tracing::debug;

use crate::base::CallKey;
use crate::base::Leg;
use crate::media::{
    Injection, InspectorConfig, InspectorEvent, InspectorFactory, PacketInspector, Verdict,
};

use crate::dtmf::{DtmfDecoder, DtmfEvent, EventConfig, InbandDetector, InbandEvent};
use crate::media::playout::G711Map;
use crate::media::prefetch::prefetch;
use crate::rtp::RtpView;

use super::suppress::Suppression;
use crate::dtmf::synth::{DEFAULT_TONE_US, EventInjector, InjectedStream, PACKET_LEN, digit_event};

/// Everything kept about the packets one leg sends.
#[derive(Debug)]
struct SendingLeg {
    decoder: DtmfDecoder,
    suppression: Suppression,
    injector: EventInjector,
    /// The tone detector of the leg's audio and the stream's G.711 payload types, while the
    /// metaflows ask for in-band detection on this leg (boxed: most legs never have one).
    inband: Option<(Box<InbandDetector>, G711Map)>,
}

/// In-band events one packet can produce at most (an end and a start, with room to spare).
const INBAND_EVENTS_PER_PACKET: usize = 4;

impl SendingLeg {
    /// A leg whose fallback SSRC and timestamp (for synthesized events) come from `rng`.
    fn new(rng: &mut fastrand::Rng) -> Self {
        SendingLeg {
            decoder: DtmfDecoder::new(None),
            suppression: Suppression::new(rng.u32(..), rng.u32(..)),
            injector: EventInjector::default(),
            inband: None,
        }
    }

    /// Listens for tones in the audio packet `packet` (its payload type, timestamp, SSRC and
    /// payload range from `parts`): reports digits like RFC 4733 ones (also to the suppression,
    /// so a tone binding digit starts withholding), and while a code is being withheld replaces
    /// the payload with silence.
    fn inband(
        &mut self,
        leg: Leg,
        packet: &mut [u8],
        parts: AudioParts,
        now_us: u64,
        out: &mut dyn FnMut(InspectorEvent),
    ) {
        let Some((detector, map)) = self.inband.as_mut() else {
            return;
        };
        let Some(law) = map.law(parts.payload_type) else {
            return;
        };
        let Some(payload) = packet.get_mut(parts.payload.clone()) else {
            return;
        };
        let mut found = [None; INBAND_EVENTS_PER_PACKET];
        let mut count = 0;
        detector.feed(law, payload, parts.timestamp, &mut |event| {
            if let Some(slot) = found.get_mut(count) {
                *slot = Some(event);
                count += 1;
            }
        });
        for event in found.into_iter().flatten() {
            let (decoded, relayed) = match event {
                InbandEvent::Started { digit, rtp_ts } => (
                    DtmfEvent::Started {
                        digit,
                        ssrc: parts.ssrc,
                        rtp_timestamp: rtp_ts,
                        at_us: now_us,
                    },
                    InspectorEvent::InbandDigit {
                        leg,
                        digit,
                        at_us: now_us,
                    },
                ),
                InbandEvent::Ended { digit, duration_ms } => (
                    DtmfEvent::Ended {
                        digit,
                        ssrc: parts.ssrc,
                        rtp_timestamp: parts.timestamp,
                        duration_ms,
                        at_us: now_us,
                        timed_out: false,
                    },
                    InspectorEvent::DigitEnded {
                        leg,
                        digit,
                        duration_ms,
                    },
                ),
            };
            self.suppression.observe(&decoded, now_us);
            out(relayed);
        }
        // While a code is being collected, the leg's audio goes on as silence: its later tones
        // would otherwise leak for the ~40 ms each takes to be recognised.
        if self.suppression.is_holding() {
            payload.fill(law.silence());
        }
    }

    /// Passes a decoder event to the suppression state and to the relay.
    fn report(
        &mut self,
        leg: Leg,
        event: DtmfEvent,
        now_us: u64,
        out: &mut dyn FnMut(InspectorEvent),
    ) {
        self.suppression.observe(&event, now_us);
        emit(leg, event, out);
    }

    /// Runs the decoder's due timers (an event whose end packets were lost, a press that one
    /// packet both ended and restarted).
    fn drain_due(&mut self, leg: Leg, now_us: u64, out: &mut dyn FnMut(InspectorEvent)) {
        while let Some(due) = self.decoder.poll_timeout().filter(|due| *due <= now_us) {
            match self.decoder.on_timeout(due.max(now_us)) {
                Some(event) => self.report(leg, event, now_us, out),
                None => break,
            }
        }
    }
}

/// Where an RTP packet's fields and payload are, read once so the packet can then be changed.
#[derive(Debug, Clone)]
struct AudioParts {
    payload_type: u8,
    timestamp: u32,
    ssrc: u32,
    payload: std::ops::Range<usize>,
}

/// Decodes telephone-events of both directions of one stream, withholds and re-delivers them in
/// suppression mode. Fixed size, no heap, no lock.
#[derive(Debug)]
pub struct DtmfInspector {
    from_a: SendingLeg,
    from_b: SendingLeg,
}

impl Default for DtmfInspector {
    fn default() -> Self {
        DtmfInspector::with_rng(&mut fastrand::Rng::new())
    }
}

impl DtmfInspector {
    /// An inspector whose random values (the SSRC and timestamp of synthesized events) come from
    /// `rng`.
    pub fn with_rng(rng: &mut fastrand::Rng) -> Self {
        DtmfInspector {
            from_a: SendingLeg::new(rng),
            from_b: SendingLeg::new(rng),
        }
    }

    /// A factory for the media engine: every stream gets its own inspector.
    pub fn factory() -> InspectorFactory {
        Arc::new(|_call: CallKey, _stream: usize| {
            Box::new(DtmfInspector::default()) as Box<dyn PacketInspector>
        })
    }

    fn leg(&self, leg: Leg) -> &SendingLeg {
        match leg {
            Leg::A => &self.from_a,
            Leg::B => &self.from_b,
        }
    }

    fn leg_mut(&mut self, leg: Leg) -> &mut SendingLeg {
        match leg {
            Leg::A => &mut self.from_a,
            Leg::B => &mut self.from_b,
        }
    }
}

/// Turns a decoder event into the relay's event type.
fn emit(leg: Leg, event: DtmfEvent, out: &mut dyn FnMut(InspectorEvent)) {
    match event {
        DtmfEvent::Started { digit, at_us, .. } => out(InspectorEvent::Digit { leg, digit, at_us }),
        DtmfEvent::Ended {
            digit, duration_ms, ..
        } => out(InspectorEvent::DigitEnded {
            leg,
            digit,
            duration_ms,
        }),
    }
}

impl PacketInspector for DtmfInspector {
    fn inspect(
        &mut self,
        from: Leg,
        packet: &mut [u8],
        now_us: u64,
        out: &mut dyn FnMut(InspectorEvent),
    ) -> Verdict {
        let sender = self.leg_mut(from);
        let Ok(view) = RtpView::parse(packet) else {
            return Verdict::Forward;
        };
        let header = (view.sequence(), view.timestamp(), view.ssrc());
        let is_event = sender
            .decoder
            .config()
            .is_some_and(|cfg| cfg.payload_type == view.payload_type());
        let parts = AudioParts {
            payload_type: view.payload_type(),
            timestamp: view.timestamp(),
            ssrc: view.ssrc(),
            payload: view.header_len()..view.header_len() + view.payload().len(),
        };
        if let Some(event) = sender.decoder.on_packet(&view, now_us) {
            sender.report(from, event, now_us, out);
        }
        sender.drain_due(from, now_us, out);
        if !is_event {
            sender.inband(from, packet, parts, now_us, out);
        }
        if sender.suppression.withholds(header, is_event, now_us) {
            return Verdict::Drop;
        }
        sender
            .suppression
            .forwarded(packet, header, is_event, now_us);
        Verdict::Forward
    }

    fn on_tick(&mut self, now_us: u64, out: &mut dyn FnMut(InspectorEvent)) {
        for leg in [Leg::A, Leg::B] {
            let sender = self.leg_mut(leg);
            sender.drain_due(leg, now_us, out);
            sender.suppression.on_tick(now_us);
        }
    }

    fn configure(&mut self, from: Leg, cfg: InspectorConfig) {
        let event = cfg
            .event_payload_type
            .map(|(payload_type, clock_rate)| EventConfig {
                payload_type,
                clock_rate,
            });
        let sender = self.leg_mut(from);
        sender.decoder.set_config(event);
        sender.suppression.set_binding(cfg.suppress_binding);
        sender.inband = match (cfg.inband, sender.inband.take()) {
            (Some(map), Some((detector, _))) => Some((detector, map)),
            (Some(map), None) => Some((Box::new(InbandDetector::new()), map)),
            (None, _) => None,
        };
    }

    fn discard_held(&mut self, from: Leg) {
        self.leg_mut(from).suppression.discard();
    }

    fn seq_offset(&self, from: Leg) -> u16 {
        self.leg(from).suppression.seq_offset()
    }

    fn forwarded_elsewhere(&mut self, from: Leg, header: (u16, u32, u32), at_us: u64) {
        self.leg_mut(from)
            .suppression
            .forwarded_elsewhere(header, at_us);
    }

    fn release_held(&mut self, from: Leg, digits: &str, now_us: u64) {
        // The receiving leg expects the payload type it negotiated for its own events.
        let receiver_cfg = self.leg(from.other()).decoder.config();
        let sender = self.leg_mut(from);
        let held = sender.suppression.release();
        let Some(cfg) = receiver_cfg.or(sender.decoder.config()) else {
            debug!(
                ?from,
                "no telephone-event negotiated on this stream; digits not delivered"
            );
            return;
        };
        let stream = InjectedStream {
            payload_type: cfg.payload_type,
            clock_rate: cfg.clock_rate,
            ssrc: sender.suppression.ssrc(),
        };
        // Each digit keeps its original press length when it is the one that was held.
        let mut held_presses = held.as_slice().iter();
        let tones = digits.chars().filter_map(|digit| {
            let original_ms = held_presses
                .next()
                .filter(|held| held.digit == digit && held.duration_ms > 0)
                .map(|held| held.duration_ms);
            let event = digit_event(digit)?;
            let duration_us = original_ms.map_or(DEFAULT_TONE_US, |ms| u64::from(ms) * 1000);
            Some((event, duration_us))
        });
        sender.injector.enqueue(stream, tones, now_us);
    }

    fn prefetch(&self, from: Leg) {
        let (sender, other) = match from {
            Leg::A => (&self.from_a, &self.from_b),
            Leg::B => (&self.from_b, &self.from_a),
        };
        prefetch(&sender.decoder);
        prefetch(&sender.suppression);
        prefetch(&sender.injector);
        // The relay asks when the next injection is due after every packet.
        prefetch(&other.injector);
    }

    fn next_injection_us(&self) -> Option<u64> {
        [&self.from_a, &self.from_b]
            .into_iter()
            .filter_map(|sender| sender.injector.due_us())
            .min()
    }

    fn take_injection(&mut self, now_us: u64, buf: &mut [u8]) -> Option<Injection> {
        if buf.len() < PACKET_LEN {
            return None;
        }
        for from in [Leg::A, Leg::B] {
            let sender = self.leg_mut(from);
            if !sender.injector.is_due(now_us) {
                continue;
            }
            let seq = sender.suppression.claim_injected_seq();
            let anchor = sender.suppression.anchor(now_us);
            if let Some(len) = sender.injector.write_due(now_us, seq, anchor, buf) {
                return Some(Injection { from, len });
            }
        }
        None
    }
}

#[cfg(test)]
#[path = "dtmf_tests.rs"]
mod tests;
