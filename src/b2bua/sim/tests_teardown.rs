//! Ending calls and transactions whatever the far side does: a BYE is answered at once and the
//! call ends at once, requests for dialogs the proxy does not know are refused without state,
//! and a request passed upstream that the PBX never answers gets a 408 and leaves the table.

use std::time::Duration;

use crate::base::CallEvent;
use crate::sip::{Method, SipMessage};

use super::super::Input;
use super::expect::{req, resp};
use super::harness::{PBX, PROXY, Side, Sim, SimConfig, addr};
use super::net::Datagram;
use super::sip::{OFFER, method, with_body};

/// Where the spoofed datagrams claim to come from (nobody listens there).
const SPOOFER: &str = "198.51.100.7:5060";

/// A BYE outside any dialog from `SPOOFER`, number `n`; with `to_tag` it names a dialog that
/// does not exist, without it it names none.
fn spoofed_bye(n: usize, to_tag: bool) -> Vec<u8> {
    let mut m = SipMessage::request(Method::Bye, format!("sip:1000@{PROXY}"));
    m.push_header(
        "Via",
        format!("SIP/2.0/UDP {SPOOFER};branch=z9hG4bKspoof{n}"),
    );
    m.push_header("Max-Forwards", "70");
    m.push_header("From", format!("<sip:x@{SPOOFER}>;tag=s{n}"));
    let to = if to_tag {
        format!("<sip:1000@{PROXY}>;tag=t{n}")
    } else {
        format!("<sip:1000@{PROXY}>")
    };
    m.push_header("To", to);
    m.push_header("Call-ID", format!("spoof-{n}@attacker"));
    m.push_header("CSeq", "1 BYE");
    m.to_bytes()
}

/// Puts `data` on the wire from the spoofer to the proxy.
fn spoof(sim: &mut Sim, data: Vec<u8>) {
    let d = Datagram {
        from: addr(SPOOFER),
        to: addr(PROXY),
        data,
    };
    sim.net.send(sim.now, d);
}

/// 1,900 spoofed out-of-dialog BYEs (with and without To tag) against `max-transactions` 300:
/// each gets a 481 at once, none reaches the PBX, none is kept, all are counted; a call placed
/// afterwards goes through.
#[test]
fn a_flood_of_out_of_dialog_byes_keeps_no_state_and_calls_still_get_through() {
    let mut sim = Sim::with(SimConfig {
        seed: 110,
        max_transactions: 300,
        // One source: the per-source rate limit would cut the flood before the table is tested.
        rate_limit: None,
        ..SimConfig::default()
    });
    for n in 0..1900 {
        spoof(&mut sim, spoofed_bye(n, n % 2 == 0));
    }
    sim.settle();
    assert_eq!(sim.core.transactions(), 0, "no transaction kept");
    assert!(sim.take(Side::Pbx).is_empty(), "nothing forwarded upstream");
    let answers: Vec<&str> = sim.strays.iter().map(Datagram::first_line).collect();
    assert_eq!(answers.len(), 1900);
    assert!(
        answers.iter().all(|l| l.starts_with("SIP/2.0 481 ")),
        "{answers:?}"
    );
    let tagged = sim
        .strays
        .iter()
        .filter_map(|d| SipMessage::parse(&d.data).ok())
        .filter(|m| m.to_tag().is_some())
        .count();
    assert_eq!(tagged, 1900, "every 481 carries a To tag");
    assert_eq!(sim.core.stats().unknown_dialog_total(), 1900);
    let (_, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 200, Some(super::sip::ANSWER));
    sim.expect(Side::Phone, resp(200, "INVITE"));
}

/// INFO, UPDATE and PRACK without a To tag cannot start anything: 481, nothing upstream.
#[test]
fn in_dialog_only_methods_without_a_dialog_get_481() {
    let mut sim = Sim::new(111);
    for (n, m) in ["INFO", "UPDATE", "PRACK"].iter().enumerate() {
        let text = String::from_utf8(spoofed_bye(n, false)).unwrap();
        let text = text
            .replacen("BYE", m, 1)
            .replace("1 BYE", &format!("1 {m}"));
        spoof(&mut sim, text.into_bytes());
    }
    sim.settle();
    assert!(sim.take(Side::Pbx).is_empty());
    assert_eq!(sim.strays.len(), 3);
    assert!(
        sim.strays
            .iter()
            .all(|d| d.first_line().starts_with("SIP/2.0 481 "))
    );
    assert_eq!(sim.core.transactions(), 0);
}

/// An out-of-dialog request of `method` from the phone to user bob (so it is passed upstream).
fn to_bob(sim: &mut Sim, method: Method) -> SipMessage {
    let branch = sim.phone.branch();
    let phone = sim.phone.addr;
    let name = method.as_str().to_string();
    let mut m = SipMessage::request(method, "sip:bob@pbx.example.com");
    m.push_header("Via", format!("SIP/2.0/UDP {phone};branch={branch}"));
    m.push_header("Max-Forwards", "70");
    m.push_header("From", format!("<sip:alice@{phone}>;tag=m-{branch}"));
    m.push_header("To", "<sip:bob@pbx.example.com>");
    m.push_header("Call-ID", format!("{branch}@sim"));
    m.push_header("CSeq", format!("1 {name}"));
    m
}

/// A MESSAGE and an OPTIONS to a user, passed upstream to a PBX that never answers: after
/// Timer F the phone gets 408 for each (not silence), and the table drains by Timer J.
#[test]
fn a_proxied_request_the_pbx_never_answers_gets_408_and_the_table_drains() {
    let mut sim = Sim::new(112);
    for method in [Method::Message, Method::Options] {
        let m = to_bob(&mut sim, method);
        sim.send(Side::Phone, &m);
    }
    sim.expect(Side::Pbx, req("MESSAGE"));
    sim.expect(Side::Pbx, req("OPTIONS"));
    let sent = sim.elapsed();
    let late = sim.expect(Side::Phone, resp(408, "MESSAGE"));
    assert!(late.to_tag().is_some());
    sim.expect(Side::Phone, resp(408, "OPTIONS"));
    assert!(sim.elapsed() - sent <= Duration::from_millis(32_100));
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.core.transactions(), 0, "the table drained");
    assert_eq!(sim.core.poll_timeout(), None, "no timer left");
}

/// The PBX never answers the BYE: the phone's BYE is answered 200 at once, the call ends and
/// its media is released at once, the BYE to the PBX is retransmitted and then given up, and
/// the phone never sees a 408.
#[test]
fn a_bye_is_answered_at_once_when_the_other_leg_is_dead() {
    let mut sim = Sim::new(113);
    let mut call = sim.answered_call();
    let mut bye = sim.phone.request(&mut call.phone, "BYE");
    bye.push_header("Reason", "Q.850;cause=16");
    let sent = sim.elapsed();
    sim.send(Side::Phone, &bye);
    sim.expect(Side::Phone, resp(200, "BYE"));
    assert_eq!(
        sim.elapsed() - sent,
        Duration::from_millis(20),
        "one round trip"
    );
    assert_eq!(sim.media.log().released, [call.key]);
    assert_eq!(
        sim.events_of("call_ended"),
        [CallEvent::CallEnded {
            outcome: "answered",
            answered: true
        }]
    );
    assert_eq!(sim.core.active_calls(), 0);
    let b_bye = sim.expect(Side::Pbx, req("BYE"));
    assert_eq!(b_bye.header("Reason"), Some("Q.850;cause=16"), "end to end");
    assert_eq!(b_bye.call_id(), call.b_invite.call_id());
    sim.run_for(Duration::from_secs(60));
    let byes = sim
        .pbx
        .log
        .iter()
        .filter(|(_, m)| method(m) == "BYE")
        .count();
    // Timer E: 0, 0.5, 1.5, 3.5, 7.5, then every 4 s until Timer F at 32 s.
    assert_eq!(byes, 11);
    let statuses: Vec<u16> = sim
        .take(Side::Phone)
        .iter()
        .filter_map(|m| m.status())
        .collect();
    assert!(
        statuses.is_empty(),
        "nothing more for the phone: {statuses:?}"
    );
    assert_eq!(sim.core.transactions(), 0);
    assert_eq!(sim.core.poll_timeout(), None);
}

/// The same from the other side: the PBX's BYE gets 200 at once while the phone is silent,
/// and the phone's late 200 to our BYE is consumed (the PBX gets no second 200).
#[test]
fn a_bye_from_the_pbx_is_answered_at_once_and_the_late_answer_consumed() {
    let mut sim = Sim::new(114);
    let mut call = sim.answered_call();
    let bye = sim.pbx.request(&mut call.pbx, "BYE");
    sim.send(Side::Pbx, &bye);
    sim.expect(Side::Pbx, resp(200, "BYE"));
    assert_eq!(sim.media.log().released, [call.key]);
    let a_bye = sim.expect(Side::Phone, req("BYE"));
    sim.run_for(Duration::from_secs(2));
    let ok = sim.phone.response(&a_bye, 200);
    sim.send(Side::Phone, &ok);
    sim.run_for(Duration::from_secs(40));
    assert!(sim.take(Side::Pbx).is_empty(), "no second answer");
    assert_eq!(sim.core.transactions(), 0);
}

/// ICMP port unreachable from the PBX ([`Input::Unreachable`]): the INVITE is not retransmitted
/// for 32 s; the phone gets 408 at once and the call ends as failed. Our BYE to a PBX that
/// refuses is given up at once as well.
#[test]
fn an_unreachable_pbx_fails_the_call_at_once() {
    let mut sim = Sim::new(115);
    sim.call_reaches_pbx();
    let refused = sim.elapsed();
    sim.input(Input::Unreachable {
        to: crate::sip::transport::Peer::udp(addr(PBX)),
    });
    sim.expect(Side::Phone, resp(408, "INVITE"));
    assert_eq!(
        sim.elapsed() - refused,
        Duration::from_millis(10),
        "one way"
    );
    assert_eq!(
        sim.events_of("call_ended"),
        [CallEvent::CallEnded {
            outcome: "failed",
            answered: false
        }]
    );
    sim.run_for(Duration::from_secs(5));
    let invites = sim
        .pbx
        .log
        .iter()
        .filter(|(_, m)| method(m) == "INVITE")
        .count();
    assert_eq!(invites, 1, "no retransmission after the refusal");

    let mut call = sim.answered_call();
    let bye = sim.phone.request(&mut call.phone, "BYE");
    sim.send(Side::Phone, &bye);
    sim.expect(Side::Pbx, req("BYE"));
    sim.input(Input::Unreachable {
        to: crate::sip::transport::Peer::udp(addr(PBX)),
    });
    sim.run_for(Duration::from_secs(40));
    let byes = sim
        .pbx
        .log
        .iter()
        .filter(|(_, m)| method(m) == "BYE")
        .count();
    assert_eq!(byes, 1, "the BYE is given up at the refusal");
}

/// A refusal from an address we are not waiting on changes nothing: the call goes on.
#[test]
fn an_unreachable_elsewhere_changes_nothing() {
    let mut sim = Sim::new(116);
    let (_, b_invite) = sim.call_reaches_pbx();
    sim.input(Input::Unreachable {
        to: crate::sip::transport::Peer::udp(addr(SPOOFER)),
    });
    sim.pbx_answers(&b_invite, 200, Some(super::sip::ANSWER));
    sim.expect(Side::Phone, resp(200, "INVITE"));
}

/// The PBX hangs up while the phone's re-INVITE waits for the PBX's answer: the pending
/// re-INVITE gets 487 at once (RFC 3261 §15.1.2) with the BYE, not 408 at Timer B.
#[test]
fn a_request_pending_when_the_call_ends_gets_487() {
    let mut sim = Sim::new(130);
    let mut call = sim.answered_call();
    let reinvite = with_body(
        sim.phone.request(&mut call.phone, "INVITE"),
        "application/sdp",
        OFFER,
    );
    sim.send(Side::Phone, &reinvite);
    sim.expect(Side::Pbx, req("INVITE"));
    let bye = sim.pbx.request(&mut call.pbx, "BYE");
    sim.send(Side::Pbx, &bye);
    sim.expect(Side::Pbx, resp(200, "BYE"));
    let before = sim.elapsed();
    sim.expect(Side::Phone, resp(487, "INVITE"));
    assert!(sim.elapsed() - before < Duration::from_secs(1));
    sim.expect(Side::Phone, req("BYE"));
}
