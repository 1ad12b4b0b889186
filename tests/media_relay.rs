//! Media relay over real loopback sockets: relaying, latching (and a stranger spraying the port
//! range), re-pointing, release, media timeout, the packet inspector hook and DTMF suppression.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

#[path = "common/relay_io.rs"]
mod relay_io;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metaflow_proxy::base::Leg;
use metaflow_proxy::dtmf::{DtmfDecoder, DtmfEvent, EventConfig};
use metaflow_proxy::media::stats::{Direction, DropReason, PacketKind};
use metaflow_proxy::media::{
    InspectorConfig, InspectorEvent, InspectorFactory, LatchMode, LatchPolicy, MediaConfig,
    MediaControl, MediaEngine, MediaError, MediaEvent, PacketInspector, SdpDirection, SourceMatch,
    StreamPorts, Verdict,
};
use metaflow_proxy::rtp::RtpView;
use relay_io::{Endpoint, recv_within, rtp};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout};

const CALL: u64 = 7;
const WAIT: Duration = Duration::from_secs(3);

fn config(port_min: u16, port_max: u16, media_timeout: Duration) -> MediaConfig {
    MediaConfig {
        media_ip: Ipv4Addr::LOCALHOST.into(),
        port_min,
        port_max,
        media_timeout,
        media_timeout_hold: Duration::from_secs(3600),
        workers: 1,
        latch: LatchPolicy::default(),
    }
}

fn engine(
    port_min: u16,
    port_max: u16,
    inspector: Option<InspectorFactory>,
) -> (MediaEngine, mpsc::Receiver<MediaEvent>) {
    let (events, events_rx) = mpsc::channel(64);
    let cfg = config(port_min, port_max, Duration::from_secs(60));
    (MediaEngine::new(cfg, events, inspector).unwrap(), events_rx)
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A leg's endpoint on 127.0.0.1.
async fn endpoint() -> Endpoint {
    Endpoint::bind_on(Ipv4Addr::LOCALHOST).await
}

/// Sends `packet` from `socket` to the proxy's loopback `port`.
async fn send(socket: &UdpSocket, packet: &[u8], port: u16) {
    socket.send_to(packet, local(port)).await.unwrap();
}

async fn recv(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    recv_within(socket, WAIT).await
}

/// Polls `condition` every 20 ms; panics naming `what` when it is still false after 5 s.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "never became true within 5 s: {what}"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

/// Allocates stream 0 of `CALL` and points each leg at its endpoint.
fn connect(engine: &mut MediaEngine, phone: &Endpoint, pbx: &Endpoint) -> StreamPorts {
    let ports = engine.allocate_stream(CALL, 0).unwrap();
    engine.set_remote(CALL, 0, Leg::A, phone.rtp_addr(), phone.rtcp_addr());
    engine.set_remote(CALL, 0, Leg::B, pbx.rtp_addr(), pbx.rtcp_addr());
    ports
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_rtp_and_rtcp_both_ways_byte_identical() {
    let (mut engine, _events) = engine(46000, 46099, None);
    let (phone, pbx) = (endpoint().await, endpoint().await);
    let ports = connect(&mut engine, &phone, &pbx);
    assert_eq!(engine.allocate_stream(CALL, 0).unwrap(), ports);
    assert_eq!(engine.ports_in_use(), 4);

    const N: u16 = 50;
    for seq in 0..N {
        let packet = rtp(0, seq, 0x1111_1111);
        send(&phone.rtp, &packet, ports.a.rtp).await;
        let (got, from) = recv(&pbx.rtp).await;
        assert_eq!(got, packet);
        assert_eq!(from, local(ports.b.rtp));
    }
    for seq in 0..N {
        let packet = rtp(8, seq.wrapping_add(1000), 0x2222_2222);
        send(&pbx.rtp, &packet, ports.b.rtp).await;
        let (got, from) = recv(&phone.rtp).await;
        assert_eq!(got, packet);
        assert_eq!(from, local(ports.a.rtp));
    }
    let report = b"\x81\xc8\x00\x06rtcp-sender-report".to_vec();
    send(&phone.rtcp, &report, ports.a.rtcp).await;
    assert_eq!(recv(&pbx.rtcp).await, (report.clone(), local(ports.b.rtcp)));
    send(&pbx.rtcp, &report, ports.b.rtcp).await;
    assert_eq!(
        recv(&phone.rtcp).await,
        (report.clone(), local(ports.a.rtcp))
    );

    let stats = engine.stats();
    eventually("counters flushed", || {
        stats.packets(Direction::BToA, PacketKind::Rtcp) == 1
            && stats.packets(Direction::BToA, PacketKind::Rtp) == u64::from(N)
    })
    .await;
    assert_eq!(
        stats.packets(Direction::AToB, PacketKind::Rtp),
        u64::from(N)
    );
    assert_eq!(
        stats.bytes(Direction::AToB, PacketKind::Rtp),
        u64::from(N) * 172
    );
    assert_eq!(stats.packets(Direction::AToB, PacketKind::Rtcp), 1);
    assert_eq!(stats.streams_active(), 1);
    let mut text = String::new();
    stats.render_prometheus(&mut text);
    assert!(
        text.contains("metaflow_proxy_rtp_packets_total{direction=\"a_to_b\",kind=\"rtp\"} 50")
    );
    assert!(text.contains("metaflow_proxy_ports_in_use 4"));
}

/// The caller's loopback address: distinct from the stranger's, so IP-only matching is tested.
const CALLER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// Where the stranger sprays from (when it does not share the caller's address).
const STRANGER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
/// The callee's (PBX's) loopback address.
const CALLEE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);
/// Where a NATed caller really sends from.
const NAT_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);
/// Where a re-INVITE moves the caller.
const MOVED_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 6);
/// The proxy's media address in the spray tests: nothing else binds it, so a spray of its port
/// range cannot hit another test's socket.
const SPRAYED_PROXY_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 10);
const CALLER_SSRC: u32 = 0xca11_e700;
const CALLEE_SSRC: u32 = 0xca11_ee00;
const STRANGER_SSRC: u32 = 0x0bad_0bad;

fn engine_with(
    port_min: u16,
    port_max: u16,
    latch: LatchPolicy,
) -> (MediaEngine, mpsc::Receiver<MediaEvent>) {
    engine_on(Ipv4Addr::LOCALHOST, port_min, port_max, latch)
}

fn engine_on(
    media_ip: Ipv4Addr,
    port_min: u16,
    port_max: u16,
    latch: LatchPolicy,
) -> (MediaEngine, mpsc::Receiver<MediaEvent>) {
    let (events, events_rx) = mpsc::channel(64);
    let cfg = MediaConfig {
        media_ip: media_ip.into(),
        latch,
        ..config(port_min, port_max, Duration::from_secs(60))
    };
    (MediaEngine::new(cfg, events, None).unwrap(), events_rx)
}

/// Sends `packet` from `socket` to the spray tests' proxy `port`.
async fn send_sprayed(socket: &UdpSocket, packet: &[u8], port: u16) {
    socket
        .send_to(packet, SocketAddr::from((SPRAYED_PROXY_IP, port)))
        .await
        .unwrap();
}

/// Learning with a window no slow test machine outlasts, so that which source wins never
/// depends on timing: only the signalled address can latch within a test.
fn patient(source_match: SourceMatch) -> LatchPolicy {
    LatchPolicy {
        mode: LatchMode::Learning,
        learning_window: Duration::from_secs(10),
        source_match,
    }
}

/// Checks that nothing (more) reaches `socket`. Everything the relay sent before the packet
/// the test last received is already queued (loopback delivers within `sendto`), so the
/// short wait only covers a relay still busy.
async fn assert_silent(socket: &UdpSocket, who: &str) {
    let mut buf = [0u8; 2048];
    if let Ok(Ok((len, from))) =
        timeout(Duration::from_millis(200), socket.recv_from(&mut buf)).await
    {
        panic!(
            "{who} received {len} bytes from {from}: {:02x?}",
            &buf[..len.min(16)]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latches_to_the_signalled_address_refuses_strangers_and_re_points() {
    let (mut engine, _events) = engine_with(46100, 46199, patient(SourceMatch::Ip));
    let sdp_phone = Endpoint::bind_on(CALLER_IP).await;
    let pbx = Endpoint::bind_on(CALLEE_IP).await;
    let ports = connect(&mut engine, &sdp_phone, &pbx);

    // Before the a-leg sent anything, its media goes to the SDP address.
    send(&pbx.rtp, &rtp(0, 1, 2), ports.b.rtp).await;
    assert_eq!(recv(&sdp_phone.rtp).await.0, rtp(0, 1, 2));

    // A stranger's packet is held back while the a-leg learns; the phone, sending from another
    // port of its SDP address (not symmetric), matches by IP and latches: the first packet the
    // PBX gets is the phone's.
    let stranger = Endpoint::bind_on(STRANGER_IP).await;
    send(&stranger.rtp, &rtp(0, 66, 6), ports.a.rtp).await;
    let phone = Endpoint::bind_on(CALLER_IP).await;
    send(&phone.rtp, &rtp(0, 2, 1), ports.a.rtp).await;
    assert_eq!(recv(&pbx.rtp).await.0, rtp(0, 2, 1));
    send(&pbx.rtp, &rtp(0, 3, 2), ports.b.rtp).await;
    assert_eq!(recv(&phone.rtp).await.0, rtp(0, 3, 2));

    // After the latch the stranger is refused (by the kernel: the socket is now connected to
    // the phone, and only now).
    send(&stranger.rtp, &rtp(0, 67, 6), ports.a.rtp).await;
    send(&phone.rtp, &rtp(0, 4, 1), ports.a.rtp).await;
    assert_eq!(recv(&pbx.rtp).await.0, rtp(0, 4, 1));

    // A re-INVITE moves the a-leg: media towards it follows, its old source has to learn
    // again like any other, and the new address latches.
    let moved = Endpoint::bind_on(MOVED_IP).await;
    engine.set_remote(CALL, 0, Leg::A, moved.rtp_addr(), moved.rtcp_addr());
    send(&pbx.rtp, &rtp(0, 5, 2), ports.b.rtp).await;
    assert_eq!(recv(&moved.rtp).await.0, rtp(0, 5, 2));
    send(&phone.rtp, &rtp(0, 6, 1), ports.a.rtp).await;
    send(&stranger.rtp, &rtp(0, 68, 6), ports.a.rtp).await;
    send(&moved.rtp, &rtp(0, 7, 3), ports.a.rtp).await;
    assert_eq!(recv(&pbx.rtp).await.0, rtp(0, 7, 3));
    send(&pbx.rtp, &rtp(0, 8, 2), ports.b.rtp).await;
    assert_eq!(recv(&moved.rtp).await.0, rtp(0, 8, 2));

    // Held back: the stranger's two packets before a latch and the phone's after the move.
    let stats = engine.stats();
    eventually("learning refusals counted", || {
        stats.dropped(DropReason::Learning) == 3
    })
    .await;
    assert_silent(&stranger.rtp, "the stranger").await;
    assert_silent(&pbx.rtp, "the PBX").await;
}

/// Sends one datagram from `stranger` to every port of `range` on the proxy's address, RTP
/// and RTCP ports alike: what an attacker does who does not know which ports a call got.
async fn spray(stranger: &UdpSocket, range: (u16, u16), round: u16) {
    let packet = rtp(0, round, STRANGER_SSRC);
    for port in range.0..=range.1 {
        send_sprayed(stranger, &packet, port).await;
    }
}

/// Spray rounds before the caller's first packet.
const ROUNDS_BEFORE: u16 = 3;
/// Packets each party sends during the call (each followed by a spray round).
const CALL_PACKETS: u16 = 50;

/// A call between `caller` and `callee` on an engine following `policy` over `range`, while
/// `stranger` sprays the whole range: `ROUNDS_BEFORE` rounds before the caller's first packet,
/// then one after each packet. Every packet of each party must reach the other, in order and
/// alone, and nothing may reach the stranger. Returns the engine (for its counters).
async fn call_under_spray(
    policy: LatchPolicy,
    range: (u16, u16),
    caller: &Endpoint,
    callee: &Endpoint,
    stranger: &UdpSocket,
) -> MediaEngine {
    let (mut engine, _events) = engine_on(SPRAYED_PROXY_IP, range.0, range.1, policy);
    let ports = connect(&mut engine, caller, callee);
    for round in 0..ROUNDS_BEFORE {
        spray(stranger, range, round).await;
    }
    for seq in 0..CALL_PACKETS {
        let packet = rtp(0, seq, CALLER_SSRC);
        send_sprayed(&caller.rtp, &packet, ports.a.rtp).await;
        spray(stranger, range, ROUNDS_BEFORE + seq).await;
        assert_eq!(
            recv(&callee.rtp).await.0,
            packet,
            "the callee got something else than the caller's packet {seq}"
        );
        let reply = rtp(8, seq, CALLEE_SSRC);
        send_sprayed(&callee.rtp, &reply, ports.b.rtp).await;
        assert_eq!(
            recv(&caller.rtp).await.0,
            reply,
            "the caller got something else than the callee's packet {seq}"
        );
    }
    assert_silent(stranger, "the stranger").await;
    assert_silent(&callee.rtp, "the callee").await;
    assert_silent(&caller.rtp, "the caller").await;
    let stats = engine.stats();
    eventually("every call packet counted as relayed", || {
        stats.packets(Direction::AToB, PacketKind::Rtp) == u64::from(CALL_PACKETS)
            && stats.packets(Direction::BToA, PacketKind::Rtp) == u64::from(CALL_PACKETS)
    })
    .await;
    engine
}

/// What each round before the caller spoke left refused at least: one packet on each of the
/// stream's four sockets (nothing is connected before a latch, so the relay sees them all);
/// and the RTCP sockets, never latched since neither party sends RTCP, refuse every round.
const MIN_REFUSALS: u64 = 4 * ROUNDS_BEFORE as u64 + 2 * CALL_PACKETS as u64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_spraying_the_port_range_gets_nothing_and_injects_nothing() {
    let caller = Endpoint::bind_on(CALLER_IP).await;
    let callee = Endpoint::bind_on(CALLEE_IP).await;
    let stranger = UdpSocket::bind((STRANGER_IP, 0)).await.unwrap();
    let policy = patient(SourceMatch::Ip);
    let engine = call_under_spray(policy, (47200, 47299), &caller, &callee, &stranger).await;

    let stats = engine.stats();
    eventually("the stranger's packets counted as held back", || {
        stats.dropped(DropReason::Learning) >= MIN_REFUSALS
    })
    .await;
    let mut text = String::new();
    stats.render_prometheus(&mut text);
    let line = text
        .lines()
        .find(|line| line.starts_with("metaflow_proxy_rtp_dropped_total{reason=\"learning\"}"))
        .expect("learning refusals rendered");
    let value: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(value >= MIN_REFUSALS, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_port_matching_refuses_a_stranger_on_the_callers_own_address() {
    let caller = Endpoint::bind_on(CALLER_IP).await;
    let callee = Endpoint::bind_on(CALLEE_IP).await;
    // Same IP as the caller, another port: only the port tells them apart.
    let stranger = UdpSocket::bind((CALLER_IP, 0)).await.unwrap();
    let policy = LatchPolicy {
        mode: LatchMode::Strict,
        source_match: SourceMatch::IpPort,
        ..LatchPolicy::default()
    };
    let engine = call_under_spray(policy, (47300, 47399), &caller, &callee, &stranger).await;

    let stats = engine.stats();
    eventually("the stranger's packets counted as foreign", || {
        stats.dropped(DropReason::ForeignSource) >= MIN_REFUSALS
    })
    .await;
    assert_eq!(stats.dropped(DropReason::Learning), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_natted_caller_latches_once_its_sdp_address_stayed_silent() {
    let policy = LatchPolicy {
        mode: LatchMode::Learning,
        learning_window: Duration::from_millis(100),
        source_match: SourceMatch::Ip,
    };
    let (mut engine, _events) = engine_with(47400, 47449, policy);
    // The SDP names a private address that never sends; the phone's NAT sends from another.
    let sdp_phone = Endpoint::bind_on(CALLER_IP).await;
    let natted = Endpoint::bind_on(NAT_IP).await;
    let pbx = Endpoint::bind_on(CALLEE_IP).await;
    let ports = connect(&mut engine, &sdp_phone, &pbx);

    // The phone sends every 20 ms; its packets are held back until the window has run out.
    let mut buf = [0u8; 2048];
    let mut first_relayed = None;
    for seq in 0..250u16 {
        send(&natted.rtp, &rtp(0, seq, CALLER_SSRC), ports.a.rtp).await;
        let wait = timeout(Duration::from_millis(20), pbx.rtp.recv_from(&mut buf)).await;
        if let Ok(Ok((len, _))) = wait {
            first_relayed = Some(buf[..len].to_vec());
            break;
        }
    }
    let first_relayed = first_relayed.expect("the NATed phone never latched");
    let seq = RtpView::parse(&first_relayed).unwrap().sequence();
    assert!(seq > 0, "the packet that opened the window was relayed");
    assert_eq!(first_relayed, rtp(0, seq, CALLER_SSRC));

    // Media towards the a-leg now goes to the NAT source, not the SDP address.
    send(&pbx.rtp, &rtp(8, 1, CALLEE_SSRC), ports.b.rtp).await;
    assert_eq!(recv(&natted.rtp).await.0, rtp(8, 1, CALLEE_SSRC));
    assert_silent(&sdp_phone.rtp, "the silent SDP address").await;
    let stats = engine.stats();
    eventually("held-back packets counted", || {
        stats.dropped(DropReason::Learning) >= u64::from(seq)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_packet_mode_still_lets_a_stranger_take_the_call() {
    // The lab mode keeps the old behaviour, hijack included: this is the defect the default
    // policy closes, shown with the same spray.
    let policy = LatchPolicy {
        mode: LatchMode::FirstPacket,
        ..LatchPolicy::default()
    };
    let range = (47450, 47499);
    let (mut engine, _events) = engine_on(SPRAYED_PROXY_IP, range.0, range.1, policy);
    let caller = Endpoint::bind_on(CALLER_IP).await;
    let callee = Endpoint::bind_on(CALLEE_IP).await;
    let stranger = UdpSocket::bind((STRANGER_IP, 0)).await.unwrap();
    let ports = connect(&mut engine, &caller, &callee);
    // The callee speaks first (so the spray cannot take its side too), then the stranger
    // sprays before the caller: the stranger talks to the callee, the caller is locked out
    // (its socket is connected to the stranger) and the stranger hears the callee.
    send_sprayed(&callee.rtp, &rtp(8, 0, CALLEE_SSRC), ports.b.rtp).await;
    assert_eq!(recv(&caller.rtp).await.0, rtp(8, 0, CALLEE_SSRC));
    spray(&stranger, range, 0).await;
    assert_eq!(recv(&callee.rtp).await.0, rtp(0, 0, STRANGER_SSRC));
    send_sprayed(&caller.rtp, &rtp(0, 1, CALLER_SSRC), ports.a.rtp).await;
    send_sprayed(&callee.rtp, &rtp(8, 1, CALLEE_SSRC), ports.b.rtp).await;
    // (The RTCP ports latched to the stranger too and relay its own spray back to it: only
    // what comes from the caller's RTP port counts here.)
    let callers_port = SocketAddr::from((SPRAYED_PROXY_IP, ports.a.rtp));
    let mut heard = None;
    for _ in 0..8 {
        let (packet, from) = recv(&stranger).await;
        if from == callers_port {
            heard = Some(packet);
            break;
        }
    }
    assert_eq!(heard, Some(rtp(8, 1, CALLEE_SSRC)));
    assert_silent(&caller.rtp, "the muted caller").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_without_a_destination_are_dropped_until_one_is_known() {
    let (mut engine, _events) = engine(46200, 46299, None);
    let (phone, pbx) = (endpoint().await, endpoint().await);
    let ports = engine.allocate_stream(CALL, 0).unwrap();
    engine.set_remote(CALL, 0, Leg::A, phone.rtp_addr(), phone.rtcp_addr());
    send(&phone.rtp, &rtp(0, 1, 1), ports.a.rtp).await;
    let stats = engine.stats();
    eventually("no destination counted", || {
        stats.dropped(DropReason::NoDestination) == 1
    })
    .await;
    engine.set_remote(CALL, 0, Leg::B, pbx.rtp_addr(), pbx.rtcp_addr());
    send(&phone.rtp, &rtp(0, 2, 1), ports.a.rtp).await;
    assert_eq!(recv(&pbx.rtp).await.0, rtp(0, 2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_returns_ports_and_closes_sockets() {
    let (mut engine, _events) = engine(46300, 46399, None);
    let first = engine.allocate_stream(CALL, 0).unwrap();
    let second = engine.allocate_stream(CALL, 1).unwrap();
    let other_call = engine.allocate_stream(CALL + 1, 0).unwrap();
    assert_eq!(engine.ports_in_use(), 12);
    let stats = engine.stats();
    eventually("three relays running", || stats.streams_active() == 3).await;

    engine.release_call(CALL);
    assert_eq!(engine.ports_in_use(), 4);
    eventually("released relays stopped", || stats.streams_active() == 1).await;
    let released: Vec<u16> = [first, second]
        .iter()
        .flat_map(|s| [s.a.rtp, s.a.rtcp, s.b.rtp, s.b.rtcp])
        .collect();
    for port in released {
        assert!(
            std::net::UdpSocket::bind(local(port)).is_ok(),
            "port {port} still bound"
        );
    }
    assert!(std::net::UdpSocket::bind(local(other_call.a.rtp)).is_err());

    drop(engine);
    eventually("dropping the engine stops relays", || {
        stats.streams_active() == 0
    })
    .await;
    assert!(std::net::UdpSocket::bind(local(other_call.b.rtcp)).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skips_ports_bound_elsewhere_and_reports_exhaustion() {
    let (mut engine, _events) = engine(46900, 46907, None);
    let squatter = std::net::UdpSocket::bind(local(46901)).unwrap();
    let ports = engine.allocate_stream(CALL, 0).unwrap();
    assert_eq!((ports.a.rtp, ports.b.rtp), (46902, 46904));
    assert!(matches!(
        engine.allocate_stream(CALL, 1),
        Err(MediaError::PortsExhausted)
    ));
    assert_eq!(engine.ports_in_use(), 4);
    drop(squatter);
    let ports = engine.allocate_stream(CALL, 1).unwrap();
    assert_eq!((ports.a.rtp, ports.b.rtp), (46906, 46900));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_armed_call_times_out_once() {
    let (events, mut events_rx) = mpsc::channel(64);
    let cfg = config(47000, 47099, Duration::from_millis(300));
    let mut engine = MediaEngine::new(cfg, events, None).unwrap();
    let (phone, pbx) = (endpoint().await, endpoint().await);
    let ports = connect(&mut engine, &phone, &pbx);
    engine.allocate_stream(CALL, 1).unwrap();
    // An unanswered call never times out.
    engine.allocate_stream(CALL + 1, 0).unwrap();
    engine.arm_timeout(CALL);
    send(&phone.rtp, &rtp(0, 1, 1), ports.a.rtp).await;
    recv(&pbx.rtp).await;

    let event = timeout(Duration::from_secs(5), events_rx.recv())
        .await
        .expect("no media timeout")
        .unwrap();
    assert_eq!(event, MediaEvent::Timeout { call: CALL });
    // Nothing more for over three media timeouts: a second report, or one for the unarmed
    // call, would have come within that window.
    if let Ok(Some(event)) = timeout(Duration::from_millis(1000), events_rx.recv()).await {
        panic!("timeout reported twice or for an unarmed call: {event:?}");
    }
}

/// Packets an inspector saw, with the leg that sent each.
type SeenPackets = Arc<Mutex<Vec<(Leg, Vec<u8>)>>>;

/// Drops telephone-events (payload type 101), records every packet it sees and what it was told.
struct RecordingInspector {
    seen: SeenPackets,
    configs: Arc<Mutex<Vec<(Leg, InspectorConfig)>>>,
}

impl PacketInspector for RecordingInspector {
    fn inspect(
        &mut self,
        from: Leg,
        packet: &mut [u8],
        now_us: u64,
        out: &mut dyn FnMut(InspectorEvent),
    ) -> Verdict {
        self.seen.lock().unwrap().push((from, packet.to_vec()));
        if packet.get(1) == Some(&101) {
            out(InspectorEvent::Digit {
                leg: from,
                digit: '5',
                at_us: now_us,
            });
            Verdict::Drop
        } else {
            Verdict::Forward
        }
    }

    fn on_tick(&mut self, _now_us: u64, _out: &mut dyn FnMut(InspectorEvent)) {}

    fn configure(&mut self, from: Leg, cfg: InspectorConfig) {
        self.configs.lock().unwrap().push((from, cfg));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspector_sees_every_packet_and_its_drop_verdict_holds() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let configs = Arc::new(Mutex::new(Vec::new()));
    let (seen_by_factory, configs_by_factory) = (Arc::clone(&seen), Arc::clone(&configs));
    let factory: InspectorFactory = Arc::new(move |_, _| {
        Box::new(RecordingInspector {
            seen: Arc::clone(&seen_by_factory),
            configs: Arc::clone(&configs_by_factory),
        })
    });
    let (mut engine, mut events) = engine(47100, 47199, Some(factory));
    let (phone, pbx) = (endpoint().await, endpoint().await);
    let ports = connect(&mut engine, &phone, &pbx);
    let cfg = InspectorConfig {
        event_payload_type: Some((101, 8000)),
        suppress_binding: None,
        inband: None,
    };
    engine.configure_inspector(CALL, 0, Leg::A, cfg);

    let mut sent = Vec::new();
    for seq in 0..20u16 {
        let payload_type = if seq % 4 == 1 { 101 } else { 0 };
        let packet = rtp(payload_type, seq, 9);
        send(&phone.rtp, &packet, ports.a.rtp).await;
        sent.push((Leg::A, packet));
    }
    // The last packet is forwarded, so once it arrived every earlier one was inspected.
    for (_, packet) in sent.iter().filter(|(_, p)| p[1] == 0) {
        assert_eq!(&recv(&pbx.rtp).await.0, packet);
    }
    let reply = rtp(0, 500, 10);
    send(&pbx.rtp, &reply, ports.b.rtp).await;
    assert_eq!(recv(&phone.rtp).await.0, reply);
    sent.push((Leg::B, reply));

    assert_eq!(*seen.lock().unwrap(), sent);
    assert_eq!(*configs.lock().unwrap(), vec![(Leg::A, cfg)]);
    for _ in 0..5 {
        let event = timeout(WAIT, events.recv()).await.unwrap().unwrap();
        assert!(matches!(
            event,
            MediaEvent::Inspector {
                call: CALL,
                stream: 0,
                event: InspectorEvent::Digit {
                    leg: Leg::A,
                    digit: '5',
                    ..
                }
            }
        ));
    }
    let stats = engine.stats();
    eventually("inspector drops counted", || {
        stats.dropped(DropReason::Inspector) == 5
    })
    .await;
}

#[test]
fn engine_needs_a_usable_range_and_no_runtime() {
    // The relay runs on the engine's own worker threads, so no tokio runtime is needed.
    let (events, _rx) = mpsc::channel(1);
    let cfg = config(46000, 46099, Duration::from_secs(1));
    let engine = MediaEngine::new(cfg, events.clone(), None);
    assert!(engine.is_ok(), "{:?}", engine.err());
    assert!(matches!(
        MediaEngine::new(config(46011, 46011, Duration::from_secs(1)), events, None),
        Err(MediaError::InvalidPortRange { .. })
    ));
}

/// A telephone-event packet (RFC 4733) on payload type 101.
fn event_rtp(seq: u16, ts: u32, marker: bool, event: u8, end: bool, duration: u16) -> Vec<u8> {
    let mut packet = vec![0x80, if marker { 0x80 | 101 } else { 101 }];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&ts.to_be_bytes());
    packet.extend_from_slice(&PHONE_SSRC.to_be_bytes());
    packet.extend_from_slice(&[event, if end { 0x80 | 10 } else { 10 }]);
    packet.extend_from_slice(&duration.to_be_bytes());
    packet
}

const PHONE_SSRC: u32 = 0x5eed_0001;

/// Sends one 80 ms press of `event` (4 updates, 3 end packets, distinct sequence numbers from
/// `first_seq`) from the phone, paced at 20 ms; returns the next free sequence number.
async fn send_press(phone: &Endpoint, to: u16, first_seq: u16, ts: u32, event: u8) -> u16 {
    for i in 0..7u16 {
        let end = i >= 4;
        let duration = if end { 640 } else { (i + 1) * 160 };
        let packet = event_rtp(first_seq + i, ts, i == 0, event, end, duration);
        send(&phone.rtp, &packet, to).await;
        sleep(Duration::from_millis(if i < 4 { 20 } else { 5 })).await;
    }
    first_seq + 7
}

async fn wait_digit(events: &mut mpsc::Receiver<MediaEvent>, wanted: char) {
    loop {
        let event = timeout(WAIT, events.recv()).await.unwrap().unwrap();
        if let MediaEvent::Inspector {
            event: InspectorEvent::Digit { digit, .. },
            ..
        } = event
            && digit == wanted
        {
            return;
        }
    }
}

/// A call whose a-leg may suppress `*`-codes, audio seq 1..=3 relayed, then `*` and `second`
/// pressed (seq 4..=17); returns what the PBX got so far and the next phone sequence number.
async fn suppressed_code(
    port_min: u16,
    second: u8,
) -> (
    MediaEngine,
    mpsc::Receiver<MediaEvent>,
    Endpoint,
    Endpoint,
    StreamPorts,
    Vec<Vec<u8>>,
) {
    let factory = metaflow_proxy::media::inspect::DtmfInspector::factory();
    let (mut engine, mut events) = engine(port_min, port_min + 99, Some(factory));
    let (phone, pbx) = (endpoint().await, endpoint().await);
    let ports = connect(&mut engine, &phone, &pbx);
    let suppressing = InspectorConfig {
        event_payload_type: Some((101, 8000)),
        suppress_binding: Some('*'),
        inband: None,
    };
    engine.configure_inspector(CALL, 0, Leg::A, suppressing);
    let plain = InspectorConfig {
        suppress_binding: None,
        inband: None,
        ..suppressing
    };
    engine.configure_inspector(CALL, 0, Leg::B, plain);
    let mut received = Vec::new();
    for seq in 1..=3u16 {
        let packet = rtp(0, seq, PHONE_SSRC);
        send(&phone.rtp, &packet, ports.a.rtp).await;
        received.push(recv(&pbx.rtp).await.0);
    }
    let next = send_press(&phone, ports.a.rtp, 4, 10_000, 10).await;
    send_press(&phone, ports.a.rtp, next, 12_000, second).await;
    wait_digit(&mut events, '*').await;
    wait_digit(&mut events, char::from(b'0' + second)).await;
    (engine, events, phone, pbx, ports, received)
}

fn sequence_numbers(packets: &[Vec<u8>]) -> Vec<u16> {
    packets
        .iter()
        .map(|p| RtpView::parse(p).unwrap().sequence())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppressed_code_never_reaches_the_other_leg() {
    let (mut engine, mut events, phone, pbx, ports, mut received) = suppressed_code(46400, 9).await;
    engine.discard_held(CALL, Leg::A);
    for seq in 18..=27u16 {
        let packet = rtp(0, seq, PHONE_SSRC);
        send(&phone.rtp, &packet, ports.a.rtp).await;
        let (got, _) = recv(&pbx.rtp).await;
        // Only the sequence number was rewritten: 14 withheld numbers are closed up.
        assert_eq!(got[2..4], (seq - 14).to_be_bytes());
        assert_eq!((&got[..2], &got[4..]), (&packet[..2], &packet[4..]));
        received.push(got);
    }
    assert!(
        received.iter().all(|p| p[1] & 0x7f == 0),
        "a telephone-event leaked"
    );
    assert_eq!(sequence_numbers(&received), (1..=13).collect::<Vec<u16>>());
    // Holding is over: a later ordinary digit goes through, renumbered in line. "Later": the
    // phone pauses its telephone-events for longer than the 200 ms that ends draining (this
    // pause is part of the scenario, not a wait for the relay).
    sleep(Duration::from_millis(250)).await;
    send_press(&phone, ports.a.rtp, 28, 20_000, 5).await;
    wait_digit(&mut events, '5').await;
    for expected in 14..=20u16 {
        let (got, _) = recv(&pbx.rtp).await;
        assert_eq!(RtpView::parse(&got).unwrap().sequence(), expected);
        assert_eq!(got[12], 5);
    }
    let stats = engine.stats();
    eventually("withheld events counted", || {
        stats.dropped(DropReason::Inspector) == 14
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_digits_reach_the_other_leg_as_fresh_events() {
    let (mut engine, _events, phone, pbx, ports, mut received) = suppressed_code(46500, 4).await;
    engine.release_held(CALL, Leg::A, "*4");
    // Audio keeps flowing while the digits are delivered (two 80 ms presses take ~260 ms).
    for seq in 18..=37u16 {
        let packet = rtp(0, seq, PHONE_SSRC);
        send(&phone.rtp, &packet, ports.a.rtp).await;
        sleep(Duration::from_millis(20)).await;
    }
    loop {
        let (got, _) = recv(&pbx.rtp).await;
        let last_audio = got[1] == 0 && got[12..] == rtp(0, 37, PHONE_SSRC)[12..];
        received.push(got);
        if last_audio {
            break;
        }
    }
    let seqs = sequence_numbers(&received);
    let expected: Vec<u16> = (1..=seqs.len() as u16).collect();
    assert_eq!(seqs, expected, "sequence numbers must run on without gaps");
    let mut decoder = DtmfDecoder::new(Some(EventConfig {
        payload_type: 101,
        clock_rate: 8000,
    }));
    let mut decoded = String::new();
    let mut injected = 0;
    for packet in &received {
        let view = RtpView::parse(packet).unwrap();
        assert_eq!(view.ssrc(), PHONE_SSRC);
        if view.payload_type() == 101 {
            injected += 1;
            if let Some(DtmfEvent::Started { digit, .. }) = decoder.on_packet(&view, injected) {
                decoded.push(digit);
            }
        }
    }
    assert_eq!(decoded, "*4");
    assert_eq!(
        injected, 12,
        "two 80 ms presses: 3 updates and 3 end packets each"
    );
    assert_eq!(received.len(), 3 + 20 + 12);
}

/// The relay's own timer sends released digits: with no audio flowing after the release (the
/// caller went quiet), every event packet still arrives, paced by the relay alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_digits_are_sent_on_the_relays_timer_without_audio() {
    let (mut engine, _events, _phone, pbx, _ports, _received) = suppressed_code(46600, 4).await;
    engine.release_held(CALL, Leg::A, "*4");
    let mut decoder = DtmfDecoder::new(Some(EventConfig {
        payload_type: 101,
        clock_rate: 8000,
    }));
    let mut decoded = String::new();
    let mut injected = 0;
    while injected < 12 {
        let (got, _) = recv(&pbx.rtp).await;
        let view = RtpView::parse(&got).unwrap();
        assert_eq!(view.payload_type(), 101, "only synthesized events are sent");
        injected += 1;
        if let Some(DtmfEvent::Started { digit, .. }) = decoder.on_packet(&view, injected) {
            decoded.push(digit);
        }
    }
    assert_eq!(decoded, "*4");
    let mut buf = [0u8; 2048];
    let late = tokio::time::timeout(Duration::from_millis(300), pbx.rtp.recv_from(&mut buf)).await;
    assert!(late.is_err(), "nothing after the two presses: {late:?}");
}

/// A minimal RTCP receiver report (no report blocks) from `ssrc`.
fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    let mut packet = vec![0x80, 201, 0, 1];
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet
}

/// A call on hold sends no RTP: with RTCP still flowing it outlives both the normal and the
/// on-hold timeout, while a call that is not held and sends nothing times out at the normal
/// one. Once its RTCP stops too, the held call times out at the on-hold limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_call_with_rtcp_outlives_the_media_timeout_and_a_silent_call_does_not() {
    const HELD: u64 = CALL;
    const SILENT: u64 = CALL + 1;
    let (events, mut events_rx) = mpsc::channel(64);
    let cfg = MediaConfig {
        media_timeout_hold: Duration::from_secs(2),
        ..config(47800, 47899, Duration::from_secs(1))
    };
    let mut engine = MediaEngine::new(cfg, events, None).unwrap();
    let (phone, pbx) = (endpoint().await, endpoint().await);
    let ports = connect(&mut engine, &phone, &pbx);
    engine.set_direction(HELD, 0, Leg::A, SdpDirection::SendOnly);
    engine.set_direction(HELD, 0, Leg::B, SdpDirection::RecvOnly);
    engine.allocate_stream(SILENT, 0).unwrap();
    engine.set_remote(SILENT, 0, Leg::A, local(9), local(9));
    engine.set_remote(SILENT, 0, Leg::B, local(9), local(9));
    engine.arm_timeout(HELD);
    engine.arm_timeout(SILENT);

    // Five normal timeouts (2.5 on-hold ones) of RTCP only, from the held phone.
    let start = Instant::now();
    let mut timed_out = Vec::new();
    while start.elapsed() < Duration::from_secs(5) {
        send(&phone.rtcp, &rtcp_rr(0x2222_2222), ports.a.rtcp).await;
        recv(&pbx.rtcp).await;
        sleep(Duration::from_millis(250)).await;
        while let Ok(event) = events_rx.try_recv() {
            timed_out.push(event);
        }
    }
    assert_eq!(
        timed_out,
        [MediaEvent::Timeout { call: SILENT }],
        "only the silent call that is not on hold times out"
    );

    // RTCP stops: the on-hold timeout (2 s) ends the held call, well within 10 s.
    let event = timeout(Duration::from_secs(10), events_rx.recv())
        .await
        .expect("the held call never timed out once its RTCP stopped")
        .unwrap();
    assert_eq!(event, MediaEvent::Timeout { call: HELD });
}

/// Calls are packed onto the first relay worker while it has room, so a light load costs one
/// thread's wake-ups, not every thread's; each worker's load is published for `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fill_the_first_worker_and_each_workers_load_is_published() {
    let (events, _events_rx) = mpsc::channel(64);
    let cfg = MediaConfig {
        workers: 2,
        ..config(47900, 47999, Duration::from_secs(60))
    };
    let mut engine = MediaEngine::new(cfg, events, None).unwrap();
    let stats = engine.stats();
    assert_eq!(stats.workers().len(), 2);
    let (phone, pbx) = (endpoint().await, endpoint().await);
    let ports = connect(&mut engine, &phone, &pbx);
    for call in [CALL + 1, CALL + 2] {
        engine.allocate_stream(call, 0).unwrap();
        engine.allocate_stream(call, 1).unwrap();
    }
    // Light load: every stream of every call is on the first worker.
    assert_eq!(stats.workers()[0].placed(), 5);
    assert_eq!(stats.workers()[1].placed(), 0);

    // The packed streams relay, and the first worker measures them at its tick.
    let packet = rtp(0, 1, 0x1111_1111);
    send(&phone.rtp, &packet, ports.a.rtp).await;
    assert_eq!(recv(&pbx.rtp).await.0, packet);
    eventually("the first worker published its load", || {
        stats.workers()[0].measured_streams() == 5
    })
    .await;
    let share = stats.workers()[0].cpu_share();
    assert!((0.0..=1.0).contains(&share), "CPU share {share}");
    let mut text = String::new();
    stats.render_prometheus(&mut text);
    assert!(text.contains("# TYPE metaflow_proxy_media_worker_cpu_ratio gauge\n"));
    assert!(text.contains("metaflow_proxy_media_worker_streams{worker=\"0\"} 5\n"));
    assert!(text.contains("metaflow_proxy_media_worker_streams{worker=\"1\"} 0\n"));

    for call in [CALL, CALL + 1, CALL + 2] {
        engine.release_call(call);
    }
    assert_eq!(stats.workers()[0].placed(), 0);
    eventually("the first worker measured no streams", || {
        stats.workers()[0].measured_streams() == 0
    })
    .await;
}
