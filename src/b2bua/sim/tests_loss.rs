//! A lossy, reordering network: retransmissions on both sides of the proxy recover lost
//! INVITEs, 200s, ACKs and BYEs, and late or reordered messages do not confuse the core.

use std::time::Duration;

use crate::base::CallEvent;

use super::dialog::UaDialog;
use super::expect::{req, resp};
use super::harness::{Side, Sim, SimConfig};
use super::net::{Fate, NetConfig};
use super::sip::{ANSWER, OFFER, cseq};

/// A whole call (INVITE, 180, 200, ACK, BYE) where the scripted steps wait for what they need
/// and the endpoints' and the core's retransmissions make up for the losses. Returns the
/// simulation at the end.
fn lossy_call(seed: u64, net: NetConfig) -> Sim {
    let mut sim = Sim::with(SimConfig {
        seed,
        net,
        ..SimConfig::default()
    });
    let invite = sim.phone.invite(Some(OFFER));
    sim.send(Side::Phone, &invite);
    let b_invite = sim.expect(Side::Pbx, req("INVITE"));
    sim.pbx_answers(&b_invite, 180, None);
    sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    let a_ok = sim.expect(Side::Phone, resp(200, "INVITE"));
    let mut phone = UaDialog::uac(&invite, &a_ok, sim.phone.addr);
    let ack = sim.phone.ack(&phone, cseq(&invite));
    sim.send(Side::Phone, &ack);
    sim.expect(Side::Pbx, req("ACK"));
    let bye = sim.phone.request(&mut phone, "BYE");
    sim.send(Side::Phone, &bye);
    let b_bye = sim.expect(Side::Pbx, req("BYE"));
    let bye_ok = sim.pbx.response(&b_bye, 200);
    sim.send(Side::Pbx, &bye_ok);
    sim.expect(Side::Phone, resp(200, "BYE"));
    sim.run_for(Duration::from_secs(60));
    sim
}

/// Whatever was lost, each side saw each message once (retransmissions absorbed), the call
/// ended answered, and the core forgot everything.
fn assert_clean_end(sim: &mut Sim, seed: u64) {
    let leftovers: Vec<String> = sim
        .take(Side::Phone)
        .iter()
        .chain(sim.take(Side::Pbx).iter())
        .map(super::expect::first_line)
        .filter(|l| !l.contains(" 100 ") && !l.contains(" 180 "))
        .collect();
    assert!(leftovers.is_empty(), "seed {seed}: {leftovers:?}");
    assert_eq!(
        sim.events_of("call_ended"),
        [CallEvent::CallEnded {
            outcome: "answered",
            answered: true
        }],
        "seed {seed}"
    );
    assert_eq!(sim.media.log().released.len(), 1, "seed {seed}");
    assert_eq!(sim.core.poll_timeout(), None, "seed {seed}: timers left");
    assert!(sim.strays.is_empty(), "seed {seed}");
}

/// Five seeded calls at `loss`; every one completes. Returns how many datagrams were lost.
fn calls_complete_at(loss: f64) -> usize {
    let mut total_lost = 0;
    for seed in 1..=5 {
        let net = NetConfig {
            loss,
            ..NetConfig::default()
        };
        let mut sim = lossy_call(seed, net);
        total_lost += sim.net.lost.len();
        assert_clean_end(&mut sim, seed);
    }
    total_lost
}

/// 10 % loss: every call completes.
#[test]
fn calls_complete_under_10_percent_loss() {
    assert!(calls_complete_at(0.1) > 0, "the network did lose datagrams");
}

/// 20 % loss: every call completes.
#[test]
fn calls_complete_under_20_percent_loss() {
    assert!(calls_complete_at(0.2) > 5, "the network did lose datagrams");
}

/// 30 % loss: every call completes.
#[test]
fn calls_complete_under_30_percent_loss() {
    assert!(
        calls_complete_at(0.3) > 10,
        "the network did lose datagrams"
    );
}

/// The phone's INVITE gets no 100 (lost): the phone retransmits it, the proxy answers the copy
/// with its last response and never forwards it twice.
#[test]
fn a_retransmitted_invite_is_answered_again_and_never_forwarded_twice() {
    let mut sim = Sim::new(95);
    sim.net
        .rule(1, Fate::Drop, |d| d.first_line() == "SIP/2.0 100 Trying");
    let invite = sim.phone.invite(Some(OFFER));
    sim.send(Side::Phone, &invite);
    sim.expect(Side::Phone, resp(100, "INVITE"));
    assert_eq!(sim.elapsed(), Duration::from_millis(520), "after one T1");
    sim.run_for(Duration::from_secs(1));
    let invites = sim
        .pbx
        .log
        .iter()
        .filter(|(_, m)| super::sip::method(m) == "INVITE")
        .count();
    assert_eq!(
        invites, 3,
        "the proxy's own Timer A copies only (0, 0.5, 1.5 s)"
    );
    assert_eq!(sim.event_kinds(), ["call_started"]);
}

/// 20 ms latency with up to 40 ms jitter reorders datagrams sent close together; every call
/// still completes.
#[test]
fn calls_complete_under_jitter() {
    for seed in 1..=10 {
        let net = NetConfig {
            latency: Duration::from_millis(20),
            jitter: Duration::from_millis(40),
            loss: 0.05,
        };
        let mut sim = lossy_call(seed, net);
        assert_clean_end(&mut sim, seed);
    }
}

/// The relayed 200 is lost on its way to the phone: the proxy retransmits it after T1.
#[test]
fn a_lost_200_to_the_phone_is_retransmitted_by_the_proxy() {
    let mut sim = Sim::new(90);
    // The PBX's own 200 retransmissions must not be what recovers the loss.
    sim.pbx.retransmit = false;
    sim.net.rule(1, Fate::Drop, |d| {
        d.first_line() == "SIP/2.0 200 OK" && d.to == sim_phone()
    });
    let (_, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    let sent = sim.elapsed() + Duration::from_millis(10);
    sim.expect(Side::Phone, resp(200, "INVITE"));
    assert_eq!(sim.elapsed() - sent, Duration::from_millis(510));
    assert_eq!(sim.net.lost.len(), 1);
}

/// The proxy's ACK to the PBX is lost: the PBX retransmits its 200 and the proxy answers it
/// with the same ACK, without troubling the phone.
#[test]
fn a_lost_ack_to_the_pbx_is_resent_on_the_retransmitted_200() {
    let mut sim = Sim::new(91);
    sim.net.rule(1, Fate::Drop, |d| {
        d.first_line().starts_with("ACK ") && d.to == sim_pbx()
    });
    let (invite, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    let a_ok = sim.expect(Side::Phone, resp(200, "INVITE"));
    let phone = UaDialog::uac(&invite, &a_ok, sim.phone.addr);
    let ack = sim.phone.ack(&phone, 1);
    sim.send(Side::Phone, &ack);
    let b_ack = sim.expect(Side::Pbx, req("ACK"));
    assert_eq!(sim.net.lost.len(), 1);
    assert_eq!(super::sip::body(&b_ack), "");
    assert_eq!(sim.net.lost[0].data, b_ack.to_bytes(), "the same ACK again");
    sim.run_for(Duration::from_secs(5));
    assert!(
        sim.take(Side::Phone).is_empty(),
        "the phone sees nothing of it"
    );
}

/// The BYE relayed to the PBX is lost: the proxy retransmits it (Timer E) and the call ends.
#[test]
fn a_lost_bye_is_retransmitted_by_the_proxy() {
    let mut sim = Sim::new(92);
    let mut call = sim.answered_call();
    // The phone's own BYE retransmissions must not be what recovers the loss.
    sim.phone.retransmit = false;
    sim.net.rule(1, Fate::Drop, |d| {
        d.first_line().starts_with("BYE ") && d.to == sim_pbx()
    });
    sim.hang_up(Side::Phone, &mut call);
    assert_eq!(sim.net.lost.len(), 1);
    assert_eq!(sim.media.log().released, [call.key]);
}

/// The PBX's 180 is delayed past its 200: the 200 is relayed, and the late 180 is absorbed
/// (never sent to a phone whose call is already answered).
#[test]
fn a_provisional_arriving_after_the_final_is_absorbed() {
    let mut sim = Sim::new(93);
    sim.net
        .rule(1, Fate::Delay(Duration::from_millis(100)), |d| {
            d.first_line() == "SIP/2.0 180 Ringing"
        });
    let (_, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 180, None);
    sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    sim.expect(Side::Phone, resp(200, "INVITE"));
    sim.run_for(Duration::from_millis(300));
    let statuses: Vec<u16> = sim
        .phone
        .log
        .iter()
        .filter_map(|(_, m)| m.status())
        .collect();
    assert!(!statuses.contains(&180), "{statuses:?}");
}

/// The phone's ACK is overtaken by its BYE (ACK then BYE, the ACK delayed on the network). The
/// late ACK must still complete the INVITE: the proxy stops retransmitting its 200 to the phone,
/// and the PBX gets the ACK its 2xx needs (RFC 3261 §13.2.2.4).
#[test]
fn an_ack_overtaken_by_the_bye_still_completes_the_invite() {
    let mut sim = Sim::new(94);
    let (invite, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    let a_ok = sim.expect(Side::Phone, resp(200, "INVITE"));
    let mut phone = UaDialog::uac(&invite, &a_ok, sim.phone.addr);
    sim.net
        .rule(1, Fate::Delay(Duration::from_millis(100)), |d| {
            d.first_line().starts_with("ACK ")
        });
    let ack = sim.phone.ack(&phone, 1);
    sim.send(Side::Phone, &ack);
    let bye = sim.phone.request(&mut phone, "BYE");
    sim.send(Side::Phone, &bye);
    let b_bye = sim.expect(Side::Pbx, req("BYE"));
    let ok = sim.pbx.response(&b_bye, 200);
    sim.send(Side::Pbx, &ok);
    sim.expect(Side::Phone, resp(200, "BYE"));
    sim.run_for(Duration::from_secs(10));
    let copies = sim
        .phone
        .log
        .iter()
        .filter(|(_, m)| m.status() == Some(200) && cseq(m) == 1)
        .count();
    assert_eq!(copies, 1, "no retransmission of the acknowledged 200");
    let methods: Vec<&str> = sim
        .pbx
        .log
        .iter()
        .map(|(_, m)| super::sip::method(m))
        .filter(|m| matches!(*m, "ACK" | "BYE"))
        .collect();
    assert_eq!(
        methods,
        ["ACK", "BYE"],
        "the PBX's 2xx is acknowledged once, before the BYE"
    );
}

/// The phone's address (for rules).
fn sim_phone() -> std::net::SocketAddr {
    super::harness::addr(super::harness::PHONE)
}

/// The PBX's address (for rules).
fn sim_pbx() -> std::net::SocketAddr {
    super::harness::addr(super::harness::PBX)
}
