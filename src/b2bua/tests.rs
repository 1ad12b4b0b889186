//! Sans-IO tests of the call core: SIP text in, actions out, a fake clock and a fake media
//! backend. No sockets, no sleeps.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;
use crate::sip::SipMessage;
use crate::sip::transport::Peer;
use crate::sip::txn::Timers;

use super::{B2bua, CoreConfig, Input, Leg, Output};

/// The fake media plane of the simulation harness, shared with these older core tests.
use super::sim::media::FakeMedia;

const PROXY: &str = "127.0.0.1:5060";
const PHONE: &str = "127.0.0.1:5061";
const PBX: &str = "127.0.0.1:5070";

struct Harness {
    core: B2bua,
    media: FakeMedia,
    now: Instant,
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

impl Harness {
    fn new() -> Self {
        let cfg = CoreConfig {
            local: addr(PROXY),
            upstream: Some(addr(PBX)),
            upstream_host: "127.0.0.1".into(),
            media_ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
            timers: Timers::default(),
            max_calls: 100,
            upstream_transport: crate::sip::transport::Transport::Udp,
            max_transactions: 10_000,
            rng_seed: Some(7),
            timer_c: crate::b2bua::core::DEFAULT_TIMER_C,
            no_answer_timeout: None,
            scanner_user_agents: crate::sip::validate::default_scanner_user_agents(),
            rate_limit: Some(crate::b2bua::RateLimit::default()),
            max_registrations: 1000,
            placed_call_from: Default::default(),
            advertise: None,
            pbx_sources: Vec::new(),
            rate_limit_exempt: Vec::new(),
        };
        let media = FakeMedia::default();
        Harness {
            core: B2bua::new(cfg, Arc::new(Metrics::new()), Box::new(media.clone())),
            media,
            now: Instant::now(),
        }
    }

    /// Feeds `text` from `from` and returns the SIP messages sent, with destinations.
    fn feed(&mut self, from: &str, text: &str) -> Vec<(SocketAddr, SipMessage)> {
        let data = text.replace("\r\n", "\n").replace('\n', "\r\n");
        let from = Peer::udp(addr(from));
        let data = data.as_bytes();
        self.core.handle(self.now, Input::Datagram { from, data });
        self.sent()
    }

    fn advance(&mut self, by: Duration) -> Vec<(SocketAddr, SipMessage)> {
        self.now += by;
        self.core.handle(self.now, Input::Timeout);
        self.sent()
    }

    fn sent(&mut self) -> Vec<(SocketAddr, SipMessage)> {
        std::iter::from_fn(|| self.core.poll_output())
            .filter_map(|a| match a {
                Output::Send { to, data, .. } => Some((to.addr, SipMessage::parse(&data).unwrap())),
                _ => None,
            })
            .collect()
    }
}

const OFFER: &str = "v=0\no=- 1 1 IN IP4 10.0.0.5\ns=-\nc=IN IP4 10.0.0.5\nt=0 0\nm=audio 6000 RTP/AVP 8 101\na=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000\n";
const ANSWER: &str = "v=0\no=- 2 2 IN IP4 10.0.0.9\ns=-\nc=IN IP4 10.0.0.9\nt=0 0\nm=audio 7000 RTP/AVP 8 96\na=rtpmap:8 PCMA/8000\na=rtpmap:96 telephone-event/8000\n";

fn invite(branch: &str, sdp: Option<&str>) -> String {
    let body = sdp.unwrap_or("");
    let ct = if sdp.is_some() {
        "Content-Type: application/sdp\n"
    } else {
        ""
    };
    format!(
        "INVITE sip:1000@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch={branch}\nMax-Forwards: 70\nFrom: \"Alice\" <sip:alice@127.0.0.1:5061>;tag=a1\nTo: <sip:1000@127.0.0.1:5060>\nCall-ID: call-1@phone\nCSeq: 1 INVITE\nContact: <sip:alice@127.0.0.1:5061>\nUser-Agent: test-phone\n{ct}Content-Length: {}\n\n{body}",
        crlf_len(body)
    )
}

/// Length of `text` once its line ends are CRLF (as `Harness::feed` sends it).
fn crlf_len(text: &str) -> usize {
    text.len() + text.matches('\n').count()
}

/// A response from the PBX to the request `req` (as the proxy sent it).
fn reply(req: &SipMessage, code: u16, reason: &str, sdp: Option<&str>) -> String {
    let mut resp = SipMessage::response_to(req, code, reason);
    if code > 100 && resp.to_tag().is_none() {
        let to = resp.header("To").unwrap().to_string();
        resp.set_header("To", format!("{to};tag=pbx1"));
    }
    resp.push_header("Contact", "<sip:1000@127.0.0.1:5070>");
    if let Some(s) = sdp {
        resp.push_header("Content-Type", "application/sdp");
        resp.body = s.replace('\n', "\r\n").into_bytes().into();
    }
    String::from_utf8(resp.to_bytes())
        .unwrap()
        .replace("\r\n", "\n")
}

fn only_to(msgs: &[(SocketAddr, SipMessage)], to: &str) -> Vec<SipMessage> {
    msgs.iter()
        .filter(|(a, _)| *a == addr(to))
        .map(|(_, m)| m.clone())
        .collect()
}

/// Sets up an answered and acknowledged call; returns the INVITE the PBX got.
fn answered_call(h: &mut Harness) -> SipMessage {
    let out = h.feed(PHONE, &invite("z9hG4bKa1", Some(OFFER)));
    let b_invite = only_to(&out, PBX).pop().unwrap();
    let out = h.feed(PBX, &reply(&b_invite, 200, "OK", Some(ANSWER)));
    assert_eq!(only_to(&out, PHONE)[0].status(), Some(200));
    let ack = "ACK sip:metaflow-proxy@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKack1\nMax-Forwards: 70\nFrom: <sip:alice@127.0.0.1:5061>;tag=a1\nTo: <sip:1000@127.0.0.1:5060>;tag=x\nCall-ID: call-1@phone\nCSeq: 1 ACK\nContent-Length: 0\n\n";
    let out = h.feed(PHONE, ack);
    assert_eq!(only_to(&out, PBX)[0].method().unwrap().as_str(), "ACK");
    b_invite
}

#[test]
fn call_is_relayed_with_new_dialog_and_anchored_sdp() {
    let mut h = Harness::new();
    let out = h.feed(PHONE, &invite("z9hG4bKa1", Some(OFFER)));
    let to_phone = only_to(&out, PHONE);
    assert_eq!(to_phone[0].status(), Some(100));
    let to_pbx = only_to(&out, PBX);
    assert_eq!(to_pbx.len(), 1);
    let inv = &to_pbx[0];
    assert_ne!(
        inv.call_id(),
        Some("call-1@phone"),
        "b-leg gets its own Call-ID"
    );
    assert_eq!(inv.max_forwards(), Some(69));
    assert_eq!(inv.header("User-Agent"), Some("test-phone"));
    let body = String::from_utf8(inv.body.to_vec()).unwrap();
    assert!(body.contains("c=IN IP4 127.0.0.1"), "{body}");
    assert!(
        body.contains("m=audio 40002 "),
        "the PBX is given the b-side port: {body}"
    );
    assert!(
        h.media
            .log()
            .remotes
            .contains(&(1, 0, Leg::A, addr("10.0.0.5:6000")))
    );
    assert!(
        h.media
            .log()
            .inspectors
            .iter()
            .any(|(call, stream, leg, cfg)| {
                (*call, *stream, *leg, cfg.event_payload_type) == (1, 0, Leg::A, Some((101, 8000)))
            })
    );

    let out = h.feed(PBX, &reply(inv, 180, "Ringing", None));
    let ringing = only_to(&out, PHONE);
    assert_eq!(ringing[0].status(), Some(180));
    assert_eq!(ringing[0].call_id(), Some("call-1@phone"));
    let a_tag = ringing[0].to_tag().unwrap();

    let out = h.feed(PBX, &reply(inv, 200, "OK", Some(ANSWER)));
    let ok = &only_to(&out, PHONE)[0];
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.to_tag().unwrap(), a_tag, "same To tag on every response");
    let body = String::from_utf8(ok.body.to_vec()).unwrap();
    assert!(
        body.contains("m=audio 40000 "),
        "the phone is given the a-side port: {body}"
    );
    assert!(
        h.media
            .log()
            .remotes
            .contains(&(1, 0, Leg::B, addr("10.0.0.9:7000")))
    );
    // Each direction is decoded with the receiver's declaration (RFC 3264 §5.1).
    let inspectors: Vec<_> = (h.media.log().inspectors.iter())
        .map(|(call, stream, leg, cfg)| (*call, *stream, *leg, cfg.event_payload_type))
        .collect();
    assert!(inspectors.ends_with(&[
        (1, 0, Leg::A, Some((96, 8000))),
        (1, 0, Leg::B, Some((101, 8000))),
    ]));
    assert!(h.media.log().armed.is_empty(), "not armed before the ACK");
    assert!(ok.header("Contact").unwrap().contains("127.0.0.1:5060"));

    let ack = format!(
        "ACK sip:metaflow-proxy@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKack1\nMax-Forwards: 70\nFrom: <sip:alice@127.0.0.1:5061>;tag=a1\nTo: <sip:1000@127.0.0.1:5060>;tag={a_tag}\nCall-ID: call-1@phone\nCSeq: 1 ACK\nContent-Length: 0\n\n"
    );
    let out = h.feed(PHONE, &ack);
    let b_ack = &only_to(&out, PBX)[0];
    assert_eq!(b_ack.method().unwrap().as_str(), "ACK");
    assert_eq!(h.media.log().armed, vec![1], "armed by the caller's ACK");
    assert_eq!(b_ack.call_id(), inv.call_id());
    assert_eq!(b_ack.to_tag().as_deref(), Some("pbx1"));
    assert_eq!(b_ack.cseq().unwrap().0, inv.cseq().unwrap().0);
    // A retransmitted ACK is absorbed.
    assert!(h.feed(PHONE, &ack).is_empty());

    // BYE from the callee reaches the caller in the caller's dialog.
    let bye = format!(
        "BYE sip:metaflow-proxy@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKbye1\nMax-Forwards: 70\nFrom: {};tag=pbx1\nTo: {}\nCall-ID: {}\nCSeq: 2 BYE\nContent-Length: 0\n\n",
        inv.header("To").unwrap(),
        inv.header("From").unwrap(),
        inv.call_id().unwrap()
    );
    let out = h.feed(PBX, &bye);
    let a_bye = &only_to(&out, PHONE)[0];
    assert_eq!(a_bye.method().unwrap().as_str(), "BYE");
    assert_eq!(a_bye.call_id(), Some("call-1@phone"));
    assert_eq!(a_bye.from_tag().unwrap(), a_tag);
    assert_eq!(a_bye.to_tag().as_deref(), Some("a1"));
    // The BYE is answered at once and the call is over before the phone says anything.
    assert_eq!(only_to(&out, PBX)[0].status(), Some(200));
    assert_eq!(h.media.log().released, vec![1]);
    assert_eq!(h.core.active_calls(), 0);
    // A retransmitted BYE is answered again from its transaction, not relayed twice.
    let again = h.feed(PBX, &bye);
    assert!(only_to(&again, PHONE).is_empty());
    assert_eq!(only_to(&again, PBX)[0].status(), Some(200));
    // The phone's answer to our BYE is consumed.
    let out = h.feed(PHONE, &reply_from_phone(a_bye, 200));
    assert!(only_to(&out, PBX).is_empty());
}

fn reply_from_phone(req: &SipMessage, code: u16) -> String {
    let resp = SipMessage::response_to(req, code, "OK");
    String::from_utf8(resp.to_bytes())
        .unwrap()
        .replace("\r\n", "\n")
}

#[test]
fn retransmitted_invite_is_absorbed_and_answered_with_last_response() {
    let mut h = Harness::new();
    let first = h.feed(PHONE, &invite("z9hG4bKa1", Some(OFFER)));
    assert_eq!(only_to(&first, PBX).len(), 1);
    let again = h.feed(PHONE, &invite("z9hG4bKa1", Some(OFFER)));
    assert!(only_to(&again, PBX).is_empty(), "never duplicated upstream");
    assert_eq!(only_to(&again, PHONE)[0].status(), Some(100));
}

#[test]
fn upstream_invite_is_retransmitted_then_times_out_with_408() {
    let mut h = Harness::new();
    h.feed(PHONE, &invite("z9hG4bKa1", Some(OFFER)));
    let mut retransmits = 0;
    let mut final_to_phone = None;
    for _ in 0..70 {
        for (to, m) in h.advance(Duration::from_millis(500)) {
            if to == addr(PBX) && m.method().map(|m| m.as_str() == "INVITE").unwrap_or(false) {
                retransmits += 1;
            }
            if to == addr(PHONE) && m.status().unwrap_or(0) >= 400 {
                final_to_phone = m.status();
            }
        }
    }
    assert_eq!(retransmits, 6, "Timer A: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s");
    assert_eq!(final_to_phone, Some(408));
    assert_eq!(h.core.active_calls(), 0);
    assert_eq!(h.media.log().released, vec![1]);
}

#[test]
fn busy_is_relayed_and_acknowledged_upstream() {
    let mut h = Harness::new();
    let out = h.feed(PHONE, &invite("z9hG4bKa1", Some(OFFER)));
    let inv = only_to(&out, PBX).pop().unwrap();
    let busy = reply(&inv, 486, "Busy Here", None);
    let out = h.feed(PBX, &busy);
    assert_eq!(only_to(&out, PHONE)[0].status(), Some(486));
    let ack = &only_to(&out, PBX)[0];
    assert_eq!(ack.method().unwrap().as_str(), "ACK");
    assert_eq!(ack.top_via().unwrap().branch, inv.top_via().unwrap().branch);
    // A retransmitted 486 gets our ACK again and is not relayed again.
    let out = h.feed(PBX, &busy);
    assert!(only_to(&out, PHONE).is_empty());
    assert_eq!(only_to(&out, PBX)[0].method().unwrap().as_str(), "ACK");
    assert_eq!(h.core.active_calls(), 0);
    // The caller's 486 is retransmitted (Timer G) until the caller ACKs it.
    let out = h.advance(Duration::from_millis(500));
    assert_eq!(only_to(&out, PHONE)[0].status(), Some(486));
}

#[test]
fn cancel_answers_200_and_487_and_cancels_upstream() {
    let mut h = Harness::new();
    let out = h.feed(PHONE, &invite("z9hG4bKa1", Some(OFFER)));
    let inv = only_to(&out, PBX).pop().unwrap();
    h.feed(PBX, &reply(&inv, 180, "Ringing", None));
    let cancel = "CANCEL sip:1000@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKa1\nMax-Forwards: 70\nFrom: \"Alice\" <sip:alice@127.0.0.1:5061>;tag=a1\nTo: <sip:1000@127.0.0.1:5060>\nCall-ID: call-1@phone\nCSeq: 1 CANCEL\nContent-Length: 0\n\n";
    let out = h.feed(PHONE, cancel);
    let codes: Vec<u16> = only_to(&out, PHONE)
        .iter()
        .filter_map(|m| m.status())
        .collect();
    assert_eq!(codes, vec![200, 487]);
    let up = only_to(&out, PBX);
    assert_eq!(up[0].method().unwrap().as_str(), "CANCEL");
    assert_eq!(
        up[0].top_via().unwrap().branch,
        inv.top_via().unwrap().branch
    );
    let out = h.feed(PBX, &reply(&inv, 487, "Request Terminated", None));
    assert!(
        only_to(&out, PHONE).is_empty(),
        "the caller already has its 487"
    );
    assert_eq!(only_to(&out, PBX)[0].method().unwrap().as_str(), "ACK");
    assert_eq!(h.core.active_calls(), 0);
}

#[test]
fn zero_max_forwards_gets_483_and_is_not_forwarded() {
    let mut h = Harness::new();
    let text = invite("z9hG4bKa1", Some(OFFER)).replace("Max-Forwards: 70", "Max-Forwards: 0");
    let out = h.feed(PHONE, &text);
    assert!(only_to(&out, PBX).is_empty());
    assert_eq!(only_to(&out, PHONE)[0].status(), Some(483));
}

#[test]
fn options_to_the_proxy_is_answered_locally() {
    let mut h = Harness::new();
    let text = "OPTIONS sip:127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:9999;branch=z9hG4bKo1\nMax-Forwards: 70\nFrom: <sip:lb@127.0.0.1>;tag=o1\nTo: <sip:127.0.0.1:5060>\nCall-ID: probe-1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n";
    let out = h.feed("127.0.0.1:9999", text);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.status(), Some(200));
}

#[test]
fn requests_missing_mandatory_headers_get_400_and_garbage_is_dropped() {
    let mut h = Harness::new();
    let no_call_id = invite("z9hG4bKa1", None).replace("Call-ID: call-1@phone\n", "");
    let out = h.feed(PHONE, &no_call_id);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.status(), Some(400));
    assert!(h.feed(PHONE, "\u{1}\u{2}garbage").is_empty());
    let bad_len =
        invite("z9hG4bKa1", Some(OFFER)).replace("Content-Length: 1", "Content-Length: 9");
    let out = h.feed(PHONE, &bad_len);
    assert!(only_to(&out, PBX).is_empty(), "never forwarded");
    assert_eq!(h.core.active_calls(), 0);
}

#[test]
fn delayed_offer_is_anchored_in_200_and_ack() {
    let mut h = Harness::new();
    let out = h.feed(PHONE, &invite("z9hG4bKa1", None));
    let inv = only_to(&out, PBX).pop().unwrap();
    assert!(inv.body.is_empty());
    let out = h.feed(PBX, &reply(&inv, 200, "OK", Some(ANSWER)));
    let ok = &only_to(&out, PHONE)[0];
    let body = String::from_utf8(ok.body.to_vec()).unwrap();
    assert!(body.contains("m=audio 40000 "), "{body}");
    let a_tag = ok.to_tag().unwrap();
    let ack = format!(
        "ACK sip:metaflow-proxy@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKack1\nMax-Forwards: 70\nFrom: <sip:alice@127.0.0.1:5061>;tag=a1\nTo: <sip:1000@127.0.0.1:5060>;tag={a_tag}\nCall-ID: call-1@phone\nCSeq: 1 ACK\nContent-Type: application/sdp\nContent-Length: {}\n\n{OFFER}",
        crlf_len(OFFER)
    );
    let out = h.feed(PHONE, &ack);
    let b_ack = &only_to(&out, PBX)[0];
    let body = String::from_utf8(b_ack.body.to_vec()).unwrap();
    assert!(body.contains("m=audio 40002 "), "{body}");
    assert!(
        h.media
            .log()
            .remotes
            .contains(&(1, 0, Leg::A, addr("10.0.0.5:6000")))
    );
}

#[test]
fn unacknowledged_2xx_is_retransmitted_then_both_legs_get_bye() {
    let mut h = Harness::new();
    let out = h.feed(PHONE, &invite("z9hG4bKa1", Some(OFFER)));
    let inv = only_to(&out, PBX).pop().unwrap();
    h.feed(PBX, &reply(&inv, 200, "OK", Some(ANSWER)));
    let mut ok_retransmits = 0;
    let mut byes = Vec::new();
    for _ in 0..70 {
        for (to, m) in h.advance(Duration::from_millis(500)) {
            if m.status() == Some(200) && to == addr(PHONE) {
                ok_retransmits += 1;
            }
            if m.method().map(|m| m.as_str() == "BYE").unwrap_or(false) {
                byes.push(to);
            }
        }
    }
    assert!(
        ok_retransmits >= 7,
        "2xx retransmitted until 64*T1: {ok_retransmits}"
    );
    assert!(byes.contains(&addr(PBX)) && byes.contains(&addr(PHONE)));
    assert_eq!(h.core.active_calls(), 0);
}

#[test]
fn media_timeout_sends_bye_on_both_legs() {
    let mut h = Harness::new();
    answered_call(&mut h);
    h.core.handle(h.now, Input::MediaTimeout { call: 1 });
    let out = h.sent();
    let byes: Vec<SocketAddr> = out
        .iter()
        .filter(|(_, m)| m.method().map(|m| m.as_str() == "BYE").unwrap_or(false))
        .map(|(a, _)| *a)
        .collect();
    assert_eq!(byes.len(), 2);
    assert!(byes.contains(&addr(PBX)) && byes.contains(&addr(PHONE)));
    assert_eq!(h.media.log().released, vec![1]);
}

#[test]
fn reinvite_from_callee_repoints_media_and_relays_ack() {
    let mut h = Harness::new();
    let inv = answered_call(&mut h);
    let moved = ANSWER.replace("m=audio 7000", "m=audio 7100");
    let reinvite = format!(
        "INVITE sip:metaflow-proxy@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKre1\nMax-Forwards: 70\nFrom: {};tag=pbx1\nTo: {}\nCall-ID: {}\nCSeq: 5 INVITE\nContact: <sip:1000@127.0.0.1:5070>\nContent-Type: application/sdp\nContent-Length: {}\n\n{moved}",
        inv.header("To").unwrap(),
        inv.header("From").unwrap(),
        inv.call_id().unwrap(),
        crlf_len(&moved)
    );
    let out = h.feed(PBX, &reinvite);
    assert!(
        h.media
            .log()
            .remotes
            .contains(&(1, 0, Leg::B, addr("10.0.0.9:7100")))
    );
    let a_reinvite = only_to(&out, PHONE)
        .into_iter()
        .find(|m| m.is_request())
        .unwrap();
    let out = h.feed(PHONE, &reply_from_phone(&a_reinvite, 200));
    let ok = only_to(&out, PBX)
        .into_iter()
        .find(|m| m.status() == Some(200))
        .unwrap();
    assert_eq!(ok.cseq().unwrap().0, 5);
    let ack = format!(
        "ACK sip:metaflow-proxy@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKre2\nMax-Forwards: 70\nFrom: {};tag=pbx1\nTo: {}\nCall-ID: {}\nCSeq: 5 ACK\nContent-Length: 0\n\n",
        inv.header("To").unwrap(),
        ok.header("To").unwrap(),
        inv.call_id().unwrap()
    );
    let out = h.feed(PBX, &ack);
    let a_ack = &only_to(&out, PHONE)[0];
    assert_eq!(a_ack.method().unwrap().as_str(), "ACK");
    assert_eq!(a_ack.cseq().unwrap().0, a_reinvite.cseq().unwrap().0);
    assert_eq!(h.core.active_calls(), 1);
}

#[test]
fn registered_phone_receives_the_pbx_call_at_its_nat_address() {
    let mut h = Harness::new();
    let nat = "127.0.0.1:40999";
    let register = "REGISTER sip:pbx.example.com SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKreg1\nMax-Forwards: 70\nFrom: <sip:alice@pbx.example.com>;tag=r1\nTo: <sip:alice@pbx.example.com>\nCall-ID: reg-1@phone\nCSeq: 1 REGISTER\nContact: <sip:alice@10.0.0.5:5060>;expires=600\nContent-Length: 0\n\n";
    let out = h.feed(nat, register);
    let up = only_to(&out, PBX).pop().unwrap();
    let contact = up.header("Contact").unwrap().to_string();
    assert!(
        contact.contains("@127.0.0.1:5060"),
        "the PBX sees the proxy: {contact}"
    );
    let mut ok = SipMessage::response_to(&up, 200, "OK");
    ok.push_header("Contact", contact.clone());
    let out = h.feed(PBX, &String::from_utf8(ok.to_bytes()).unwrap());
    let to_phone = only_to(&out, nat).pop().unwrap();
    assert_eq!(to_phone.status(), Some(200));
    assert_eq!(
        to_phone.header("Contact"),
        Some("<sip:alice@10.0.0.5:5060>;expires=600")
    );

    // The PBX calls the phone through the Contact it was given.
    let ruri = crate::sip::NameAddr::parse(&contact).unwrap().uri;
    let invite = format!(
        "INVITE {ruri} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKin1\nMax-Forwards: 70\nFrom: <sip:bob@pbx.example.com>;tag=p1\nTo: <sip:alice@pbx.example.com>\nCall-ID: in-1@pbx\nCSeq: 1 INVITE\nContact: <sip:bob@127.0.0.1:5070>\nContent-Type: application/sdp\nContent-Length: {}\n\n{OFFER}",
        crlf_len(OFFER)
    );
    let out = h.feed(PBX, &invite);
    let to_phone = only_to(&out, nat);
    let inv = to_phone.iter().find(|m| m.is_request()).unwrap();
    assert_eq!(
        crate::b2bua::core::request_uri(inv),
        Some("sip:alice@10.0.0.5:5060")
    );
    assert!(
        String::from_utf8(inv.body.to_vec())
            .unwrap()
            .contains("c=IN IP4 127.0.0.1")
    );
    assert_eq!(h.core.active_calls(), 1);

    // An INVITE from the PBX for nobody registered is refused.
    let stray = invite
        .replace(&ruri, "sip:nobody@127.0.0.1:5060")
        .replace("in-1@pbx", "in-2@pbx")
        .replace("z9hG4bKin1", "z9hG4bKin2");
    let out = h.feed(PBX, &stray);
    assert_eq!(only_to(&out, PBX)[0].status(), Some(404));
}

#[test]
fn a_session_that_is_not_refreshed_is_ended() {
    let mut h = Harness::new();
    let out = h.feed(PHONE, &invite("z9hG4bKa1", Some(OFFER)));
    let inv = only_to(&out, PBX).pop().unwrap();
    let ok = reply(&inv, 200, "OK", Some(ANSWER))
        .replace("Contact:", "Session-Expires: 90;refresher=uac\nContact:");
    let out = h.feed(PBX, &ok);
    let a_tag = only_to(&out, PHONE)[0].to_tag().unwrap();
    let ack = format!(
        "ACK sip:metaflow-proxy@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKack1\nMax-Forwards: 70\nFrom: <sip:alice@127.0.0.1:5061>;tag=a1\nTo: <sip:1000@127.0.0.1:5060>;tag={a_tag}\nCall-ID: call-1@phone\nCSeq: 1 ACK\nContent-Length: 0\n\n"
    );
    h.feed(PHONE, &ack);
    let out = h.advance(Duration::from_secs(89));
    assert!(
        out.iter()
            .all(|(_, m)| m.method().map(|m| m.as_str() != "BYE").unwrap_or(true))
    );
    let out = h.advance(Duration::from_secs(2));
    let byes = out
        .iter()
        .filter(|(_, m)| m.method().map(|m| m.as_str() == "BYE").unwrap_or(false))
        .count();
    assert_eq!(byes, 2, "both legs get BYE when the session expires");
    assert_eq!(h.core.active_calls(), 0);
}

#[test]
fn a_flood_beyond_max_transactions_is_refused_without_state() {
    let mut h = Harness::new();
    h.core.cfg.max_transactions = 10;
    let mut refused = 0;
    for i in 0..50 {
        let text = invite(&format!("z9hG4bKf{i}"), Some(OFFER))
            .replace("call-1@phone", &format!("flood-{i}@phone"));
        let out = h.feed(PHONE, &text);
        if only_to(&out, PHONE).iter().any(|m| m.status() == Some(503)) {
            refused += 1;
        }
    }
    assert!(refused >= 40, "{refused}");
    assert!(h.core.transactions() <= 11);
    assert_eq!(
        h.core
            .stats()
            .rejected_total(crate::b2bua::stats::Limit::Transactions),
        refused
    );
}

#[test]
fn unknown_methods_are_forwarded_outside_a_dialog_and_relayed_inside() {
    let mut h = Harness::new();
    let text = "FOO sip:1000@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKfoo1\nMax-Forwards: 70\nFrom: <sip:alice@127.0.0.1:5061>;tag=f1\nTo: <sip:1000@127.0.0.1:5060>\nCall-ID: foo-1\nCSeq: 1 FOO\nContent-Length: 0\n\n";
    // RFC 4475 §3.1.1.2: a proxy forwards an extension method it does not know.
    let out = h.feed(PHONE, text);
    let up = only_to(&out, PBX);
    assert_eq!(up[0].method().unwrap().as_str(), "FOO");
    assert!(only_to(&out, PHONE).is_empty());

    let inv = answered_call(&mut h);
    let in_dialog = format!(
        "FOO sip:metaflow-proxy@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKfoo2\nMax-Forwards: 70\nFrom: {};tag=pbx1\nTo: {}\nCall-ID: {}\nCSeq: 7 FOO\nContent-Length: 0\n\n",
        inv.header("To").unwrap(),
        inv.header("From").unwrap(),
        inv.call_id().unwrap()
    );
    let out = h.feed(PBX, &in_dialog);
    let relayed = only_to(&out, PHONE);
    assert_eq!(relayed[0].method().unwrap().as_str(), "FOO");
    assert_eq!(relayed[0].call_id(), Some("call-1@phone"));
}

/// A module that waits for a timer of its own, then finishes with `success`.
#[derive(Debug)]
struct WaitsForItsTimer;

impl crate::modules::Module for WaitsForItsTimer {
    fn name(&self) -> &'static str {
        "waits"
    }

    fn start(
        &mut self,
        ctx: &mut dyn crate::modules::CallContext,
        _run: crate::modules::RunInfo<'_>,
    ) -> crate::modules::Progress {
        let at = ctx.now() + Duration::from_secs(2);
        ctx.set_timer(at);
        crate::modules::Progress::Pending
    }

    fn on_timer(&mut self, _ctx: &mut dyn crate::modules::CallContext) -> crate::modules::Progress {
        crate::modules::Progress::Done("success")
    }
}

#[test]
fn a_module_timer_fires_and_its_outcome_runs_the_child() {
    let mut h = Harness::new();
    answered_call(&mut h);
    let flows = crate::metaflow::parse_metaflows(&serde_json::json!({"numbers": {"1":
        {"module": "hangup", "children": {"success": {"module": "hangup"}}}}}))
    .unwrap();
    let node = flows.numbers[0].1.clone();
    let run = crate::metaflow::ModuleRun {
        leg: Leg::A,
        node,
        data: serde_json::Map::new(),
    };
    h.core
        .start_module(1, Box::new(WaitsForItsTimer), run, h.now);
    assert!(h.sent().is_empty(), "nothing happens before the timer");
    let out = h.advance(Duration::from_secs(1));
    assert!(out.is_empty(), "the timer is not due yet");
    let out = h.advance(Duration::from_secs(1));
    // The child (`hangup`) ran on `success`: both legs get a BYE.
    let byes: Vec<_> = out
        .iter()
        .filter(|(_, m)| m.method().map(|m| m.as_str()) == Some("BYE"))
        .map(|(to, _)| *to)
        .collect();
    assert!(
        byes.contains(&addr(PHONE)) && byes.contains(&addr(PBX)),
        "{byes:?}"
    );
}

#[test]
fn a_transfer_target_keeps_the_pbx_port() {
    let mut h = Harness::new();
    answered_call(&mut h);
    let node = serde_json::json!({"module": "transfer", "data": {"target": "1003"}});
    let call_id = "call-1@phone".to_string();
    h.core.handle(h.now, Input::RunNode { call_id, node });
    let out = h.sent();
    let refer = only_to(&out, PBX).pop().expect("REFER towards the PBX leg");
    assert_eq!(refer.method().map(|m| m.as_str()), Some("REFER"));
    assert_eq!(refer.header("Refer-To"), Some("<sip:1003@127.0.0.1:5070>"));
}
