//! Calls on hold and the media timeout: the core tells the media plane each leg's SDP
//! direction per stream (so a held call gets the on-hold timeout), and arms the timeout only
//! when the caller's ACK confirms the call.

use crate::base::Leg;
use crate::media::SdpDirection;

use super::call::Call;
use super::expect::{req, resp};
use super::harness::{Side, Sim};
use super::sip::{ANSWER, OFFER, cseq, with_body};

/// The phone sends a re-INVITE with `offer`, the PBX answers it with `answer`, the ACK crosses.
fn phone_reinvites(sim: &mut Sim, call: &mut Call, offer: &str, answer: &str) {
    let reinvite = with_body(
        sim.phone.request(&mut call.phone, "INVITE"),
        "application/sdp",
        offer,
    );
    sim.send(Side::Phone, &reinvite);
    let b_reinvite = sim.expect(Side::Pbx, req("INVITE"));
    let ok = with_body(
        sim.pbx.response(&b_reinvite, 200),
        "application/sdp",
        answer,
    );
    sim.send(Side::Pbx, &ok);
    sim.expect(Side::Phone, resp(200, "INVITE"));
    let ack = sim.phone.ack(&call.phone, cseq(&reinvite));
    sim.send(Side::Phone, &ack);
    sim.expect(Side::Pbx, req("ACK"));
}

/// The latest direction the core gave stream 0 of `call` for `leg`.
fn direction(sim: &Sim, call: &Call, leg: Leg) -> Option<SdpDirection> {
    sim.media
        .log()
        .directions
        .iter()
        .rev()
        .find(|(c, i, l, _)| *c == call.key && *i == 0 && *l == leg)
        .map(|(_, _, _, d)| *d)
}

/// Answered, not yet acknowledged: the media timeout waits. The caller's ACK arms it, once;
/// the ACK of a later re-INVITE does not arm it again.
#[test]
fn the_media_timeout_is_armed_by_the_callers_ack_not_the_answer() {
    let mut sim = Sim::new(90);
    let (a_invite, b_invite) = sim.call_reaches_pbx();
    let ok = sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    let a_ok = sim.expect(Side::Phone, resp(200, "INVITE"));
    let key = sim.media.last_call();
    assert!(
        sim.media.log().armed.is_empty(),
        "armed before the caller's ACK"
    );
    let mut call = Call {
        key,
        phone: super::dialog::UaDialog::uac(&a_invite, &a_ok, sim.phone.addr),
        pbx: super::dialog::UaDialog::uas(&b_invite, &ok, sim.pbx.addr),
        a_invite: a_invite.clone(),
        b_invite,
    };
    let ack = sim.phone.ack(&call.phone, cseq(&a_invite));
    sim.send(Side::Phone, &ack);
    sim.expect(Side::Pbx, req("ACK"));
    assert_eq!(sim.media.log().armed, [key]);

    phone_reinvites(&mut sim, &mut call, OFFER, ANSWER);
    assert_eq!(sim.media.log().armed, [key], "a re-INVITE's ACK re-arms");
}

/// A call set up with plain SDP is `sendrecv` on both legs; the phone's `a=sendonly`
/// re-INVITE and the PBX's `a=recvonly` answer reach the media plane, and taking the call off
/// hold (`sendrecv` again) does too.
#[test]
fn a_sendonly_reinvite_tells_media_the_stream_is_held_and_unhold_restores_it() {
    let mut sim = Sim::new(91);
    let mut call = sim.answered_call();
    assert_eq!(direction(&sim, &call, Leg::A), Some(SdpDirection::SendRecv));
    assert_eq!(direction(&sim, &call, Leg::B), Some(SdpDirection::SendRecv));

    let hold = OFFER.replace("a=rtpmap:101", "a=sendonly\r\na=rtpmap:101");
    let held = ANSWER.replace("a=rtpmap:96", "a=recvonly\r\na=rtpmap:96");
    phone_reinvites(&mut sim, &mut call, &hold, &held);
    assert_eq!(direction(&sim, &call, Leg::A), Some(SdpDirection::SendOnly));
    assert_eq!(direction(&sim, &call, Leg::B), Some(SdpDirection::RecvOnly));

    phone_reinvites(&mut sim, &mut call, OFFER, ANSWER);
    assert_eq!(direction(&sim, &call, Leg::A), Some(SdpDirection::SendRecv));
    assert_eq!(direction(&sim, &call, Leg::B), Some(SdpDirection::SendRecv));
}

/// RFC 3264 §8.4 old-style hold (`c=0.0.0.0`, no direction attribute) counts as `sendonly`,
/// and a session-level `a=inactive` applies to the stream.
#[test]
fn old_style_hold_and_session_level_inactive_are_held() {
    let mut sim = Sim::new(92);
    let mut call = sim.answered_call();
    let old_style = OFFER.replace("c=IN IP4 10.0.0.5", "c=IN IP4 0.0.0.0");
    phone_reinvites(&mut sim, &mut call, &old_style, ANSWER);
    assert_eq!(direction(&sim, &call, Leg::A), Some(SdpDirection::SendOnly));

    let inactive = OFFER.replace("t=0 0\r\n", "t=0 0\r\na=inactive\r\n");
    phone_reinvites(&mut sim, &mut call, &inactive, ANSWER);
    assert_eq!(direction(&sim, &call, Leg::A), Some(SdpDirection::Inactive));
}

/// A stream a re-INVITE disables (port 0) carries nothing, so it counts as inactive rather
/// than keep the call from being on hold with the direction it had before.
#[test]
fn a_disabled_stream_is_inactive() {
    let mut sim = Sim::new(93);
    let mut call = sim.answered_call();
    let disabled = OFFER.replace("m=audio 6000", "m=audio 0");
    phone_reinvites(&mut sim, &mut call, &disabled, ANSWER);
    assert_eq!(direction(&sim, &call, Leg::A), Some(SdpDirection::Inactive));
}
