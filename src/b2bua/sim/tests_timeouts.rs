//! What the core does when the other side goes quiet: Timer B on the PBX's INVITE, the phone
//! that never acknowledges a 2xx, media that stops flowing.

use std::time::Duration;

use crate::base::CallEvent;

use super::super::Input;
use super::expect::{req, resp};
use super::harness::{Side, Sim};
use super::sip::{ANSWER, method};

/// A silent PBX: the INVITE is retransmitted at 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s (Timer A
/// doubling), and at 32 s (Timer B) the phone gets 408.
#[test]
fn a_silent_pbx_gets_timer_a_retransmissions_then_the_phone_408() {
    let mut sim = Sim::new(80);
    let (_, _) = sim.call_reaches_pbx();
    let sent = sim.elapsed() - Duration::from_millis(10);
    sim.expect(Side::Phone, resp(408, "INVITE"));
    assert_eq!(sim.elapsed() - sent, Duration::from_millis(32_010));
    let arrivals: Vec<Duration> = sim
        .pbx
        .log
        .iter()
        .filter(|(_, m)| method(m) == "INVITE")
        .map(|(at, _)| *at - sim.start)
        .collect();
    let first = arrivals[0];
    let offsets: Vec<u64> = arrivals
        .iter()
        .map(|t| (*t - first).as_millis() as u64)
        .collect();
    assert_eq!(offsets, [0, 500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(
        sim.events_of("call_ended"),
        [CallEvent::CallEnded {
            outcome: "failed",
            answered: false
        }]
    );
    assert_eq!(sim.media.log().released.len(), 1);
}

/// A phone that never ACKs the 200: the proxy retransmits it (T1 doubling up to T2) for 64*T1,
/// then hangs up both legs.
#[test]
fn an_unacknowledged_200_is_retransmitted_then_both_legs_get_bye() {
    let mut sim = Sim::new(81);
    let (_, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    sim.expect(Side::Phone, resp(200, "INVITE"));
    let answered = sim.elapsed();
    let bye = sim.expect(Side::Phone, req("BYE"));
    assert_eq!(bye.header("Reason"), Some("SIP;cause=200;text=\"no ACK\""));
    sim.expect(Side::Pbx, req("BYE"));
    let waited = sim.elapsed() - answered;
    assert_eq!(waited, Duration::from_secs(32));
    let copies = sim
        .phone
        .log
        .iter()
        .filter(|(_, m)| m.status() == Some(200))
        .count();
    // 0.5, 1, 2, 4, then every 4 s until 32 s: the first and 10 retransmissions.
    assert_eq!(copies, 11);
    assert_eq!(sim.media.log().released.len(), 1);
}

/// The RFC 3261 §13.3.1.4 failure is a failed call: `Outcome::Failed` says "no response, or no
/// ACK, in time".
#[test]
fn an_unacknowledged_call_ends_as_failed() {
    let mut sim = Sim::new(82);
    let (_, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    sim.expect(Side::Pbx, req("BYE"));
    match sim.events_of("call_ended").as_slice() {
        [CallEvent::CallEnded { outcome, .. }] => assert_eq!(*outcome, "failed"),
        other => panic!("{other:?}"),
    }
}

/// No media on an answered call: both legs get a BYE at once and the outcome says `timeout`.
#[test]
fn a_media_timeout_hangs_up_both_legs() {
    let mut sim = Sim::new(83);
    let call = sim.answered_call();
    sim.input(Input::MediaTimeout { call: call.key });
    let bye = sim.expect(Side::Phone, req("BYE"));
    assert_eq!(
        bye.header("Reason"),
        Some("SIP;cause=200;text=\"media timeout\"")
    );
    sim.expect(Side::Pbx, req("BYE"));
    assert_eq!(
        sim.events_of("call_ended"),
        [CallEvent::CallEnded {
            outcome: "timeout",
            answered: true
        }]
    );
    assert_eq!(sim.media.log().released, [call.key]);
}

/// The proxy's own BYE that nobody answers is retransmitted and then given up without trouble:
/// after 64*T1 the core has nothing left to do.
#[test]
fn an_unanswered_bye_is_given_up_and_the_core_goes_idle() {
    let mut sim = Sim::new(84);
    let call = sim.answered_call();
    sim.input(Input::MediaTimeout { call: call.key });
    sim.run_for(Duration::from_secs(60));
    let byes = sim
        .pbx
        .log
        .iter()
        .filter(|(_, m)| method(m) == "BYE")
        .count();
    // Timer E: 0, 0.5, 1.5, 3.5, 7.5, then every 4 s until Timer F at 32 s.
    assert_eq!(byes, 11);
    assert_eq!(sim.core.poll_timeout(), None, "no timer left");
}
