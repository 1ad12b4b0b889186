//! The `transfer` metaflow module: blind transfer by SIP REFER (RFC 3515) on a live call.
//!
//! When a party dials a code bound to `transfer`, the proxy acts as that party's agent (the
//! transferor) and sends a REFER inside the dialog of the other leg (the transferee), with
//! `Refer-To: <sip:TARGET@HOST>` built by [`refer_target`] and `Referred-By` naming the dialing
//! party. It then follows the implicit subscription with a [`BlindTransfer`]: 202, NOTIFYs
//! carrying `message/sipfrag` ([`parse_sipfrag`]), and the final outcome: `success` (the proxy
//! hangs up its side), `failure` (the call goes on; the node's `children` decide what follows) or
//! `withdrawn` (the dialing party pressed `takeback_dtmf` before the transfer completed).
//!
//! Everything here is sans-IO: the module speaks to the call only through its
//! [`crate::modules::context::CallContext`]; the call core sends and receives the messages. The
//! node's `data` is checked by [`parse_params`] and stored with the defaults of [`normalise`].

mod attended;
mod params;
mod runner;
mod sipfrag;
mod state;
mod target;

#[cfg(test)]
mod tests;

pub use params::{
    DEFAULT_RINGBACK, DEFAULT_TAKEBACK_DTMF, DEFAULT_TIMEOUT_S, NO_MATCH_CAPTURE, TransferMethod,
    TransferParams, TransferType, normalise, parse_params,
};
pub use runner::Kind;
pub use sipfrag::parse_sipfrag;
pub use state::{
    BlindTransfer, NO_STATUS, Phase, REFER_TIMEOUT_STATUS, Step, StepSource, TransferEvent,
};
pub use target::{TransferError, refer_target};

/// The name of this module in a metaflow node (`"module": "transfer"`).
pub const MODULE_NAME: &str = "transfer";
