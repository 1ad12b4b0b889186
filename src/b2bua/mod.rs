//! The B2BUA-lite call core: two dialogs per call, SDP anchoring, the registration relay, the
//! metaflow collectors and the host of metaflow modules, written as a sans-IO state machine
//! ([`B2bua`]) driven by the application shell (the `app` folder).
//!
//! Data flow: everything that happens to the core is one [`Input`] given to [`B2bua::handle`]
//! with the current time; everything it wants done leaves as an [`Output`] from
//! [`B2bua::poll_output`]; [`B2bua::poll_timeout`] says when to hand it [`Input::Timeout`]. Media
//! ports are allocated through the synchronous [`crate::media::MediaControl`] the core owns, and
//! every random token comes from the RNG seeded by [`CoreConfig::rng_seed`], so tests drive the
//! core with a fake media backend, a fake clock and a fixed seed.

mod ack_cancel;
mod anchor;
mod call;
pub mod codes;
mod consult;
pub(crate) mod core;
pub mod dialog;
mod entries;
mod headers;
mod host;
mod indialog;
mod invite;
mod io;
mod originate;
mod originate_answer;
mod persist;
mod ratelimit;
mod registrar;
mod session_timer;
mod setup_timers;
#[cfg(test)]
mod sim;
mod sounds;
pub mod stats;
mod teardown;
#[cfg(test)]
mod tests;
mod timers;

pub use self::call::{CallState, Outcome};
pub use self::codes::{CallMetaflow, DigitSource, MetaflowResolver, StaticMetaflows};
pub use self::core::{B2bua, CoreConfig, DEFAULT_TIMER_C};
pub use self::io::{Input, Output};
pub use self::persist::{BindingChange, BindingSink, StoredBinding};
pub use self::ratelimit::RateLimit;
pub use crate::base::CallKey;
pub use crate::base::Leg;
