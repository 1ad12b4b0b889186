//! The transaction layer on its own: a fake clock, hand-written SIP, no call core.

use std::time::{Duration, Instant};

use crate::sip::SipMessage;
use crate::sip::transport::Peer;

use super::*;

/// The layer under test: server data and client data are plain labels.
type Layer = TxLayer<&'static str, &'static str>;

fn peer() -> Peer {
    Peer::udp("192.0.2.7:5060".parse().unwrap())
}

fn tcp_peer() -> Peer {
    Peer::tcp("192.0.2.7:5060".parse().unwrap())
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn request(method: &str, branch: &str, cseq: u32) -> SipMessage {
    let branch = if branch.is_empty() {
        String::new()
    } else {
        format!(";branch={branch}")
    };
    let text = format!(
        "{method} sip:b@192.0.2.9 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5060{branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@192.0.2.7>;tag=fa\r\nTo: <sip:b@192.0.2.9>\r\n\
         Call-ID: call-1\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    );
    SipMessage::parse(text.as_bytes()).unwrap()
}

/// Starts a server transaction for `req` the way the owner does after `RequestEvent::New`.
fn serve(layer: &mut Layer, req: &SipMessage, now: Instant) -> ServerKey {
    assert_eq!(layer.on_request(req, now), RequestEvent::New);
    let key = ServerKey::of_request(req).unwrap();
    layer.insert_server(key.clone(), req.clone(), peer(), false, "server");
    key
}

/// Runs every timer of `layer` until `end`, collecting (offset from `t0` in ms, event).
fn run(layer: &mut Layer, t0: Instant, end: Duration) -> Vec<(u128, TxEvent<&str, &str>)> {
    let mut out = Vec::new();
    while let Some(at) = layer.poll_timeout().filter(|at| *at <= t0 + end) {
        while let Some(event) = layer.handle_timeout(at) {
            out.push(((at - t0).as_millis(), event));
        }
    }
    out
}

fn send_times(events: &[(u128, TxEvent<&str, &str>)]) -> Vec<u128> {
    events
        .iter()
        .filter(|(_, e)| matches!(e, TxEvent::Send(_)))
        .map(|(t, _)| *t)
        .collect()
}

#[test]
fn retransmitted_request_is_answered_with_the_last_response() {
    let t0 = Instant::now();
    let mut layer = Layer::new(Timers::default());
    let invite = request("INVITE", "z9hG4bK-a", 1);
    let key = serve(&mut layer, &invite, t0);
    assert_eq!(
        layer.on_request(&invite, t0),
        RequestEvent::Retransmission(None),
        "nothing to repeat before the first response"
    );
    let ringing = SipMessage::response_to(&invite, 180, "Ringing");
    let sent = layer.respond(&key, &ringing, t0).unwrap();
    assert_eq!(sent.to, peer());
    assert_eq!(
        layer.on_request(&invite, t0 + ms(100)),
        RequestEvent::Retransmission(Some(sent))
    );
    assert_eq!(layer.server(&key).map(|s| *s.data()), Some("server"));
}

#[test]
fn ack_of_a_non_2xx_is_absorbed_and_ends_timer_g_then_timer_i() {
    let t0 = Instant::now();
    let mut layer = Layer::new(Timers::default());
    let invite = request("INVITE", "z9hG4bK-a", 1);
    let key = serve(&mut layer, &invite, t0);
    let busy = SipMessage::response_to(&invite, 486, "Busy Here");
    layer.respond(&key, &busy, t0);
    let events = run(&mut layer, t0, ms(4000));
    assert_eq!(send_times(&events), vec![500, 1500, 3500], "timer G");
    let ack = request("ACK", "z9hG4bK-a", 1);
    let acked = t0 + ms(4000);
    assert_eq!(layer.on_request(&ack, acked), RequestEvent::AckAbsorbed);
    assert_eq!(layer.poll_timeout(), Some(acked + Timers::default().t4));
    assert!(
        run(&mut layer, t0, ms(20_000)).is_empty(),
        "timer I ends it quietly"
    );
    assert!(layer.is_empty());
}

#[test]
fn ack_of_a_2xx_goes_to_the_owner() {
    let t0 = Instant::now();
    let mut layer = Layer::new(Timers::default());
    let invite = request("INVITE", "z9hG4bK-a", 1);
    let key = serve(&mut layer, &invite, t0);
    layer.respond(&key, &SipMessage::response_to(&invite, 200, "OK"), t0);
    let ack = request("ACK", "z9hG4bK-a", 1);
    assert_eq!(layer.on_request(&ack, t0), RequestEvent::New);
    layer.ack_server(&key, t0);
    let events = run(&mut layer, t0, ms(40_000));
    assert!(events.is_empty(), "no 2xx retransmission after the ACK");
    assert!(layer.is_empty(), "timer L ended it");
}

#[test]
fn unacknowledged_final_times_out_with_timer_h() {
    let t0 = Instant::now();
    let mut layer = Layer::new(Timers::default());
    let invite = request("INVITE", "z9hG4bK-a", 1);
    let key = serve(&mut layer, &invite, t0);
    layer.respond(&key, &SipMessage::response_to(&invite, 486, "Busy"), t0);
    let events = run(&mut layer, t0, ms(40_000));
    assert_eq!(
        send_times(&events),
        vec![
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    match events.last() {
        Some((32000, TxEvent::ServerAckTimeout { key: k, code, data })) => {
            assert_eq!((k, *code, *data), (&key, 486, "server"));
        }
        other => panic!("expected timer H, got {other:?}"),
    }
    assert!(layer.is_empty());
}

#[test]
fn non_invite_server_answers_retransmissions_until_timer_j() {
    let t0 = Instant::now();
    let mut layer = Layer::new(Timers::default());
    let bye = request("BYE", "z9hG4bK-b", 2);
    let key = serve(&mut layer, &bye, t0);
    let ok = layer
        .respond(&key, &SipMessage::response_to(&bye, 200, "OK"), t0)
        .unwrap();
    assert_eq!(
        layer.on_request(&bye, t0 + ms(31_000)),
        RequestEvent::Retransmission(Some(ok))
    );
    assert!(run(&mut layer, t0, ms(40_000)).is_empty());
    assert!(layer.is_empty(), "timer J ended it");
    assert_eq!(layer.on_request(&bye, t0 + ms(40_000)), RequestEvent::New);
}

#[test]
fn invite_client_retransmits_with_timer_a_and_times_out_with_timer_b() {
    let t0 = Instant::now();
    let mut layer = Layer::new(Timers::default());
    let invite = request("INVITE", "z9hG4bK-c", 1);
    let first = layer.send(invite.clone(), peer(), "client", t0);
    assert_eq!(first.bytes, invite.to_bytes());
    let events = run(&mut layer, t0, ms(40_000));
    assert_eq!(
        send_times(&events),
        vec![500, 1500, 3500, 7500, 15500, 31500]
    );
    match events.last() {
        Some((32000, TxEvent::ClientTimeout { key, request, data })) => {
            assert_eq!(key, &ClientKey::of_request(&invite).unwrap());
            assert_eq!((request, *data), (&invite, "client"));
        }
        other => panic!("expected timer B, got {other:?}"),
    }
    assert!(layer.is_empty());
}

#[test]
fn non_invite_client_caps_timer_e_at_t2_and_times_out_with_timer_f() {
    let t0 = Instant::now();
    let mut layer = Layer::new(Timers::default());
    layer.send(request("OPTIONS", "z9hG4bK-d", 1), peer(), "client", t0);
    let events = run(&mut layer, t0, ms(40_000));
    assert_eq!(
        send_times(&events),
        vec![
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    assert!(matches!(
        events.last(),
        Some((32000, TxEvent::ClientTimeout { .. }))
    ));
}

#[test]
fn reliable_transports_are_not_retransmitted() {
    let t0 = Instant::now();
    let mut layer = Layer::new(Timers::default());
    layer.send(request("OPTIONS", "z9hG4bK-d", 1), tcp_peer(), "client", t0);
    let events = run(&mut layer, t0, ms(40_000));
    assert_eq!(events.len(), 1);
    assert!(matches!(
        events.first(),
        Some((32000, TxEvent::ClientTimeout { .. }))
    ));
}

#[test]
fn non_2xx_to_invite_is_acked_and_retransmissions_get_the_ack_again() {
    let t0 = Instant::now();
    let mut layer = Layer::new(Timers::default());
    let invite = request("INVITE", "z9hG4bK-e", 1);
    layer.send(invite.clone(), peer(), "client", t0);
    let mut busy = SipMessage::response_to(&invite, 486, "Busy Here");
    busy.set_header("To", "<sip:b@192.0.2.9>;tag=tb");
    let ack = match layer.on_response(&busy, t0 + ms(10)) {
        ResponseEvent::Deliver {
            data, request, ack, ..
        } => {
            assert_eq!((*data, request), ("client", &invite));
            ack.unwrap()
        }
        other => panic!("expected delivery, got {other:?}"),
    };
    let parsed = SipMessage::parse(&ack.bytes).unwrap();
    assert_eq!(parsed.header("CSeq"), Some("1 ACK"));
    assert_eq!(parsed.to_tag().as_deref(), Some("tb"));
    assert_eq!(
        parsed.top_via(),
        invite.top_via(),
        "same branch as the INVITE"
    );
    match layer.on_response(&busy, t0 + ms(600)) {
        ResponseEvent::Absorbed(Some(again)) => assert_eq!(again, ack),
        other => panic!("expected the ACK again, got {other:?}"),
    }
    // Timer D: 32 s, then the transaction ends quietly.
    assert!(run(&mut layer, t0, ms(40_000)).is_empty());
    assert!(layer.is_empty());
}

#[test]
fn retransmitted_2xx_gets_the_owners_ack_and_provisional_stops_timer_a() {
    let t0 = Instant::now();
    let mut layer = Layer::new(Timers::default());
    let invite = request("INVITE", "z9hG4bK-f", 1);
    layer.send(invite.clone(), peer(), "client", t0);
    let ringing = SipMessage::response_to(&invite, 180, "Ringing");
    assert!(matches!(
        layer.on_response(&ringing, t0 + ms(100)),
        ResponseEvent::Deliver { ack: None, .. }
    ));
    assert_eq!(layer.poll_timeout(), None, "timers A and B stop on 1xx");
    let ok = SipMessage::response_to(&invite, 200, "OK");
    let key = match layer.on_response(&ok, t0 + ms(200)) {
        ResponseEvent::Deliver { key, ack: None, .. } => key,
        other => panic!("expected delivery, got {other:?}"),
    };
    assert!(matches!(
        layer.on_response(&ok, t0 + ms(300)),
        ResponseEvent::Absorbed(None)
    ));
    layer.set_ack(&key, b"ACK".to_vec());
    match layer.on_response(&ok, t0 + ms(400)) {
        ResponseEvent::Absorbed(Some(t)) => assert_eq!(t.bytes, b"ACK".to_vec()),
        other => panic!("expected the ACK again, got {other:?}"),
    }
}

#[test]
fn non_invite_client_absorbs_retransmitted_finals_until_timer_k() {
    let t0 = Instant::now();
    let mut layer = Layer::new(Timers::default());
    let bye = request("BYE", "z9hG4bK-g", 5);
    layer.send(bye.clone(), peer(), "client", t0);
    let ok = SipMessage::response_to(&bye, 200, "OK");
    assert!(matches!(
        layer.on_response(&ok, t0 + ms(10)),
        ResponseEvent::Deliver { .. }
    ));
    assert!(matches!(
        layer.on_response(&ok, t0 + ms(20)),
        ResponseEvent::Absorbed(None)
    ));
    assert_eq!(
        layer.poll_timeout(),
        Some(t0 + ms(10) + Timers::default().t4)
    );
    assert!(run(&mut layer, t0, ms(6000)).is_empty());
    assert!(layer.is_empty());
    assert!(matches!(
        layer.on_response(&ok, t0 + ms(6000)),
        ResponseEvent::Stray
    ));
}

#[test]
fn rfc2543_requests_match_their_retransmissions_and_acks() {
    let t0 = Instant::now();
    let mut layer = Layer::new(Timers::default());
    let invite = request("INVITE", "", 3);
    let key = serve(&mut layer, &invite, t0);
    assert!(matches!(key, ServerKey::Rfc2543 { .. }));
    let busy = layer
        .respond(&key, &SipMessage::response_to(&invite, 486, "Busy"), t0)
        .unwrap();
    assert_eq!(
        layer.on_request(&invite, t0 + ms(1)),
        RequestEvent::Retransmission(Some(busy))
    );
    assert_eq!(
        layer.on_request(&request("ACK", "", 3), t0 + ms(2)),
        RequestEvent::AckAbsorbed
    );
    assert_eq!(
        layer.on_request(&request("INVITE", "", 4), t0 + ms(3)),
        RequestEvent::New,
        "the next CSeq is a new transaction"
    );
}

#[test]
fn cancel_is_its_own_transaction_and_finds_its_invite() {
    let t0 = Instant::now();
    let mut layer = Layer::new(Timers::default());
    let invite = request("INVITE", "z9hG4bK-h", 1);
    let invite_key = serve(&mut layer, &invite, t0);
    layer.respond(
        &invite_key,
        &SipMessage::response_to(&invite, 100, "Trying"),
        t0,
    );
    let cancel = request("CANCEL", "z9hG4bK-h", 1);
    assert_eq!(layer.on_request(&cancel, t0), RequestEvent::New);
    let cancel_key = ServerKey::of_request(&cancel).unwrap();
    let found = cancel_key
        .invite_of_cancel()
        .and_then(|k| layer.server(&k).map(|s| s.request().clone()));
    assert_eq!(found, Some(invite));
}

#[test]
fn client_cancel_and_invite_are_told_apart_by_method() {
    let t0 = Instant::now();
    let mut layer = Layer::new(Timers::default());
    let invite = request("INVITE", "z9hG4bK-i", 1);
    layer.send(invite.clone(), peer(), "invite", t0);
    let cancel = cancel_for(&invite);
    layer.send(cancel.clone(), peer(), "cancel", t0);
    assert_eq!(layer.len(), 2);
    let ok = SipMessage::response_to(&cancel, 200, "OK");
    assert!(matches!(
        layer.on_response(&ok, t0),
        ResponseEvent::Deliver {
            data: &"cancel",
            ..
        }
    ));
    let terminated = SipMessage::response_to(&invite, 487, "Request Terminated");
    assert!(matches!(
        layer.on_response(&terminated, t0),
        ResponseEvent::Deliver {
            data: &"invite",
            ack: Some(_),
            ..
        }
    ));
}
