//! An attended transfer's consultation over real loopback sockets: a third party joins a
//! stream, talks with one leg while the other is parked, and then either leaves (the legs hear
//! each other again) or takes a leg's place (the transfer completes, no re-INVITE: the staying
//! party keeps sending to the port it knows).
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

#[path = "common/relay_io.rs"]
mod relay_io;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use metaflow_proxy::base::Leg;
use metaflow_proxy::media::{LatchPolicy, MediaConfig, MediaControl, MediaEngine, StreamPorts};
use relay_io::{Endpoint, recv_within, rtp};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::timeout;

const CALL: u64 = 11;
const WAIT: Duration = Duration::from_secs(3);

fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// `from` sends RTP `seq` to the proxy's `port`; returns the packet sent.
async fn say(from: &Endpoint, port: u16, seq: u16, ssrc: u32) -> Vec<u8> {
    let packet = rtp(0, seq, ssrc);
    from.rtp.send_to(&packet, local(port)).await.unwrap();
    packet
}

/// Checks that nothing (more) reaches `socket` within 200 ms.
async fn silent(socket: &UdpSocket, who: &str) {
    let mut buf = [0u8; 2048];
    if let Ok(Ok((len, from))) =
        timeout(Duration::from_millis(200), socket.recv_from(&mut buf)).await
    {
        panic!("{who} received {len} bytes from {from}");
    }
}

/// `from` says something to `port` and `to` hears exactly that, from the proxy's `via`.
async fn heard(from: &Endpoint, port: u16, to: &Endpoint, via: u16, seq: u16) {
    let sent = say(from, port, seq, 0x5eed_0000 | u32::from(seq)).await;
    let (got, source) = recv_within(&to.rtp, WAIT).await;
    assert_eq!(got, sent, "payload relayed intact");
    assert_eq!(
        source,
        local(via),
        "sent from the proxy port facing the receiver"
    );
}

/// A call whose stream 0 has the transferor on the a-leg (127.0.0.1), the transferee on the
/// b-leg (127.0.0.2), and a target (127.0.0.3) not yet in it; media ports from `port_min`. The
/// engine's event receiver comes along so that the channel stays open for the test's life.
async fn call_of_three(port_min: u16) -> (Call, [Endpoint; 3], StreamPorts) {
    let (events, events_rx) = mpsc::channel(64);
    let cfg = MediaConfig {
        media_ip: Ipv4Addr::LOCALHOST.into(),
        port_min,
        port_max: port_min + 99,
        media_timeout: Duration::from_secs(60),
        media_timeout_hold: Duration::from_secs(3600),
        workers: 1,
        latch: LatchPolicy::default(),
    };
    let mut engine = MediaEngine::new(cfg, events, None).unwrap();
    let mut parties = Vec::new();
    for host in 1..=3 {
        parties.push(Endpoint::bind_on(Ipv4Addr::new(127, 0, 0, host)).await);
    }
    let ports = engine.allocate_stream(CALL, 0).unwrap();
    for (leg, party) in [(Leg::A, &parties[0]), (Leg::B, &parties[1])] {
        engine.set_remote(CALL, 0, leg, party.rtp_addr(), party.rtcp_addr());
    }
    let Ok(parties) = <[Endpoint; 3]>::try_from(parties) else {
        unreachable!("three parties bound")
    };
    ((engine, events_rx), parties, ports)
}

/// The engine and its event receiver.
type Call = (
    MediaEngine,
    mpsc::Receiver<metaflow_proxy::media::MediaEvent>,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consulted_party_talks_with_one_leg_then_takes_the_others_place() {
    let ((mut engine, _events), [transferor, transferee, target], ports) =
        call_of_three(46400).await;
    heard(&transferor, ports.a.rtp, &transferee, ports.b.rtp, 1).await;
    heard(&transferee, ports.b.rtp, &transferor, ports.a.rtp, 2).await;

    // A first consultation that ends without the target: the legs hear each other again.
    let first = engine.open_consult(CALL, Leg::A).unwrap();
    assert_eq!(engine.ports_in_use(), 6);
    engine.set_consult_remote(CALL, target.rtp_addr(), target.rtcp_addr());
    heard(&transferor, ports.a.rtp, &target, first.rtp, 3).await;
    heard(&target, first.rtp, &transferor, ports.a.rtp, 4).await;
    say(&transferee, ports.b.rtp, 5, 7).await;
    silent(
        &transferor.rtp,
        "the transferor, from the parked transferee",
    )
    .await;
    silent(&target.rtp, "the target, from the parked transferee").await;
    silent(&transferee.rtp, "the parked transferee").await;
    engine.close_consult(CALL);
    assert_eq!(engine.ports_in_use(), 4);
    heard(&transferor, ports.a.rtp, &transferee, ports.b.rtp, 6).await;
    heard(&transferee, ports.b.rtp, &transferor, ports.a.rtp, 7).await;
    say(&target, first.rtp, 8, 8).await;
    silent(
        &transferor.rtp,
        "the transferor, from a closed consultation",
    )
    .await;

    // A second one where the target takes the transferor's place.
    let second = engine.open_consult(CALL, Leg::A).unwrap();
    engine.set_consult_remote(CALL, target.rtp_addr(), target.rtcp_addr());
    heard(&target, second.rtp, &transferor, ports.a.rtp, 9).await;
    heard(&transferor, ports.a.rtp, &target, second.rtp, 10).await;
    let report = b"\x81\xc8\x00\x06rtcp-sender-report".to_vec();
    target
        .rtcp
        .send_to(&report, local(second.rtcp))
        .await
        .unwrap();
    let (got, source) = recv_within(&transferor.rtcp, WAIT).await;
    assert_eq!((got, source), (report, local(ports.a.rtcp)));
    engine.consult_takes(CALL, Leg::A);
    // The transferee keeps sending where it always did; the target keeps its own ports.
    heard(&transferee, ports.b.rtp, &target, second.rtp, 11).await;
    heard(&target, second.rtp, &transferee, ports.b.rtp, 12).await;
    assert_eq!(engine.allocate_stream(CALL, 0).unwrap().a, second);
    assert_eq!(engine.ports_in_use(), 4);
    // The transferor's old port is closed: what it sends reaches nobody.
    say(&transferor, ports.a.rtp, 13, 9).await;
    silent(
        &transferee.rtp,
        "the transferee, from the departed transferor",
    )
    .await;
    silent(&target.rtp, "the target, from the departed transferor").await;
    engine.release_call(CALL);
    assert_eq!(engine.ports_in_use(), 0);
}

/// A telephone-event (RFC 4733) packet of key `event` at RTP timestamp `ts`.
fn key_press(seq: u16, ts: u32, event: u8, end: bool) -> Vec<u8> {
    let mut packet = vec![0x80, 101];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&ts.to_be_bytes());
    packet.extend_from_slice(&0x0a0a_0a0au32.to_be_bytes());
    packet.extend_from_slice(&[event, if end { 0x8a } else { 0x0a }, 0x01, 0x40]);
    packet
}

/// The key press under way when the consultation opens (the transfer code's last digit) never
/// reaches the target; the transferor's next key press does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_of_the_transfer_code_stays_away_from_the_target() {
    use metaflow_proxy::media::InspectorConfig;
    let ((mut engine, _events), [transferor, transferee, target], ports) =
        call_of_three(46500).await;
    let events_at_101 = InspectorConfig {
        event_payload_type: Some((101, 8000)),
        ..InspectorConfig::default()
    };
    engine.configure_inspector(CALL, 0, Leg::A, events_at_101);
    let press = |seq, ts, end| key_press(seq, ts, 2, end);
    // The start of the `2` reaches the transferee; then the code matches and the target rings.
    transferor
        .rtp
        .send_to(&press(1, 8000, false), local(ports.a.rtp))
        .await
        .unwrap();
    let (got, _) = recv_within(&transferee.rtp, WAIT).await;
    assert_eq!(got, press(1, 8000, false));
    let pair = engine.open_consult(CALL, Leg::A).unwrap();
    engine.set_consult_remote(CALL, target.rtp_addr(), target.rtcp_addr());
    tokio::time::sleep(Duration::from_millis(50)).await;
    for seq in 2..5 {
        transferor
            .rtp
            .send_to(&press(seq, 8000, seq > 2), local(ports.a.rtp))
            .await
            .unwrap();
    }
    silent(&target.rtp, "the target, from the transfer code's last key").await;
    // A later key press (another timestamp) is the transferor's own, for the target.
    let later = key_press(5, 16000, 7, false);
    transferor
        .rtp
        .send_to(&later, local(ports.a.rtp))
        .await
        .unwrap();
    let (got, source) = recv_within(&target.rtp, WAIT).await;
    assert_eq!((got, source), (later, local(pair.rtp)));
    engine.release_call(CALL);
}
