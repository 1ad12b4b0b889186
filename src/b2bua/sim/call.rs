//! The call flows most tests start from, written once: a call reaching the PBX, an answered and
//! acknowledged call, a hang-up. Each step waits for the message it needs, so the flows hold on
//! any network the harness simulates.

use crate::base::{CallKey, Leg};
use crate::sip::SipMessage;

use super::super::Input;
use super::dialog::UaDialog;
use super::expect::{req, resp};
use super::harness::{Side, Sim};
use super::sip::{ANSWER, OFFER, cseq, with_body};

/// An answered, acknowledged call, as both endpoints know it.
pub(super) struct Call {
    /// The key the core gave the call (learned from the media fake).
    pub(super) key: CallKey,
    /// The phone's dialog with the proxy (a-leg).
    pub(super) phone: UaDialog,
    /// The PBX's dialog with the proxy (b-leg).
    pub(super) pbx: UaDialog,
    /// The INVITE the phone sent.
    pub(super) a_invite: SipMessage,
    /// The INVITE the PBX received.
    pub(super) b_invite: SipMessage,
}

impl Sim {
    /// The phone sends a new INVITE with the standard offer, and the PBX receives the proxy's;
    /// returns both. The phone's 100 Trying is taken.
    pub(super) fn call_reaches_pbx(&mut self) -> (SipMessage, SipMessage) {
        let a_invite = self.phone.invite(Some(OFFER));
        self.send(Side::Phone, &a_invite);
        let b_invite = self.expect(Side::Pbx, req("INVITE"));
        self.expect(Side::Phone, resp(100, "INVITE"));
        (a_invite, b_invite)
    }

    /// The PBX answers `invite` with `code` and, when given, an SDP body; returns what it sent.
    pub(super) fn pbx_answers(
        &mut self,
        invite: &SipMessage,
        code: u16,
        sdp: Option<&str>,
    ) -> SipMessage {
        let mut r = self.pbx.response(invite, code);
        if let Some(sdp) = sdp {
            r = with_body(r, "application/sdp", sdp);
        }
        self.send(Side::Pbx, &r);
        r
    }

    /// A call rung (180) and answered (200 with SDP) by the PBX and acknowledged by the phone,
    /// with the ACK delivered to the PBX. Every message of the set-up is taken.
    pub(super) fn answered_call(&mut self) -> Call {
        let (a_invite, b_invite) = self.call_reaches_pbx();
        self.pbx_answers(&b_invite, 180, None);
        self.expect(Side::Phone, resp(180, "INVITE"));
        let ok = self.pbx_answers(&b_invite, 200, Some(ANSWER));
        let a_ok = self.expect(Side::Phone, resp(200, "INVITE"));
        let phone = UaDialog::uac(&a_invite, &a_ok, self.phone.addr);
        let ack = self.phone.ack(&phone, cseq(&a_invite));
        self.send(Side::Phone, &ack);
        self.expect(Side::Pbx, req("ACK"));
        let pbx = UaDialog::uas(&b_invite, &ok, self.pbx.addr);
        Call {
            key: self.media.last_call(),
            phone,
            pbx,
            a_invite,
            b_invite,
        }
    }

    /// A call the phone offers with `offer` and the PBX answers 200 with `answer` (no 180),
    /// acknowledged end to end; returns its key.
    pub(super) fn answered_with(&mut self, offer: &str, answer: &str) -> CallKey {
        let a_invite = self.phone.invite(Some(offer));
        self.send(Side::Phone, &a_invite);
        let b_invite = self.expect(Side::Pbx, req("INVITE"));
        self.pbx_answers(&b_invite, 200, Some(answer));
        let a_ok = self.expect(Side::Phone, resp(200, "INVITE"));
        let phone = UaDialog::uac(&a_invite, &a_ok, self.phone.addr);
        let ack = self.phone.ack(&phone, cseq(&a_invite));
        self.send(Side::Phone, &ack);
        self.expect(Side::Pbx, req("ACK"));
        self.media.last_call()
    }

    /// `side` hangs up `call`: its BYE reaches the other side, which answers 200, and the 200
    /// comes back. Returns the BYE as the other side got it.
    pub(super) fn hang_up(&mut self, side: Side, call: &mut Call) -> SipMessage {
        let bye = match side {
            Side::Phone => self.phone.request(&mut call.phone, "BYE"),
            Side::Pbx => self.pbx.request(&mut call.pbx, "BYE"),
        };
        self.send(side, &bye);
        let other = side.other();
        let got = self.expect(other, req("BYE"));
        let ok = self.ep(other).response(&got, 200);
        self.send(other, &ok);
        self.expect(side, resp(200, "BYE"));
        got
    }
}

impl Sim {
    /// `leg` of call `key` presses `digits`, one RFC 4733 key press each, all at this instant.
    pub(super) fn dial(&mut self, key: CallKey, leg: Leg, digits: &str) {
        for digit in digits.chars() {
            self.input(Input::Digit {
                call: key,
                leg,
                digit,
            });
        }
    }

    /// `side` sends a DTMF key press as SIP INFO (`application/dtmf-relay`) in `dialog`, and
    /// the other side answers the relayed INFO 200.
    pub(super) fn info_digit(&mut self, side: Side, dialog: &mut UaDialog, digit: char) {
        let info = self.ep(side).request(dialog, "INFO");
        let text = format!("Signal={digit}\r\nDuration=160\r\n");
        let info = with_body(info, "application/dtmf-relay", &text);
        self.send(side, &info);
        let other = side.other();
        let relayed = self.expect(other, req("INFO"));
        let ok = self.ep(other).response(&relayed, 200);
        self.send(other, &ok);
        self.expect(side, resp(200, "INFO"));
    }
}
