//! Registration through the proxy: the PBX learns a Contact of the proxy's, and its calls to
//! the phone come back through the proxy to the address the REGISTER came from.

use std::time::Duration;

use crate::sip::SipMessage;

use super::expect::{req, resp};
use super::harness::{PBX, Side, Sim, addr};
use super::sip::{OFFER, invite, register, retarget, uri_of};

/// The phone registers a private Contact through the proxy; the PBX grants `expires`. Returns
/// the Contact the PBX saw.
fn registered(sim: &mut Sim, expires: u32) -> String {
    let branch = sim.phone.branch();
    let reg = register(
        sim.phone.addr,
        &branch,
        "<sip:alice@10.0.0.5:5060>;expires=600",
    );
    sim.send(Side::Phone, &reg);
    let got = sim.expect(Side::Pbx, req("REGISTER"));
    assert_eq!(got.vias().len(), 2, "the proxy's Via on top of the phone's");
    let contact = uri_of(&got, "Contact");
    let mut ok = SipMessage::response_to(&got, 200, "OK");
    ok.push_header("Contact", format!("<{contact}>;expires={expires}"));
    sim.send(Side::Pbx, &ok);
    let back = sim.expect(Side::Phone, resp(200, "REGISTER"));
    assert_eq!(back.vias().len(), 1, "the proxy's Via is gone");
    assert_eq!(
        back.header("Contact"),
        Some(format!("<sip:alice@10.0.0.5:5060>;expires={expires}").as_str())
    );
    contact
}

/// The PBX's INVITE to the Contact it learned reaches the phone at its real address, with the
/// phone's own Contact as Request-URI and anchored SDP.
#[test]
fn a_registered_phone_receives_the_pbx_call() {
    let mut sim = Sim::new(120);
    let contact = registered(&mut sim, 600);
    assert!(contact.contains("@192.0.2.1:5060"), "{contact}");
    let branch = sim.pbx.branch();
    let call = invite(addr(PBX), addr(PBX), "in-1@pbx", "p1", &branch, Some(OFFER));
    sim.send(Side::Pbx, &retarget(call, &contact));
    let got = sim.expect(Side::Phone, req("INVITE"));
    assert_eq!(got.request_uri(), Some("sip:alice@10.0.0.5:5060"));
    assert!(super::sip::body(&got).contains("c=IN IP4 192.0.2.1"));
    let ok = super::sip::with_body(sim.phone.response(&got, 200), "application/sdp", OFFER);
    sim.send(Side::Phone, &ok);
    sim.expect(Side::Pbx, resp(200, "INVITE"));
}

/// Once the granted time has passed, the binding is gone: the PBX's INVITE gets 404.
#[test]
fn an_expired_registration_no_longer_routes_calls() {
    let mut sim = Sim::new(121);
    let contact = registered(&mut sim, 60);
    sim.run_for(Duration::from_secs(61));
    let branch = sim.pbx.branch();
    let call = invite(addr(PBX), addr(PBX), "in-2@pbx", "p2", &branch, Some(OFFER));
    sim.send(Side::Pbx, &retarget(call, &contact));
    sim.expect(Side::Pbx, resp(404, "INVITE"));
    sim.settle();
    assert!(sim.take(Side::Phone).is_empty());
}
