//! Media relay over real loopback sockets: relaying, latching, re-pointing, release, media
//! timeout, the packet inspector hook and DTMF suppression.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metaflow_proxy::base::Leg;
use metaflow_proxy::dtmf::{DtmfDecoder, DtmfEvent, EventConfig};
use metaflow_proxy::media::stats::{Direction, DropReason, PacketKind};
use metaflow_proxy::media::{
    InspectorConfig, InspectorEvent, InspectorFactory, MediaConfig, MediaControl, MediaEngine,
    MediaError, MediaEvent, PacketInspector, StreamPorts, Verdict,
};
use metaflow_proxy::rtp::RtpView;
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
        workers: 1,
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

/// An RTP packet whose header fields and payload all depend on `seq`, so any rewrite shows.
fn rtp(payload_type: u8, seq: u16, ssrc: u32) -> Vec<u8> {
    let mut packet = vec![0x80, payload_type];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend((0..160u16).map(|i| (i as u8) ^ (seq as u8)));
    packet
}

/// One leg's endpoint: an RTP and an RTCP socket on loopback.
struct Endpoint {
    rtp: UdpSocket,
    rtcp: UdpSocket,
}

impl Endpoint {
    async fn bind() -> Self {
        Self {
            rtp: UdpSocket::bind(local(0)).await.unwrap(),
            rtcp: UdpSocket::bind(local(0)).await.unwrap(),
        }
    }

    fn rtp_addr(&self) -> SocketAddr {
        self.rtp.local_addr().unwrap()
    }

    fn rtcp_addr(&self) -> SocketAddr {
        self.rtcp.local_addr().unwrap()
    }
}

/// Sends `packet` from `socket` to the proxy's loopback `port`.
async fn send(socket: &UdpSocket, packet: &[u8], port: u16) {
    socket.send_to(packet, local(port)).await.unwrap();
}

async fn recv(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (len, from) = timeout(WAIT, socket.recv_from(&mut buf))
        .await
        .expect("packet not relayed in time")
        .unwrap();
    (buf[..len].to_vec(), from)
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
    let (phone, pbx) = (Endpoint::bind().await, Endpoint::bind().await);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latches_to_the_real_source_drops_strangers_and_re_points() {
    let (mut engine, _events) = engine(46100, 46199, None);
    let (sdp_phone, pbx) = (Endpoint::bind().await, Endpoint::bind().await);
    let ports = connect(&mut engine, &sdp_phone, &pbx);

    // Before the a-leg sent anything, its media goes to the SDP address.
    send(&pbx.rtp, &rtp(0, 1, 2), ports.b.rtp).await;
    assert_eq!(recv(&sdp_phone.rtp).await.0, rtp(0, 1, 2));

    // The phone really sends from another port (NAT): that source latches.
    let natted = Endpoint::bind().await;
    send(&natted.rtp, &rtp(0, 2, 1), ports.a.rtp).await;
    assert_eq!(recv(&pbx.rtp).await.0, rtp(0, 2, 1));
    send(&pbx.rtp, &rtp(0, 3, 2), ports.b.rtp).await;
    assert_eq!(recv(&natted.rtp).await.0, rtp(0, 3, 2));

    // A third party is dropped: the next packet the PBX gets is the latched phone's. (The
    // latched socket is connected, so the kernel drops it before the relay sees it; only
    // packets queued before the latch reach the `unlatched_source` counter.)
    let stranger = Endpoint::bind().await;
    send(&stranger.rtp, &rtp(0, 66, 6), ports.a.rtp).await;
    send(&natted.rtp, &rtp(0, 4, 1), ports.a.rtp).await;
    assert_eq!(recv(&pbx.rtp).await.0, rtp(0, 4, 1));

    // A re-INVITE moves the a-leg: media towards it follows and a new source may latch.
    let moved = Endpoint::bind().await;
    engine.set_remote(CALL, 0, Leg::A, moved.rtp_addr(), moved.rtcp_addr());
    send(&pbx.rtp, &rtp(0, 5, 2), ports.b.rtp).await;
    assert_eq!(recv(&moved.rtp).await.0, rtp(0, 5, 2));
    send(&stranger.rtp, &rtp(0, 67, 6), ports.a.rtp).await;
    assert_eq!(recv(&pbx.rtp).await.0, rtp(0, 67, 6));
    send(&natted.rtp, &rtp(0, 6, 1), ports.a.rtp).await;
    send(&stranger.rtp, &rtp(0, 68, 6), ports.a.rtp).await;
    assert_eq!(recv(&pbx.rtp).await.0, rtp(0, 68, 6));
    // Media towards the a-leg now goes to its new source.
    send(&pbx.rtp, &rtp(0, 7, 2), ports.b.rtp).await;
    assert_eq!(recv(&stranger.rtp).await.0, rtp(0, 7, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_without_a_destination_are_dropped_until_one_is_known() {
    let (mut engine, _events) = engine(46200, 46299, None);
    let (phone, pbx) = (Endpoint::bind().await, Endpoint::bind().await);
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
    let (phone, pbx) = (Endpoint::bind().await, Endpoint::bind().await);
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
    let (phone, pbx) = (Endpoint::bind().await, Endpoint::bind().await);
    let ports = connect(&mut engine, &phone, &pbx);
    let cfg = InspectorConfig {
        event_payload_type: Some((101, 8000)),
        suppress_binding: None,
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
fn engine_needs_a_runtime_and_a_usable_range() {
    let (events, _rx) = mpsc::channel(1);
    let cfg = config(46000, 46099, Duration::from_secs(1));
    assert!(matches!(
        MediaEngine::new(cfg, events.clone(), None),
        Err(MediaError::NoRuntime)
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
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
    let (phone, pbx) = (Endpoint::bind().await, Endpoint::bind().await);
    let ports = connect(&mut engine, &phone, &pbx);
    let suppressing = InspectorConfig {
        event_payload_type: Some((101, 8000)),
        suppress_binding: Some('*'),
    };
    engine.configure_inspector(CALL, 0, Leg::A, suppressing);
    let plain = InspectorConfig {
        suppress_binding: None,
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
