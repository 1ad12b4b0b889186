//! Calls the proxy places itself: a module asks for a new call through the PBX to take one
//! leg's place (a transfer the far end would not take as a REFER). The new INVITE offers the
//! SDP of the party that stays, anchored on the sockets the leaving party used, so when the new
//! call is answered its media simply flows through those sockets: the party that stays needs no
//! re-INVITE, the leaving party gets a BYE, and the new dialog becomes that leg's.

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

/// A call being placed for a module, until it is answered or fails.
#[derive(Debug)]
pub(super) struct Origination {
    /// The leg whose place the new call takes when answered.
    pub slot: Leg,
    /// The new call's dialog as the proxy (its UAC) knows it.
    pub dialog: Dialog,
    /// The INVITE's client transaction, for a CANCEL.
    pub branch: ClientKey,
    /// The INVITE as sent, for a CANCEL.
    pub invite: SipMessage,
    /// Whether the INVITE was sent again with credentials (a second challenge is a failure).
    pub auth_tried: bool,
    /// Why the leaving party is hung up (its BYE's Reason text).
    pub reason: &'static str,
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
}

impl B2bua {
    /// Places a call to `target` (a SIP URI at the PBX) for module `id`, to take `slot`'s place
    /// in call `key` when answered (the leaving party's BYE says `reason`). From is the party
    /// that stays (the one being served).
    pub(super) fn originate(
        &mut self,
        key: CallKey,
        id: ModuleId,
        slot: Leg,
        to: Destination<'_>,
        options: PlaceOptions,
        now: Instant,
    ) -> Result<(), OriginateError> {
        let (target, to_uri, peer) = self.destination(to, now)?;
        let target = target.as_str();
        let reason = options.reason;
        let served = other(slot);
        let media_ip = self.cfg.media_ip;
        let call_id = format!("{}@{}", self.token(20), self.public_addr().ip());
        let local_tag = self.token(12);
        let (via, branch) = self.new_via();
        let contact = self.contact();
        let call = self
            .calls
            .get_mut(&key)
            .filter(|c| c.state == super::CallState::Confirmed)
            .ok_or(OriginateError::NotEstablished)?;
        if call.origination.is_some() {
            return Err(OriginateError::Busy);
        }
        let index = match served {
            Leg::A => 0,
            Leg::B => 1,
        };
        let body = call.sdp_state.bodies[index]
            .clone()
            .ok_or(OriginateError::NoSdp)?;
        // The stayer's SDP, anchored as if it were going to the leaving party: the offer names
        // the sockets that face `slot`, with the stayer's codecs and event payload types.
        let offer = super::anchor::anchor_sdp(
            self.media.as_mut(),
            media_ip,
            key,
            served,
            &body,
            &mut call.sdp_state,
        )
        .map_err(|e| OriginateError::Anchor(e.to_string()))?;
        let mut dialog = Dialog {
            call_id: call_id.clone(),
            local_tag,
            remote_tag: None,
            local_uri: without_tag(&call.dialog(served).remote_uri),
            remote_uri: format!("<{to_uri}>"),
            remote_target: target.to_string(),
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
        invite.body = offer.into();
        call.origination = Some(Origination {
            slot,
            dialog,
            branch: ClientKey {
                branch,
                method: Method::Invite,
            },
            invite: invite.clone(),
            auth_tried: false,
            reason,
        });
        let log_id = call.id.clone();
        tracing::info!(call_id = %log_id, new_call_id = %call_id, target, leg = slot.as_str(), "placing a call");
        self.send_request(invite, peer, Purpose::Originate(id), Some((key, slot)), now);
        self.event(
            &log_id,
            CallEvent::LegOriginated {
                leg: slot,
                target: target.to_string(),
                call_id,
            },
        );
        Ok(())
    }

    /// The Request-URI, To URI and next hop of a call to `to`: the PBX, or a device registered
    /// through the proxy (its own Contact over the flow it registered on; through the PBX by
    /// the fallback URI when it is not registered here).
    fn destination(
        &self,
        to: Destination<'_>,
        now: Instant,
    ) -> Result<(String, String, crate::sip::transport::Peer), OriginateError> {
        let upstream = self.upstream_peer();
        match to {
            Destination::Pbx(uri) => {
                let peer = upstream.ok_or(OriginateError::NoUpstream)?;
                Ok((uri.to_string(), uri.to_string(), peer))
            }
            Destination::Device { sip_user, fallback } => {
                match self.registrar.find_user(sip_user, now) {
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

    /// Gives up a call being placed for call `key` (CANCEL before an answer); the module hears
    /// 487 when the PBX confirms, or 408 if it never does.
    pub(super) fn cancel_origination(&mut self, key: CallKey, now: Instant) {
        let Some(origination) = self.calls.get(&key).and_then(|c| c.origination.as_ref()) else {
            return;
        };
        let cancel = crate::sip::txn::cancel_for(&origination.invite);
        let (branch, peer) = (origination.branch.clone(), origination.dialog.peer);
        self.txns.cancel_sent(&branch, now);
        self.send_request(cancel, peer, Purpose::Own, None, now);
    }

    /// A response to a call the proxy placed: a 2xx is acknowledged and the new call takes its
    /// leg's place; any final response goes to the module that asked.
    pub(super) fn on_originate_response(
        &mut self,
        key: CallKey,
        id: ModuleId,
        client_key: &ClientKey,
        resp: SipMessage,
        now: Instant,
    ) {
        let code = resp.status().unwrap_or(500);
        if matches!(code, 401 | 407) && self.answer_challenge(key, id, &resp, now) {
            return;
        }
        if code < 200 {
            if let Some(o) = self
                .calls
                .get_mut(&key)
                .and_then(|c| c.origination.as_mut())
            {
                o.dialog.remote_tag = o.dialog.remote_tag.take().or(resp.to_tag());
            }
            return;
        }
        let Some(mut origination) = self.calls.get_mut(&key).and_then(|c| c.origination.take())
        else {
            // The call ended while ours rang: acknowledge and hang up an answer at once.
            if (200..300).contains(&code) {
                self.ack_and_bye_orphan(client_key, &resp, now);
            }
            return;
        };
        if (200..300).contains(&code) {
            self.acknowledge(&mut origination.dialog, client_key, &resp);
            self.replace_leg(key, origination, &resp, now);
            self.drive_originated(key, id, code, now);
        } else {
            self.drive_originated(key, id, code, now);
        }
    }

    /// A 401/407 to the call being placed: sends the INVITE again with the account's
    /// credentials (`pbx_auth`), once. False when there are none, the challenge is not an MD5
    /// digest, or credentials were already tried; the module then hears the status.
    fn answer_challenge(
        &mut self,
        key: CallKey,
        id: ModuleId,
        resp: &SipMessage,
        now: Instant,
    ) -> bool {
        let proxy = resp.status() == Some(407);
        let (asked, answer) = if proxy {
            (PROXY_AUTHENTICATE, PROXY_AUTHORIZATION)
        } else {
            (WWW_AUTHENTICATE, AUTHORIZATION)
        };
        let Some(challenge) = resp.header(asked).and_then(digest::parse_challenge) else {
            return false;
        };
        let Some(call) = self.calls.get(&key) else {
            return false;
        };
        if call.origination.as_ref().is_none_or(|o| o.auth_tried) {
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
        let dialog = &mut origination.dialog;
        dialog.remote_tag = None;
        let uri = dialog.remote_target.clone();
        let mut invite = dialog.request(Method::Invite, via, &contact, None);
        invite.push_header(CONTENT_TYPE, "application/sdp");
        invite.body = origination.invite.body.clone();
        let value =
            digest::authorization(&challenge, &username, &password, "INVITE", &uri, &cnonce);
        invite.push_header(answer, value);
        origination.auth_tried = true;
        origination.branch = ClientKey {
            branch,
            method: Method::Invite,
        };
        origination.invite = invite.clone();
        let (peer, slot) = (dialog.peer, origination.slot);
        self.send_request(invite, peer, Purpose::Originate(id), Some((key, slot)), now);
        true
    }

    /// No final response to a call the proxy placed: the module hears 408.
    pub(super) fn on_originate_timeout(&mut self, key: CallKey, id: ModuleId, now: Instant) {
        if let Some(call) = self.calls.get_mut(&key) {
            call.origination = None;
        }
        self.drive_originated(key, id, 408, now);
    }

    /// ACKs the 2xx of our INVITE in `dialog`, learning the callee's tag, target and routes.
    fn acknowledge(&mut self, dialog: &mut Dialog, client_key: &ClientKey, resp: &SipMessage) {
        dialog.remote_tag = resp.to_tag();
        dialog.learn_target(resp, true);
        let (via, _) = self.new_via();
        let contact = self.contact();
        let cseq = dialog.local_cseq;
        let mut ack = dialog.request(Method::Ack, via, &contact, Some(cseq));
        super::headers::adapt_to_transport(&mut ack, dialog.peer.transport);
        let bytes = ack.to_bytes();
        self.metrics.record_sip_out_request("ACK");
        self.send_raw(dialog.peer, bytes.clone());
        self.txns.set_ack(client_key, bytes);
    }

    /// The answered call takes `origination.slot`'s place: the leaving party gets a BYE, the
    /// answer's media address becomes that leg's, and the new dialog that leg's dialog.
    fn replace_leg(
        &mut self,
        key: CallKey,
        origination: Origination,
        answer: &SipMessage,
        now: Instant,
    ) {
        let slot = origination.slot;
        let media_ip = self.cfg.media_ip;
        let new_call_id = origination.dialog.call_id.clone();
        self.send_bye(key, slot, origination.reason, now);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if !answer.body.is_empty()
            && let Err(err) = super::anchor::anchor_sdp(
                self.media.as_mut(),
                media_ip,
                key,
                slot,
                &answer.body,
                &mut call.sdp_state,
            )
        {
            tracing::warn!(call_id = %call.id, error = %err, "cannot anchor the answer of a placed call");
        }
        let old = std::mem::replace(call.dialog_mut(slot), origination.dialog);
        let log_id = call.id.clone();
        self.by_call_id.remove(&old.call_id);
        self.by_call_id.insert(new_call_id.clone(), (key, slot));
        tracing::info!(call_id = %log_id, new_call_id = %new_call_id, leg = slot.as_str(), "placed call answered; it replaces the leg");
        self.event(
            &log_id,
            CallEvent::LegReplaced {
                leg: slot,
                call_id: new_call_id,
            },
        );
    }
}
