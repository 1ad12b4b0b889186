//! Route sets (RFC 3261 §12.1, §12.2): proxies that record-route on either side stay on the
//! dialog's path. As the caller's UAS the proxy copies the INVITE's Record-Route into its
//! 1xx/2xx and routes its own requests to the caller through them; as the PBX's UAC it routes
//! ACK and BYE through the 2xx's Record-Route, reversed, and falls back to strict routing for
//! a route without `;lr`.

use super::call::Call;
use super::dialog::UaDialog;
use super::expect::{req, resp};
use super::harness::{Side, Sim};
use super::sip::{ANSWER, OFFER, cseq, with_body};
use crate::sip::SipMessage;

/// Two proxies in front of the proxy on the caller's side, nearest first.
const PHONE_SIDE_RR: [&str; 2] = [
    "<sip:10.1.0.2;lr;ftag=x1>",
    "<sip:lb.example.com:5070;transport=tcp;lr>",
];

/// The phone's INVITE as two record-routing proxies deliver it.
fn record_routed_invite(sim: &mut Sim) -> SipMessage {
    let mut invite = sim.phone.invite(Some(OFFER));
    for rr in PHONE_SIDE_RR {
        invite.push_header("Record-Route", rr);
    }
    invite
}

/// Every value of `name`, in order.
fn values(msg: &SipMessage, name: &str) -> Vec<String> {
    msg.header_values(name)
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// The Request-URI of a request.
fn ruri(msg: &SipMessage) -> String {
    match &msg.start {
        crate::sip::StartLine::Request { uri, .. } => uri.clone(),
        crate::sip::StartLine::Response { .. } => String::new(),
    }
}

/// The 180 and the 200 the caller gets carry the INVITE's Record-Route, values and order
/// unchanged; the PBX never sees the caller's route set; and when the PBX hangs up, the
/// proxy's BYE to the caller carries the route set as Route, Request-URI the caller's Contact.
#[test]
fn the_callers_record_route_is_copied_and_used() {
    let mut sim = Sim::new(120);
    let invite = record_routed_invite(&mut sim);
    sim.send(Side::Phone, &invite);
    let b_invite = sim.expect(Side::Pbx, req("INVITE"));
    assert!(
        values(&b_invite, "Record-Route").is_empty(),
        "the caller's Record-Route crossed to the PBX: {b_invite:?}"
    );
    assert!(values(&b_invite, "Route").is_empty());
    sim.expect(Side::Phone, resp(100, "INVITE"));
    sim.pbx_answers(&b_invite, 180, None);
    let ringing = sim.expect(Side::Phone, resp(180, "INVITE"));
    assert_eq!(values(&ringing, "Record-Route"), PHONE_SIDE_RR);
    let ok = sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    let a_ok = sim.expect(Side::Phone, resp(200, "INVITE"));
    assert_eq!(values(&a_ok, "Record-Route"), PHONE_SIDE_RR);
    let phone = UaDialog::uac(&invite, &a_ok, sim.phone.addr);
    let ack = sim.phone.ack(&phone, cseq(&invite));
    sim.send(Side::Phone, &ack);
    sim.expect(Side::Pbx, req("ACK"));
    let pbx = UaDialog::uas(&b_invite, &ok, sim.pbx.addr);
    let mut call = Call {
        key: sim.media.last_call(),
        phone,
        pbx,
        a_invite: invite,
        b_invite,
    };
    let bye = sim.hang_up(Side::Pbx, &mut call);
    assert_eq!(values(&bye, "Route"), PHONE_SIDE_RR);
    let contact = crate::sip::NameAddr::parse(call.a_invite.header("Contact").unwrap()).unwrap();
    assert_eq!(ruri(&bye), contact.uri);
}

/// A re-INVITE's 2xx also carries the re-INVITE's Record-Route (harmless, and what proxies
/// that record-route mid-dialog requests expect); an error response never does.
#[test]
fn only_dialog_responses_carry_the_record_route() {
    let mut sim = Sim::new(121);
    let invite = record_routed_invite(&mut sim);
    sim.send(Side::Phone, &invite);
    let b_invite = sim.expect(Side::Pbx, req("INVITE"));
    sim.expect(Side::Phone, resp(100, "INVITE"));
    sim.pbx_answers(&b_invite, 486, None);
    let busy = sim.expect(Side::Phone, resp(486, "INVITE"));
    assert!(values(&busy, "Record-Route").is_empty(), "{busy:?}");
}

/// The PBX's side record-routes through two proxies: the proxy's ACK and BYE carry them as
/// Route in reverse order (the proxy nearest to us first), Request-URI the PBX's Contact.
#[test]
fn the_pbx_sides_route_set_is_reversed_and_used() {
    let mut sim = Sim::new(122);
    let (a_invite, b_invite) = sim.call_reaches_pbx();
    let mut ok = with_body(sim.pbx.response(&b_invite, 200), "application/sdp", ANSWER);
    ok.push_header("Record-Route", "<sip:pbx-edge.example.com;lr>");
    ok.push_header("Record-Route", "<sip:10.0.0.50;lr;did=7>");
    sim.send(Side::Pbx, &ok);
    let a_ok = sim.expect(Side::Phone, resp(200, "INVITE"));
    assert!(
        values(&a_ok, "Record-Route").is_empty(),
        "the PBX's route set crossed to the caller: {a_ok:?}"
    );
    let phone = UaDialog::uac(&a_invite, &a_ok, sim.phone.addr);
    let ack = sim.phone.ack(&phone, cseq(&a_invite));
    sim.send(Side::Phone, &ack);
    let b_ack = sim.expect(Side::Pbx, req("ACK"));
    let reversed = ["<sip:10.0.0.50;lr;did=7>", "<sip:pbx-edge.example.com;lr>"];
    assert_eq!(values(&b_ack, "Route"), reversed);
    assert_eq!(ruri(&b_ack), format!("sip:ua@{}", sim.pbx.addr));
    let pbx = UaDialog::uas(&b_invite, &ok, sim.pbx.addr);
    let mut call = Call {
        key: sim.media.last_call(),
        phone,
        pbx,
        a_invite,
        b_invite,
    };
    let bye = sim.hang_up(Side::Phone, &mut call);
    assert_eq!(values(&bye, "Route"), reversed);
    assert_eq!(ruri(&bye), format!("sip:ua@{}", sim.pbx.addr));
}

/// A strict router (RFC 2543, no `;lr`) nearest to us: the request goes with that router as
/// Request-URI, the rest of the route set after it and the remote target last.
#[test]
fn a_strict_router_gets_the_request_uri_and_the_target_goes_last() {
    let mut sim = Sim::new(123);
    let (a_invite, b_invite) = sim.call_reaches_pbx();
    let mut ok = with_body(sim.pbx.response(&b_invite, 200), "application/sdp", ANSWER);
    ok.push_header("Record-Route", "<sip:pbx-edge.example.com;lr>");
    ok.push_header("Record-Route", "<sip:10.0.0.50:5080;maddr=10.0.0.50>");
    sim.send(Side::Pbx, &ok);
    let a_ok = sim.expect(Side::Phone, resp(200, "INVITE"));
    let phone = UaDialog::uac(&a_invite, &a_ok, sim.phone.addr);
    let ack = sim.phone.ack(&phone, cseq(&a_invite));
    sim.send(Side::Phone, &ack);
    let b_ack = sim.expect(Side::Pbx, req("ACK"));
    assert_eq!(ruri(&b_ack), "sip:10.0.0.50:5080;maddr=10.0.0.50");
    assert_eq!(
        values(&b_ack, "Route"),
        [
            "<sip:pbx-edge.example.com;lr>".to_string(),
            format!("<sip:ua@{}>", sim.pbx.addr)
        ]
    );
}
