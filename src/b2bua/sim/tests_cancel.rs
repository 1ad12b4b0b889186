//! CANCEL from the phone: before and after the PBX's provisional, crossing the PBX's 200 either
//! way, after the final response, and overtaking its own INVITE.

use std::time::Duration;

use crate::base::CallEvent;

use super::expect::{req, resp};
use super::harness::{Side, Sim};
use super::net::Fate;
use super::sip::{ANSWER, ack_non_2xx, branch, cancel, cseq};

/// The phone cancels a ringing call: 200 to the CANCEL and 487 to the INVITE at once, a CANCEL
/// on the PBX's INVITE transaction, and the PBX's 487 acknowledged by the proxy and not relayed.
#[test]
fn cancel_while_ringing_ends_both_sides() {
    let mut sim = Sim::new(30);
    let (invite, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 180, None);
    sim.expect(Side::Phone, resp(180, "INVITE"));
    sim.send(Side::Phone, &cancel(&invite));
    sim.expect(Side::Phone, resp(200, "CANCEL"));
    let terminated = sim.expect(Side::Phone, resp(487, "INVITE"));
    sim.send(Side::Phone, &ack_non_2xx(&invite, &terminated));
    let b_cancel = sim.expect(Side::Pbx, req("CANCEL"));
    assert_eq!(branch(&b_cancel), branch(&b_invite));
    assert_eq!(cseq(&b_cancel), cseq(&b_invite));
    assert_eq!(b_cancel.call_id(), b_invite.call_id());
    let ok = sim.pbx.response(&b_cancel, 200);
    sim.send(Side::Pbx, &ok);
    sim.pbx_answers(&b_invite, 487, None);
    let ack = sim.expect(Side::Pbx, req("ACK"));
    assert_eq!(branch(&ack), branch(&b_invite));
    sim.run_for(Duration::from_secs(1));
    assert!(
        sim.take(Side::Phone).is_empty(),
        "the PBX's 487 is not relayed"
    );
    assert_eq!(sim.events_of("call_cancelled"), [CallEvent::CallCancelled]);
    assert_eq!(
        sim.events_of("call_ended"),
        [CallEvent::CallEnded {
            outcome: "cancelled",
            answered: false
        }]
    );
    assert_eq!(sim.media.log().released.len(), 1);
}

/// A CANCEL before the PBX sent anything: the phone is answered at once, the PBX's INVITE is
/// cancelled once the PBX shows life, and its 487 ends the call.
#[test]
fn cancel_before_any_provisional_still_ends_the_call() {
    let mut sim = Sim::new(31);
    let (invite, b_invite) = sim.call_reaches_pbx();
    sim.send(Side::Phone, &cancel(&invite));
    sim.expect(Side::Phone, resp(200, "CANCEL"));
    sim.expect(Side::Phone, resp(487, "INVITE"));
    sim.pbx_answers(&b_invite, 180, None);
    let b_cancel = sim.expect(Side::Pbx, req("CANCEL"));
    assert_eq!(branch(&b_cancel), branch(&b_invite));
    let ok = sim.pbx.response(&b_cancel, 200);
    sim.send(Side::Pbx, &ok);
    sim.pbx_answers(&b_invite, 487, None);
    sim.expect(Side::Pbx, req("ACK"));
    sim.settle();
    assert!(
        sim.take(Side::Phone).is_empty(),
        "neither the 180 nor the 487 reaches the phone after its CANCEL"
    );
    assert_eq!(sim.media.log().released.len(), 1);
}

/// RFC 3261 §9.1: a CANCEL must not be sent before a provisional response arrived; it waits
/// for one. Otherwise it may overtake the INVITE at the PBX, which answers it 481 and rings on
/// for a caller long gone.
#[test]
fn cancel_waits_for_the_first_provisional() {
    let mut sim = Sim::new(32);
    let (invite, b_invite) = sim.call_reaches_pbx();
    sim.send(Side::Phone, &cancel(&invite));
    sim.expect(Side::Phone, resp(487, "INVITE"));
    sim.run_for(Duration::from_millis(200));
    assert!(
        sim.take(Side::Pbx).is_empty(),
        "no CANCEL while the PBX has not answered anything"
    );
    sim.pbx_answers(&b_invite, 100, None);
    let b_cancel = sim.expect(Side::Pbx, req("CANCEL"));
    assert_eq!(branch(&b_cancel), branch(&b_invite));
}

/// The phone's CANCEL reaches the proxy just before the PBX's 200: the phone gets 487 and never
/// the 200; the PBX gets the CANCEL, then an ACK and a BYE for its answered dialog.
#[test]
fn cancel_crossing_the_200_hangs_up_the_answered_pbx() {
    let mut sim = Sim::new(33);
    let (invite, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 180, None);
    sim.expect(Side::Phone, resp(180, "INVITE"));
    sim.send(Side::Phone, &cancel(&invite));
    sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    sim.expect(Side::Phone, resp(487, "INVITE"));
    let b_cancel = sim.expect(Side::Pbx, req("CANCEL"));
    let ok = sim.pbx.response(&b_cancel, 200);
    sim.send(Side::Pbx, &ok);
    let ack = sim.expect(Side::Pbx, req("ACK"));
    assert_eq!(ack.to_tag(), sim.pbx.response(&b_invite, 200).to_tag());
    let bye = sim.expect(Side::Pbx, req("BYE"));
    assert_eq!(bye.call_id(), b_invite.call_id());
    let ok = sim.pbx.response(&bye, 200);
    sim.send(Side::Pbx, &ok);
    sim.run_for(Duration::from_secs(2));
    let to_phone: Vec<_> = sim
        .take(Side::Phone)
        .iter()
        .filter_map(|m| m.status())
        .collect();
    assert_eq!(
        to_phone,
        [200],
        "only the 200 to the CANCEL; never the INVITE's 200"
    );
    assert_eq!(
        sim.events_of("call_ended"),
        [CallEvent::CallEnded {
            outcome: "cancelled",
            answered: false
        }]
    );
}

/// The PBX's 200 reaches the proxy (and is relayed) before the phone's CANCEL: the CANCEL gets
/// 200 and has no effect; the call is up and ends later by BYE.
#[test]
fn cancel_after_the_relayed_200_is_answered_and_ignored() {
    let mut sim = Sim::new(34);
    let (invite, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    sim.run_for(Duration::from_millis(15));
    sim.send(Side::Phone, &cancel(&invite));
    let ok = sim.expect(Side::Phone, resp(200, "INVITE"));
    sim.expect(Side::Phone, resp(200, "CANCEL"));
    let mut phone = super::dialog::UaDialog::uac(&invite, &ok, sim.phone.addr);
    let ack = sim.phone.ack(&phone, 1);
    sim.send(Side::Phone, &ack);
    sim.expect(Side::Pbx, req("ACK"));
    sim.run_for(Duration::from_secs(1));
    assert!(sim.take(Side::Phone).is_empty(), "no 487");
    assert!(sim.take(Side::Pbx).is_empty(), "no CANCEL upstream");
    assert!(sim.events_of("call_cancelled").is_empty());
    let bye = sim.phone.request(&mut phone, "BYE");
    sim.send(Side::Phone, &bye);
    sim.expect(Side::Pbx, req("BYE"));
}

/// After a final response the CANCEL gets 200 while the INVITE transaction lives (Timer I,
/// T4 after the ACK), and 481 once it is gone.
#[test]
fn cancel_after_the_final_gets_200_then_481() {
    let mut sim = Sim::new(35);
    for (wait, expected) in [(Duration::from_secs(1), 200), (Duration::from_secs(6), 481)] {
        let (invite, b_invite) = sim.call_reaches_pbx();
        sim.pbx_answers(&b_invite, 486, None);
        let busy = sim.expect(Side::Phone, resp(486, "INVITE"));
        sim.send(Side::Phone, &ack_non_2xx(&invite, &busy));
        sim.expect(Side::Pbx, req("ACK"));
        sim.run_for(wait);
        sim.send(Side::Phone, &cancel(&invite));
        sim.expect(Side::Phone, resp(expected, "CANCEL"));
        sim.settle();
        assert!(sim.take(Side::Pbx).is_empty(), "nothing goes upstream");
        assert!(sim.take(Side::Phone).is_empty(), "no 487");
    }
}

/// A CANCEL that overtakes its INVITE on the network matches nothing: 481. The INVITE that
/// follows starts the call as usual.
#[test]
fn cancel_overtaking_its_invite_gets_481_and_the_invite_goes_on() {
    let mut sim = Sim::new(36);
    sim.net
        .rule(1, Fate::Delay(Duration::from_millis(50)), |d| {
            d.first_line().starts_with("INVITE ")
        });
    let invite = sim.phone.invite(Some(super::sip::OFFER));
    sim.send(Side::Phone, &invite);
    sim.send(Side::Phone, &cancel(&invite));
    sim.expect(Side::Phone, resp(481, "CANCEL"));
    let b_invite = sim.expect(Side::Pbx, req("INVITE"));
    assert!(!b_invite.body.is_empty());
    assert_eq!(sim.event_kinds(), ["call_started"]);
}
