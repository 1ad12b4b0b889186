//! Timer base values and the INVITE / non-INVITE split every transaction rule depends on.

use std::time::Duration;

use crate::sip::Method;

/// The SIP timer base values (RFC 3261 §17.1.1.1), configurable for tests and odd networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate; retransmissions start at T1 and double.
    pub t1: Duration,
    /// Maximum retransmission interval for non-INVITE requests and INVITE responses.
    pub t2: Duration,
    /// Maximum time a message stays in the network.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_millis(4000),
            t4: Duration::from_millis(5000),
        }
    }
}

impl Timers {
    /// 64*T1: the overall transaction timeout (timers B, F, H, J, L, M).
    pub fn t64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

/// INVITE transactions follow different rules than all other methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxKind {
    /// INVITE (ACK for non-2xx is part of it).
    Invite,
    /// Every other method except ACK.
    NonInvite,
}

impl TxKind {
    /// The rules a request of `method` follows.
    pub fn of(method: &Method) -> TxKind {
        match method {
            Method::Invite => TxKind::Invite,
            _ => TxKind::NonInvite,
        }
    }
}
