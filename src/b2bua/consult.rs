//! Attended transfer in the call core: a call the proxy places to a third party that first
//! talks with one leg (the transferor, the *talker*) while the other leg (the transferee) is
//! parked on the same media stream, then either leaves (the two legs are reconnected) or takes
//! a leg's place. Placing and ringing are `originate.rs` (the offer names a consultation port
//! pair instead of the leaving leg's sockets); this file holds the answered consultation: its
//! dialog, the requests the consulted party sends, and the two ways it ends.

use std::net::SocketAddr;
use std::time::Instant;

use crate::base::{CallEvent, CallKey, Leg};
use crate::sdp::{Anchor, Sdp};
use crate::sip::transport::Peer;
use crate::sip::{Method, SipMessage};

use super::B2bua;
use super::dialog::Dialog;
use super::host::ModuleId;
use super::originate::OriginateError;

/// The consulted party of a call, once it answered.
#[derive(Debug)]
pub(super) struct Consulted {
    /// The module that placed the call.
    pub module: ModuleId,
    /// The leg it talks with (the transferor).
    pub talker: Leg,
    /// Its dialog (the proxy is its UAC).
    pub dialog: Dialog,
    /// Its SDP answer: anchored as a leg's SDP when it takes that leg's place.
    pub answer: Vec<u8>,
    /// A leg whose party hung up during the consultation (no BYE is owed to it).
    pub gone: Option<Leg>,
}

/// The offer of a consultation: the transferee's SDP (`body`, already narrowed to the
/// negotiated codecs) with its first audio stream on the consultation's port pair and every
/// other stream disabled (the consultation carries audio only).
pub(super) fn consult_offer(
    media: &mut dyn crate::media::MediaControl,
    media_ip: std::net::IpAddr,
    key: CallKey,
    talker: Leg,
    body: &[u8],
) -> Result<Vec<u8>, OriginateError> {
    let sdp = Sdp::parse(body).map_err(|e| OriginateError::Anchor(e.to_string()))?;
    let audio = sdp
        .media()
        .iter()
        .position(|m| m.kind == "audio" && m.port != 0)
        .ok_or(OriginateError::NoSdp)?;
    let pair = media
        .open_consult(key, talker)
        .map_err(|e| OriginateError::Anchor(e.to_string()))?;
    let anchors: Vec<Option<Anchor>> = (0..sdp.media().len())
        .map(|index| {
            let (rtp_port, rtcp_port) = if index == audio {
                (pair.rtp, pair.rtcp)
            } else {
                (0, 0)
            };
            Some(Anchor {
                addr: media_ip,
                rtp_port,
                rtcp_port,
            })
        })
        .collect();
    crate::sdp::rewrite(body, &anchors).map_err(|e| {
        media.close_consult(key);
        OriginateError::Anchor(e.to_string())
    })
}

/// Where the first audio stream of an SDP answer receives RTP and RTCP.
fn audio_addresses(sdp: &Sdp) -> Option<(SocketAddr, SocketAddr)> {
    let m = sdp
        .media()
        .iter()
        .find(|m| m.kind == "audio" && m.port != 0)?;
    let addr = m
        .connection
        .or(sdp.session_connection())
        .filter(|a| !a.is_unspecified())?;
    let rtcp_port = m
        .rtcp
        .map(|(p, _)| p)
        .unwrap_or_else(|| m.port.saturating_add(1));
    let rtcp_addr = m.rtcp.and_then(|(_, a)| a).unwrap_or(addr);
    Some((
        SocketAddr::new(addr, m.port),
        SocketAddr::new(rtcp_addr, rtcp_port),
    ))
}

impl B2bua {
    /// The consulted party answered (the transferor did not leave meanwhile): it now talks with
    /// the talker. An answer whose audio cannot be reached changes nothing and its dialog is
    /// given back to be hung up.
    pub(super) fn start_consultation(
        &mut self,
        key: CallKey,
        (module, talker): (ModuleId, Leg),
        dialog: Dialog,
        answer: &SipMessage,
    ) -> Result<(), Box<Dialog>> {
        let addresses = Sdp::parse(&answer.body)
            .ok()
            .as_ref()
            .and_then(audio_addresses);
        let Some((rtp, rtcp)) = addresses else {
            tracing::warn!(call_id = %self.call_id_of(key).unwrap_or_default(), "the consulted party answered without usable audio; hung up");
            return Err(Box::new(dialog));
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return Err(Box::new(dialog));
        };
        self.media.set_consult_remote(key, rtp, rtcp);
        tracing::info!(call_id = %call.id, consult_call_id = %dialog.call_id, "the consulted party answered");
        self.consult_by_call_id.insert(dialog.call_id.clone(), key);
        let (log_id, consult_call_id) = (call.id.clone(), dialog.call_id.clone());
        call.consult = Some(Consulted {
            module,
            talker,
            dialog,
            answer: answer.body.to_vec(),
            gone: None,
        });
        let event = CallEvent::LegConsulted {
            leg: talker,
            call_id: consult_call_id,
        };
        self.event(&log_id, event);
        Ok(())
    }

    /// A provisional response with SDP (183 Session Progress: the PBX's ringback, an
    /// announcement) to a call the proxy places. A consultation's talker hears it through the
    /// consultation's ports; once the leaving party is gone, the party that stays hears it (the
    /// new party's media takes the leg's at once); while the leaving party still talks it is
    /// only remembered. The module is told when someone hears it (it stops its own ringback).
    pub(super) fn placed_call_early_media(
        &mut self,
        key: CallKey,
        resp: &SipMessage,
        now: Instant,
    ) {
        if !super::headers::has_sdp(resp) {
            return;
        }
        let addresses = Sdp::parse(&resp.body)
            .ok()
            .as_ref()
            .and_then(audio_addresses);
        let Some((rtp, rtcp)) = addresses else {
            return;
        };
        let Some(origination) = self
            .calls
            .get_mut(&key)
            .and_then(|c| c.origination.as_mut())
            .filter(|o| !o.cancelled && o.forks.len() == 1)
        else {
            return;
        };
        origination.early_sdp = Some(resp.body.clone());
        if origination.consult && !origination.leaving_gone {
            let module = origination.module;
            self.media.set_consult_remote(key, rtp, rtcp);
            self.drive_early_media(key, module, now);
            return;
        }
        self.early_media_to_stayer(key, now);
    }

    /// The leaving party of a call being placed is gone and the new party sent early media: its
    /// media takes the leg's now (the call ends anyway if the new call fails), so the party that
    /// stays hears the new party's progress instead of the proxy's ringback.
    pub(super) fn early_media_to_stayer(&mut self, key: CallKey, now: Instant) {
        let media_ip = self.cfg.media_ip;
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(origination) = call
            .origination
            .as_mut()
            .filter(|o| o.leaving_gone && !o.cancelled && o.forks.len() == 1)
        else {
            return;
        };
        let Some(body) = origination.early_sdp.clone() else {
            return;
        };
        let (slot, module) = (origination.slot, origination.module);
        if !origination.media_taken {
            origination.media_taken = true;
            if origination.consult {
                self.media.consult_takes(key, slot);
            } else {
                self.media.leg_replaced(key, slot);
            }
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if let Err(err) = super::anchor::anchor_sdp(
            self.media.as_mut(),
            media_ip,
            key,
            slot,
            &body,
            &mut call.sdp_state,
        ) {
            tracing::warn!(call_id = %call.id, error = %err, "cannot anchor the early media of a placed call");
            return;
        }
        self.drive_early_media(key, module, now);
    }

    /// A party of a call with an answered consultation hung up: the module hears it (a
    /// transferor leaving completes the transfer) and the call goes on. False when the call
    /// has no consultation, or a party already left during it.
    pub(super) fn consult_party_left(&mut self, key: CallKey, leg: Leg, now: Instant) -> bool {
        let Some(consulted) = self
            .calls
            .get_mut(&key)
            .and_then(|c| c.consult.as_mut())
            .filter(|c| c.gone.is_none())
        else {
            return false;
        };
        consulted.gone = Some(leg);
        let module = consulted.module;
        self.drive_leg_left(key, module, leg, now);
        // A module that did not act (it finished meanwhile) must not leave the call half
        // gone: the consulted party takes the departed party's place.
        let unhandled = self
            .calls
            .get(&key)
            .and_then(|c| c.consult.as_ref())
            .is_some_and(|c| c.gone == Some(leg));
        if unhandled {
            self.complete_consultation(key, leg, now);
        }
        true
    }

    /// Whether call `key` has a consultation, ringing or answered.
    pub(super) fn consulting(&self, key: CallKey) -> bool {
        self.calls.get(&key).is_some_and(|c| {
            c.consult.is_some() || c.origination.as_ref().is_some_and(|o| o.consult)
        })
    }

    /// A request other than BYE from a party of a call that consults: relaying it would reach
    /// the wrong party (the transferor's goes to the parked transferee). An INFO is answered
    /// here and its digit counts (a takeback may come that way); a re-INVITE or UPDATE is
    /// answered 491 (RFC 3261 §14.1: retried later, once the consultation is over); OPTIONS
    /// 200; anything else 403.
    pub(super) fn answer_while_consulting(
        &mut self,
        from: Peer,
        msg: &SipMessage,
        key: CallKey,
        leg: Leg,
        now: Instant,
    ) {
        let method = msg.method().cloned();
        let (code, reason) = match method {
            Some(Method::Invite | Method::Update) => (491, "Request Pending"),
            Some(Method::Info | Method::Options) => (200, "OK"),
            _ => (403, "Forbidden"),
        };
        let resp = SipMessage::response_to(msg, code, reason);
        self.answer_out_of_dialog(from, msg, resp, now);
        if method == Some(Method::Info) {
            let content_type = msg.content_type().unwrap_or("");
            if let Some(digit) = crate::dtmf::sip_info::digit_from_info(content_type, &msg.body) {
                self.on_digit(key, leg, digit, super::codes::DigitSource::Info, now);
            }
        }
    }

    /// The consulted party takes `leg`'s place: its media takes the leg's sockets, its SDP is
    /// anchored as the leg's, the leg's party gets a BYE unless it hung up already, and the
    /// consulted dialog becomes the leg's. False when there is no answered consultation.
    pub(super) fn complete_consultation(&mut self, key: CallKey, leg: Leg, now: Instant) -> bool {
        let media_ip = self.cfg.media_ip;
        let Some(consulted) = self.calls.get_mut(&key).and_then(|c| c.consult.take()) else {
            return false;
        };
        self.consult_by_call_id.remove(&consulted.dialog.call_id);
        self.media.consult_takes(key, leg);
        if let Some(call) = self.calls.get_mut(&key)
            && let Err(err) = super::anchor::anchor_sdp(
                self.media.as_mut(),
                media_ip,
                key,
                leg,
                &consulted.answer,
                &mut call.sdp_state,
            )
        {
            tracing::warn!(call_id = %call.id, error = %err, "cannot anchor the consulted party's answer");
        }
        if consulted.gone != Some(leg) {
            self.send_bye(key, leg, "transferred", now);
        }
        self.install_dialog(key, leg, consulted.dialog);
        true
    }

    /// Ends the consultation without its party: a call still ringing is cancelled (the module
    /// hears its final response), an answered one gets a BYE; the legs hear each other again.
    pub(super) fn end_consultation(&mut self, key: CallKey, now: Instant) {
        let ringing = self
            .calls
            .get(&key)
            .and_then(|c| c.origination.as_ref())
            .is_some_and(|o| o.consult);
        if ringing {
            // The legs hear each other at once, not when the CANCEL's 487 comes back.
            self.cancel_origination(key, now);
            self.media.close_consult(key);
            return;
        }
        let Some(mut consulted) = self.calls.get_mut(&key).and_then(|c| c.consult.take()) else {
            return;
        };
        self.consult_by_call_id.remove(&consulted.dialog.call_id);
        self.bye_dialog(&mut consulted.dialog, now);
        self.media.close_consult(key);
        self.consult_ended(key, &consulted);
    }

    /// Logs that the consulted party left without taking a leg's place.
    fn consult_ended(&mut self, key: CallKey, consulted: &Consulted) {
        if let Some(log_id) = self.call_id_of(key).map(str::to_owned) {
            let event = CallEvent::LegConsultEnded {
                leg: consulted.talker,
                call_id: consulted.dialog.call_id.clone(),
            };
            self.event(&log_id, event);
        }
    }

    /// The call ends with a consultation answered: its party gets a BYE too.
    pub(super) fn drop_consultation(&mut self, consulted: Option<Consulted>, now: Instant) {
        if let Some(mut consulted) = consulted {
            self.consult_by_call_id.remove(&consulted.dialog.call_id);
            self.bye_dialog(&mut consulted.dialog, now);
        }
    }

    /// A request in a consulted party's dialog. A BYE ends the consultation (the module hears
    /// it and reconnects the legs); a re-INVITE or UPDATE is refused 488 (the consultation's
    /// media stays as answered); INFO, OPTIONS and NOTIFY are answered 200 and go nowhere;
    /// anything else (REFER, SUBSCRIBE...) is refused 403, since nothing would follow up.
    pub(super) fn on_consult_request(
        &mut self,
        from: Peer,
        msg: &SipMessage,
        key: CallKey,
        now: Instant,
    ) {
        let method = msg.method().cloned();
        let resp = match method {
            Some(Method::Ack) => return,
            Some(Method::Invite | Method::Update) => {
                SipMessage::response_to(msg, 488, "Not Acceptable Here")
            }
            Some(Method::Bye | Method::Info | Method::Options | Method::Notify) => {
                SipMessage::response_to(msg, 200, "OK")
            }
            _ => SipMessage::response_to(msg, 403, "Forbidden"),
        };
        self.answer_out_of_dialog(from, msg, resp, now);
        if method != Some(Method::Bye) {
            return;
        }
        let Some(consulted) = self.calls.get_mut(&key).and_then(|c| c.consult.take()) else {
            return;
        };
        self.consult_by_call_id.remove(&consulted.dialog.call_id);
        self.media.close_consult(key);
        if let Some(log_id) = self.call_id_of(key).map(str::to_owned) {
            tracing::info!(call_id = %log_id, "the consulted party hung up");
        }
        self.consult_ended(key, &consulted);
        self.drive_consult_left(key, consulted.module, now);
    }

    /// A placed call's dialog becomes `leg`'s: the Call-ID index follows and the event log says
    /// which call now stands in the leg.
    pub(super) fn install_dialog(&mut self, key: CallKey, leg: Leg, dialog: Dialog) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let new_call_id = dialog.call_id.clone();
        let old = std::mem::replace(call.dialog_mut(leg), dialog);
        let log_id = call.id.clone();
        self.by_call_id.remove(&old.call_id);
        self.by_call_id.insert(new_call_id.clone(), (key, leg));
        tracing::info!(call_id = %log_id, new_call_id = %new_call_id, leg = leg.as_str(), "placed call answered; it replaces the leg");
        self.event(
            &log_id,
            CallEvent::LegReplaced {
                leg,
                call_id: new_call_id,
            },
        );
    }
}
