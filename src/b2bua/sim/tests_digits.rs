//! Digits to modules: RFC 4733 key presses (`Input::Digit`) and SIP INFO key presses in the
//! dialog feed the metaflow collector; a matched code runs its module on the call.

use std::time::Duration;

use serde_json::json;

use crate::base::{CallEvent, Leg};

use super::super::Input;
use super::expect::req;
use super::harness::{Side, Sim, SimConfig};

/// A simulation whose calls carry `*0` and `*1` → hangup, and `*12` → record.
fn digits_sim(seed: u64) -> Sim {
    Sim::with(SimConfig {
        seed,
        metaflows: Some(json!({
            "numbers": {
                "0": {"module": "hangup"},
                "1": {"module": "hangup"},
                "12": {"module": "record_call"}
            }
        })),
        ..SimConfig::default()
    })
}

/// `*0` from the phone matches at the `0` (nothing longer can match): the proxy hangs up both
/// legs with a Reason, and the event log tells the whole story.
#[test]
fn a_hangup_code_sends_bye_both_ways() {
    let mut sim = digits_sim(60);
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*0");
    let to_phone = sim.expect(Side::Phone, req("BYE"));
    let to_pbx = sim.expect(Side::Pbx, req("BYE"));
    assert_eq!(to_phone.call_id(), call.a_invite.call_id());
    assert_eq!(to_pbx.call_id(), call.b_invite.call_id());
    for bye in [&to_phone, &to_pbx] {
        assert_eq!(
            bye.header("Reason"),
            Some("SIP;cause=200;text=\"metaflow hangup\"")
        );
    }
    assert_eq!(
        sim.event_kinds(),
        [
            "call_started",
            "call_answered",
            "digit",
            "metaflow_armed",
            "digit",
            "metaflow_match",
            "module_run",
            "module_outcome",
            "call_terminated",
            "call_ended"
        ]
    );
    assert_eq!(
        sim.events_of("metaflow_match"),
        [CallEvent::MetaflowMatch {
            leg: Leg::A,
            collected: "0".into(),
            matched: "0".into(),
            captures: vec![],
            module: "hangup".into(),
            early: true
        }]
    );
    assert_eq!(sim.media.log().discarded, [(call.key, Leg::A)]);
    assert_eq!(sim.media.log().released, [call.key]);
}

/// `*1` could still become `*12`: the code is decided when the 800 ms digit timeout passes on
/// the fake clock, not before.
#[test]
fn an_ambiguous_code_is_decided_at_the_digit_timeout() {
    let mut sim = digits_sim(61);
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*1");
    let dialed = sim.elapsed();
    sim.run_for(Duration::from_millis(799));
    assert!(sim.events_of("metaflow_match").is_empty());
    sim.expect(Side::Pbx, req("BYE"));
    assert_eq!(sim.elapsed() - dialed, Duration::from_millis(810));
    match sim.events_of("metaflow_match").as_slice() {
        [CallEvent::MetaflowMatch { early, matched, .. }] => {
            assert!(!early);
            assert_eq!(matched, "1");
        }
        other => panic!("{other:?}"),
    }
}

/// SIP INFO `application/dtmf-relay` key presses are relayed to the other leg like any INFO,
/// and also count as digits of the call (source `info`).
#[test]
fn info_key_presses_are_relayed_and_run_the_code() {
    let mut sim = digits_sim(62);
    let mut call = sim.answered_call();
    sim.info_digit(Side::Phone, &mut call.phone, '*');
    let relayed = sim
        .pbx
        .log
        .iter()
        .rev()
        .find(|(_, m)| m.method().is_some_and(|x| x.as_str() == "INFO"))
        .map(|(_, m)| m.clone())
        .unwrap();
    assert_eq!(relayed.call_id(), call.b_invite.call_id());
    assert_eq!(relayed.content_type(), Some("application/dtmf-relay"));
    assert_eq!(super::sip::body(&relayed), "Signal=*\r\nDuration=160\r\n");
    sim.info_digit(Side::Phone, &mut call.phone, '0');
    sim.expect(Side::Pbx, req("BYE"));
    sim.expect(Side::Phone, req("BYE"));
    assert_eq!(
        sim.events_of("digit"),
        [
            CallEvent::Digit {
                leg: Leg::A,
                digit: '*',
                source: "info"
            },
            CallEvent::Digit {
                leg: Leg::A,
                digit: '0',
                source: "info"
            }
        ]
    );
}

/// A code that matches nothing is reported and the call goes on.
#[test]
fn an_unknown_code_is_reported_and_the_call_goes_on() {
    let mut sim = digits_sim(63);
    let mut call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*5");
    sim.run_for(Duration::from_secs(2));
    assert_eq!(
        sim.events_of("metaflow_no_match"),
        [CallEvent::MetaflowNoMatch {
            leg: Leg::A,
            collected: "5".into()
        }]
    );
    assert!(sim.take(Side::Phone).is_empty() && sim.take(Side::Pbx).is_empty());
    sim.hang_up(Side::Phone, &mut call);
}

/// With `listen_on: self` the PBX leg's digits are logged but never arm a code.
#[test]
fn the_peer_legs_digits_do_not_run_codes() {
    let mut sim = digits_sim(64);
    let call = sim.answered_call();
    sim.dial(call.key, Leg::B, "*0");
    sim.input(Input::DigitEnded {
        call: call.key,
        leg: Leg::B,
        digit: '0',
        duration_ms: 120,
    });
    sim.run_for(Duration::from_secs(2));
    assert_eq!(
        sim.event_kinds(),
        [
            "call_started",
            "call_answered",
            "digit",
            "digit",
            "digit_ended"
        ]
    );
    assert_eq!(
        sim.events_of("digit_ended"),
        [CallEvent::DigitEnded {
            leg: Leg::B,
            digit: '0',
            duration_ms: 120
        }]
    );
    assert!(sim.take(Side::Phone).is_empty() && sim.take(Side::Pbx).is_empty());
}

/// The API's channel action runs a `hangup` node on the call named by its caller's Call-ID;
/// an unknown Call-ID does nothing.
#[test]
fn run_node_hangs_up_the_named_call() {
    let mut sim = Sim::new(65);
    let call = sim.answered_call();
    sim.input(Input::RunNode {
        call_id: "nobody@nowhere".into(),
        node: json!({"module": "hangup"}),
    });
    sim.run_for(Duration::from_millis(100));
    assert!(sim.take(Side::Pbx).is_empty());
    let call_id = call.a_invite.call_id().unwrap().to_string();
    sim.input(Input::RunNode {
        call_id,
        node: json!({"module": "hangup"}),
    });
    sim.expect(Side::Phone, req("BYE"));
    sim.expect(Side::Pbx, req("BYE"));
    match sim.events_of("module_run").as_slice() {
        [CallEvent::ModuleRun { module, leg, .. }] => {
            assert_eq!(module, "hangup");
            assert_eq!(*leg, Leg::A);
        }
        other => panic!("{other:?}"),
    }
}

/// Digits for a call that no longer exists are ignored without a trace.
#[test]
fn digits_after_the_call_are_ignored() {
    let mut sim = digits_sim(66);
    let mut call = sim.answered_call();
    sim.hang_up(Side::Phone, &mut call);
    let before = sim.events.len();
    sim.dial(call.key, Leg::A, "*0");
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.events.len(), before);
    assert!(sim.take(Side::Phone).is_empty() && sim.take(Side::Pbx).is_empty());
}

/// With `suppress_dtmf` the relay is told to hold back the a-leg's digits from the binding
/// digit on; a code that is no code is released to the other leg, binding digit first, and a
/// code that matched is discarded.
#[test]
fn suppressed_digits_are_released_or_discarded() {
    let mut sim = Sim::with(SimConfig {
        seed: 67,
        metaflows: Some(json!({"suppress_dtmf": true, "numbers": {"0": {"module": "hangup"}}})),
        ..SimConfig::default()
    });
    let call = sim.answered_call();
    let suppressing: Vec<(Leg, Option<char>)> = sim
        .media
        .log()
        .inspectors
        .iter()
        .map(|(_, _, leg, cfg)| (*leg, cfg.suppress_binding))
        .collect();
    assert!(
        suppressing.contains(&(Leg::A, Some('*'))),
        "{suppressing:?}"
    );
    assert!(
        !suppressing.contains(&(Leg::B, Some('*'))),
        "{suppressing:?}"
    );
    sim.dial(call.key, Leg::A, "*5");
    assert_eq!(
        sim.media.log().released_digits,
        [(call.key, Leg::A, "*5".to_string())]
    );
    assert_eq!(
        sim.events_of("metaflow_release"),
        [CallEvent::MetaflowRelease {
            leg: Leg::A,
            digits: "*5".into()
        }]
    );
    sim.dial(call.key, Leg::A, "*0");
    assert_eq!(sim.media.log().discarded, [(call.key, Leg::A)]);
    sim.expect(Side::Pbx, req("BYE"));
}

/// `inband_dtmf`: `auto` listens for tones only on a leg whose SDP has no telephone-event, `on`
/// on every leg a metaflow listens to, and a leg no metaflow listens to is never listened to.
#[test]
fn inband_detection_follows_the_metaflow_and_the_sdp() {
    use super::expect::{req, resp};
    use super::harness::{Side, Sim, SimConfig};
    let inband_of = |sim: &Sim, leg: Leg| {
        sim.media
            .log()
            .inspectors
            .iter()
            .rev()
            .find(|(_, _, l, _)| *l == leg)
            .map(|(_, _, _, cfg)| cfg.inband)
            .unwrap()
    };
    // `on`: the a-leg (whose metaflow it is) is listened to, the b-leg not.
    let mut sim = Sim::with(SimConfig {
        seed: 61,
        metaflows: Some(json!({"inband_dtmf": "on", "numbers": {"0": {"module": "hangup"}}})),
        ..SimConfig::default()
    });
    sim.answered_call();
    let map = inband_of(&sim, Leg::A).expect("listened to");
    assert_eq!(map.pcma, Some(8));
    assert_eq!(inband_of(&sim, Leg::B), None);
    // `auto` (the default) and a phone offering telephone-event: not listened to.
    let mut sim = Sim::with(SimConfig {
        seed: 62,
        metaflows: Some(json!({"numbers": {"0": {"module": "hangup"}}})),
        ..SimConfig::default()
    });
    sim.answered_call();
    assert_eq!(inband_of(&sim, Leg::A), None);
    // `auto` and a phone without telephone-event: listened to.
    let offer = super::sip::OFFER
        .replace(" 8 101\r\n", " 8\r\n")
        .replace("a=rtpmap:101 telephone-event/8000\r\n", "");
    let invite = sim.phone.invite(Some(&offer));
    sim.send(Side::Phone, &invite);
    sim.expect(Side::Pbx, req("INVITE"));
    sim.expect(Side::Phone, resp(100, "INVITE"));
    assert!(inband_of(&sim, Leg::A).is_some());
}
