//! SIP transactions (RFC 3261 §17, with the RFC 6026 "Accepted" states), sans-IO.
//!
//! Nothing here touches a socket or a clock: the owner feeds messages and `now`, asks for the
//! next deadline, and performs what comes back. Timer names follow RFC 3261: A/B/D (client
//! INVITE), E/F/K (client non-INVITE), G/H/I (server INVITE), J (server non-INVITE); L and M
//! (RFC 6026) keep a transaction that saw a 2xx around long enough to absorb retransmitted 2xx
//! responses and ACKs.
//!
//! - [`ServerKey`] and [`ClientKey`]: which transaction a message belongs to;
//! - [`ClientTx`] and [`ServerTx`]: one transaction's state machine;
//! - [`TxLayer`]: the table of an element's transactions, their matching, retransmission
//!   absorption and timers, with the owner's data attached to each.

mod client;
mod key;
mod layer;
mod server;
mod timers;

#[cfg(test)]
mod layer_tests;

pub use client::{ClientTimerEvent, ClientTx, ResponseVerdict, ack_for_non_2xx, cancel_for};
pub use key::{ClientKey, SentBy, ServerKey};
pub use layer::{
    ClientTransaction, RequestEvent, ResponseEvent, ServerTransaction, Transmit, TxEvent, TxLayer,
};
pub use server::{ServerTimerEvent, ServerTx};
pub use timers::{Timers, TxKind};
