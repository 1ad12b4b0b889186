//! The B2BUA-lite call core: two dialogs per call, SDP anchoring and transaction bookkeeping,
//! written as a sans-IO state machine (`B2bua`) driven by a thin tokio shell (`shell`).
//!
//! Data flow: the shell hands every received datagram and the current time to
//! [`B2bua::handle_datagram`], calls [`B2bua::handle_timers`] at [`B2bua::next_deadline`], and
//! performs the [`Action`]s the core queues (sending bytes, writing events). Media ports are
//! allocated through the synchronous [`crate::media::MediaControl`] trait, so tests drive the
//! core with a fake media backend and a fake clock.

mod ack_cancel;
mod anchor;
mod call;
pub mod codes;
pub(crate) mod core;
pub mod dialog;
mod entries;
mod headers;
mod indialog;
mod invite;
mod io;
mod recording;
mod registrar;
mod session_timer;
pub mod stats;
mod teardown;
#[cfg(test)]
mod tests;
mod timers;
mod transfer;

pub use self::call::{CallState, Outcome};
pub use self::codes::{CallMetaflow, DigitSource, MetaflowResolver, StaticMetaflows};
pub use self::core::{B2bua, CoreConfig};
pub use self::io::{Input, Output};
pub use crate::base::CallKey;
pub use crate::base::Leg;
