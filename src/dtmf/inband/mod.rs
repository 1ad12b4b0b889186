//! In-band DTMF (ITU-T Q.23 tones, Q.24 acceptance) detected in G.711 audio, for trunks that
//! send digits as sound instead of RFC 4733 events. Sans-IO: the relay feeds each packet's
//! payload with its RTP timestamp and gets `Started`/`Ended` events back.
//!
//! Goertzel filters (`goertzel.rs`) measure the 8 DTMF frequencies, a probe 5 % each side of
//! each, and their second harmonics over 102-sample windows every 51 samples; the detector
//! (`detector.rs`) applies level, twist, relative-peak, frequency and harmonic checks per window
//! and the duration and pause rules across windows. Why these numbers: docs/DECISIONS.md.

mod detector;
mod goertzel;

pub use detector::{InbandDetector, InbandEvent};

#[cfg(test)]
mod talkoff_tests;
#[cfg(test)]
pub(crate) mod testgen;
#[cfg(test)]
mod tests;
