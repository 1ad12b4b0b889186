//! RFC 4733 (RFC 2833) telephone-event detection on RTP: a zero-copy RTP header view, the
//! event payload and digit table, and a sans-IO decoder that turns each stream's packets into
//! one `Started` and one `Ended` per key press.

mod decoder;
mod event;
mod inspector;
mod rtp;
pub mod sip_info;

pub use decoder::{DtmfDecoder, EVENT_TIMEOUT_US, REPRESS_GAP_US};
pub use event::{DtmfEvent, EventConfig, TelephoneEvent, event_digit};
pub use inspector::DtmfInspector;
pub use rtp::{RtpError, RtpView, is_rtcp};
