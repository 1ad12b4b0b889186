//! What the core attaches to each of its transactions (see [`crate::sip::txn::TxLayer`]): the
//! call and leg a transaction belongs to, and why the proxy sent a request.

use crate::sip::txn::{ServerKey, TxLayer};

use super::{CallKey, Leg};

/// The core's transaction table.
pub(super) type Transactions = TxLayer<ServerData, ClientData>;

/// What a server transaction carries: the call and leg its request arrived on, if any.
pub(super) type ServerData = Option<(CallKey, Leg)>;

/// What a client transaction carries.
#[derive(Clone, Debug)]
pub(super) struct ClientData {
    /// What to do with responses.
    pub purpose: Purpose,
    /// The call and leg the request was sent on, if any.
    pub call: Option<(CallKey, Leg)>,
}

/// Why we sent a request, i.e. what to do with its responses.
#[derive(Clone, Debug)]
pub(super) enum Purpose {
    /// The b-leg INVITE relayed from the a-leg's initial INVITE.
    InitialInvite {
        /// The a-leg server transaction to answer.
        server_key: ServerKey,
    },
    /// An in-dialog request relayed from the other leg.
    Relay {
        /// The server transaction on the other leg to answer.
        server_key: ServerKey,
    },
    /// A request of the proxy's own (BYE on teardown, CANCEL): responses are consumed.
    Own,
    /// A request of a metaflow module: responses go back to that module instance.
    Module(super::host::ModuleId),
    /// A call the proxy places for a module (`CallContext::originate`): its responses build
    /// the new dialog, and the module hears how it ended.
    Originate(super::host::ModuleId),
    /// An out-of-dialog request forwarded upstream statelessly (our Via on top).
    Proxied {
        /// The server transaction of the original request.
        server_key: ServerKey,
    },
}
