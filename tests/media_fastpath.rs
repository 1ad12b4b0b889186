//! The kernel fast path (`media-fastpath`) over real loopback sockets: once a flow latches the
//! eBPF program forwards it byte for byte (the counters say the kernel did), telephone-events
//! still reach the DTMF inspector, a stranger never takes the kernel path, a flow moves between
//! the kernel and userspace without losing or duplicating a packet, and a released call leaves
//! nothing in the kernel. IPv6 flows (on `::1`) take the kernel path as IPv4 ones do.
//!
//! Loading BPF programs needs root (or CAP_BPF and CAP_NET_ADMIN): as root (CI) these tests run
//! and fail loudly if the kernel path cannot be set up; otherwise they print why and skip.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

#[path = "common/relay_io.rs"]
mod relay_io;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use metaflow_proxy::base::Leg;
use metaflow_proxy::media::fastpath::{FastPath, FastPathMode};
use metaflow_proxy::media::inspect::DtmfInspector;
use metaflow_proxy::media::playout::G711Map;
use metaflow_proxy::media::stats::{Direction, PacketKind};
use metaflow_proxy::media::{
    InspectorConfig, InspectorEvent, InspectorFactory, LatchPolicy, MediaConfig, MediaControl,
    MediaEngine, MediaEvent, StreamPorts,
};
use relay_io::{Endpoint, recv_within, rtp};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout};

const CALL: u64 = 17;
const WAIT: Duration = Duration::from_secs(3);
const PROXY_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const PHONE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const PBX_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);
const STRANGER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// The kernel path, or `None` (printed) when this process may not load BPF programs. As root a
/// failure is a test failure: CI runs as root and must exercise the kernel path.
fn fastpath() -> Option<Arc<FastPath>> {
    fastpath_on(PROXY_IP.into())
}

/// [`fastpath`] for a proxy whose media address is `media_ip`.
fn fastpath_on(media_ip: IpAddr) -> Option<Arc<FastPath>> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc_geteuid() } == 0;
    match FastPath::start(FastPathMode::Kernel, media_ip) {
        Ok(Some(fastpath)) => Some(Arc::new(fastpath)),
        Ok(None) => unreachable!("mode kernel never declines silently"),
        Err(error) if !root => {
            eprintln!("SKIPPED: the kernel fast path needs root or CAP_BPF ({error})");
            None
        }
        Err(error) => panic!("running as root, yet the kernel fast path cannot be set up: {error}"),
    }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

fn engine(
    port_min: u16,
    inspector: Option<InspectorFactory>,
    fastpath: Arc<FastPath>,
) -> (MediaEngine, mpsc::Receiver<MediaEvent>) {
    engine_on(PROXY_IP.into(), port_min, inspector, fastpath)
}

/// [`engine`] with its media sockets on `media_ip`.
fn engine_on(
    media_ip: IpAddr,
    port_min: u16,
    inspector: Option<InspectorFactory>,
    fastpath: Arc<FastPath>,
) -> (MediaEngine, mpsc::Receiver<MediaEvent>) {
    let (events, events_rx) = mpsc::channel(256);
    let cfg = MediaConfig {
        media_ip,
        port_min,
        port_max: port_min + 99,
        media_timeout: Duration::from_secs(60),
        media_timeout_hold: Duration::from_secs(3600),
        workers: 1,
        latch: LatchPolicy::default(),
    };
    let mut engine = MediaEngine::new(cfg, events, inspector).unwrap();
    engine.set_fastpath(fastpath);
    (engine, events_rx)
}

/// A telephone-event packet (RFC 4733) for `event`.
fn event(seq: u16, ts: u32, marker: bool, digit: u8, end: bool, duration: u16) -> Vec<u8> {
    let mut packet = vec![0x80, if marker { 0x80 | 101 } else { 101 }];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&ts.to_be_bytes());
    packet.extend_from_slice(&0xd7d7_d7d7u32.to_be_bytes());
    packet.extend_from_slice(&[digit, if end { 0x8a } else { 0x0a }]);
    packet.extend_from_slice(&duration.to_be_bytes());
    packet
}

/// One key press of `digit` (RFC 4733 event code) as four packets from sequence number `seq`
/// (start, update, end twice), 5 ms apart, to the proxy's `port`.
async fn press(from: &UdpSocket, port: u16, seq: u16, digit: u8) {
    for (n, (end, duration)) in [(false, 160), (false, 320), (true, 480), (true, 480)]
        .into_iter()
        .enumerate()
    {
        let packet = event(seq + n as u16, 50 * 160, n == 0, digit, end, duration);
        from.send_to(&packet, proxy(port)).await.unwrap();
        sleep(Duration::from_millis(5)).await;
    }
}

/// The RTP sequence numbers of `packets`, in arrival order.
fn sequence_numbers(packets: &[Vec<u8>]) -> Vec<u16> {
    packets
        .iter()
        .map(|p| u16::from_be_bytes([p[2], p[3]]))
        .collect()
}

/// An engine with one call set up: its events, the phone, the PBX and the proxy's ports.
type Call = (
    MediaEngine,
    mpsc::Receiver<MediaEvent>,
    Endpoint,
    Endpoint,
    StreamPorts,
);

/// A call of stream 0 whose legs' telephone-events are payload type 101, with `suppress` as
/// the binding digit whose presses are withheld.
async fn call_with_events(port_min: u16, fastpath: Arc<FastPath>, suppress: Option<char>) -> Call {
    let (mut engine, events) = engine(port_min, Some(DtmfInspector::factory()), fastpath);
    let (phone, pbx) = (
        Endpoint::bind_on(PHONE_IP).await,
        Endpoint::bind_on(PBX_IP).await,
    );
    let ports = connect(&mut engine, &phone, &pbx);
    let cfg = InspectorConfig {
        event_payload_type: Some((101, 8000)),
        suppress_binding: suppress,
        ..InspectorConfig::default()
    };
    engine.configure_inspector(CALL, 0, Leg::A, cfg);
    engine.configure_inspector(CALL, 0, Leg::B, cfg);
    (engine, events, phone, pbx, ports)
}

fn proxy(port: u16) -> SocketAddr {
    SocketAddr::from((PROXY_IP, port))
}

async fn recv(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    recv_within(socket, WAIT).await
}

/// Whatever arrives on `socket` within `quiet` of the previous packet.
async fn drain(socket: &UdpSocket, quiet: Duration) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(Ok((len, _))) = timeout(quiet, socket.recv_from(&mut buf)).await {
        got.push(buf[..len].to_vec());
    }
    got
}

fn connect(engine: &mut MediaEngine, phone: &Endpoint, pbx: &Endpoint) -> StreamPorts {
    let ports = engine.allocate_stream(CALL, 0).unwrap();
    let addr = |s: &UdpSocket| s.local_addr().unwrap();
    engine.set_remote(CALL, 0, Leg::A, addr(&phone.rtp), addr(&phone.rtcp));
    engine.set_remote(CALL, 0, Leg::B, addr(&pbx.rtp), addr(&pbx.rtcp));
    ports
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "never true within 5 s: {what}");
        sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `count` packets from `from` to the proxy's `port`, 2 ms apart, starting at `seq`.
async fn stream(from: &UdpSocket, port: u16, seq: u16, count: u16, ssrc: u32) {
    for n in 0..count {
        from.send_to(&rtp(0, seq + n, ssrc), proxy(port))
            .await
            .unwrap();
        sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latched_audio_is_forwarded_by_the_kernel_byte_identical() {
    let Some(fastpath) = fastpath() else { return };
    let ips = [PROXY_IP.into(), PHONE_IP.into(), PBX_IP.into()];
    forwarded_byte_identical(ips, 47000, fastpath).await;
}

/// The same over IPv6 (`::1`; phone and PBX differ by port): the program parses the IPv6 header,
/// matches the 128-bit addresses and fixes the UDP checksum's pseudo-header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latched_ipv6_audio_is_forwarded_by_the_kernel_byte_identical() {
    let Some(fastpath) = fastpath_on(Ipv6Addr::LOCALHOST.into()) else {
        return;
    };
    forwarded_byte_identical([Ipv6Addr::LOCALHOST.into(); 3], 47700, fastpath).await;
}

/// A call between a phone on `ips[1]` and a PBX on `ips[2]` through a proxy on `ips[0]`: after
/// the first packet each way, RTP and RTCP arrive byte for byte, from the proxy's ports, counted
/// as the kernel's.
async fn forwarded_byte_identical(ips: [IpAddr; 3], port_min: u16, fastpath: Arc<FastPath>) {
    let [proxy_ip, phone_ip, pbx_ip] = ips;
    let proxy = |port| SocketAddr::new(proxy_ip, port);
    let (mut engine, _events) = engine_on(proxy_ip, port_min, None, fastpath);
    let (phone, pbx) = (
        Endpoint::bind_on(phone_ip).await,
        Endpoint::bind_on(pbx_ip).await,
    );
    let ports = connect(&mut engine, &phone, &pbx);

    // Both directions latch in userspace with their first packet.
    phone
        .rtp
        .send_to(&rtp(0, 1, 0xaaaa), proxy(ports.a.rtp))
        .await
        .unwrap();
    assert_eq!(recv(&pbx.rtp).await.1, proxy(ports.b.rtp));
    pbx.rtp
        .send_to(&rtp(0, 1, 0xbbbb), proxy(ports.b.rtp))
        .await
        .unwrap();
    assert_eq!(recv(&phone.rtp).await.1, proxy(ports.a.rtp));
    sleep(Duration::from_millis(50)).await;

    const N: u16 = 200;
    for seq in 2..N {
        let packet = rtp(0, seq, 0xaaaa);
        phone
            .rtp
            .send_to(&packet, proxy(ports.a.rtp))
            .await
            .unwrap();
        let (got, from) = recv(&pbx.rtp).await;
        assert_eq!((got, from), (packet, proxy(ports.b.rtp)));
        let back = rtp(8, seq, 0xbbbb);
        pbx.rtp.send_to(&back, proxy(ports.b.rtp)).await.unwrap();
        let (got, from) = recv(&phone.rtp).await;
        assert_eq!((got, from), (back, proxy(ports.a.rtp)));
    }
    let report = b"\x81\xc8\x00\x06rtcp-sender-report".to_vec();
    for _ in 0..2 {
        phone
            .rtcp
            .send_to(&report, proxy(ports.a.rtcp))
            .await
            .unwrap();
        assert_eq!(recv(&pbx.rtcp).await, (report.clone(), proxy(ports.b.rtcp)));
        sleep(Duration::from_millis(50)).await;
    }

    let stats = engine.stats();
    eventually("the kernel's counts reach the relay counters", || {
        stats.packets(Direction::AToB, PacketKind::Rtp) == u64::from(N - 1)
            && stats.packets(Direction::BToA, PacketKind::Rtp) == u64::from(N - 1)
            && stats.packets(Direction::AToB, PacketKind::Rtcp) == 2
    })
    .await;
    assert_eq!(
        stats.bytes(Direction::AToB, PacketKind::Rtp),
        u64::from(N - 1) * 172
    );
    // Everything after the first packets went through the kernel.
    assert!(
        stats.kernel_packets() >= u64::from(2 * (N - 10)),
        "the kernel forwarded only {} packets",
        stats.kernel_packets()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telephone_events_reach_the_inspector_while_audio_stays_in_the_kernel() {
    let Some(fastpath) = fastpath() else { return };
    let (engine, mut events, phone, pbx, ports) = call_with_events(47100, fastpath, None).await;

    stream(&phone.rtp, ports.a.rtp, 1, 50, 0xd7d7_d7d7).await;
    let before = engine.stats();
    eventually("audio goes through the kernel", || {
        before.kernel_packets() >= 40
    })
    .await;
    let kernel_before = before.kernel_packets();
    press(&phone.rtp, ports.a.rtp, 51, 5).await;
    stream(&phone.rtp, ports.a.rtp, 55, 20, 0xd7d7_d7d7).await;
    let got = drain(&pbx.rtp, Duration::from_millis(300)).await;
    let seqs = sequence_numbers(&got);
    assert_eq!(
        seqs,
        (1..75).collect::<Vec<_>>(),
        "every packet once, in order"
    );
    let digit = timeout(WAIT, async {
        loop {
            if let Some(MediaEvent::Inspector {
                event: InspectorEvent::Digit { leg, digit, .. },
                ..
            }) = events.recv().await
            {
                return (leg, digit);
            }
        }
    })
    .await
    .expect("the digit was decoded");
    assert_eq!(digit, (Leg::A, '5'));
    let stats = engine.stats();
    eventually(
        "the audio after the digit went through the kernel too",
        || stats.kernel_packets() >= kernel_before + 15,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kernel_renumbers_audio_after_suppressed_digits_without_a_gap() {
    let Some(fastpath) = fastpath() else { return };
    let (engine, _events, phone, pbx, ports) = call_with_events(47500, fastpath, Some('*')).await;
    let receiver = tokio::spawn(async move { drain(&pbx.rtp, Duration::from_millis(500)).await });
    stream(&phone.rtp, ports.a.rtp, 1, 50, 0xd7d7_d7d7).await;
    let stats = engine.stats();
    eventually("audio goes through the kernel", || {
        stats.kernel_packets() >= 40
    })
    .await;
    // `*` (event 10): withheld from the PBX, four sequence numbers the receiver must not miss.
    press(&phone.rtp, ports.a.rtp, 51, 10).await;
    let kernel_before = stats.kernel_packets();
    stream(&phone.rtp, ports.a.rtp, 55, 60, 0xd7d7_d7d7).await;
    let got = receiver.await.unwrap();
    let seqs = sequence_numbers(&got);
    assert_eq!(
        seqs,
        (1..111).collect::<Vec<_>>(),
        "the digit is cut out and the audio after it renumbered without a gap"
    );
    assert!(
        got.iter().all(|p| p[1] & 0x7f == 0),
        "a telephone-event leaked"
    );
    assert!(
        stats.kernel_packets() >= kernel_before + 50,
        "the renumbered audio did not go through the kernel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_never_takes_the_kernel_path() {
    let Some(fastpath) = fastpath() else { return };
    let (mut engine, _events) = engine(47200, None, fastpath);
    let (phone, pbx) = (
        Endpoint::bind_on(PHONE_IP).await,
        Endpoint::bind_on(PBX_IP).await,
    );
    let stranger = UdpSocket::bind((STRANGER_IP, 0)).await.unwrap();
    let ports = connect(&mut engine, &phone, &pbx);
    stream(&phone.rtp, ports.a.rtp, 1, 30, 0xaaaa).await;
    assert_eq!(drain(&pbx.rtp, Duration::from_millis(200)).await.len(), 30);
    let stats = engine.stats();
    eventually("the flow is in the kernel", || stats.kernel_packets() > 0).await;
    for seq in 0..20 {
        stranger
            .send_to(&rtp(0, 900 + seq, 0x0bad), proxy(ports.a.rtp))
            .await
            .unwrap();
    }
    assert!(
        drain(&pbx.rtp, Duration::from_millis(300)).await.is_empty(),
        "a stranger's packet reached the PBX"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_moves_between_kernel_and_userspace_without_loss_or_duplicates() {
    let Some(fastpath) = fastpath() else { return };
    let (mut engine, _events) = engine(47300, Some(DtmfInspector::factory()), fastpath);
    let (phone, pbx) = (
        Endpoint::bind_on(PHONE_IP).await,
        Endpoint::bind_on(PBX_IP).await,
    );
    let ports = connect(&mut engine, &phone, &pbx);
    let plain = InspectorConfig {
        event_payload_type: Some((101, 8000)),
        ..InspectorConfig::default()
    };
    // Tone detection on the caller's audio needs that audio in userspace; turning it on and off
    // moves the flow out of the kernel and back while packets keep coming.
    let tones = InspectorConfig {
        inband: Some(G711Map::default()),
        ..plain
    };
    // Received as they come: 600 packets would overflow a socket buffer left unread.
    let receiver = tokio::spawn(async move { drain(&pbx.rtp, Duration::from_millis(500)).await });
    let sender = tokio::spawn(async move {
        stream(&phone.rtp, ports.a.rtp, 1, 600, 0xaaaa).await;
        phone
    });
    for n in 0..10 {
        sleep(Duration::from_millis(100)).await;
        let cfg = if n % 2 == 0 { tones } else { plain };
        engine.configure_inspector(CALL, 0, Leg::A, cfg);
    }
    let _phone = sender.await.unwrap();
    let got = receiver.await.unwrap();
    let seqs = sequence_numbers(&got);
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), seqs.len(), "a packet was duplicated");
    assert_eq!(sorted, (1..601).collect::<Vec<_>>(), "a packet was lost");
    let stats = engine.stats();
    assert!(stats.kernel_packets() > 0, "the kernel never forwarded");
    assert!(
        stats.kernel_packets() < 600,
        "the flow never went back to userspace"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_call_leaves_nothing_in_the_kernel() {
    let Some(fastpath) = fastpath() else { return };
    let (mut engine, _events) = engine(47400, None, Arc::clone(&fastpath));
    let (phone, pbx) = (
        Endpoint::bind_on(PHONE_IP).await,
        Endpoint::bind_on(PBX_IP).await,
    );
    let ports = connect(&mut engine, &phone, &pbx);
    stream(&phone.rtp, ports.a.rtp, 1, 30, 0xaaaa).await;
    let stats = engine.stats();
    eventually("the flow is in the kernel", || stats.kernel_packets() > 0).await;
    drain(&pbx.rtp, Duration::from_millis(100)).await;
    engine.release_call(CALL);
    sleep(Duration::from_millis(200)).await;
    stream(&phone.rtp, ports.a.rtp, 100, 10, 0xaaaa).await;
    assert!(
        drain(&pbx.rtp, Duration::from_millis(300)).await.is_empty(),
        "packets to a released call's port were still forwarded"
    );
}

/// A direction that heard a sound goes back to the kernel once the phone's audio resumes: the
/// kernel rewrites the packets to continue the stream the sound left (sequence numbers,
/// timestamps, SSRC), also after the phone changes SSRC. The PBX sees one stream throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_after_a_sound_returns_to_the_kernel_continuing_the_stream() {
    use metaflow_proxy::audio::Clip;
    use metaflow_proxy::media::playout::{PlayFormat, Playback};
    let Some(fastpath) = fastpath() else { return };
    let (mut engine, mut events) = engine(47600, None, fastpath);
    let (phone, pbx) = (
        Endpoint::bind_on(PHONE_IP).await,
        Endpoint::bind_on(PBX_IP).await,
    );
    let ports = connect(&mut engine, &phone, &pbx);
    let receiver = tokio::spawn(async move { drain(&pbx.rtp, Duration::from_millis(700)).await });
    stream(&phone.rtp, ports.a.rtp, 1, 20, 0xaaaa).await;
    sleep(Duration::from_millis(100)).await;
    let playback = Playback {
        id: 1,
        clip: Clip::new(vec![0; 800]),
        looped: false,
        mix: false,
        format: PlayFormat {
            map: G711Map::default(),
            preferred: Some(0),
            ptime_ms: 20,
        },
    };
    assert!(engine.play(CALL, Leg::B, playback));
    timeout(WAIT, async {
        while !matches!(
            events.recv().await,
            Some(MediaEvent::Playback { .. }) | None
        ) {}
    })
    .await
    .expect("the sound ended");
    let kernel_before = engine.stats().kernel_packets();
    stream(&phone.rtp, ports.a.rtp, 21, 60, 0xaaaa).await;
    stream(&phone.rtp, ports.a.rtp, 500, 40, 0xcccc).await;
    let got = receiver.await.unwrap();
    let ssrcs: std::collections::BTreeSet<u32> = got
        .iter()
        .map(|p| u32::from_be_bytes([p[8], p[9], p[10], p[11]]))
        .collect();
    assert_eq!(ssrcs.len(), 1, "one stream towards the PBX: {ssrcs:x?}");
    let seqs = sequence_numbers(&got);
    let first = seqs[0];
    let expected: Vec<u16> = (0..seqs.len() as u16)
        .map(|n| first.wrapping_add(n))
        .collect();
    assert_eq!(seqs, expected, "no gap and no repeat across the sound");
    assert!(
        seqs.len() >= 20 + 4 + 100,
        "the phone's 120 packets and the sound's: got {}",
        seqs.len()
    );
    let stats = engine.stats();
    eventually("the audio after the sound went through the kernel", || {
        stats.kernel_packets() >= kernel_before + 80
    })
    .await;
}

/// An interface that appears after start (a veth pair here) gets the program at the next
/// look, once; one removed is forgotten, and made again under the same name it is attached
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interfaces_added_after_start_get_the_program() {
    let Some(fastpath) = fastpath() else { return };
    let (a, b) = (
        format!("mfpa{}", std::process::id() % 100_000),
        format!("mfpb{}", std::process::id() % 100_000),
    );
    let ip = |args: &[&str]| {
        let status = std::process::Command::new("ip").args(args).status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "ip {} failed (iproute2 is needed)",
            args.join(" ")
        );
    };
    let make = || ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
    // Other interfaces may come and go meanwhile (other tests' namespaces): only ours count.
    let ours = |names: Vec<String>| {
        let mut ours: Vec<String> = names.into_iter().filter(|n| *n == a || *n == b).collect();
        ours.sort();
        ours
    };
    fastpath.attach_new_interfaces();
    make();
    assert_eq!(
        ours(fastpath.attach_new_interfaces()),
        [a.clone(), b.clone()]
    );
    assert!(fastpath.interfaces().contains(&a));
    assert!(
        ours(fastpath.attach_new_interfaces()).is_empty(),
        "attached once"
    );
    ip(&["link", "del", &a]);
    fastpath.attach_new_interfaces();
    assert!(
        !fastpath.interfaces().contains(&a),
        "a removed interface is forgotten"
    );
    make();
    assert_eq!(
        ours(fastpath.attach_new_interfaces()).len(),
        2,
        "made again: attached again"
    );
    ip(&["link", "del", &a]);
}
