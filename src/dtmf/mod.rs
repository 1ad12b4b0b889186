//! RFC 4733 (RFC 2833) telephone-events and nothing else: the event payload and digit table, a
//! sans-IO decoder that turns each stream's packets into one `Started` and one `Ended` per key
//! press, the synthesiser that writes events of our own, and SIP INFO digit bodies. How the
//! relay applies them to live packets lives in `media::inspect`.

mod decoder;
mod event;
pub mod sip_info;
pub mod synth;

pub use decoder::{DtmfDecoder, EVENT_TIMEOUT_US, REPRESS_GAP_US};
pub use event::{DtmfEvent, EventConfig, TelephoneEvent, event_digit};
