//! The store adapter: resolves which of the API's stored metaflows apply to a new call (device,
//! user, callflow, account), so the call core asks a [`MetaflowResolver`] and never reads the
//! store itself.

use crate::b2bua::{CallMetaflow, MetaflowResolver};
use crate::base::Leg;
use crate::sip::SipMessage;
use crate::sip::names::FROM;

/// The user and host of a SIP URI inside a header value or Request-URI.
fn user_host(value: &str) -> Option<(String, String)> {
    let uri = match crate::sip::NameAddr::parse(value) {
        Ok(na) => na.uri,
        Err(_) => value.to_string(),
    };
    let uri = crate::sip::SipUri::parse(&uri).ok()?;
    Some((uri.user.unwrap_or_default(), uri.host))
}

/// Metaflows from the API's store: the caller's device, else its owner, else a callflow the
/// dialed number selects, else the caller's account (all owned by the a-leg); plus the callee's
/// device or user metaflow (owned by the b-leg). Account-level metaflows belong to the a-leg
/// only, so that `self`/`peer` keep their meaning.
pub struct DirectoryMetaflows(pub crate::store::MetaflowDirectory);

impl MetaflowResolver for DirectoryMetaflows {
    fn resolve(&self, invite: &SipMessage) -> Vec<CallMetaflow> {
        let mut out = Vec::new();
        let caller = invite.header(FROM).and_then(user_host);
        let callee = invite.request_uri().and_then(user_host);
        let mut caller_flows = caller
            .as_ref()
            .and_then(|(user, host)| self.0.for_leg(user, host));
        if caller_flows
            .as_ref()
            .is_none_or(|(_, scope)| scope == "account")
            && let (Some((_, host)), Some((dialed, _))) = (&caller, &callee)
        {
            let account = self.0.account_for_host(host);
            if let Some(flows) = self.0.for_dialed(&account, dialed) {
                caller_flows = Some((flows, "callflow".into()));
            }
        }
        if let Some((flows, scope)) = caller_flows {
            out.push(CallMetaflow {
                flows,
                owner: Leg::A,
                scope,
            });
        }
        if let Some((flows, scope)) = callee
            .as_ref()
            .and_then(|(user, host)| self.0.for_leg(user, host))
            .filter(|(_, scope)| scope != "account")
        {
            out.push(CallMetaflow {
                flows,
                owner: Leg::B,
                scope,
            });
        }
        out
    }

    fn account_of(&self, invite: &SipMessage) -> Option<String> {
        let (_, host) = invite.header(FROM).and_then(user_host)?;
        Some(self.0.account_for_host(&host))
    }
}
