//! The store adapter: resolves which of the API's stored metaflows apply to a new call, so the
//! call core asks a [`MetaflowResolver`] and never reads the store itself.

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

/// Metaflows from the API's store, given (as Kazoo gives them) to the call's endpoint: the
/// party behind the proxy. A call from a phone: the caller (From), whose merged metaflows
/// include the callflow its dialed number selects, owns them on the a-leg. A call from the PBX:
/// the registered phone it reaches (the Request-URI, rewritten to its AOR) owns them on the
/// b-leg, and the outside caller owns none.
pub struct DirectoryMetaflows(pub crate::store::MetaflowDirectory);

impl DirectoryMetaflows {
    /// The endpoint of the call and, on a call from a phone, the number it dialed.
    fn endpoint(invite: &SipMessage, inbound: bool) -> Option<((String, String), Option<String>)> {
        let callee = invite.request_uri().and_then(user_host);
        if inbound {
            return callee.map(|endpoint| (endpoint, None));
        }
        let caller = invite.header(FROM).and_then(user_host)?;
        Some((caller, callee.map(|(dialed, _)| dialed)))
    }
}

impl MetaflowResolver for DirectoryMetaflows {
    fn resolve(&self, invite: &SipMessage, inbound: bool) -> Vec<CallMetaflow> {
        let Some(((user, host), dialed)) = Self::endpoint(invite, inbound) else {
            return Vec::new();
        };
        let fast_rearm = self.0.system().fast_rearm;
        self.0
            .for_endpoint(&user, &host, dialed.as_deref())
            .map(|(flows, scope)| CallMetaflow {
                flows,
                owner: if inbound { Leg::B } else { Leg::A },
                scope,
                fast_rearm,
            })
            .into_iter()
            .collect()
    }

    fn account_of(&self, invite: &SipMessage, inbound: bool) -> Option<String> {
        let ((_, host), _) = Self::endpoint(invite, inbound)?;
        Some(self.0.account_for_host(&host))
    }

    fn pbx_auth(&self, account_id: Option<&str>) -> Option<(String, String)> {
        self.0.pbx_auth(account_id)
    }

    fn callflow_number(&self, account_id: Option<&str>, id: &str) -> Option<String> {
        self.0.callflow_number(account_id, id)
    }

    fn account_of_host(&self, host: &str) -> Option<String> {
        Some(self.0.account_for_host(host))
    }

    fn device_sip_user(&self, account_id: Option<&str>, device_id: &str) -> Option<String> {
        self.0.device_sip_user(account_id, device_id)
    }

    fn owner_sip_users(&self, account_id: Option<&str>, owner_id: &str) -> Vec<String> {
        self.0.owner_sip_users(account_id, owner_id)
    }
}
