//! Races around a call the proxy places: the transferor hanging up while the target rings, the
//! takeback's CANCEL crossing the target's 200, a CANCEL that must wait for a provisional
//! response, and the call ending while the target rings.

use crate::base::{CallEvent, Leg};

use super::expect::{req, resp};
use super::harness::Side;
use super::tests_originate::{refer_refused, target_answers};
use super::tests_transfer::transfer_sim;

/// REFER refused, the target rings, and the transferor hangs up; returns the call and the
/// placed INVITE.
fn transferor_leaves_while_ringing(
    sim: &mut super::harness::Sim,
) -> (super::call::Call, crate::sip::SipMessage) {
    let (mut call, invite) = refer_refused(sim, 405);
    let ringing = sim.pbx.response(&invite, 180);
    sim.send(Side::Pbx, &ringing);
    let bye = sim.phone.request(&mut call.phone, "BYE");
    sim.send(Side::Phone, &bye);
    sim.expect(Side::Phone, resp(200, "BYE"));
    (call, invite)
}

/// The transferor hangs up while the target rings: the transferee stays, and when the target
/// answers it takes the transferor's place with no BYE to the party that already left.
#[test]
fn a_transferor_leaving_early_still_gets_the_transferee_to_the_target() {
    let mut sim = transfer_sim(90);
    let (_call, invite) = transferor_leaves_while_ringing(&mut sim);
    sim.settle();
    assert!(
        sim.events_of("call_ended").is_empty(),
        "the transferee waits"
    );
    assert!(
        sim.sounds.iter().any(|(_, _, sound)| matches!(sound,
            crate::audio::SoundRef::Tone(t) if t == "tone_stream://%(2000,4000,440,480)")),
        "the transferee hears Kazoo's ringback: {:?}",
        sim.sounds
    );
    target_answers(&mut sim, &invite);
    sim.settle();
    assert!(
        !sim.take(Side::Phone).iter().any(|m| m.is_request()),
        "nothing more to the transferor"
    );
    assert_eq!(sim.events_of("leg_replaced").len(), 1);
    assert!(sim.events_of("call_ended").is_empty());
    assert!(
        sim.media
            .log()
            .stops
            .iter()
            .any(|&(_, leg, _)| leg == Leg::B),
        "the ringback stops when the target answers"
    );
}

/// The transferor left and the target is busy: nobody is left for the transferee, whose leg is
/// hung up.
#[test]
fn a_transferor_leaving_early_and_a_busy_target_end_the_call() {
    let mut sim = transfer_sim(91);
    let (call, invite) = transferor_leaves_while_ringing(&mut sim);
    let busy = sim.pbx.response(&invite, 486);
    sim.send(Side::Pbx, &busy);
    let transferee_bye = sim.expect(Side::Pbx, req("BYE"));
    assert_eq!(transferee_bye.call_id(), call.b_invite.call_id());
    assert_eq!(
        sim.events_of("leg_origination_failed"),
        [CallEvent::LegOriginationFailed {
            leg: Leg::A,
            status: 486
        }]
    );
}

/// Takeback, and the target's 200 crosses the CANCEL: the proxy ACKs and hangs up the target's
/// call; the transferor keeps the call.
#[test]
fn a_200_crossing_the_takebacks_cancel_is_hung_up() {
    let mut sim = transfer_sim(92);
    let (call, invite) = refer_refused(&mut sim, 501);
    let ringing = sim.pbx.response(&invite, 180);
    sim.send(Side::Pbx, &ringing);
    sim.dial(call.key, Leg::A, "*1");
    sim.expect(Side::Pbx, req("CANCEL"));
    let ok = super::sip::with_body(
        sim.pbx.response(&invite, 200),
        "application/sdp",
        super::sip::ANSWER,
    );
    sim.send(Side::Pbx, &ok);
    sim.expect(Side::Pbx, req("ACK"));
    let bye = sim.expect(Side::Pbx, req("BYE"));
    assert_eq!(
        bye.call_id(),
        invite.call_id(),
        "the target's call is hung up"
    );
    sim.settle();
    assert!(sim.events_of("leg_replaced").is_empty());
    assert!(
        !sim.take(Side::Phone).iter().any(|m| m.is_request()),
        "the transferor keeps the call"
    );
    assert_eq!(
        sim.events_of("transfer_withdrawn"),
        [CallEvent::TransferWithdrawn { status: None }]
    );
}

/// A takeback before any provisional response: the CANCEL waits for the first one.
#[test]
fn a_cancel_waits_for_the_first_provisional_response() {
    let mut sim = transfer_sim(93);
    let (call, invite) = refer_refused(&mut sim, 501);
    sim.dial(call.key, Leg::A, "*1");
    sim.settle();
    assert!(
        !sim.take(Side::Pbx)
            .iter()
            .any(|m| m.method().is_some_and(|m| m.as_str() == "CANCEL")),
        "no CANCEL before a provisional response"
    );
    let ringing = sim.pbx.response(&invite, 180);
    sim.send(Side::Pbx, &ringing);
    let cancel = sim.expect(Side::Pbx, req("CANCEL"));
    assert_eq!(cancel.call_id(), invite.call_id());
}

/// The transferee hangs up while the target rings: the call ends and the target's call is
/// cancelled.
#[test]
fn the_call_ending_while_the_target_rings_cancels_it() {
    let mut sim = transfer_sim(94);
    let (mut call, invite) = refer_refused(&mut sim, 405);
    let ringing = sim.pbx.response(&invite, 180);
    sim.send(Side::Pbx, &ringing);
    let bye = sim.pbx.request(&mut call.pbx, "BYE");
    sim.send(Side::Pbx, &bye);
    sim.expect(Side::Pbx, resp(200, "BYE"));
    let cancel = sim.expect(Side::Pbx, req("CANCEL"));
    assert_eq!(cancel.call_id(), invite.call_id());
    assert_eq!(sim.events_of("call_ended").len(), 1);
}

/// The call ends before the target's first provisional response: the CANCEL goes out when that
/// response comes, though the call is gone.
#[test]
fn a_call_ending_before_any_provisional_cancels_at_the_first_one() {
    let mut sim = transfer_sim(95);
    let (mut call, invite) = refer_refused(&mut sim, 405);
    let bye = sim.pbx.request(&mut call.pbx, "BYE");
    sim.send(Side::Pbx, &bye);
    sim.expect(Side::Pbx, resp(200, "BYE"));
    sim.settle();
    assert_eq!(sim.events_of("call_ended").len(), 1);
    let ringing = sim.pbx.response(&invite, 180);
    sim.send(Side::Pbx, &ringing);
    let cancel = sim.expect(Side::Pbx, req("CANCEL"));
    assert_eq!(cancel.call_id(), invite.call_id());
}
