//! Scanners and floods from one source: requests of known scanner User-Agents and datagrams
//! from a source over the per-source rate limit are dropped without any answer and counted;
//! the PBX is never limited, and the limiter's table stays bounded under spoofed sources.

use std::net::SocketAddr;
use std::time::Duration;

use crate::sip::{Method, SipMessage};

use super::super::RateLimit;
use super::super::stats::DropReason;
use super::expect::resp;
use super::harness::{PBX, PROXY, Side, Sim, SimConfig, addr};
use super::net::Datagram;
use super::sip::{OFFER, register};

/// Where the scanner sends from (nobody listens there: every answer lands in `strays`).
const SCANNER: &str = "198.51.100.66:5060";

/// An OPTIONS from `from`, addressed to the proxy itself (which answers it 200), number `n`.
fn options(from: SocketAddr, n: usize, user_agent: Option<&str>) -> SipMessage {
    let mut m = SipMessage::request(Method::Options, format!("sip:{PROXY}"));
    m.push_header("Via", format!("SIP/2.0/UDP {from};branch=z9hG4bKopt{n}"));
    m.push_header("Max-Forwards", "70");
    m.push_header("From", format!("<sip:100@{from}>;tag=o{n}"));
    m.push_header("To", format!("<sip:100@{PROXY}>"));
    m.push_header("Call-ID", format!("opt-{n}@{from}"));
    m.push_header("CSeq", "1 OPTIONS");
    if let Some(ua) = user_agent {
        m.push_header("User-Agent", ua);
    }
    m
}

/// Puts `msg` on the wire from `from` to the proxy, once (no retransmissions).
fn raw(sim: &mut Sim, from: SocketAddr, msg: &SipMessage) {
    let d = Datagram {
        from,
        to: addr(PROXY),
        data: msg.to_bytes(),
    };
    sim.net.send(sim.now, d);
}

/// A tight limit for the tests: 10 datagrams per 2 s, a 30 s block, 64 sources.
fn tight() -> Option<RateLimit> {
    Some(RateLimit {
        requests: 10,
        window: Duration::from_secs(2),
        block: Duration::from_secs(30),
        max_sources: 64,
    })
}

/// svwar's INVITE (`User-Agent: friendly-scanner`) gets no answer at all, not even a 100,
/// through all its retransmissions; it never reaches the PBX, leaves no state, and each copy
/// is counted.
#[test]
fn a_scanner_invite_gets_no_answer_and_never_reaches_the_pbx() {
    let mut sim = Sim::new(400);
    let mut invite = sim.phone.invite(Some(OFFER));
    invite.set_header("User-Agent", "friendly-scanner");
    sim.send(Side::Phone, &invite);
    sim.run_for(Duration::from_secs(40));
    assert!(
        sim.take(Side::Phone).is_empty(),
        "the scanner learns nothing"
    );
    assert!(sim.take(Side::Pbx).is_empty(), "never forwarded");
    assert!(sim.events.is_empty());
    assert_eq!(sim.core.transactions(), 0);
    assert_eq!(sim.core.active_calls(), 0);
    let dropped = sim.core.stats().dropped_total(DropReason::Scanner);
    assert!(
        dropped >= 2,
        "the INVITE and its retransmissions: {dropped}"
    );
    assert_eq!(sim.core.stats().dropped_total(DropReason::RateLimit), 0);
}

/// An OPTIONS (which the proxy would answer itself) and a REGISTER (which it would relay) from
/// scanners get nothing, whatever the case of the User-Agent; a phone whose User-Agent is
/// `Cisco/...` is no scanner and is answered.
#[test]
fn scanner_options_and_register_get_no_answer_and_are_counted() {
    let mut sim = Sim::new(401);
    let from = addr(SCANNER);
    raw(&mut sim, from, &options(from, 1, Some("friendly-scanner")));
    let mut reg = register(from, "z9hG4bKreg1", &format!("<sip:100@{from}>"));
    reg.push_header("User-Agent", "SIPVICIOUS 0.3.4");
    raw(&mut sim, from, &reg);
    sim.settle();
    assert!(sim.strays.is_empty(), "no answer: {:?}", sim.strays);
    assert!(
        sim.take(Side::Pbx).is_empty(),
        "the REGISTER was not relayed"
    );
    assert_eq!(sim.core.stats().dropped_total(DropReason::Scanner), 2);
    assert_eq!(sim.core.transactions(), 0);

    raw(
        &mut sim,
        from,
        &options(from, 2, Some("Cisco/SPA504G-7.6.2")),
    );
    sim.settle();
    assert_eq!(sim.strays.len(), 1);
    assert!(sim.strays[0].first_line().starts_with("SIP/2.0 200 "));
    assert_eq!(sim.core.stats().dropped_total(DropReason::Scanner), 2);
}

/// With the drop turned off (an empty list) the same scanner OPTIONS is answered.
#[test]
fn with_no_scanner_list_a_scanner_is_answered() {
    let mut sim = Sim::with(SimConfig {
        seed: 402,
        scanner_user_agents: Vec::new(),
        ..SimConfig::default()
    });
    let from = addr(SCANNER);
    raw(&mut sim, from, &options(from, 1, Some("friendly-scanner")));
    sim.settle();
    assert_eq!(sim.strays.len(), 1);
    assert_eq!(sim.core.stats().dropped_total(DropReason::Scanner), 0);
}

/// A source sending above the rate is blocked: its datagrams beyond the limit and while the
/// block lasts are dropped unanswered and counted; the phone, another source, places a call
/// meanwhile; once the block is over the source is answered again.
#[test]
fn a_source_over_the_rate_is_blocked_until_its_block_expires() {
    let mut sim = Sim::with(SimConfig {
        seed: 403,
        rate_limit: tight(),
        ..SimConfig::default()
    });
    let from = addr(SCANNER);
    for n in 0..15 {
        raw(&mut sim, from, &options(from, n, None));
    }
    sim.settle();
    assert_eq!(sim.strays.len(), 10, "the first 10 are answered");
    assert!(
        sim.strays
            .iter()
            .all(|d| d.first_line().starts_with("SIP/2.0 200 "))
    );
    assert_eq!(sim.core.stats().dropped_total(DropReason::RateLimit), 5);

    let (_, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 200, Some(super::sip::ANSWER));
    sim.expect(Side::Phone, resp(200, "INVITE"));

    sim.run_for(Duration::from_secs(20));
    raw(&mut sim, from, &options(from, 100, None));
    sim.settle();
    assert_eq!(sim.strays.len(), 10, "still blocked 20 s later");
    assert_eq!(sim.core.stats().dropped_total(DropReason::RateLimit), 6);

    sim.run_for(Duration::from_secs(11));
    raw(&mut sim, from, &options(from, 101, None));
    sim.settle();
    assert_eq!(sim.strays.len(), 11, "answered once the block is over");
    assert!(sim.strays[10].first_line().starts_with("SIP/2.0 200 "));
    assert_eq!(sim.core.stats().dropped_total(DropReason::RateLimit), 6);
}

/// The PBX is trusted: 50 OPTIONS at once from its address are all answered, while the same
/// burst from the phone is cut at the limit.
#[test]
fn the_pbx_is_never_rate_limited() {
    let mut sim = Sim::with(SimConfig {
        seed: 404,
        rate_limit: tight(),
        ..SimConfig::default()
    });
    let pbx = addr(PBX);
    for n in 0..50 {
        raw(&mut sim, pbx, &options(pbx, n, None));
    }
    sim.settle();
    let answered = sim
        .take(Side::Pbx)
        .iter()
        .filter(|m| m.status() == Some(200))
        .count();
    assert_eq!(answered, 50);
    assert_eq!(sim.core.stats().dropped_total(DropReason::RateLimit), 0);

    let phone = sim.phone.addr;
    for n in 0..50 {
        raw(&mut sim, phone, &options(phone, 1000 + n, None));
    }
    sim.settle();
    assert_eq!(sim.take(Side::Phone).len(), 10);
    assert_eq!(sim.core.stats().dropped_total(DropReason::RateLimit), 40);
}

/// 5,000 spoofed sources, one datagram each: the rate limiter never tracks more than its 64
/// sources, and a call still goes through.
#[test]
fn the_rate_table_stays_bounded_under_many_spoofed_sources() {
    let mut sim = Sim::with(SimConfig {
        seed: 405,
        rate_limit: tight(),
        ..SimConfig::default()
    });
    for n in 0..5000u32 {
        let ip = std::net::Ipv4Addr::from(0xc633_0000 + n);
        let from = SocketAddr::from((ip, 5060));
        raw(&mut sim, from, &options(from, n as usize, None));
        if n % 100 == 0 {
            sim.settle();
            assert!(sim.core.rate_limited_sources() <= 64);
        }
    }
    sim.settle();
    assert_eq!(sim.core.rate_limited_sources(), 64);
    assert_eq!(sim.core.stats().rate_limit_sources(), 64);
    assert_eq!(sim.strays.len(), 5000, "each source is under the limit");
    let (_, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 200, Some(super::sip::ANSWER));
    sim.expect(Side::Phone, resp(200, "INVITE"));
}

/// A dual-stack socket reports the PBX as `::ffff:192.0.2.20`: it is still the PBX, still
/// exempt; and a phone seen both ways is one source.
#[test]
fn the_pbx_seen_through_an_ipv4_mapped_address_is_still_exempt() {
    let mut sim = Sim::with(SimConfig {
        seed: 406,
        rate_limit: tight(),
        ..SimConfig::default()
    });
    let mapped_pbx = addr("[::ffff:192.0.2.20]:5070");
    for n in 0..30 {
        raw(&mut sim, mapped_pbx, &options(mapped_pbx, n, None));
    }
    sim.settle();
    assert_eq!(sim.strays.len(), 30, "all answered");
    assert_eq!(sim.core.stats().dropped_total(DropReason::RateLimit), 0);
    let mapped_scanner = addr("[::ffff:198.51.100.66]:5060");
    let scanner = addr(SCANNER);
    for n in 0..6 {
        raw(&mut sim, scanner, &options(scanner, 100 + n, None));
        raw(
            &mut sim,
            mapped_scanner,
            &options(mapped_scanner, 200 + n, None),
        );
    }
    sim.settle();
    assert_eq!(sim.strays.len(), 40, "10 of the 12 answered");
    assert_eq!(sim.core.stats().dropped_total(DropReason::RateLimit), 2);
}

/// New settings while a call is up (SIGHUP): the call goes on and hangs up normally, a new
/// scanner prefix is dropped from then on, a lower call limit refuses the next call; the bound
/// address and the seed stay as they were.
#[test]
fn reconfiguring_applies_new_limits_without_touching_the_call() {
    let mut sim = Sim::new(140);
    let mut call = sim.answered_call();
    let mut cfg = sim.core.cfg.clone();
    cfg.max_calls = 1;
    cfg.scanner_user_agents.push("evil-dialer".into());
    cfg.local = addr("203.0.113.1:9999");
    sim.input(super::super::Input::Reconfigure(Box::new(cfg)));
    assert_eq!(sim.core.cfg.local, addr(PROXY), "the bound address stays");
    assert_eq!(sim.core.cfg.max_calls, 1);

    raw(
        &mut sim,
        addr(SCANNER),
        &options(addr(SCANNER), 1, Some("Evil-Dialer/2.0")),
    );
    sim.settle();
    assert!(sim.strays.is_empty(), "the new scanner prefix is dropped");
    assert_eq!(sim.core.stats.dropped_total(DropReason::Scanner), 1);

    let second = sim.phone.invite(Some(OFFER));
    sim.send(Side::Phone, &second);
    sim.expect(Side::Phone, resp(503, "INVITE"));

    sim.hang_up(Side::Phone, &mut call);
    assert_eq!(sim.core.calls.len(), 0);
}

/// A dispatcher in front of the proxy (`rate_limit_exempt`) sends far above the rate and is
/// never blocked, while another source sending the same is.
#[test]
fn an_exempt_dispatcher_is_never_rate_limited() {
    let mut sim = Sim::with(SimConfig {
        seed: 404,
        rate_limit: tight(),
        rate_limit_exempt: vec![SCANNER.parse().unwrap()],
        ..SimConfig::default()
    });
    let from = addr(SCANNER);
    for n in 0..30 {
        raw(&mut sim, from, &options(from, n, None));
    }
    sim.settle();
    assert_eq!(
        sim.strays.len(),
        30,
        "every request of the exempt source is answered"
    );
    assert_eq!(sim.core.stats().dropped_total(DropReason::RateLimit), 0);
}
