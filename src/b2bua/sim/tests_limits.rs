//! The core's limits: calls, transactions and media ports, each refused with a 503 that keeps
//! no state.

use std::time::Duration;

use super::expect::resp;
use super::harness::{Side, Sim, SimConfig};
use super::sip::{ANSWER, OFFER};

/// With `max_calls` 1 a second INVITE is refused 503 while the first call lasts, and accepted
/// once it ended.
#[test]
fn calls_beyond_max_calls_get_503_until_one_ends() {
    let mut sim = Sim::with(SimConfig {
        seed: 100,
        max_calls: 1,
        ..SimConfig::default()
    });
    let mut call = sim.answered_call();
    let second = sim.phone.invite(Some(OFFER));
    sim.send(Side::Phone, &second);
    let refused = sim.expect(Side::Phone, resp(503, "INVITE"));
    assert_eq!(refused.call_id(), second.call_id());
    assert!(
        refused
            .to_bytes()
            .starts_with(b"SIP/2.0 503 Too Many Calls\r\n")
    );
    sim.settle();
    assert!(sim.take(Side::Pbx).is_empty(), "never forwarded");
    sim.hang_up(Side::Phone, &mut call);
    let (_, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    sim.expect(Side::Phone, resp(200, "INVITE"));
}

/// With `max_transactions` 4 (two per new call: the phone's and the PBX's) a third INVITE is
/// refused 503 with Retry-After, without a To tag or any state.
#[test]
fn requests_beyond_max_transactions_get_503_with_retry_after() {
    let mut sim = Sim::with(SimConfig {
        seed: 101,
        max_transactions: 4,
        ..SimConfig::default()
    });
    sim.call_reaches_pbx();
    sim.call_reaches_pbx();
    let third = sim.phone.invite(Some(OFFER));
    sim.send(Side::Phone, &third);
    let refused = sim.expect(Side::Phone, resp(503, "INVITE"));
    assert_eq!(refused.header("Retry-After"), Some("5"));
    sim.settle();
    assert!(sim.take(Side::Pbx).is_empty());
    assert_eq!(sim.event_kinds(), ["call_started", "call_started"]);
}

/// No media ports left: the INVITE is refused 503 and never reaches the PBX.
#[test]
fn an_invite_without_media_ports_gets_503() {
    let mut sim = Sim::new(102);
    sim.media.log().exhausted = true;
    let invite = sim.phone.invite(Some(OFFER));
    sim.send(Side::Phone, &invite);
    let refused = sim.expect(Side::Phone, resp(503, "INVITE"));
    assert!(
        refused
            .to_bytes()
            .starts_with(b"SIP/2.0 503 Media Anchoring Failed\r\n")
    );
    sim.run_for(Duration::from_secs(1));
    assert!(sim.take(Side::Pbx).is_empty());
}

/// A request looping back (same Call-ID as a call in progress, new transaction) is refused 482.
#[test]
fn a_looped_invite_gets_482() {
    let mut sim = Sim::new(103);
    let (invite, _) = sim.call_reaches_pbx();
    let mut again = invite.clone();
    let branch = sim.phone.branch();
    again.set_header(
        "Via",
        format!("SIP/2.0/UDP {};branch={branch}", sim.phone.addr),
    );
    sim.send(Side::Phone, &again);
    sim.expect(Side::Phone, resp(482, "INVITE"));
    sim.settle();
    assert!(sim.take(Side::Pbx).is_empty());
}

/// RFC 3261 §8.2.6.2: a UAS adds a To tag to every response but 100, refusals of a new INVITE
/// (loop, no media ports) included.
#[test]
fn refusals_of_a_new_invite_carry_a_to_tag() {
    let mut sim = Sim::new(104);
    let (invite, _) = sim.call_reaches_pbx();
    let mut looped = invite.clone();
    let branch = sim.phone.branch();
    looped.set_header(
        "Via",
        format!("SIP/2.0/UDP {};branch={branch}", sim.phone.addr),
    );
    looped.set_header("CSeq", "2 INVITE");
    sim.send(Side::Phone, &looped);
    let refused = sim.expect(Side::Phone, resp(482, "INVITE"));
    assert!(refused.to_tag().is_some(), "482 without a To tag");
    sim.media.log().exhausted = true;
    let second = sim.phone.invite(Some(OFFER));
    sim.send(Side::Phone, &second);
    let refused = sim.expect(Side::Phone, resp(503, "INVITE"));
    assert!(refused.to_tag().is_some(), "503 without a To tag");
}
