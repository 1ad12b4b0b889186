//! DTMF digits: RFC 4733 (RFC 2833) telephone-events (the event payload and digit table, a
//! sans-IO decoder that turns each stream's packets into one `Started` and one `Ended` per key
//! press, the synthesiser that writes events of our own), SIP INFO digit bodies, and in-band
//! tones in G.711 audio ([`inband`], Goertzel detection per ITU-T Q.23/Q.24). How the relay
//! applies them to live packets lives in `media::inspect`.

mod decoder;
mod event;
pub mod inband;
pub mod sip_info;
pub mod synth;

pub use decoder::{DtmfDecoder, EVENT_TIMEOUT_US, REPRESS_GAP_US};
pub use event::{DtmfEvent, EventConfig, TelephoneEvent, event_digit};
pub use inband::{InbandDetector, InbandEvent};
