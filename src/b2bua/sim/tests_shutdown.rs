//! Draining: `BeginShutdown` refuses new calls and keeps the others; `TerminateAll` ends every
//! call, answered or not.

use serde_json::json;

use crate::base::CallEvent;
use crate::modules::record::StopReason;
use crate::sip::{Method, SipMessage};

use super::super::{Input, Output};
use super::expect::{req, resp};
use super::harness::{Side, Sim};
use super::sip::OFFER;

/// After `BeginShutdown` a new INVITE gets 503; the call in progress goes on and ends normally.
#[test]
fn begin_shutdown_refuses_new_calls_and_keeps_the_others() {
    let mut sim = Sim::new(110);
    let mut call = sim.answered_call();
    sim.input(Input::BeginShutdown);
    let invite = sim.phone.invite(Some(OFFER));
    sim.send(Side::Phone, &invite);
    sim.expect(Side::Phone, resp(503, "INVITE"));
    sim.settle();
    assert!(sim.take(Side::Pbx).is_empty());
    sim.hang_up(Side::Phone, &mut call);
    assert_eq!(sim.media.log().released, [call.key]);
}

/// `TerminateAll` after `BeginShutdown`: the answered call gets BYE on both legs, the ringing
/// one a 503 to the phone and a CANCEL to the PBX, and a running recording stops with reason
/// `shutdown`.
#[test]
fn terminate_all_ends_answered_and_ringing_calls() {
    let mut sim = Sim::new(111);
    let answered = sim.answered_call();
    let call_id = answered.a_invite.call_id().unwrap().to_string();
    sim.input(Input::RunNode {
        call_id,
        node: json!({"module": "record_call", "data": {"action": "start"}}),
    });
    let (_, ringing) = sim.call_reaches_pbx();
    sim.pbx_answers(&ringing, 180, None);
    sim.expect(Side::Phone, resp(180, "INVITE"));
    sim.input(Input::BeginShutdown);
    sim.input(Input::TerminateAll);
    let bye = sim.expect(Side::Phone, req("BYE"));
    assert_eq!(bye.call_id(), answered.a_invite.call_id());
    let b_bye = sim.expect(Side::Pbx, req("BYE"));
    assert_eq!(b_bye.call_id(), answered.b_invite.call_id());
    assert_eq!(
        b_bye.header("Reason"),
        Some("SIP;cause=200;text=\"shutdown\"")
    );
    sim.expect(Side::Phone, resp(503, "INVITE"));
    let cancel = sim.expect(Side::Pbx, req("CANCEL"));
    assert_eq!(cancel.call_id(), ringing.call_id());
    assert!(sim.recordings.iter().any(|o| matches!(
        o,
        Output::StopRecording {
            reason: StopReason::Shutdown,
            ..
        }
    )));
    assert_eq!(sim.events_of("call_ended").len(), 2);
    assert_eq!(
        sim.events_of("call_terminated")[0],
        CallEvent::CallTerminated {
            reason: "shutdown".into()
        }
    );
    assert_eq!(sim.media.log().released.len(), 2);
}

/// An OPTIONS probe to the proxy itself is answered 200 with what it allows.
#[test]
fn an_options_probe_is_answered_by_the_proxy() {
    let mut sim = Sim::new(112);
    let probe = options(&mut sim);
    sim.send(Side::Phone, &probe);
    let ok = sim.expect(Side::Phone, resp(200, "OPTIONS"));
    assert!(ok.header("Allow").unwrap().contains("PRACK"));
    sim.settle();
    assert!(sim.take(Side::Pbx).is_empty());
}

/// The product contract: while draining, OPTIONS is answered 503 so that load balancers stop
/// sending calls.
#[test]
fn an_options_probe_during_shutdown_gets_503() {
    let mut sim = Sim::new(113);
    sim.input(Input::BeginShutdown);
    let probe = options(&mut sim);
    sim.send(Side::Phone, &probe);
    sim.expect(Side::Phone, resp(503, "OPTIONS"));
}

/// An OPTIONS from the phone to the proxy's own address.
fn options(sim: &mut Sim) -> SipMessage {
    let mut m = SipMessage::request(Method::Options, format!("sip:{}", super::harness::PROXY));
    let branch = sim.phone.branch();
    m.push_header(
        "Via",
        format!("SIP/2.0/UDP {};branch={branch}", sim.phone.addr),
    );
    m.push_header("Max-Forwards", "70");
    m.push_header("From", format!("<sip:probe@{}>;tag=probe", sim.phone.addr));
    m.push_header("To", format!("<sip:{}>", super::harness::PROXY));
    m.push_header("Call-ID", format!("{branch}@probe"));
    m.push_header("CSeq", "1 OPTIONS");
    m
}
