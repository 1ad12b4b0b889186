//! `intercept` and `move`: the call is handed to a device. A device registered through the proxy
//! is called straight over the flow it registered on (its own Contact as Request-URI), with the
//! auto-answer hints when asked; answered, it takes the dialing party's place.

use std::sync::Arc;

use serde_json::json;

use crate::b2bua::{CallMetaflow, MetaflowResolver, StaticMetaflows};
use crate::base::Leg;
use crate::sip::SipMessage;

use super::expect::req;
use super::harness::{PBX_HOST, Side, Sim};
use super::sip::{ANSWER, with_body};
use super::tests_register::registered;

/// Metaflows plus a directory with device `d1` (SIP user `alice`) owned by `u1`, who also owns
/// `d2` (`alice2`, never registered).
struct Devices(StaticMetaflows);

impl MetaflowResolver for Devices {
    fn resolve(&self, invite: &SipMessage, inbound: bool) -> Vec<CallMetaflow> {
        self.0.resolve(invite, inbound)
    }

    fn device_sip_user(&self, _account: Option<&str>, device_id: &str) -> Option<String> {
        (device_id == "d1").then(|| "alice".to_string())
    }

    fn pbx_auth(&self, _account: Option<&str>) -> Option<(String, String)> {
        Some(("pbxuser".into(), "pbxsecret".into()))
    }

    fn owner_sip_users(&self, _account: Option<&str>, owner_id: &str) -> Vec<String> {
        match owner_id {
            "u1" => vec!["alice".into(), "alice2".into()],
            "u2" => vec!["bob1".into(), "bob2".into()],
            _ => Vec::new(),
        }
    }
}

/// A simulation whose calls run `node` on `*7`, with the [`Devices`] directory.
fn swap_sim(seed: u64, node: serde_json::Value) -> Sim {
    let mut sim = Sim::new(seed);
    let flows = crate::metaflow::parse_metaflows(&json!({"numbers": {"7": node}})).unwrap();
    sim.core
        .set_resolver(Box::new(Devices(StaticMetaflows(Some(Arc::new(flows))))));
    sim
}

/// `intercept` of a registered device: the INVITE goes to the phone's own Contact at the address
/// it registered from, asks for auto-answer, and once answered replaces the dialing party.
#[test]
fn intercept_calls_a_registered_device_over_its_own_flow() {
    let mut sim = swap_sim(
        80,
        json!({"module": "intercept", "data": {"target_type": "device", "target_id": "d1", "auto_answer": true}}),
    );
    registered(&mut sim, 600);
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*7");
    let invite = sim.expect(Side::Phone, req("INVITE"));
    assert_eq!(invite.request_uri(), Some("sip:alice@10.0.0.5:5060"));
    assert!(
        invite
            .header("Call-Info")
            .is_some_and(|v| v.contains("answer-after=0")),
        "{invite:?}"
    );
    assert!(
        invite
            .header("Alert-Info")
            .is_some_and(|v| v.contains("alert-autoanswer"))
    );
    let ok = with_body(sim.phone.response(&invite, 200), "application/sdp", ANSWER);
    sim.send(Side::Phone, &ok);
    sim.expect(Side::Phone, req("ACK"));
    let bye = sim.expect(Side::Phone, req("BYE"));
    assert_eq!(
        bye.call_id(),
        call.a_invite.call_id(),
        "the dialing party leaves"
    );
    assert_eq!(sim.events_of("leg_replaced").len(), 1);
}

/// `move` to a user's devices skips the dialing party's own device; a device not registered
/// through the proxy is called through the PBX by its SIP username.
#[test]
fn move_skips_the_own_device_and_reaches_others_through_the_pbx() {
    let mut sim = swap_sim(81, json!({"module": "move", "data": {"owner_id": "u1"}}));
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*7");
    let invite = sim.expect(Side::Pbx, req("INVITE"));
    assert_eq!(
        invite.request_uri(),
        Some(format!("sip:alice2@{PBX_HOST}:5070").as_str()),
        "alice is the dialing party's own device"
    );
    assert!(invite.header("Call-Info").is_none(), "no auto-answer asked");
}

/// A device that challenges the proxy's call never gets the account's PBX credentials: the
/// challenge is the failure, and no second INVITE goes out.
#[test]
fn a_device_challenge_is_not_answered_with_the_pbx_credentials() {
    let mut sim = swap_sim(
        82,
        json!({"module": "intercept", "data": {"target_type": "device", "target_id": "d1"}}),
    );
    registered(&mut sim, 600);
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*7");
    let invite = sim.expect(Side::Phone, req("INVITE"));
    let mut challenge = sim.phone.response(&invite, 401);
    challenge.push_header(
        "WWW-Authenticate",
        "Digest realm=\"pbx.example\", nonce=\"n\"",
    );
    sim.send(Side::Phone, &challenge);
    sim.expect(Side::Phone, req("ACK"));
    sim.settle();
    assert!(
        !sim.take(Side::Phone)
            .iter()
            .any(|m| m.method().is_some_and(|m| m.as_str() == "INVITE")),
        "no INVITE with credentials to the device"
    );
    assert_eq!(
        sim.events_of("leg_origination_failed"),
        [crate::base::CallEvent::LegOriginationFailed {
            leg: Leg::A,
            status: 401
        }]
    );
}

/// A device that rings without answering is given up after the ring timeout.
#[test]
fn a_device_ringing_too_long_is_cancelled() {
    let mut sim = swap_sim(
        83,
        json!({"module": "intercept", "data": {"target_type": "device", "target_id": "d1"}}),
    );
    registered(&mut sim, 600);
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*7");
    let invite = sim.expect(Side::Phone, req("INVITE"));
    let ringing = sim.phone.response(&invite, 180);
    sim.send(Side::Phone, &ringing);
    let cancel = sim.expect_within(
        Side::Phone,
        req("CANCEL"),
        std::time::Duration::from_secs(21),
    );
    assert_eq!(cancel.call_id(), invite.call_id());
}

/// The two INVITEs `move` to user `u2` sends through the PBX at once (Kazoo's default
/// `dial_strategy`, `simultaneous`), in the order of the user's devices.
fn both_devices_ring(sim: &mut Sim) -> (super::call::Call, SipMessage, SipMessage) {
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*7");
    let first = sim.expect(Side::Pbx, req("INVITE"));
    let second = sim.expect(Side::Pbx, req("INVITE"));
    let mut uris = [first.request_uri(), second.request_uri()];
    uris.sort();
    assert_eq!(
        uris,
        [
            Some(format!("sip:bob1@{PBX_HOST}:5070").as_str()),
            Some(format!("sip:bob2@{PBX_HOST}:5070").as_str())
        ]
    );
    assert_ne!(first.call_id(), second.call_id());
    (call, first, second)
}

/// All of a user's devices ring at once; the first to answer takes the call, the other is
/// cancelled, and its answer crossing the CANCEL is acknowledged and hung up.
#[test]
fn move_rings_a_users_devices_at_once_and_the_first_answer_wins() {
    let mut sim = swap_sim(84, json!({"module": "move", "data": {"owner_id": "u2"}}));
    let (call, first, second) = both_devices_ring(&mut sim);
    for invite in [&first, &second] {
        let ringing = sim.pbx.response(invite, 180);
        sim.send(Side::Pbx, &ringing);
    }
    let ok = with_body(sim.pbx.response(&second, 200), "application/sdp", ANSWER);
    sim.send(Side::Pbx, &ok);
    sim.expect(Side::Pbx, req("ACK"));
    let cancel = sim.expect(Side::Pbx, req("CANCEL"));
    assert_eq!(
        cancel.call_id(),
        first.call_id(),
        "the other device stops ringing"
    );
    let bye = sim.expect(Side::Phone, req("BYE"));
    assert_eq!(
        bye.call_id(),
        call.a_invite.call_id(),
        "the dialing party leaves"
    );
    assert_eq!(
        sim.events_of("leg_replaced"),
        [crate::base::CallEvent::LegReplaced {
            leg: Leg::A,
            call_id: second.call_id().unwrap().to_string()
        }]
    );
    // The cancelled device answered anyway: acknowledged and hung up, nothing else changes.
    let late = with_body(sim.pbx.response(&first, 200), "application/sdp", ANSWER);
    sim.send(Side::Pbx, &late);
    sim.expect(Side::Pbx, req("ACK"));
    let late_bye = sim.expect(Side::Pbx, req("BYE"));
    assert_eq!(late_bye.call_id(), first.call_id());
    assert_eq!(sim.events_of("leg_replaced").len(), 1);
    assert!(sim.events_of("leg_origination_failed").is_empty());
}

/// Every device fails: the module hears it once, with the most telling status (the busy, not
/// the later 480).
#[test]
fn move_fails_once_every_device_failed() {
    let mut sim = swap_sim(85, json!({"module": "move", "data": {"owner_id": "u2"}}));
    let (_call, first, second) = both_devices_ring(&mut sim);
    let busy = sim.pbx.response(&first, 486);
    sim.send(Side::Pbx, &busy);
    sim.expect(Side::Pbx, req("ACK"));
    sim.settle();
    assert!(
        sim.events_of("leg_origination_failed").is_empty(),
        "the other still rings"
    );
    let unavailable = sim.pbx.response(&second, 480);
    sim.send(Side::Pbx, &unavailable);
    sim.expect(Side::Pbx, req("ACK"));
    sim.settle();
    assert_eq!(
        sim.events_of("leg_origination_failed"),
        [crate::base::CallEvent::LegOriginationFailed {
            leg: Leg::A,
            status: 486
        }]
    );
    assert!(sim.take(Side::Phone).is_empty(), "the dialing party stays");
}

/// `dial_strategy: single` rings the devices one after another.
#[test]
fn move_with_single_strategy_rings_one_device_at_a_time() {
    let mut sim = swap_sim(
        86,
        json!({"module": "move", "data": {"owner_id": "u2", "dial_strategy": "single"}}),
    );
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*7");
    let first = sim.expect(Side::Pbx, req("INVITE"));
    assert_eq!(
        first.request_uri(),
        Some(format!("sip:bob1@{PBX_HOST}:5070").as_str())
    );
    sim.settle();
    assert!(
        !sim.take(Side::Pbx)
            .iter()
            .any(|m| m.method().is_some_and(|m| m.as_str() == "INVITE")),
        "one device at a time"
    );
    let busy = sim.pbx.response(&first, 486);
    sim.send(Side::Pbx, &busy);
    let second = sim.expect(Side::Pbx, req("INVITE"));
    assert_eq!(
        second.request_uri(),
        Some(format!("sip:bob2@{PBX_HOST}:5070").as_str())
    );
}

/// A busy device is the failure reported, also when the other device only timed out later.
#[test]
fn a_busy_is_reported_before_a_later_timeout() {
    let mut sim = swap_sim(87, json!({"module": "move", "data": {"owner_id": "u2"}}));
    let (_call, first, second) = both_devices_ring(&mut sim);
    let ringing = sim.pbx.response(&second, 180);
    sim.send(Side::Pbx, &ringing);
    let busy = sim.pbx.response(&first, 486);
    sim.send(Side::Pbx, &busy);
    // The other rings past the ring timeout: cancelled, 487.
    let cancel = sim.expect_within(Side::Pbx, req("CANCEL"), std::time::Duration::from_secs(21));
    let ok = sim.pbx.response(&cancel, 200);
    sim.send(Side::Pbx, &ok);
    let terminated = sim.pbx.response(&second, 487);
    sim.send(Side::Pbx, &terminated);
    sim.settle();
    assert_eq!(
        sim.events_of("leg_origination_failed"),
        [crate::base::CallEvent::LegOriginationFailed {
            leg: Leg::A,
            status: 486
        }]
    );
}
