//! RFC 4028 session timers, as a B2BUA that relays the refreshes: every 2xx to an INVITE or
//! UPDATE that carries `Session-Expires` (re)arms the call's deadline; if no refresh succeeds
//! before it, the session is dead and both legs get a BYE.

use std::time::{Duration, Instant};

use crate::sip::SipMessage;
use crate::sip::names::SESSION_EXPIRES;

use super::call::Outcome;
use super::timers::TimerRef;
use super::{B2bua, CallKey};

/// Smallest interval honoured (RFC 4028 §4: Min-SE is at least 90 s); guards against a peer
/// asking for a refresh storm.
const MIN_SESSION_EXPIRES: Duration = Duration::from_secs(90);

/// The negotiated interval of a 2xx response's `Session-Expires` (`1800;refresher=uac`).
pub(super) fn session_interval(resp: &SipMessage) -> Option<Duration> {
    let value = resp.header(SESSION_EXPIRES)?;
    let secs: u64 = value.split(';').next()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs).max(MIN_SESSION_EXPIRES))
}

impl B2bua {
    /// A 2xx to an INVITE or UPDATE of call `key` arrived: a session refresh succeeded.
    pub(super) fn session_refreshed(&mut self, key: CallKey, resp: &SipMessage, now: Instant) {
        let Some(interval) = session_interval(resp) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let deadline = now + interval;
        call.session_deadline = Some(deadline);
        self.timers.schedule(deadline, TimerRef::Session(key));
    }

    /// The session timer of `key` may have run out.
    pub(super) fn session_timer(&mut self, key: CallKey, now: Instant) {
        let expired = self
            .calls
            .get(&key)
            .and_then(|c| c.session_deadline)
            .is_some_and(|deadline| deadline <= now);
        if expired {
            // The session was set up; it ends as an answered call whose refreshes stopped.
            self.terminate_call(key, Outcome::Answered, "session timer expired", now);
        }
    }
}
