//! The shared words of the crate: the two legs of a call, the key a call is known by, the typed
//! events a call emits and the validation problem every checker reports. Every other folder may
//! depend on `base`; `base` depends on nothing of the crate, so these words never drag a feature
//! along with them.

mod chain;
mod event;
mod leg;
mod netmatch;
mod placed_from;
mod playback;
mod problem;

pub use chain::ErrorChain;
pub use event::{AttachedMetaflow, CALL_EVENT_KINDS, CallEvent, EventFields};
pub use leg::Leg;
pub use netmatch::{TrustedSource, TrustedSourceError};
pub use placed_from::PlacedCallFrom;
pub use playback::{Gain, PlaybackEnd, PlaybackId};
pub use problem::{Problem, Problems};

/// Identifies a call inside one process: chosen by the call core, used by the media engine,
/// the recorder and the API adapter to name the same call without sharing its state.
pub type CallKey = u64;
