//! Mid-call signalling: re-INVITEs both ways, session refresh and expiry (RFC 4028), requests
//! for dialogs that do not exist.

use std::time::Duration;

use crate::base::Leg;

use super::call::Call;
use super::expect::{req, resp};
use super::harness::{Side, Sim, addr};
use super::sip::{ANSWER, OFFER, body, cseq, with_body};

/// The PBX moves its media with a re-INVITE: the relay is re-pointed, the phone gets a
/// re-INVITE in its dialog with anchored SDP, the answer and the ACK cross back.
#[test]
fn a_reinvite_from_the_pbx_repoints_media() {
    let mut sim = Sim::new(70);
    let mut call = sim.answered_call();
    let moved = ANSWER.replace("m=audio 7000", "m=audio 7100");
    let reinvite = sim.pbx.request(&mut call.pbx, "INVITE");
    let reinvite = with_body(reinvite, "application/sdp", &moved);
    sim.send(Side::Pbx, &reinvite);
    sim.expect(Side::Pbx, resp(100, "INVITE"));
    let a_reinvite = sim.expect(Side::Phone, req("INVITE"));
    assert_eq!(a_reinvite.call_id(), call.a_invite.call_id());
    assert_eq!(a_reinvite.to_tag(), Some(call.phone.local_tag()));
    let ports = sim.media.ports(call.key);
    assert!(body(&a_reinvite).contains(&format!("m=audio {} ", ports.a.rtp)));
    assert!(
        sim.media
            .log()
            .remotes
            .contains(&(call.key, 0, Leg::B, addr("10.0.0.9:7100")))
    );
    let ok = with_body(
        sim.phone.response(&a_reinvite, 200),
        "application/sdp",
        OFFER,
    );
    sim.send(Side::Phone, &ok);
    let b_ok = sim.expect(Side::Pbx, resp(200, "INVITE"));
    assert_eq!(cseq(&b_ok), cseq(&reinvite));
    assert!(body(&b_ok).contains(&format!("m=audio {} ", ports.b.rtp)));
    let ack = sim.pbx.ack(&call.pbx, cseq(&reinvite));
    sim.send(Side::Pbx, &ack);
    let a_ack = sim.expect(Side::Phone, req("ACK"));
    assert_eq!(cseq(&a_ack), cseq(&a_reinvite));
    assert_eq!(sim.media.log().released, Vec::<u64>::new());
}

/// The phone puts the call on hold with a re-INVITE: it reaches the PBX in the PBX's dialog
/// with the next CSeq of the proxy's side.
#[test]
fn a_reinvite_from_the_phone_reaches_the_pbx_dialog() {
    let mut sim = Sim::new(71);
    let mut call = sim.answered_call();
    let hold = OFFER.replace("a=rtpmap:101", "a=sendonly\r\na=rtpmap:101");
    let reinvite = with_body(
        sim.phone.request(&mut call.phone, "INVITE"),
        "application/sdp",
        &hold,
    );
    sim.send(Side::Phone, &reinvite);
    let b_reinvite = sim.expect(Side::Pbx, req("INVITE"));
    assert_eq!(b_reinvite.call_id(), call.b_invite.call_id());
    assert_eq!(cseq(&b_reinvite), cseq(&call.b_invite) + 1);
    assert!(body(&b_reinvite).contains("a=sendonly"));
    let ok = with_body(
        sim.pbx.response(&b_reinvite, 200),
        "application/sdp",
        ANSWER,
    );
    sim.send(Side::Pbx, &ok);
    sim.expect(Side::Phone, resp(200, "INVITE"));
    let ack = sim.phone.ack(&call.phone, cseq(&reinvite));
    sim.send(Side::Phone, &ack);
    let b_ack = sim.expect(Side::Pbx, req("ACK"));
    assert_eq!(cseq(&b_ack), cseq(&b_reinvite));
}

/// An answered call with `Session-Expires: 90` in the PBX's 200; also returns when the PBX
/// sent that 200.
fn timed_call(sim: &mut Sim) -> (Call, Duration) {
    let (invite, b_invite) = sim.call_reaches_pbx();
    let mut ok = with_body(sim.pbx.response(&b_invite, 200), "application/sdp", ANSWER);
    ok.push_header("Session-Expires", "90;refresher=uac");
    sim.send(Side::Pbx, &ok);
    let answered = sim.elapsed();
    let a_ok = sim.expect(Side::Phone, resp(200, "INVITE"));
    assert_eq!(a_ok.header("Session-Expires"), Some("90;refresher=uac"));
    let phone = super::dialog::UaDialog::uac(&invite, &a_ok, sim.phone.addr);
    let ack = sim.phone.ack(&phone, 1);
    sim.send(Side::Phone, &ack);
    sim.expect(Side::Pbx, req("ACK"));
    let call = Call {
        key: sim.media.last_call(),
        pbx: super::dialog::UaDialog::uas(&b_invite, &ok, sim.pbx.addr),
        phone,
        a_invite: invite,
        b_invite,
    };
    (call, answered)
}

/// Nobody refreshes a 90 s session: both legs get a BYE when it expires (90 s after the proxy
/// saw the 200, which took 10 ms on the wire, and 10 ms more for the BYE), not before.
#[test]
fn an_unrefreshed_session_is_hung_up_when_it_expires() {
    let mut sim = Sim::new(72);
    let (_, answered) = timed_call(&mut sim);
    sim.run_for(Duration::from_secs(89));
    assert!(sim.take(Side::Phone).is_empty() && sim.take(Side::Pbx).is_empty());
    sim.expect(Side::Phone, req("BYE"));
    sim.expect(Side::Pbx, req("BYE"));
    assert_eq!(sim.elapsed() - answered, Duration::from_millis(90_020));
}

/// A refresh re-INVITE answered with `Session-Expires` pushes the deadline: the call outlives
/// the first interval and ends 90 s after the refresh.
#[test]
fn a_refresh_reinvite_keeps_the_session_alive() {
    let mut sim = Sim::new(73);
    let (mut call, _) = timed_call(&mut sim);
    sim.run_for(Duration::from_secs(45));
    let mut refresh = sim.phone.request(&mut call.phone, "INVITE");
    refresh.push_header("Session-Expires", "90;refresher=uac");
    let refresh = with_body(refresh, "application/sdp", OFFER);
    sim.send(Side::Phone, &refresh);
    sim.expect(Side::Phone, resp(100, "INVITE"));
    let b_refresh = sim.expect(Side::Pbx, req("INVITE"));
    let mut ok = with_body(sim.pbx.response(&b_refresh, 200), "application/sdp", ANSWER);
    ok.push_header("Session-Expires", "90;refresher=uac");
    sim.send(Side::Pbx, &ok);
    sim.expect(Side::Phone, resp(200, "INVITE"));
    let refreshed = sim.elapsed();
    let ack = sim.phone.ack(&call.phone, cseq(&refresh));
    sim.send(Side::Phone, &ack);
    sim.expect(Side::Pbx, req("ACK"));
    sim.run_for(Duration::from_secs(80));
    assert!(
        sim.take(Side::Phone).is_empty() && sim.take(Side::Pbx).is_empty(),
        "still up past the first deadline"
    );
    sim.expect(Side::Pbx, req("BYE"));
    assert_eq!(sim.elapsed() - refreshed, Duration::from_secs(90));
}

/// A BYE for a dialog the proxy does not know gets 481, and nothing goes on.
#[test]
fn a_request_for_an_unknown_dialog_gets_481() {
    let mut sim = Sim::new(74);
    let mut call = sim.answered_call();
    sim.hang_up(Side::Phone, &mut call);
    let stray = sim.phone.request(&mut call.phone, "INFO");
    sim.send(Side::Phone, &stray);
    sim.expect(Side::Phone, resp(481, "INFO"));
    sim.settle();
    assert!(sim.take(Side::Pbx).is_empty());
}

/// An INFO without DTMF (any other body) is relayed both ways like any in-dialog request and
/// counts as no digit.
#[test]
fn an_info_without_dtmf_is_relayed_transparently() {
    let mut sim = Sim::new(75);
    let mut call = sim.answered_call();
    let info = with_body(
        sim.pbx.request(&mut call.pbx, "INFO"),
        "application/x-custom",
        "hello",
    );
    sim.send(Side::Pbx, &info);
    let got = sim.expect(Side::Phone, req("INFO"));
    assert_eq!(body(&got), "hello");
    assert_eq!(got.content_type(), Some("application/x-custom"));
    let ok = sim.phone.response(&got, 200);
    sim.send(Side::Phone, &ok);
    sim.expect(Side::Pbx, resp(200, "INFO"));
    assert!(sim.events_of("digit").is_empty());
}
