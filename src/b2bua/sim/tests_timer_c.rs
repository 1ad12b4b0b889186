//! A PBX that never sends a final response: Timer C (RFC 3261 §16.6 step 11) after its last
//! provisional, the give-up 64*T1 after our CANCEL when its 487 never comes, the configurable
//! no-answer limit, and the outcome of calls the proxy ends before answer.

use std::time::Duration;

use crate::base::CallEvent;

use super::super::Input;
use super::expect::{req, resp};
use super::harness::{Side, Sim, SimConfig};
use super::sip::{ANSWER, ack_non_2xx, branch, cancel, method};

/// Timer C's default, as the harness configures it.
const TIMER_C: Duration = Duration::from_secs(180);
/// One network hop of the default simulated network.
const HOP: Duration = Duration::from_millis(10);
/// 64*T1 with the default T1.
const T64: Duration = Duration::from_secs(32);

/// Runs `sim` until `at` (time since the start of the run).
fn run_until(sim: &mut Sim, at: Duration) {
    let d = at.saturating_sub(sim.elapsed());
    sim.run_for(d);
}

/// The PBX rings (180) and then says nothing: exactly Timer C after the 180 reached the proxy,
/// the phone gets 408 and the PBX a CANCEL on its INVITE; the call and its ports are released
/// at once and the call ends `failed`, never `answered`. The PBX answers the CANCEL but never
/// sends its 487: 64*T1 after the CANCEL the core holds no transaction and no timer.
#[test]
fn a_pbx_silent_after_180_gets_cancel_and_the_phone_408_at_timer_c() {
    let mut sim = Sim::new(400);
    let (invite, b_invite) = sim.call_reaches_pbx();
    let rang = sim.elapsed();
    sim.pbx_answers(&b_invite, 180, None);
    sim.expect(Side::Phone, resp(180, "INVITE"));
    run_until(&mut sim, rang + HOP + TIMER_C - Duration::from_millis(1));
    assert!(sim.take(Side::Phone).is_empty(), "nothing before Timer C");
    assert_eq!(sim.core.active_calls(), 1);

    let timeout = sim.expect(Side::Phone, resp(408, "INVITE"));
    assert_eq!(sim.elapsed(), rang + HOP + TIMER_C + HOP);
    sim.send(Side::Phone, &ack_non_2xx(&invite, &timeout));
    let b_cancel = sim.expect(Side::Pbx, req("CANCEL"));
    assert_eq!(branch(&b_cancel), branch(&b_invite));
    let cancel_sent = sim.elapsed() - HOP;
    assert_eq!(sim.core.active_calls(), 0, "released at Timer C");
    assert_eq!(sim.media.log().released.len(), 1);
    assert_eq!(
        sim.events_of("call_terminated"),
        [CallEvent::CallTerminated {
            reason: "timer C".into()
        }]
    );
    assert_eq!(
        sim.events_of("call_ended"),
        [CallEvent::CallEnded {
            outcome: "failed",
            answered: false
        }]
    );

    let ok = sim.pbx.response(&b_cancel, 200);
    sim.send(Side::Pbx, &ok);
    run_until(&mut sim, cancel_sent + T64 - Duration::from_millis(1));
    assert_eq!(
        sim.core.transactions(),
        1,
        "the INVITE still waits for its final"
    );
    run_until(&mut sim, cancel_sent + T64);
    assert_eq!(
        sim.core.transactions(),
        0,
        "abandoned 64*T1 after the CANCEL"
    );
    assert_eq!(sim.core.poll_timeout(), None, "no timer left");
    assert!(sim.take(Side::Phone).is_empty(), "the 408 only once");
}

/// The phone cancels a ringing call; the PBX answers the CANCEL 200 but never ends the INVITE
/// with 487. The call waits for the 487 as RFC 3261 says, but only 64*T1 after the CANCEL:
/// then the call state, its ports and every transaction are released, outcome `cancelled`.
#[test]
fn a_cancel_never_answered_with_487_is_given_up_after_64_t1() {
    let mut sim = Sim::new(401);
    let (invite, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 180, None);
    sim.expect(Side::Phone, resp(180, "INVITE"));
    sim.send(Side::Phone, &cancel(&invite));
    sim.expect(Side::Phone, resp(200, "CANCEL"));
    let terminated = sim.expect(Side::Phone, resp(487, "INVITE"));
    sim.send(Side::Phone, &ack_non_2xx(&invite, &terminated));
    let b_cancel = sim.expect(Side::Pbx, req("CANCEL"));
    let cancel_sent = sim.elapsed() - HOP;
    let ok = sim.pbx.response(&b_cancel, 200);
    sim.send(Side::Pbx, &ok);

    run_until(&mut sim, cancel_sent + T64 - Duration::from_millis(1));
    assert_eq!(sim.core.active_calls(), 1, "waits for the 487 until 64*T1");
    assert!(sim.media.log().released.is_empty());
    run_until(&mut sim, cancel_sent + T64);
    assert_eq!(sim.core.active_calls(), 0);
    assert_eq!(sim.media.log().released.len(), 1);
    assert_eq!(sim.core.transactions(), 0);
    assert_eq!(sim.core.poll_timeout(), None, "no timer left");
    assert_eq!(
        sim.events_of("call_ended"),
        [CallEvent::CallEnded {
            outcome: "cancelled",
            answered: false
        }]
    );
    assert!(sim.take(Side::Phone).is_empty(), "no second final response");
}

/// Each provisional response (101-199) starts Timer C over: a PBX that rings on with a 180
/// and then a 183 every 170 s is left alone and its late 200 connects the call. A 100 does
/// not reset it (RFC 3261 §16.7 step 2).
#[test]
fn provisional_responses_reset_timer_c_but_100_does_not() {
    let mut sim = Sim::new(402);
    let (_, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 180, None);
    sim.expect(Side::Phone, resp(180, "INVITE"));
    sim.run_for(Duration::from_secs(170));
    sim.pbx_answers(&b_invite, 183, None);
    sim.expect(Side::Phone, resp(183, "INVITE"));
    sim.run_for(Duration::from_secs(170));
    sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    sim.expect(Side::Phone, resp(200, "INVITE"));
    assert!(
        !sim.phone.log.iter().any(|(_, m)| m.status() == Some(408)),
        "Timer C never fired"
    );
    assert!(sim.take(Side::Pbx).iter().all(|m| method(m) != "CANCEL"));
    assert!(sim.events_of("call_ended").is_empty());

    let mut sim = Sim::new(403);
    let (_, b_invite) = sim.call_reaches_pbx();
    let rang = sim.elapsed();
    sim.pbx_answers(&b_invite, 180, None);
    sim.expect(Side::Phone, resp(180, "INVITE"));
    sim.run_for(Duration::from_secs(170));
    sim.pbx_answers(&b_invite, 100, None);
    sim.expect(Side::Phone, resp(408, "INVITE"));
    assert_eq!(sim.elapsed(), rang + HOP + TIMER_C + HOP);
    sim.expect(Side::Pbx, req("CANCEL"));
}

/// With `no-answer-timeout` set, a call ringing that long is cancelled upstream and the phone
/// gets 480 Temporarily Unavailable, counted from the first provisional response; the call
/// ends `rejected`, its ports released.
#[test]
fn the_no_answer_limit_cancels_and_answers_480() {
    let limit = Duration::from_secs(30);
    let mut sim = Sim::with(SimConfig {
        seed: 404,
        no_answer_timeout: Some(limit),
        ..SimConfig::default()
    });
    let (invite, b_invite) = sim.call_reaches_pbx();
    sim.run_for(Duration::from_secs(5));
    let rang = sim.elapsed();
    sim.pbx_answers(&b_invite, 180, None);
    sim.expect(Side::Phone, resp(180, "INVITE"));
    sim.run_for(Duration::from_secs(20));
    // A second 180 keeps Timer C going but does not restart the limit (the phone's endpoint
    // takes it for a retransmission of the first).
    sim.pbx_answers(&b_invite, 180, None);
    let unavailable = sim.expect(Side::Phone, resp(480, "INVITE"));
    assert_eq!(
        sim.elapsed(),
        rang + HOP + limit + HOP,
        "from the first 180"
    );
    sim.send(Side::Phone, &ack_non_2xx(&invite, &unavailable));
    let b_cancel = sim.expect(Side::Pbx, req("CANCEL"));
    assert_eq!(branch(&b_cancel), branch(&b_invite));
    let ok = sim.pbx.response(&b_cancel, 200);
    sim.send(Side::Pbx, &ok);
    sim.pbx_answers(&b_invite, 487, None);
    sim.expect(Side::Pbx, req("ACK"));
    sim.run_for(Duration::from_secs(40));
    assert!(sim.take(Side::Phone).is_empty(), "the 487 is not relayed");
    assert_eq!(sim.media.log().released.len(), 1);
    assert_eq!(sim.core.transactions(), 0);
    assert_eq!(
        sim.events_of("call_terminated"),
        [CallEvent::CallTerminated {
            reason: "no answer".into()
        }]
    );
    assert_eq!(
        sim.events_of("call_ended"),
        [CallEvent::CallEnded {
            outcome: "rejected",
            answered: false
        }]
    );
}

/// The PBX's 200 crosses our Timer-C CANCEL: the proxy acknowledges it and hangs that dialog
/// up with a BYE; the phone, which has its 408, gets nothing else, and the call stays a
/// failed call that was never answered.
#[test]
fn a_200_crossing_the_timer_c_cancel_is_acked_and_hung_up() {
    let mut sim = Sim::new(405);
    let (invite, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 180, None);
    sim.expect(Side::Phone, resp(180, "INVITE"));
    let timeout = sim.expect_within(Side::Phone, resp(408, "INVITE"), TIMER_C + T64);
    sim.send(Side::Phone, &ack_non_2xx(&invite, &timeout));
    let b_cancel = sim.expect(Side::Pbx, req("CANCEL"));
    // The PBX answered before it saw the CANCEL; the CANCEL then finds a finished INVITE.
    let ok = sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    let cancel_ok = sim.pbx.response(&b_cancel, 200);
    sim.send(Side::Pbx, &cancel_ok);
    let ack = sim.expect(Side::Pbx, req("ACK"));
    assert_eq!(ack.to_tag(), ok.to_tag());
    assert_eq!(ack.call_id(), b_invite.call_id());
    let bye = sim.expect(Side::Pbx, req("BYE"));
    assert_eq!(bye.call_id(), b_invite.call_id());
    let bye_ok = sim.pbx.response(&bye, 200);
    sim.send(Side::Pbx, &bye_ok);
    sim.run_for(Duration::from_secs(40));
    assert!(sim.take(Side::Phone).is_empty(), "no 200 and no second 408");
    let finals = sim
        .phone
        .log
        .iter()
        .filter(|(_, m)| m.status().is_some_and(|c| c >= 200))
        .map(|(_, m)| m.status())
        .collect::<Vec<_>>();
    assert!(finals.iter().all(|c| *c == Some(408)), "{finals:?}");
    assert!(sim.events_of("call_answered").is_empty());
    assert_eq!(
        sim.events_of("call_ended"),
        [CallEvent::CallEnded {
            outcome: "failed",
            answered: false
        }]
    );
    assert_eq!(sim.core.transactions(), 0);
    assert_eq!(sim.core.active_calls(), 0);
}

/// A ringing call ended by the proxy at the end of a shutdown was counted `answered`. A call
/// never answered is never `answered`, whoever ends it.
#[test]
fn a_ringing_call_hung_up_at_shutdown_is_not_counted_answered() {
    let mut sim = Sim::new(406);
    let (_, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 180, None);
    sim.expect(Side::Phone, resp(180, "INVITE"));
    sim.input(Input::BeginShutdown);
    sim.input(Input::TerminateAll);
    sim.expect(Side::Phone, resp(503, "INVITE"));
    sim.expect(Side::Pbx, req("CANCEL"));
    assert_eq!(
        sim.events_of("call_ended"),
        [CallEvent::CallEnded {
            outcome: "failed",
            answered: false
        }]
    );
}
