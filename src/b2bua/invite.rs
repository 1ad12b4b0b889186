//! Call set-up: a new INVITE from a phone, the PBX's answers to it, CANCEL and the ACK.

use std::time::Instant;

use crate::base::CallEvent;
use crate::sip::names::{CONTACT, FROM, MAX_FORWARDS, TO};
use crate::sip::transport::Peer;
use crate::sip::txn::{ClientKey, ServerKey};
use crate::sip::{Method, SipMessage};

use super::anchor::{SdpState, anchor_sdp};
use super::call::{Call, CallState, Outcome, PendingAck};
use super::core::request_uri;
use super::dialog::{Dialog, without_tag};
use super::entries::Purpose;
use super::headers::{copy_end_to_end, has_sdp};
use super::{B2bua, Leg};

impl B2bua {
    /// A new INVITE (no To tag): create the call, answer 100, send our INVITE upstream.
    pub(super) fn on_new_invite(&mut self, from: Peer, msg: SipMessage, now: Instant) {
        let refuse = |this: &mut Self, code: u16, reason: &str| {
            let resp = SipMessage::response_to(&msg, code, reason);
            this.answer_out_of_dialog(from, &msg, resp, now);
            this.metrics.call_refused();
        };
        if self.shutting_down {
            return refuse(self, 503, "Service Unavailable");
        }
        let Some(upstream) = self.upstream_peer() else {
            return refuse(self, 503, "No Upstream Configured");
        };
        // A call from the PBX goes to the phone registered under its Request-URI; a call from
        // anywhere else goes to the PBX.
        let inbound = self.is_pbx(from);
        let (b_peer, b_target, resolve_as) = if inbound {
            let binding = request_uri(&msg).and_then(|u| self.registrar.lookup(u, now));
            let Some(binding) = binding else {
                return refuse(self, 404, "Not Found");
            };
            let mut as_dialed = msg.clone();
            if let crate::sip::StartLine::Request { uri, .. } = &mut as_dialed.start {
                *uri = binding.aor.clone();
            }
            (binding.source, binding.contact.clone(), as_dialed)
        } else {
            let target = request_uri(&msg).unwrap_or_default().to_string();
            (upstream, target, msg.clone())
        };
        if self.calls.len() >= self.cfg.max_calls {
            self.stats.rejected(super::stats::Limit::Calls);
            return refuse(self, 503, "Too Many Calls");
        }
        let max_forwards = msg.max_forwards().unwrap_or(70);
        if max_forwards == 0 {
            return refuse(self, 483, "Too Many Hops");
        }
        let (Some(call_id), Some(key_a), Some((cseq, _))) =
            (msg.call_id(), ServerKey::of_request(&msg), msg.cseq())
        else {
            return refuse(self, 400, "Bad Request");
        };
        if self.by_call_id.contains_key(call_id) {
            return refuse(self, 482, "Loop Detected");
        }
        let (Some(from_v), Some(to_v), Some(ruri)) =
            (msg.header(FROM), msg.header(TO), request_uri(&msg))
        else {
            return refuse(self, 400, "Bad Request");
        };
        let key = self.next_key;
        self.next_key += 1;
        let a_tag = self.token(12);
        let a_cseq = self.rng.u32(1..10_000);
        let mut a = Dialog {
            call_id: call_id.to_string(),
            local_tag: a_tag,
            remote_tag: msg.from_tag(),
            local_uri: without_tag(to_v),
            remote_uri: without_tag(from_v),
            remote_target: ruri.to_string(),
            route_set: Vec::new(),
            local_cseq: a_cseq,
            peer: from,
        };
        a.learn_target(&msg, false);
        let retry = self
            .auth_retries
            .remove(call_id)
            .filter(|(_, _, until)| *until > now);
        let (b_call_id, b_tag) = match retry {
            Some((cid, tag, _)) => (cid, tag),
            None => (
                format!("{}@{}", self.token(20), self.public_addr().ip()),
                self.token(12),
            ),
        };
        let mut b = Dialog {
            call_id: b_call_id,
            local_tag: b_tag,
            remote_tag: None,
            local_uri: without_tag(from_v),
            remote_uri: without_tag(to_v),
            remote_target: b_target,
            route_set: Vec::new(),
            local_cseq: cseq,
            peer: b_peer,
        };
        tracing::info!(call_id = %a.call_id, peer = %from, b_call_id = %b.call_id, "new call");

        // Server transaction for the caller's INVITE, answered 100 at once. Its final responses
        // are retransmitted until the ACK even over TCP (not `reliable`).
        let trying = SipMessage::response_to(&msg, 100, "Trying");
        self.txns
            .insert_server(key_a.clone(), msg.clone(), from, false, Some((key, Leg::A)));
        if let Some(transmit) = self.txns.respond(&key_a, &trying, now) {
            self.metrics.record_sip_out_response(100);
            self.send_raw(transmit.to, transmit.bytes);
        }

        let resolved = self.resolver.resolve(&resolve_as, inbound);
        let attached: Vec<_> = resolved
            .iter()
            .map(|mf| crate::base::AttachedMetaflow {
                owner: mf.owner,
                scope: mf.scope.clone(),
            })
            .collect();
        let collectors: Vec<_> = resolved
            .iter()
            .map(super::codes::CallCollector::new)
            .collect();
        let mut sdp_state = SdpState {
            suppress: super::codes::suppress_bindings(&collectors),
            inband: super::codes::inband_modes(&collectors),
            ..SdpState::default()
        };
        let has_media = has_sdp(&msg);
        let body = if has_media {
            match anchor_sdp(
                self.media.as_mut(),
                self.cfg.media_ip,
                key,
                Leg::A,
                &msg.body,
                &mut sdp_state,
            ) {
                Ok(b) => b,
                Err(err) => {
                    tracing::warn!(call_id = %a.call_id, error = %err, "cannot anchor offer");
                    self.media.release_call(key);
                    let code = match err {
                        super::anchor::AnchorError::Sdp(_) => 488,
                        super::anchor::AnchorError::Media(_) => 503,
                    };
                    let tag = self.token(12);
                    self.send_final_to_a(&key_a, code, "Media Anchoring Failed", Some(&tag), now);
                    self.metrics.call_refused();
                    return;
                }
            }
        } else {
            msg.body.to_vec()
        };
        let (via, branch) = self.new_via();
        let contact = self.contact();
        let mut invite = b.request(Method::Invite, via, &contact, Some(cseq));
        invite.set_header(MAX_FORWARDS, max_forwards.saturating_sub(1).to_string());
        copy_end_to_end(&msg, &mut invite, &[]);
        invite.body = body.into();
        let account_id = self.resolver.account_of(&resolve_as, inbound);
        let mut call = Call {
            account_id: account_id.clone(),
            id: a.call_id.clone(),
            a,
            b,
            origination: None,
            consult: None,
            state: CallState::Inviting,
            a_invite_key: key_a.clone(),
            b_invite_branch: ClientKey {
                branch,
                method: Method::Invite,
            },
            pending_acks: Vec::new(),
            answered: None,
            has_media: false,
            sdp_state,
            recording: false,
            session_deadline: None,
            timer_c: None,
            no_answer_at: None,
            modules: Vec::new(),
            playbacks: Vec::new(),
            held: [false; 2],
            collectors,
            deferred_recording: None,
        };
        call.has_media = has_media;
        let started = CallEvent::CallStarted {
            from: call.a.remote_uri.clone(),
            to: call.a.local_uri.clone(),
            b_call_id: call.b.call_id.clone(),
            source: from.to_string(),
            account_id,
            metaflows: attached,
        };
        self.by_call_id
            .insert(call.a.call_id.clone(), (key, Leg::A));
        self.by_call_id
            .insert(call.b.call_id.clone(), (key, Leg::B));
        let call_id = call.id.clone();
        self.calls.insert(key, call);
        self.metrics.call_started();
        self.event(&call_id, started);
        self.send_request(
            invite,
            b_peer,
            Purpose::InitialInvite { server_key: key_a },
            Some((key, Leg::B)),
            now,
        );
        self.arm_timer_c(key, now);
    }

    /// Sends a final (or provisional) response on the caller's INVITE transaction.
    pub(super) fn send_final_to_a(
        &mut self,
        server_key: &ServerKey,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
        now: Instant,
    ) {
        let Some(entry) = self.txns.server(server_key) else {
            return;
        };
        if entry.has_final() {
            return;
        }
        let mut resp = SipMessage::response_to(entry.request(), code, reason);
        if let Some(tag) = to_tag {
            add_to_tag(&mut resp, tag);
        }
        self.send_on_server(server_key, resp, now);
    }

    /// Sends `resp` on server transaction `key`, recording it for retransmissions.
    pub(super) fn send_on_server(&mut self, key: &ServerKey, mut resp: SipMessage, now: Instant) {
        let Some(entry) = self.txns.server(key) else {
            return;
        };
        let source = entry.source();
        super::headers::copy_record_route(entry.request(), &mut resp);
        super::headers::adapt_to_transport(&mut resp, source.transport);
        let Some(transmit) = self.txns.respond(key, &resp, now) else {
            return;
        };
        self.metrics
            .record_sip_out_response(resp.status().unwrap_or(500));
        self.send_raw(transmit.to, transmit.bytes);
    }

    /// A response from the PBX to our initial INVITE.
    pub(super) fn on_initial_invite_response(
        &mut self,
        key: super::CallKey,
        server_key: ServerKey,
        client_key: ClientKey,
        resp: SipMessage,
        now: Instant,
    ) {
        let code = resp.status().unwrap_or(500);
        let ending = self
            .calls
            .get(&key)
            .is_some_and(|c| c.state == CallState::Ending);
        if ending && code < 200 {
            // The caller cancelled before the PBX said anything: now our CANCEL may go.
            self.cancel_client_invite(&client_key, now);
            return;
        }
        if code == 100 {
            return;
        }
        let Some(call) = self.calls.get_mut(&key) else {
            // The proxy ended the call before the PBX answered (Timer C, the no-answer limit,
            // shutdown): a 2xx is acknowledged and hung up, and a first provisional lets the
            // CANCEL that had to wait for it (RFC 3261 §9.1) go out.
            if (200..300).contains(&code) {
                self.ack_and_bye_orphan(&client_key, &resp, now);
            } else if code < 200 {
                self.cancel_client_invite(&client_key, now);
            }
            return;
        };
        let call_id = call.id.clone();
        if call.state == CallState::Ending {
            // Cancelled meanwhile: a 2xx that crossed our CANCEL is acknowledged and hung up.
            if (200..300).contains(&code) {
                self.ack_and_bye_orphan(&client_key, &resp, now);
            }
            if code >= 200 {
                self.end_call(key, Outcome::Cancelled, now);
            }
            return;
        }
        let a_tag = call.a.local_tag.clone();
        if code < 300
            && let Some(tag) = resp.to_tag()
        {
            call.b.remote_tag = Some(tag);
            call.b.learn_target(&resp, true);
        }
        if (101..200).contains(&code) && call.state == CallState::Inviting {
            call.state = CallState::Early;
        }
        if (101..200).contains(&code) {
            self.on_provisional(key, now);
        } else if code >= 200 {
            self.clear_setup_timers(key);
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if (200..300).contains(&code) {
            call.state = CallState::Answered;
            call.answered = Some(now);
            let from_cseq = self
                .txns
                .server(&server_key)
                .and_then(|e| e.request().cseq())
                .map(|(n, _)| n)
                .unwrap_or(0);
            let to_cseq = resp.cseq().map(|(n, _)| n).unwrap_or(0);
            call.pending_acks.push(PendingAck {
                from: Leg::A,
                from_cseq,
                to_cseq,
                to_branch: client_key.clone(),
                server_key: server_key.clone(),
            });
            self.session_refreshed(key, &resp, now);
            tracing::info!(call_id = %call_id, code, "call answered");
            self.event(&call_id, CallEvent::CallAnswered);
        }
        let Some(mut out) = self.relayed_response(&server_key, &resp) else {
            return;
        };
        add_to_tag(&mut out, &a_tag);
        if has_sdp(&resp) {
            match self.anchor(key, Leg::B, &resp.body) {
                Ok(body) => out.body = body.into(),
                Err(err) => {
                    tracing::warn!(call_id = %call_id, error = %err, "cannot anchor answer");
                }
            }
        }
        self.send_on_server(&server_key, out, now);
        if (200..300).contains(&code) {
            // After the answer's SDP is anchored, so its codecs are known.
            self.start_deferred_recording(key);
        }
        if matches!(code, 401 | 407)
            && let Some(call) = self.calls.get(&key)
        {
            let until = now + self.cfg.timers.t64();
            self.auth_retries.retain(|_, (_, _, t)| *t > now);
            self.auth_retries.insert(
                call_id.clone(),
                (call.b.call_id.clone(), call.b.local_tag.clone(), until),
            );
        }
        if code >= 300 {
            tracing::info!(call_id = %call_id, code, "call rejected by upstream");
            self.event(&call_id, CallEvent::CallRejected { code });
            self.end_call(key, Outcome::Rejected, now);
        }
    }

    /// Builds the response for the originator of server transaction `server_key` from the
    /// response `resp` the other leg sent: same status, end-to-end headers and body.
    pub(super) fn relayed_response(
        &self,
        server_key: &ServerKey,
        resp: &SipMessage,
    ) -> Option<SipMessage> {
        let entry = self.txns.server(server_key)?;
        let (code, reason) = match &resp.start {
            crate::sip::StartLine::Response { code, reason } => (*code, reason.clone()),
            crate::sip::StartLine::Request { .. } => return None,
        };
        let mut out = SipMessage::response_to(entry.request(), code, &reason);
        if resp.header(CONTACT).is_some() {
            out.push_header(CONTACT, self.contact());
        }
        copy_end_to_end(resp, &mut out, &[]);
        out.body = resp.body.clone();
        Some(out)
    }
}

/// Adds a To tag to a response that has none yet.
pub(super) fn add_to_tag(resp: &mut SipMessage, tag: &str) {
    if resp.to_tag().is_some() {
        return;
    }
    if let Some(to) = resp.header(TO).map(str::to_string) {
        resp.set_header(TO, format!("{to};tag={tag}"));
    }
}
