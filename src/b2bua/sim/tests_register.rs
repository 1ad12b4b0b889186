//! Registration through the proxy: the PBX learns a Contact of the proxy's, and its calls to
//! the phone come back through the proxy to the address the REGISTER came from.

use std::time::Duration;

use crate::sip::SipMessage;

use super::expect::{req, resp};
use super::harness::{PBX, Side, Sim, addr};
use super::sip::{OFFER, invite, register, retarget, uri_of};

/// The phone registers a private Contact through the proxy; the PBX grants `expires`. Returns
/// the Contact the PBX saw.
pub(super) fn registered(sim: &mut Sim, expires: u32) -> String {
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

/// The PBX's INVITE for the phone from another port of the PBX's host (a PBX that opens a new
/// TCP connection, or sends from a port other than the one it listens on).
fn pbx_call_from_another_port(sim: &mut Sim, contact: &str) {
    let from = addr("192.0.2.20:41000");
    let call = invite(
        from,
        addr(PBX),
        "in-3@pbx",
        "p3",
        "z9hG4bKother1",
        Some(OFFER),
    );
    let data = retarget(call, contact).to_bytes();
    sim.input(crate::b2bua::Input::Datagram {
        from: crate::sip::transport::Peer::udp(from),
        data: &data,
    });
    sim.settle();
}

/// With the PBX's host among `pbx_sources`, its INVITE from any port is the PBX's: it reaches
/// the registered phone, and nothing goes back to the PBX as a new call.
#[test]
fn the_pbx_is_recognised_by_its_configured_host_at_any_port() {
    let mut sim = Sim::with(super::harness::SimConfig {
        seed: 122,
        pbx_sources: vec!["192.0.2.20".parse().unwrap()],
        ..super::harness::SimConfig::default()
    });
    let contact = registered(&mut sim, 600);
    pbx_call_from_another_port(&mut sim, &contact);
    let got = sim.expect(Side::Phone, req("INVITE"));
    assert_eq!(got.request_uri(), Some("sip:alice@10.0.0.5:5060"));
    assert!(
        sim.take(Side::Pbx).iter().all(|m| m.method().is_none()),
        "no request went back to the PBX"
    );
}

/// Without it only the upstream address itself is the PBX: the same INVITE is a caller's and
/// goes to the PBX (which a real PBX answers 482), never to the phone.
#[test]
fn without_pbx_sources_only_the_upstream_address_is_the_pbx() {
    let mut sim = Sim::new(123);
    let contact = registered(&mut sim, 600);
    pbx_call_from_another_port(&mut sim, &contact);
    let back = sim.expect(Side::Pbx, req("INVITE"));
    assert_eq!(back.request_uri(), Some(contact.as_str()));
    assert!(sim.take(Side::Phone).is_empty());
}

/// A phone that registered over TCP is still offered to the PBX as a Contact over the PBX's
/// own transport (UDP here): the PBX never has to dial the proxy over TCP for it.
#[test]
fn the_rewritten_contact_names_the_pbx_transport_not_the_phones() {
    let mut sim = Sim::new(124);
    let reg = register(
        addr("192.0.2.10:40000"),
        "z9hG4bKtcpreg",
        "<sip:alice@10.0.0.5:5060;transport=tcp>",
    );
    let data = reg.to_bytes();
    sim.input(crate::b2bua::Input::Datagram {
        from: crate::sip::transport::Peer::tcp(addr("192.0.2.10:40000")),
        data: &data,
    });
    let got = sim.expect(Side::Pbx, req("REGISTER"));
    let contact = uri_of(&got, "Contact");
    assert!(contact.contains("@192.0.2.1:5060"), "{contact}");
    assert!(!contact.contains("transport=tcp"), "{contact}");
}

/// The PBX's call for a phone registered over TCP goes on the phone's own connection and may
/// not dial a new one; when the shell reports that flow gone, the PBX gets its final answer at
/// once instead of after Timer B.
#[test]
fn a_tcp_phone_is_called_on_its_flow_and_a_lost_flow_fails_at_once() {
    let mut sim = Sim::new(125);
    let phone_flow = addr("192.0.2.10:40000");
    let reg = register(
        phone_flow,
        "z9hG4bKtcpreg2",
        "<sip:alice@10.0.0.5:5060;transport=tcp>",
    );
    let data = reg.to_bytes();
    sim.input(crate::b2bua::Input::Datagram {
        from: crate::sip::transport::Peer::tcp(phone_flow),
        data: &data,
    });
    let got = sim.expect(Side::Pbx, req("REGISTER"));
    let contact = uri_of(&got, "Contact");
    let mut ok = SipMessage::response_to(&got, 200, "OK");
    ok.push_header("Contact", format!("<{contact}>;expires=600"));
    sim.send(Side::Pbx, &ok);
    sim.settle();
    let branch = sim.pbx.branch();
    let call = invite(addr(PBX), addr(PBX), "in-5@pbx", "p5", &branch, Some(OFFER));
    sim.send(Side::Pbx, &retarget(call, &contact));
    sim.expect(Side::Pbx, resp(100, "INVITE"));
    let sent = sim
        .transcript
        .iter()
        .find(|line| line.contains("send tcp:192.0.2.10:40000") && line.contains("\nINVITE "))
        .cloned()
        .unwrap_or_default();
    assert!(
        sent.contains(" on its flow"),
        "INVITE to the phone: {sent:?}"
    );
    let before = sim.elapsed();
    sim.input(crate::b2bua::Input::Unreachable {
        to: crate::sip::transport::Peer::tcp(phone_flow),
    });
    sim.expect_within(Side::Pbx, resp(408, "INVITE"), Duration::from_secs(1));
    assert!(sim.elapsed() - before < Duration::from_secs(1));
}

/// The bindings table is bounded: with room for one phone, a second phone's REGISTER gets 503
/// without reaching the PBX and is counted, while the first phone's refresh still passes.
#[test]
fn a_full_registrar_refuses_new_phones_but_not_refreshes() {
    let mut sim = Sim::with(super::harness::SimConfig {
        seed: 126,
        max_registrations: 1,
        ..super::harness::SimConfig::default()
    });
    registered(&mut sim, 600);
    let branch = sim.phone.branch();
    let other = register(sim.phone.addr, &branch, "<sip:bob@10.0.0.6:5060>");
    sim.send(Side::Phone, &other);
    sim.expect(Side::Phone, resp(503, "REGISTER"));
    sim.settle();
    assert!(sim.take(Side::Pbx).is_empty(), "the PBX never saw it");
    assert_eq!(
        sim.core
            .stats
            .rejected_total(crate::b2bua::stats::Limit::Registrations),
        1,
        "counted"
    );
    registered(&mut sim, 600);
}

/// What a sink saw of the binding changes.
#[derive(Clone, Default)]
struct Kept(std::sync::Arc<std::sync::Mutex<Vec<crate::b2bua::BindingChange>>>);

impl crate::b2bua::BindingSink for Kept {
    fn changed(&mut self, change: crate::b2bua::BindingChange) {
        self.0.lock().unwrap().push(change);
    }
}

/// A binding reported by one core and restored into a fresh one (a restarted proxy) still
/// routes the PBX's call to the phone.
#[test]
fn a_kept_registration_routes_calls_after_a_restart() {
    let mut before = Sim::new(123);
    let kept = Kept::default();
    before.core.set_binding_sink(Box::new(kept.clone()));
    let contact = registered(&mut before, 600);
    let changes = kept.0.lock().unwrap().clone();
    let [crate::b2bua::BindingChange::Bound(binding)] = changes.as_slice() else {
        panic!("{changes:?}");
    };

    let mut after = Sim::new(124);
    let left = binding.expires_at.saturating_duration_since(before.now);
    let restored = crate::b2bua::StoredBinding {
        expires_at: after.now + left,
        ..binding.clone()
    };
    let now = after.now;
    assert_eq!(after.core.restore_bindings(vec![restored], now), 1);
    let branch = after.pbx.branch();
    let call = invite(addr(PBX), addr(PBX), "in-9@pbx", "p9", &branch, Some(OFFER));
    after.send(Side::Pbx, &retarget(call, &contact));
    let got = after.expect(Side::Phone, req("INVITE"));
    assert_eq!(got.request_uri(), Some("sip:alice@10.0.0.5:5060"));
}
