//! Mid-call signalling: requests inside a dialog are relayed to the other leg as requests of
//! that leg's dialog; their responses come back the same way. Also responses in general, client
//! transaction time-outs, and out-of-dialog requests forwarded upstream.

use std::time::Instant;

use crate::sip::names::{MAX_FORWARDS, VIA};
use crate::sip::transport::Peer;
use crate::sip::txn::{ClientKey, ResponseEvent, ServerKey};
use crate::sip::{Method, SipMessage};

use super::call::{CallState, Outcome, PendingAck, other};
use super::entries::{ClientData, Purpose};
use super::headers::{copy_end_to_end, has_sdp};
use super::{B2bua, Leg};

impl B2bua {
    /// A request with a To tag: find its call and relay it to the other leg.
    pub(super) fn on_in_dialog_request(&mut self, from: Peer, msg: SipMessage, now: Instant) {
        let found = msg.call_id().and_then(|c| self.by_call_id.get(c)).copied();
        let Some((key, leg)) = found.filter(|(k, _)| self.calls.contains_key(k)) else {
            let consulted = msg
                .call_id()
                .and_then(|c| self.consult_by_call_id.get(c))
                .copied();
            match consulted {
                Some(key) => self.on_consult_request(from, &msg, key, now),
                None => self.refuse_unknown_dialog(from, &msg),
            }
            return;
        };
        let max_forwards = msg.max_forwards().unwrap_or(70);
        if max_forwards == 0 {
            let resp = SipMessage::response_to(&msg, 483, "Too Many Hops");
            self.answer_out_of_dialog(from, &msg, resp, now);
            return;
        }
        let Some(method) = msg.method().cloned() else {
            return;
        };
        if let Some(id) = self.module_claiming(key, leg, &msg) {
            // Answered here before anything it triggers (a BYE on success) goes out.
            let ok = SipMessage::response_to(&msg, 200, "OK");
            self.answer_out_of_dialog(from, &msg, ok, now);
            self.module_request(key, id, leg, &msg, now);
            return;
        }
        if method == Method::Bye {
            return self.on_bye(from, &msg, key, leg, max_forwards, now);
        }
        if self.consulting(key) {
            return self.answer_while_consulting(from, &msg, key, leg, now);
        }
        let Some(skey) = ServerKey::of_request(&msg) else {
            return;
        };
        let reliable = from.transport.is_reliable();
        self.txns
            .insert_server(skey.clone(), msg.clone(), from, reliable, Some((key, leg)));
        if method == Method::Invite {
            let trying = SipMessage::response_to(&msg, 100, "Trying");
            if let Some(transmit) = self.txns.respond(&skey, &trying, now) {
                self.send_raw(transmit.to, transmit.bytes);
            }
        }

        let body = if has_sdp(&msg) {
            self.anchor(key, leg, &msg.body)
                .unwrap_or_else(|_| msg.body.to_vec())
        } else {
            msg.body.to_vec()
        };
        let (via, _) = self.new_via();
        let contact = self.contact();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if matches!(method, Method::Invite | Method::Update) {
            call.dialog_mut(leg).learn_contact(&msg);
        }
        let call_id = call.id.clone();
        let target = call.dialog_mut(other(leg));
        let mut req = target.request(method.clone(), via, &contact, None);
        req.set_header(MAX_FORWARDS, max_forwards.saturating_sub(1).to_string());
        copy_end_to_end(&msg, &mut req, &[]);
        req.body = body.into();
        let dest = target.peer;
        let info_digit = (method == Method::Info)
            .then(|| {
                crate::dtmf::sip_info::digit_from_info(msg.content_type().unwrap_or(""), &msg.body)
            })
            .flatten();
        tracing::info!(call_id = %call_id, method = method.as_str(), from_leg = ?leg, "relaying in-dialog request");
        self.send_request(
            req,
            dest,
            Purpose::Relay { server_key: skey },
            Some((key, other(leg))),
            now,
        );
        if let Some(digit) = info_digit {
            self.on_digit(key, leg, digit, super::codes::DigitSource::Info, now);
        }
    }

    /// A response: match it to our client transaction and act per its purpose.
    pub(super) fn handle_response(&mut self, _from: Peer, resp: SipMessage, now: Instant) {
        let (Some((_, method)), Some(code)) = (resp.cseq(), resp.status()) else {
            return;
        };
        let (client_key, data, ack) = match self.txns.on_response(&resp, now) {
            ResponseEvent::Deliver {
                key,
                data,
                ack,
                final_after,
                ..
            } => {
                if let Some(elapsed) = final_after {
                    self.metrics
                        .record_sip_transaction(method.as_str(), elapsed);
                }
                (key, data.clone(), ack)
            }
            ResponseEvent::Absorbed(resend) => {
                // A retransmission: at most our ACK goes out again.
                if let Some(transmit) = resend {
                    self.send_raw(transmit.to, transmit.bytes);
                }
                return;
            }
            ResponseEvent::Stray => {
                tracing::debug!(code, method = method.as_str(), "stray response dropped");
                return;
            }
        };
        if let Some(transmit) = ack {
            self.send_raw(transmit.to, transmit.bytes);
        }
        let ClientData { purpose, call } = data;
        match purpose {
            Purpose::InitialInvite { server_key } => {
                if let Some((key, _)) = call {
                    self.on_initial_invite_response(key, server_key, client_key, resp, now);
                }
            }
            Purpose::Relay { server_key } => {
                self.relay_response(&server_key, call, &client_key, resp, now)
            }
            Purpose::Own => {
                tracing::debug!(code, method = method.as_str(), "response to own request");
            }
            Purpose::Module(id) => {
                if let Some((key, _)) = call {
                    self.module_response(key, id, code, now);
                }
            }
            Purpose::Originate(id) => {
                if let Some((key, _)) = call {
                    self.on_originate_response(key, id, &client_key, resp, now);
                }
            }
            Purpose::Proxied { server_key } => {
                let mut out = resp;
                super::headers::pop_top_via(&mut out);
                if method == Method::Register {
                    let changes = self
                        .registrar
                        .on_register_response(&server_key, &mut out, now);
                    self.report_bindings(changes);
                }
                self.send_on_server(&server_key, out, now);
            }
        }
    }

    /// Relays a response to an in-dialog request back to the leg that sent the request.
    fn relay_response(
        &mut self,
        server_key: &ServerKey,
        call: Option<(super::CallKey, Leg)>,
        client_key: &ClientKey,
        resp: SipMessage,
        now: Instant,
    ) {
        let code = resp.status().unwrap_or(500);
        let Some((key, resp_leg)) = call else { return };
        if code == 100 {
            return;
        }
        let Some(mut out) = self.relayed_response(server_key, &resp) else {
            return;
        };
        let method = resp.cseq().map(|(_, m)| m);
        if has_sdp(&resp)
            && let Ok(body) = self.anchor(key, resp_leg, &resp.body)
        {
            out.body = body.into();
        }
        let is_invite = method == Some(Method::Invite);
        let mut refreshed = false;
        if let Some(call) = self.calls.get_mut(&key) {
            if (200..300).contains(&code) && matches!(method, Some(Method::Invite | Method::Update))
            {
                call.dialog_mut(resp_leg).learn_contact(&resp);
                refreshed = true;
            }
            if is_invite && (200..300).contains(&code) {
                let from_cseq = self
                    .txns
                    .server(server_key)
                    .and_then(|e| e.request().cseq())
                    .map(|(n, _)| n)
                    .unwrap_or(0);
                call.pending_acks.push(PendingAck {
                    from: other(resp_leg),
                    from_cseq,
                    to_cseq: resp.cseq().map(|(n, _)| n).unwrap_or(0),
                    to_branch: client_key.clone(),
                    server_key: server_key.clone(),
                });
            }
        }
        if refreshed {
            self.session_refreshed(key, &resp, now);
        }
        self.send_on_server(server_key, out, now);
    }

    /// A client transaction got no final response in time.
    pub(super) fn on_client_timeout(
        &mut self,
        client_key: &ClientKey,
        data: ClientData,
        now: Instant,
    ) {
        match data.purpose {
            Purpose::InitialInvite { server_key } => {
                let Some((key, _)) = data.call else { return };
                let Some(call) = self.calls.get(&key) else {
                    return; // the proxy ended it already; only the transaction was waiting
                };
                // Timer B, or the give-up 64*T1 after our CANCEL: a call the caller cancelled
                // stays `cancelled` (its 487 went out already); any other failed.
                let outcome = if call.state == CallState::Ending {
                    Outcome::Cancelled
                } else {
                    Outcome::Failed
                };
                let tag = call.a.local_tag.clone();
                self.send_final_to_a(&server_key, 408, "Request Timeout", Some(&tag), now);
                self.end_call(key, outcome, now);
            }
            Purpose::Relay { server_key } => self.answer_timeout(&server_key, now),
            Purpose::Module(id) => {
                if let Some((key, _)) = data.call {
                    // No final response in time: the module sees a 408, as RFC 3261 says.
                    self.module_response(key, id, 408, now);
                }
            }
            Purpose::Originate(id) => {
                if let Some((key, _)) = data.call {
                    self.on_originate_timeout(key, id, client_key, now);
                }
            }
            Purpose::Proxied { server_key } => {
                self.registrar.forget_pending(&server_key);
                self.answer_timeout(&server_key, now);
            }
            Purpose::Own => {}
        }
    }

    /// The request we passed on for the server transaction `server_key` got no final response
    /// in time: its sender gets a 408 (RFC 3261 §16.8 for a proxy), which also puts the server
    /// transaction on Timer J, so it ends by its own timers whatever the far side does.
    fn answer_timeout(&mut self, server_key: &ServerKey, now: Instant) {
        let Some(entry) = self.txns.server(server_key) else {
            return;
        };
        if entry.has_final() {
            return;
        }
        let mut resp = SipMessage::response_to(entry.request(), 408, "Request Timeout");
        if resp.to_tag().is_none() {
            let tag = self.token(12);
            super::invite::add_to_tag(&mut resp, &tag);
        }
        self.send_on_server(server_key, resp, now);
    }

    /// An out-of-dialog request that is not for the proxy itself (MESSAGE, SUBSCRIBE,
    /// REGISTER...): forwarded upstream statelessly with our Via on top.
    pub(super) fn proxy_out_of_dialog(&mut self, from: Peer, mut msg: SipMessage, now: Instant) {
        let from_pbx = self.is_pbx(from);
        let Some(upstream) = self.upstream_peer().filter(|_| !from_pbx) else {
            let resp = SipMessage::response_to(&msg, 404, "Not Found");
            return self.answer_out_of_dialog(from, &msg, resp, now);
        };
        let max_forwards = msg.max_forwards().unwrap_or(70);
        if max_forwards == 0 {
            let resp = SipMessage::response_to(&msg, 483, "Too Many Hops");
            return self.answer_out_of_dialog(from, &msg, resp, now);
        }
        let (Some(skey), Some(method)) = (ServerKey::of_request(&msg), msg.method().cloned())
        else {
            return;
        };
        if method == Method::Register
            && !self.registrar.admits(&msg, self.cfg.max_registrations, now)
        {
            self.stats.rejected(super::stats::Limit::Registrations);
            let resp = SipMessage::response_to(&msg, 503, "Too Many Registrations");
            return self.answer_out_of_dialog(from, &msg, resp, now);
        }
        let reliable = from.transport.is_reliable();
        self.txns
            .insert_server(skey.clone(), msg.clone(), from, reliable, None);
        let (via, _) = self.new_via();
        msg.prepend_header(VIA, via);
        msg.set_header(MAX_FORWARDS, max_forwards.saturating_sub(1).to_string());
        if method == Method::Register {
            let hostport = super::core::fmt_hostport(self.public_addr());
            self.registrar.rewrite_register(
                &skey,
                &mut msg,
                from,
                &hostport,
                upstream.transport,
                now,
            );
        }
        self.send_request(
            msg,
            upstream,
            Purpose::Proxied { server_key: skey },
            None,
            now,
        );
    }
}
