//! Registration relay: phones REGISTER through the proxy to the PBX, and calls the PBX places to
//! a registered phone come back through the proxy to the phone's real (NATed) address.
//!
//! The proxy rewrites each Contact of a REGISTER to a URI of its own,
//! `sip:<user>-<binding id>@<proxy>`, and remembers the original Contact, the AOR and the address
//! the REGISTER came from. The PBX therefore sends INVITEs for that phone to the proxy, whose
//! Request-URI names the binding. Contact rewriting was chosen over `Path` (RFC 3327) because it
//! works with PBXs that ignore `Path`, and it keeps the PBX's view of the phone stable across
//! NAT rebinding. The 2xx to the REGISTER is given back to the phone with its own Contacts, and
//! the expiry the PBX granted decides how long the binding lives (0 removes it).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::persist::{BindingChange, StoredBinding};
use crate::sip::names::{CONTACT, EXPIRES, TO};
use crate::sip::transport::{Peer, Transport};
use crate::sip::txn::ServerKey;
use crate::sip::{NameAddr, SipMessage, SipUri};

/// A phone registered through the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Binding {
    /// The address of record (To of the REGISTER).
    pub aor: String,
    /// The phone's own Contact URI.
    pub contact: String,
    /// Where the REGISTER came from: calls to the phone go there.
    pub source: Peer,
    /// When the PBX's grant runs out.
    pub expires_at: Instant,
}

/// Bindings by id, plus the REGISTERs waiting for the PBX's answer.
#[derive(Debug, Default)]
pub(super) struct Registrar {
    bindings: HashMap<String, Binding>,
    /// Per forwarded REGISTER (server transaction key): (binding id, candidate binding).
    pending: HashMap<ServerKey, Vec<(String, Binding)>>,
}

/// FNV-1a, stable across restarts (the PBX keeps our Contact while the proxy restarts).
fn binding_id(aor: &str, contact: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in aor.bytes().chain([0u8]).chain(contact.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The address of record a REGISTER binds: the URI of its To.
fn aor_of(msg: &SipMessage) -> Option<String> {
    msg.header(TO)
        .and_then(|to| NameAddr::parse(to).ok())
        .map(|na| na.uri)
}

/// The `-<id>` suffix of a user part we wrote, if it is one.
fn id_of_user(user: &str) -> Option<&str> {
    let (_, id) = user.rsplit_once('-')?;
    (id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

impl Registrar {
    /// Number of live bindings.
    pub(super) fn len(&self) -> usize {
        self.bindings.len()
    }

    /// Whether a REGISTER may go on while `max` bindings are the most the table holds: always
    /// when there is room, or when every Contact it names is bound already (a refresh or a
    /// removal never needs room); a REGISTER that would add a binding to a full table does not.
    pub(super) fn admits(&mut self, msg: &SipMessage, max: usize, now: Instant) -> bool {
        self.prune(now);
        if self.bindings.len() < max {
            return true;
        }
        let Some(aor) = aor_of(msg) else {
            return true;
        };
        msg.contacts().into_iter().all(|value| {
            value.trim() == "*"
                || NameAddr::parse(value)
                    .map(|na| self.bindings.contains_key(&binding_id(&aor, &na.uri)))
                    .unwrap_or(true)
        })
    }

    /// Rewrites the Contacts of a REGISTER about to be forwarded (server transaction `key`,
    /// received from `source`), so the PBX reaches the phone through `proxy_hostport` over
    /// `towards_pbx`, the transport of the proxy-PBX hop. The phone's own transport is not
    /// the PBX's business: a phone registered over TCP is still called over the PBX's usual
    /// transport, and the proxy then uses the phone's own connection.
    pub(super) fn rewrite_register(
        &mut self,
        key: &ServerKey,
        msg: &mut SipMessage,
        source: Peer,
        proxy_hostport: &str,
        towards_pbx: Transport,
        now: Instant,
    ) {
        self.prune(now);
        let Some(aor) = aor_of(msg) else {
            return;
        };
        let contacts: Vec<String> = msg.contacts().into_iter().map(str::to_string).collect();
        if contacts.is_empty() || contacts.iter().any(|c| c.trim() == "*") {
            return; // a query or a remove-all passes unchanged
        }
        let mut rewritten = Vec::with_capacity(contacts.len());
        let mut candidates = Vec::new();
        for value in contacts {
            let Ok(mut na) = NameAddr::parse(&value) else {
                rewritten.push(value);
                continue;
            };
            let user = SipUri::parse(&na.uri)
                .ok()
                .and_then(|u| u.user)
                .unwrap_or_else(|| "phone".into());
            let id = binding_id(&aor, &na.uri);
            candidates.push((
                id.clone(),
                Binding {
                    aor: aor.clone(),
                    contact: na.uri.clone(),
                    source,
                    expires_at: now,
                },
            ));
            let transport = match towards_pbx {
                Transport::Udp => "",
                Transport::Tcp => ";transport=tcp",
            };
            na.uri = format!("sip:{user}-{id}@{proxy_hostport}{transport}");
            rewritten.push(na.to_string());
        }
        msg.remove_header(CONTACT);
        for value in rewritten {
            msg.push_header(CONTACT, value);
        }
        self.pending.insert(key.clone(), candidates);
    }

    /// The PBX answered the REGISTER of server transaction `key`: a 2xx grants (or with
    /// expires 0 removes) the bindings; the response's Contacts are given back their originals.
    /// Returns the binding changes, for keeping them across restarts.
    pub(super) fn on_register_response(
        &mut self,
        key: &ServerKey,
        resp: &mut SipMessage,
        now: Instant,
    ) -> Vec<BindingChange> {
        let code = resp.status().unwrap_or(0);
        if code < 200 {
            return Vec::new();
        }
        let Some(candidates) = self.pending.remove(key) else {
            return Vec::new();
        };
        if code >= 300 {
            return Vec::new();
        }
        let default_expires = resp
            .header(EXPIRES)
            .and_then(|e| e.trim().parse::<u64>().ok())
            .unwrap_or(3600);
        let mut granted: HashMap<String, u64> = HashMap::new();
        let mut restored = Vec::new();
        for value in resp.contacts() {
            let Ok(mut na) = NameAddr::parse(value) else {
                restored.push(value.to_string());
                continue;
            };
            let id = SipUri::parse(&na.uri)
                .ok()
                .and_then(|u| u.user)
                .and_then(|user| id_of_user(&user).map(str::to_string));
            let candidate = id
                .as_ref()
                .and_then(|id| candidates.iter().find(|(cid, _)| cid == id));
            if let Some((id, binding)) = candidate {
                let expires = na
                    .params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("expires"))
                    .and_then(|(_, v)| v.as_deref())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(default_expires);
                granted.insert(id.clone(), expires);
                na.uri = binding.contact.clone();
            }
            restored.push(na.to_string());
        }
        let mut changes = Vec::with_capacity(candidates.len());
        for (id, mut binding) in candidates {
            match granted.get(&id) {
                Some(&secs) if secs > 0 => {
                    binding.expires_at = now + Duration::from_secs(secs);
                    changes.push(BindingChange::Bound(StoredBinding {
                        aor: binding.aor.clone(),
                        contact: binding.contact.clone(),
                        source: binding.source,
                        expires_at: binding.expires_at,
                    }));
                    self.bindings.insert(id, binding);
                }
                _ => {
                    if self.bindings.remove(&id).is_some() {
                        changes.push(BindingChange::Removed {
                            aor: binding.aor,
                            contact: binding.contact,
                        });
                    }
                }
            }
        }
        if !restored.is_empty() {
            resp.remove_header(CONTACT);
            for value in restored {
                resp.push_header(CONTACT, value);
            }
        }
        changes
    }

    /// Takes back kept bindings (see [`super::persist`]): unexpired ones only, while fewer
    /// than `max` are held; the id is derived again, as a REGISTER would. Returns how many.
    pub(super) fn restore(&mut self, kept: Vec<StoredBinding>, max: usize, now: Instant) -> usize {
        self.prune(now);
        let mut restored = 0;
        for binding in kept {
            if binding.expires_at <= now || self.bindings.len() >= max {
                continue;
            }
            let id = binding_id(&binding.aor, &binding.contact);
            self.bindings.insert(
                id,
                Binding {
                    aor: binding.aor,
                    contact: binding.contact,
                    source: binding.source,
                    expires_at: binding.expires_at,
                },
            );
            restored += 1;
        }
        restored
    }

    /// The binding an INVITE from the PBX is for (its Request-URI is one of our Contacts).
    pub(super) fn lookup(&self, request_uri: &str, now: Instant) -> Option<&Binding> {
        let user = SipUri::parse(request_uri).ok()?.user?;
        let id = id_of_user(&user)?;
        self.bindings.get(id).filter(|b| b.expires_at > now)
    }

    /// The live binding of the phone whose AOR user is `user` (the latest to expire when it has
    /// several): where a call the proxy places to that device goes.
    /// Only bindings whose AOR host `host_ok` accepts count (the caller's account's realm).
    pub(super) fn find_user(
        &self,
        user: &str,
        host_ok: impl Fn(&str) -> bool,
        now: Instant,
    ) -> Option<&Binding> {
        self.bindings
            .values()
            .filter(|b| b.expires_at > now)
            .filter(|b| {
                SipUri::parse(&b.aor)
                    .ok()
                    .is_some_and(|uri| uri.user.as_deref() == Some(user) && host_ok(&uri.host))
            })
            .max_by_key(|b| b.expires_at)
    }

    /// A forwarded REGISTER got no answer: forget its candidates.
    pub(super) fn forget_pending(&mut self, key: &ServerKey) {
        self.pending.remove(key);
    }

    fn prune(&mut self, now: Instant) {
        self.bindings.retain(|_, b| b.expires_at > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(contact: &str) -> SipMessage {
        let text = format!(
            "REGISTER sip:pbx.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKr1\r\nMax-Forwards: 70\r\nFrom: <sip:alice@pbx.example.com>;tag=1\r\nTo: <sip:alice@pbx.example.com>\r\nCall-ID: reg-1\r\nCSeq: 1 REGISTER\r\nContact: {contact}\r\nContent-Length: 0\r\n\r\n"
        );
        SipMessage::parse(text.as_bytes()).unwrap()
    }

    /// A distinct server transaction key per forwarded REGISTER.
    fn key(n: u32) -> ServerKey {
        ServerKey::Rfc3261 {
            branch: format!("z9hG4bKr{n}"),
            sent_by: crate::sip::txn::SentBy {
                host: "10.0.0.5".into(),
                port: Some(5060),
            },
            method: crate::sip::Method::Register,
        }
    }

    fn ok_for(req: &SipMessage) -> SipMessage {
        let mut resp = SipMessage::response_to(req, 200, "OK");
        for c in req.header_values("Contact") {
            resp.push_header("Contact", c.to_string());
        }
        resp
    }

    #[test]
    fn register_round_trip_binds_and_restores_contacts() {
        let mut reg = Registrar::default();
        let now = Instant::now();
        let phone = Peer::udp("198.51.100.7:40123".parse().unwrap());
        let mut req = register("<sip:alice@10.0.0.5:5060>;expires=600");
        reg.rewrite_register(
            &key(1),
            &mut req,
            phone,
            "192.0.2.1:5060",
            Transport::Udp,
            now,
        );
        let contact = req.header("Contact").unwrap().to_string();
        assert!(contact.starts_with("<sip:alice-"), "{contact}");
        assert!(contact.contains("@192.0.2.1:5060>"), "{contact}");
        assert!(contact.contains("expires=600"), "{contact}");

        let mut resp = ok_for(&req);
        reg.on_register_response(&key(1), &mut resp, now);
        assert_eq!(
            resp.header("Contact"),
            Some("<sip:alice@10.0.0.5:5060>;expires=600")
        );
        let ruri = NameAddr::parse(&contact).unwrap().uri;
        let binding = reg.lookup(&ruri, now).unwrap();
        assert_eq!(binding.source, phone);
        assert_eq!(binding.contact, "sip:alice@10.0.0.5:5060");
        assert_eq!(binding.aor, "sip:alice@pbx.example.com");
        assert!(
            reg.lookup(&ruri, now + Duration::from_secs(601)).is_none(),
            "expired"
        );
    }

    #[test]
    fn unregister_and_failures_remove_or_keep_nothing() {
        let mut reg = Registrar::default();
        let now = Instant::now();
        let phone = Peer::udp("198.51.100.7:40123".parse().unwrap());
        let mut req = register("<sip:alice@10.0.0.5:5060>");
        reg.rewrite_register(
            &key(1),
            &mut req,
            phone,
            "192.0.2.1:5060",
            Transport::Udp,
            now,
        );
        let ruri = NameAddr::parse(req.header("Contact").unwrap()).unwrap().uri;
        let mut resp = ok_for(&req);
        reg.on_register_response(&key(1), &mut resp, now);
        assert_eq!(reg.len(), 1);

        let mut req = register("<sip:alice@10.0.0.5:5060>;expires=0");
        reg.rewrite_register(
            &key(2),
            &mut req,
            phone,
            "192.0.2.1:5060",
            Transport::Udp,
            now,
        );
        let mut resp = ok_for(&req);
        reg.on_register_response(&key(2), &mut resp, now);
        assert!(reg.lookup(&ruri, now).is_none());
        assert_eq!(reg.len(), 0);

        let mut req = register("<sip:alice@10.0.0.5:5060>");
        reg.rewrite_register(
            &key(3),
            &mut req,
            phone,
            "192.0.2.1:5060",
            Transport::Udp,
            now,
        );
        let mut challenge = SipMessage::response_to(&req, 401, "Unauthorized");
        reg.on_register_response(&key(3), &mut challenge, now);
        assert_eq!(reg.len(), 0, "a challenge binds nothing");
    }

    #[test]
    fn changes_are_reported_and_restored_bindings_route_again() {
        let mut reg = Registrar::default();
        let now = Instant::now();
        let phone = Peer::udp("198.51.100.7:40123".parse().unwrap());
        let mut req = register("<sip:alice@10.0.0.5:5060>;expires=600");
        reg.rewrite_register(
            &key(1),
            &mut req,
            phone,
            "192.0.2.1:5060",
            Transport::Udp,
            now,
        );
        let ruri = NameAddr::parse(req.header("Contact").unwrap()).unwrap().uri;
        let changes = reg.on_register_response(&key(1), &mut ok_for(&req), now);
        let [BindingChange::Bound(kept)] = changes.as_slice() else {
            panic!("{changes:?}");
        };
        assert_eq!(kept.contact, "sip:alice@10.0.0.5:5060");
        assert_eq!(kept.expires_at, now + Duration::from_secs(600));

        // A new process: the kept binding routes the PBX's INVITE as before.
        let later = now + Duration::from_secs(5);
        let mut fresh = Registrar::default();
        let expired = StoredBinding {
            contact: "sip:old@10.0.0.6".into(),
            expires_at: now,
            ..kept.clone()
        };
        assert_eq!(fresh.restore(vec![kept.clone(), expired], 10, later), 1);
        assert_eq!(fresh.lookup(&ruri, later).unwrap().source, phone);
        assert_eq!(
            Registrar::default().restore(vec![kept.clone()], 0, later),
            0,
            "bounded"
        );

        let mut req = register("<sip:alice@10.0.0.5:5060>;expires=0");
        fresh.rewrite_register(
            &key(2),
            &mut req,
            phone,
            "192.0.2.1:5060",
            Transport::Udp,
            later,
        );
        let changes = fresh.on_register_response(&key(2), &mut ok_for(&req), later);
        assert_eq!(
            changes,
            vec![BindingChange::Removed {
                aor: kept.aor.clone(),
                contact: kept.contact.clone()
            }]
        );
    }

    #[test]
    fn the_id_is_stable_and_only_our_users_match() {
        assert_eq!(binding_id("a", "b"), binding_id("a", "b"));
        assert_ne!(binding_id("a", "b"), binding_id("a", "c"));
        assert_eq!(
            id_of_user("alice-0123456789abcdef"),
            Some("0123456789abcdef")
        );
        assert_eq!(id_of_user("alice"), None);
        assert_eq!(id_of_user("alice-xyz"), None);
    }
}
