//! Whose codes run on a call, as Kazoo's endpoints decide it: the party behind the proxy owns
//! the metaflow. On a call from the PBX to a registered phone, the phone (b-leg) dials the codes
//! and the outside caller cannot; modules learn the dialing leg's Call-ID as Kazoo's `dtmf_leg`.

use std::time::Duration;

use serde_json::json;

use crate::base::{CallEvent, Leg};

use super::expect::{req, resp};
use super::harness::{PBX, Side, Sim, SimConfig, addr};
use super::sip::{ANSWER, OFFER, invite, retarget, with_body};

/// A simulation whose metaflow hangs up on `*0`.
fn owner_sim(seed: u64) -> Sim {
    Sim::with(SimConfig {
        seed,
        metaflows: Some(json!({"numbers": {"0": {"module": "hangup"}}})),
        ..SimConfig::default()
    })
}

/// The phone registers through the proxy and the PBX calls it; the phone answers. Returns the
/// call's key and the Call-ID of the phone's dialog (the b-leg).
fn inbound_call(sim: &mut Sim) -> (crate::base::CallKey, String) {
    let contact = super::tests_register::registered(sim, 600);

    let branch = sim.pbx.branch();
    let call = invite(
        addr(PBX),
        addr(PBX),
        "in-owner@pbx",
        "p1",
        &branch,
        Some(OFFER),
    );
    sim.send(Side::Pbx, &retarget(call, &contact));
    let got = sim.expect(Side::Phone, req("INVITE"));
    let ok = with_body(sim.phone.response(&got, 200), "application/sdp", ANSWER);
    sim.send(Side::Phone, &ok);
    sim.expect(Side::Pbx, resp(200, "INVITE"));
    let phone_call_id = got.call_id().unwrap_or_default().to_owned();
    (sim.media.last_call(), phone_call_id)
}

#[test]
fn on_a_call_from_the_pbx_the_phone_owns_the_codes() {
    let mut sim = owner_sim(301);
    let (key, phone_call_id) = inbound_call(&mut sim);

    // The outside caller (a-leg, behind the PBX) dials the code: nothing happens.
    sim.dial(key, Leg::A, "*0");
    sim.run_for(Duration::from_secs(2));
    assert!(sim.events_of("module_run").is_empty());
    assert!(sim.take(Side::Phone).is_empty(), "no BYE to the phone");

    // The phone (b-leg) dials it: the call ends, and the module knew who dialed.
    sim.dial(key, Leg::B, "*0");
    sim.expect(Side::Phone, req("BYE"));
    sim.expect(Side::Pbx, req("BYE"));
    match sim.events_of("module_run").as_slice() {
        [CallEvent::ModuleRun { leg, data, .. }] => {
            assert_eq!(*leg, Leg::B);
            assert_eq!(
                data["dtmf_leg"],
                json!(phone_call_id),
                "Kazoo's dtmf_leg: a Call-ID"
            );
            assert_eq!(data["dtmf_side"], json!("b"));
            assert_eq!(data["dtmf_party"], json!("self"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn on_a_call_from_a_phone_the_caller_owns_the_codes() {
    let mut sim = owner_sim(302);
    let call = sim.answered_call();
    sim.dial(call.key, Leg::B, "*0");
    sim.run_for(Duration::from_secs(2));
    assert!(
        sim.events_of("module_run").is_empty(),
        "the PBX side owns nothing"
    );
    sim.dial(call.key, Leg::A, "*0");
    sim.expect(Side::Pbx, req("BYE"));
    match sim.events_of("module_run").as_slice() {
        [CallEvent::ModuleRun { data, .. }] => {
            let caller_call_id = call.a_invite.call_id().unwrap_or_default();
            assert_eq!(data["dtmf_leg"], json!(caller_call_id));
            assert_eq!(data["dtmf_side"], json!("a"));
        }
        other => panic!("{other:?}"),
    }
}
