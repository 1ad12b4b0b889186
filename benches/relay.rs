//! Packets per second through one anchored media stream over loopback, with a no-op inspector.
//!
//! The relay runs on a one-worker tokio runtime; the bench thread plays both legs with blocking
//! sockets, keeping a window of packets in flight.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use metaflow_proxy::media::{
    InspectorConfig, InspectorEvent, InspectorFactory, MediaConfig, MediaControl, MediaEngine,
    PacketInspector, Verdict,
};
use metaflow_proxy::metaflow::Leg;

/// Packets sent before their relayed copies are read back.
const WINDOW: usize = 32;
/// A G.711 20 ms packet: 12-byte RTP header and 160 bytes of payload.
const PACKET_LEN: usize = 172;

struct NoopInspector;

impl PacketInspector for NoopInspector {
    fn inspect(
        &mut self,
        _from: Leg,
        _packet: &mut [u8],
        _now_us: u64,
        _out: &mut dyn FnMut(InspectorEvent),
    ) -> Verdict {
        Verdict::Forward
    }
    fn on_tick(&mut self, _now_us: u64, _out: &mut dyn FnMut(InspectorEvent)) {}
    fn configure(&mut self, _from: Leg, _cfg: InspectorConfig) {}
}

fn relay_throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let (events, _events_rx) = tokio::sync::mpsc::channel(16);
    let factory: InspectorFactory = Arc::new(|_, _| Box::new(NoopInspector));
    let config = MediaConfig {
        media_ip: Ipv4Addr::LOCALHOST.into(),
        port_min: 47500,
        port_max: 47999,
        media_timeout: Duration::from_secs(60),
    };
    let mut engine = MediaEngine::new(config, events, Some(factory)).unwrap();
    let ports = engine.allocate_stream(1, 0).unwrap();

    let phone = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let pbx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    pbx.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let pbx_addr = pbx.local_addr().unwrap();
    let pbx_rtcp = SocketAddr::new(pbx_addr.ip(), pbx_addr.port() + 1);
    engine.set_remote(1, 0, Leg::B, pbx_addr, pbx_rtcp);
    let towards_b = SocketAddr::from((Ipv4Addr::LOCALHOST, ports.a.rtp));

    let mut packet = [0u8; PACKET_LEN];
    packet[0] = 0x80;
    let mut received = [0u8; 2048];
    let mut lost = 0u64;

    let mut group = c.benchmark_group("relay");
    group.throughput(Throughput::Elements(WINDOW as u64));
    group.bench_function("one_stream_a_to_b_172_bytes", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for seq in 0..WINDOW {
                    packet[2..4].copy_from_slice(&(seq as u16).to_be_bytes());
                    phone.send_to(&packet, towards_b).unwrap();
                }
                for _ in 0..WINDOW {
                    if pbx.recv_from(&mut received).is_err() {
                        lost += 1;
                    }
                }
            }
            start.elapsed()
        })
    });
    group.finish();
    engine.release_call(1);
    assert_eq!(lost, 0, "packets lost in the relay");
}

criterion_group!(benches, relay_throughput);
criterion_main!(benches);
