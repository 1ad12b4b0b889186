//! Call set-up and tear-down on a clean network: what each side sees of a call through the
//! proxy.

use crate::base::{CallEvent, Leg};

use super::expect::{req, resp};
use super::harness::{PBX, PHONE, PROXY, Side, Sim, addr};
use super::sip::{ANSWER, OFFER, ack_non_2xx, body, branch, cseq, uri_of};

/// The PBX gets its own dialog (Call-ID, tag), one hop less, the caller's end-to-end headers and
/// an SDP pointing at the proxy; ringing and answer come back in the caller's dialog with one
/// To tag; the answer's SDP points at the proxy too; the ACK crosses.
#[test]
fn a_call_crosses_as_two_dialogs_with_anchored_sdp() {
    let mut sim = Sim::new(1);
    let (a_invite, b_invite) = sim.call_reaches_pbx();
    assert_ne!(b_invite.call_id(), a_invite.call_id());
    assert_ne!(b_invite.from_tag(), a_invite.from_tag());
    assert_eq!(b_invite.max_forwards(), Some(69));
    assert_eq!(b_invite.header("User-Agent"), Some("sim-phone"));
    assert_eq!(b_invite.request_uri(), a_invite.request_uri());
    assert!(uri_of(&b_invite, "Contact").contains(PROXY));
    let key = sim.media.last_call();
    let ports = sim.media.ports(key);
    let offer = body(&b_invite);
    assert!(offer.contains("c=IN IP4 192.0.2.1"), "{offer}");
    assert!(
        offer.contains(&format!("m=audio {} ", ports.b.rtp)),
        "{offer}"
    );
    assert!(
        sim.media
            .log()
            .remotes
            .contains(&(key, 0, Leg::A, addr("10.0.0.5:6000")))
    );

    sim.pbx_answers(&b_invite, 180, None);
    let ringing = sim.expect(Side::Phone, resp(180, "INVITE"));
    assert_eq!(ringing.call_id(), a_invite.call_id());
    let a_tag = ringing.to_tag().unwrap();
    sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    let ok = sim.expect(Side::Phone, resp(200, "INVITE"));
    assert_eq!(
        ok.to_tag().unwrap(),
        a_tag,
        "one To tag for the caller's dialog"
    );
    assert!(uri_of(&ok, "Contact").contains(PROXY));
    let answer = body(&ok);
    assert!(
        answer.contains(&format!("m=audio {} ", ports.a.rtp)),
        "{answer}"
    );
    assert!(
        sim.media
            .log()
            .remotes
            .contains(&(key, 0, Leg::B, addr("10.0.0.9:7000")))
    );
    assert!(
        sim.media.log().armed.is_empty(),
        "media timeout not armed before the caller's ACK"
    );

    let dialog = super::dialog::UaDialog::uac(&a_invite, &ok, addr(PHONE));
    let ack = sim.phone.ack(&dialog, cseq(&a_invite));
    sim.send(Side::Phone, &ack);
    let b_ack = sim.expect(Side::Pbx, req("ACK"));
    assert_eq!(
        sim.media.log().armed,
        vec![key],
        "media timeout armed by the ACK"
    );
    assert_eq!(b_ack.call_id(), b_invite.call_id());
    assert_eq!(cseq(&b_ack), cseq(&b_invite));
    assert_eq!(b_ack.to_tag(), sim.pbx.response(&b_invite, 200).to_tag());
    assert_eq!(
        sim.event_kinds(),
        ["call_started", "call_answered"],
        "no event for the ACK"
    );
    match &sim.events[0].1 {
        CallEvent::CallStarted {
            b_call_id, source, ..
        } => {
            assert_eq!(Some(b_call_id.as_str()), b_invite.call_id());
            assert_eq!(source, &format!("udp:{PHONE}"));
        }
        other => panic!("{other:?}"),
    }
}

/// A BYE from the phone reaches the PBX in the PBX's dialog, its 200 comes back, and the call's
/// media is released with an `answered` outcome.
#[test]
fn bye_from_the_phone_ends_both_dialogs_and_releases_media() {
    let mut sim = Sim::new(2);
    let mut call = sim.answered_call();
    let bye = sim.hang_up(Side::Phone, &mut call);
    assert_eq!(bye.call_id(), call.b_invite.call_id());
    assert_eq!(bye.from_tag(), call.b_invite.from_tag());
    assert_eq!(bye.to_tag(), Some(call.pbx.local_tag()));
    assert!(cseq(&bye) > cseq(&call.b_invite));
    assert_eq!(sim.media.log().released, vec![call.key]);
    assert_eq!(
        sim.events_of("call_ended"),
        [CallEvent::CallEnded {
            outcome: "answered",
            answered: true
        }]
    );
}

/// A BYE from the PBX reaches the phone in the phone's dialog: the proxy's To tag as From tag,
/// the phone's tag as To tag, the phone's Contact as Request-URI.
#[test]
fn bye_from_the_pbx_reaches_the_phone_in_its_dialog() {
    let mut sim = Sim::new(3);
    let mut call = sim.answered_call();
    let bye = sim.hang_up(Side::Pbx, &mut call);
    assert_eq!(bye.call_id(), call.a_invite.call_id());
    assert_eq!(bye.to_tag(), Some(call.phone.local_tag()));
    assert_eq!(
        bye.request_uri(),
        Some(uri_of(&call.a_invite, "Contact").as_str())
    );
    assert_eq!(sim.media.log().released, vec![call.key]);
}

/// A 486 is relayed to the phone; the proxy ACKs the PBX on the INVITE's branch itself and
/// absorbs the phone's ACK; the call is over as `rejected`.
#[test]
fn busy_is_relayed_and_each_hop_acknowledged() {
    let mut sim = Sim::new(4);
    let (a_invite, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 486, None);
    let busy = sim.expect(Side::Phone, resp(486, "INVITE"));
    let b_ack = sim.expect(Side::Pbx, req("ACK"));
    assert_eq!(branch(&b_ack), branch(&b_invite));
    let ack = ack_non_2xx(&a_invite, &busy);
    sim.send(Side::Phone, &ack);
    sim.run_for(std::time::Duration::from_secs(5));
    assert!(
        sim.take(Side::Pbx).is_empty(),
        "the phone's ACK stays at the proxy"
    );
    assert!(
        sim.take(Side::Phone).is_empty(),
        "no 486 retransmission once acknowledged"
    );
    assert_eq!(
        sim.events_of("call_rejected"),
        [CallEvent::CallRejected { code: 486 }]
    );
    assert_eq!(
        sim.events_of("call_ended"),
        [CallEvent::CallEnded {
            outcome: "rejected",
            answered: false
        }]
    );
    assert_eq!(sim.media.log().released.len(), 1);
}

/// An INVITE without SDP: the PBX's offer in the 200 reaches the phone anchored, and the
/// phone's answer in the ACK reaches the PBX anchored.
#[test]
fn a_delayed_offer_is_anchored_in_the_200_and_the_ack() {
    let mut sim = Sim::new(5);
    let a_invite = sim.phone.invite(None);
    sim.send(Side::Phone, &a_invite);
    let b_invite = sim.expect(Side::Pbx, req("INVITE"));
    assert!(b_invite.body.is_empty());
    assert!(sim.media.log().calls.is_empty(), "no media before an SDP");
    sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    let ok = sim.expect(Side::Phone, resp(200, "INVITE"));
    let key = sim.media.last_call();
    let ports = sim.media.ports(key);
    assert!(body(&ok).contains(&format!("m=audio {} ", ports.a.rtp)));
    let dialog = super::dialog::UaDialog::uac(&a_invite, &ok, addr(PHONE));
    let ack = super::sip::with_body(
        sim.phone.ack(&dialog, cseq(&a_invite)),
        "application/sdp",
        OFFER,
    );
    sim.send(Side::Phone, &ack);
    let b_ack = sim.expect(Side::Pbx, req("ACK"));
    assert!(body(&b_ack).contains(&format!("m=audio {} ", ports.b.rtp)));
    assert!(
        sim.media
            .log()
            .remotes
            .contains(&(key, 0, Leg::A, addr("10.0.0.5:6000")))
    );
}

/// A 183 with SDP (early media) reaches the phone anchored, before any answer.
#[test]
fn early_media_is_anchored_before_the_answer() {
    let mut sim = Sim::new(6);
    let (_, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 183, Some(ANSWER));
    let progress = sim.expect(Side::Phone, resp(183, "INVITE"));
    let key = sim.media.last_call();
    assert!(body(&progress).contains(&format!("m=audio {} ", sim.media.ports(key).a.rtp)));
    assert!(
        sim.media
            .log()
            .remotes
            .contains(&(key, 0, Leg::B, addr("10.0.0.9:7000")))
    );
    assert!(sim.media.log().armed.is_empty(), "not answered yet");
    assert_eq!(sim.event_kinds(), ["call_started"]);
    let _ = PBX;
}

/// Behind 1:1 NAT the proxy writes its advertised address, not the bound one: in the Via and
/// Contact of its INVITE and in a relayed REGISTER's Contact; a request addressed to the
/// advertised address is for the proxy itself.
#[test]
fn the_advertised_address_replaces_the_bound_one_in_messages() {
    let public = "203.0.113.5:5080";
    let mut sim = Sim::with(super::harness::SimConfig {
        seed: 150,
        advertise: Some(super::harness::addr(public)),
        ..super::harness::SimConfig::default()
    });
    let (_, b_invite) = sim.call_reaches_pbx();
    let via = b_invite.header("Via").unwrap().to_string();
    assert!(via.contains(public), "{via}");
    let contact = b_invite.header("Contact").unwrap().to_string();
    assert!(contact.contains(public), "{contact}");
    assert!(!contact.contains(super::harness::PROXY), "{contact}");
    let branch = sim.phone.branch();
    let reg = super::sip::register(sim.phone.addr, &branch, "<sip:alice@10.0.0.5:5060>");
    sim.send(Side::Phone, &reg);
    let got = sim.expect(Side::Pbx, req("REGISTER"));
    assert!(super::sip::uri_of(&got, "Contact").contains(public));
    let mut options =
        crate::sip::SipMessage::request(crate::sip::Method::Options, format!("sip:{public}"));
    let phone = sim.phone.addr;
    options.push_header("Via", format!("SIP/2.0/UDP {phone};branch=z9hG4bKadv1"));
    options.push_header("Max-Forwards", "70");
    options.push_header("From", format!("<sip:p@{phone}>;tag=a"));
    options.push_header("To", format!("<sip:{public}>"));
    options.push_header("Call-ID", "adv-1@sim");
    options.push_header("CSeq", "1 OPTIONS");
    sim.send(Side::Phone, &options);
    sim.expect(Side::Phone, resp(200, "OPTIONS"));
}
