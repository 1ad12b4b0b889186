//! Calls the proxy places itself: a module asks for a new call through the PBX to take one
//! leg's place (a transfer the far end would not take as a REFER). The new INVITE offers the
//! SDP of the party that stays, anchored on the sockets the leaving party used, so when the new
//! call is answered its media simply flows through those sockets: the party that stays needs no
//! re-INVITE, the leaving party gets a BYE, and the new dialog becomes that leg's (the answers
//! are `originate_answer.rs`).

use std::time::Instant;

use crate::base::{CallEvent, CallKey, Leg};
use crate::modules::context::{Destination, PlaceOptions};
use crate::sip::digest;
use crate::sip::names::{
    ALERT_INFO, AUTHORIZATION, CALL_INFO, CONTENT_TYPE, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION,
    WWW_AUTHENTICATE,
};
use crate::sip::txn::ClientKey;
use crate::sip::{Method, SipMessage};

use super::B2bua;
use super::call::other;
use super::dialog::{Dialog, without_tag};
use super::entries::Purpose;
use super::host::ModuleId;

/// A call being placed for a module, until it is answered or fails: one INVITE per
/// destination, all ringing at once; the first to answer is the call.
#[derive(Debug)]
pub(super) struct Origination {
    /// The module that placed it.
    pub module: ModuleId,
    /// The leg whose place the new call takes when answered.
    pub slot: Leg,
    /// The INVITEs still without a final response (one per destination).
    pub forks: Vec<Fork>,
    /// The status reported if every fork fails: the first failure other than 408/487 (a busy
    /// or a decline says more than a cancellation), else the latest.
    pub failure: Option<u16>,
    /// Why the leaving party is hung up (its BYE's Reason text).
    pub reason: &'static str,
    /// The module gave the call up: a CANCEL went out, or goes out with the first provisional.
    pub cancelled: bool,
    /// The leaving party hung up while the new call rang: no BYE is owed to it, and if the new
    /// call fails, the call ends.
    pub leaving_gone: bool,
    /// An attended transfer's consultation: the offer names a consultation port pair, and the
    /// answer talks with `slot` (the transferor) unless a party left meanwhile (then it takes
    /// `slot` at once, as a blind placement does).
    pub consult: bool,
    /// The latest SDP of the new party's early media (a 183), while one destination rings.
    pub early_sdp: Option<bytes::Bytes>,
    /// The new party's early media already took `slot`'s media (the leaving party was gone):
    /// the answer must not make the relay refuse that party's source again.
    pub media_taken: bool,
}

/// One INVITE of a call being placed.
#[derive(Debug)]
pub(super) struct Fork {
    /// The new call's dialog as the proxy (its UAC) knows it.
    pub dialog: Dialog,
    /// The INVITE's client transaction, for a CANCEL.
    pub branch: ClientKey,
    /// The INVITE as sent: its body is offered again with credentials.
    pub invite: SipMessage,
    /// Whether the INVITE was sent again with credentials (a second challenge is a failure).
    pub auth_tried: bool,
}

impl Origination {
    /// The fork whose INVITE transaction is `branch`.
    pub(super) fn fork_mut(&mut self, branch: &ClientKey) -> Option<&mut Fork> {
        self.forks.iter_mut().find(|f| f.branch == *branch)
    }

    /// Notes a fork's failure `status` (see [`Origination::failure`]): a status other than
    /// 408/487 (a busy, a decline) is kept against any later one.
    pub(super) fn note_failure(&mut self, status: u16) {
        if self.failure.is_some_and(|f| !matches!(f, 408 | 487)) {
            return;
        }
        self.failure = Some(status);
    }
}

/// Why a call could not be placed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum OriginateError {
    /// No PBX is configured.
    #[error("no upstream PBX is configured")]
    NoUpstream,
    /// The call is gone or not confirmed.
    #[error("the call is not established")]
    NotEstablished,
    /// Another call is being placed on this call.
    #[error("a call is already being placed for this call")]
    Busy,
    /// The party that stays never sent an SDP to offer.
    #[error("the party that stays has no SDP to offer")]
    NoSdp,
    /// Its SDP could not be anchored.
    #[error("the offer could not be anchored: {0}")]
    Anchor(String),
    /// No destination was given (or several for a consultation, which calls one party).
    #[error("no destination to call")]
    NoDestination,
}

impl B2bua {
    /// Places a call for module `id` to every destination of `to` at once (the first to answer
    /// wins, the others are cancelled), to take `slot`'s place in call `key` when answered (the
    /// leaving party's BYE says `reason`). From is the party that stays (the one being served).
    /// With `consult`, the new call first talks with `slot` while the other party is parked
    /// (attended transfer, `consult.rs`).
    #[allow(clippy::too_many_arguments)] // one per aspect of the call placed; a struct would only rename them
    pub(super) fn originate(
        &mut self,
        key: CallKey,
        id: ModuleId,
        slot: Leg,
        to: &[Destination<'_>],
        options: PlaceOptions,
        consult: bool,
        now: Instant,
    ) -> Result<(), OriginateError> {
        let account = self.calls.get(&key).and_then(|c| c.account_id.clone());
        let mut targets = Vec::with_capacity(to.len());
        for destination in to {
            targets.push(self.destination(*destination, account.as_deref(), now)?);
        }
        if targets.is_empty() || (consult && targets.len() > 1) {
            return Err(OriginateError::NoDestination);
        }
        let served = other(slot);
        let media_ip = self.cfg.media_ip;
        let contact = self.contact();
        let call = self
            .calls
            .get_mut(&key)
            .filter(|c| c.state == super::CallState::Confirmed)
            .ok_or(OriginateError::NotEstablished)?;
        if call.origination.is_some() || call.consult.is_some() {
            return Err(OriginateError::Busy);
        }
        let index = match served {
            Leg::A => 0,
            Leg::B => 1,
        };
        let body = call.sdp_state.bodies[index]
            .clone()
            .ok_or(OriginateError::NoSdp)?;
        let body = negotiated_only(&body, &call.sdp_state.codecs, served);
        // The stayer's SDP, anchored as if it were going to the leaving party: the offer names
        // the sockets that face `slot`, with the stayer's codecs and event payload types. A
        // consultation names its own port pair instead.
        let offer = if consult {
            super::consult::consult_offer(self.media.as_mut(), media_ip, key, slot, &body)?
        } else {
            super::anchor::anchor_sdp(
                self.media.as_mut(),
                media_ip,
                key,
                served,
                &body,
                &mut call.sdp_state,
            )
            .map_err(|e| OriginateError::Anchor(e.to_string()))?
        };
        let local_uri = match &self.cfg.placed_call_from {
            crate::base::PlacedCallFrom::Staying => without_tag(&call.dialog(served).remote_uri),
            crate::base::PlacedCallFrom::Replaced => without_tag(&call.dialog(slot).remote_uri),
            crate::base::PlacedCallFrom::Uri(uri) => format!("<{uri}>"),
        };
        let log_id = call.id.clone();
        let offer: bytes::Bytes = offer.into();
        let mut forks = Vec::with_capacity(targets.len());
        for (target, to_uri, peer) in targets {
            let call_id = format!("{}@{}", self.token(20), self.public_addr().ip());
            let local_tag = self.token(12);
            let (via, branch) = self.new_via();
            let mut dialog = Dialog {
                call_id: call_id.clone(),
                local_tag,
                remote_tag: None,
                local_uri: local_uri.clone(),
                remote_uri: format!("<{to_uri}>"),
                remote_target: target.clone(),
                route_set: Vec::new(),
                local_cseq: 0,
                peer,
            };
            let mut invite = dialog.request(Method::Invite, via, &contact, None);
            if options.auto_answer {
                let host = contact.trim_start_matches('<').trim_end_matches('>');
                invite.push_header(CALL_INFO, format!("<{host}>;answer-after=0"));
                invite.push_header(
                    ALERT_INFO,
                    "<http://127.0.0.1>;info=alert-autoanswer;delay=0",
                );
            }
            invite.push_header(CONTENT_TYPE, "application/sdp");
            invite.body = offer.clone();
            tracing::info!(call_id = %log_id, new_call_id = %call_id, target = %target, leg = slot.as_str(), "placing a call");
            self.send_request(
                invite.clone(),
                peer,
                Purpose::Originate(id),
                Some((key, slot)),
                now,
            );
            self.event(
                &log_id,
                CallEvent::LegOriginated {
                    leg: slot,
                    target,
                    call_id,
                },
            );
            forks.push(Fork {
                dialog,
                branch: ClientKey {
                    branch,
                    method: Method::Invite,
                },
                invite,
                auth_tried: false,
            });
        }
        if let Some(call) = self.calls.get_mut(&key) {
            call.origination = Some(Origination {
                module: id,
                slot,
                forks,
                failure: None,
                reason: options.reason,
                cancelled: false,
                leaving_gone: false,
                consult,
                early_sdp: None,
                media_taken: false,
            });
        }
        Ok(())
    }

    /// The Request-URI, To URI and next hop of a call to `to`: the PBX, or a device registered
    /// through the proxy (its own Contact over the flow it registered on; through the PBX by
    /// the fallback URI when it is not registered here).
    /// A device counts only when registered in the call's `account` (its AOR host resolves to
    /// it), so a code in one account never reaches another account's phone.
    fn destination(
        &self,
        to: Destination<'_>,
        account: Option<&str>,
        now: Instant,
    ) -> Result<(String, String, crate::sip::transport::Peer), OriginateError> {
        let upstream = self.upstream_peer();
        match to {
            Destination::Pbx(uri) => {
                let peer = upstream.ok_or(OriginateError::NoUpstream)?;
                Ok((uri.to_string(), uri.to_string(), peer))
            }
            Destination::Device { sip_user, fallback } => {
                let same_account = |host: &str| match (account, self.resolver.account_of_host(host))
                {
                    (Some(mine), Some(theirs)) => mine == theirs,
                    _ => true,
                };
                match self.registrar.find_user(sip_user, same_account, now) {
                    Some(binding) => {
                        Ok((binding.contact.clone(), binding.aor.clone(), binding.source))
                    }
                    None => {
                        let peer = upstream.ok_or(OriginateError::NoUpstream)?;
                        Ok((fallback.to_string(), fallback.to_string(), peer))
                    }
                }
            }
        }
    }

    /// A 401/407 to the call being placed: sends the INVITE again with the account's
    /// credentials (`pbx_auth`), once. False when there are none, the challenge is not an MD5
    /// digest, or credentials were already tried; the module then hears the status.
    pub(super) fn answer_challenge(
        &mut self,
        key: CallKey,
        id: ModuleId,
        (client_key, resp): (&ClientKey, &SipMessage),
        now: Instant,
    ) -> bool {
        let proxy = resp.status() == Some(407);
        let (asked, answer) = if proxy {
            (PROXY_AUTHENTICATE, PROXY_AUTHORIZATION)
        } else {
            (WWW_AUTHENTICATE, AUTHORIZATION)
        };
        let Some(challenge) = resp
            .header_values(asked)
            .into_iter()
            .find_map(digest::parse_challenge)
        else {
            return false;
        };
        let Some(call) = self.calls.get(&key) else {
            return false;
        };
        // The account's PBX credentials go to the PBX only, never to a device that challenges.
        let upstream = self.upstream_peer();
        let usable = call.origination.as_ref().is_some_and(|o| {
            !o.cancelled
                && o.forks.iter().any(|f| {
                    f.branch == *client_key && !f.auth_tried && Some(f.dialog.peer) == upstream
                })
        });
        if !usable {
            return false;
        }
        let Some((username, password)) = self.resolver.pbx_auth(call.account_id.as_deref()) else {
            tracing::info!(call_id = %call.id, "the PBX challenged a placed call and the account has no pbx_auth");
            return false;
        };
        let cnonce = self.token(16);
        let (via, branch) = self.new_via();
        let contact = self.contact();
        let Some(origination) = self
            .calls
            .get_mut(&key)
            .and_then(|c| c.origination.as_mut())
        else {
            return false;
        };
        let slot = origination.slot;
        let Some(fork) = origination.fork_mut(client_key) else {
            return false;
        };
        let dialog = &mut fork.dialog;
        dialog.remote_tag = None;
        let uri = dialog.remote_target.clone();
        let mut invite = dialog.request(Method::Invite, via, &contact, None);
        invite.push_header(CONTENT_TYPE, "application/sdp");
        invite.body = fork.invite.body.clone();
        let value =
            digest::authorization(&challenge, &username, &password, "INVITE", &uri, &cnonce);
        invite.push_header(answer, value);
        fork.auth_tried = true;
        fork.branch = ClientKey {
            branch,
            method: Method::Invite,
        };
        fork.invite = invite.clone();
        let peer = dialog.peer;
        self.send_request(invite, peer, Purpose::Originate(id), Some((key, slot)), now);
        true
    }
}

/// The stayer's SDP narrowed to what the session negotiated: its audio formats whose codec the
/// leaving party's SDP also declared (telephone-event always stays). A caller's SDP is its offer
/// with every codec it can do, but it sends only the one the answer chose; offering the others
/// to the new party could make it pick one the stayer never sends.
fn negotiated_only(
    body: &[u8],
    codecs: &crate::modules::record::LegCodecs,
    served: Leg,
) -> Vec<u8> {
    use crate::modules::record::Codec;
    let (mine, theirs) = match served {
        Leg::A => (&codecs.a, &codecs.b),
        Leg::B => (&codecs.b, &codecs.a),
    };
    if theirs.is_empty() {
        return body.to_vec();
    }
    let keep = |pt: u8| match mine.iter().find(|(p, _)| *p == pt) {
        Some((_, Codec::TelephoneEvent)) => true,
        Some((_, codec)) => theirs.iter().any(|(_, c)| c == codec),
        None => true,
    };
    crate::sdp::formats::keep_formats(body, keep).unwrap_or_else(|_| body.to_vec())
}
