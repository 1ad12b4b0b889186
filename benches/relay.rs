//! Packets per second through one anchored media stream over loopback, with a no-op inspector,
//! plain and with a WAV recording tapping the stream (the recorder's copy on the relay path and
//! its writer task), and through the real DTMF inspector with in-band tone detection off and on,
//! measured in the same run so their ratios are meaningful.
//!
//! The relay runs on one media worker thread; the recording writer on a one-worker tokio runtime;
//! the bench thread plays both legs with blocking sockets, keeping a window of packets in flight.
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)] // bench code: criterion macros, panics are failed runs

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use metaflow_proxy::base::Leg;
use metaflow_proxy::media::inspect::DtmfInspector;
use metaflow_proxy::media::playout::G711Map;
use metaflow_proxy::media::{
    InspectorConfig, InspectorEvent, InspectorFactory, LatchPolicy, MediaConfig, MediaControl,
    MediaEngine, PacketInspector, Verdict,
};
use metaflow_proxy::modules::record::{
    Codec, LegCodecs, RecordFormat, Recorder, RecordingInfo, StopReason,
};

/// Packets sent before their relayed copies are read back.
const WINDOW: usize = 32;
/// A G.711 20 ms packet: 12-byte RTP header and 160 bytes of payload.
const PACKET_LEN: usize = 172;
/// Call key of the stream relayed without recording.
const PLAIN_CALL: u64 = 1;
/// Call key of the stream relayed with a recording tap.
const RECORDED_CALL: u64 = 2;
/// Call key of the stream relayed through the real DTMF inspector, in-band detection off.
const DTMF_CALL: u64 = 3;
/// Call key of the stream relayed through the real DTMF inspector, in-band detection on.
const INBAND_CALL: u64 = 4;

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

/// The two endpoint sockets of one call and where the phone sends.
struct Legs {
    phone: UdpSocket,
    pbx: UdpSocket,
    towards_b: SocketAddr,
}

/// Allocates stream 0 of `call` and points its b-leg at a fresh PBX socket.
fn anchored_call(engine: &mut MediaEngine, call: u64) -> Legs {
    let ports = engine.allocate_stream(call, 0).unwrap();
    let phone = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let pbx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    pbx.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let pbx_addr = pbx.local_addr().unwrap();
    let pbx_rtcp = SocketAddr::new(pbx_addr.ip(), pbx_addr.port() + 1);
    engine.set_remote(call, 0, Leg::B, pbx_addr, pbx_rtcp);
    let phone_addr = phone.local_addr().unwrap();
    let phone_rtcp = SocketAddr::new(phone_addr.ip(), phone_addr.port() + 1);
    engine.set_remote(call, 0, Leg::A, phone_addr, phone_rtcp);
    Legs {
        phone,
        pbx,
        towards_b: SocketAddr::from((Ipv4Addr::LOCALHOST, ports.a.rtp)),
    }
}

fn recording_info() -> RecordingInfo {
    RecordingInfo {
        call_id: "relay-bench@example.com".into(),
        account_id: None,
        a_uri: "sip:a@example.com".into(),
        b_uri: "sip:b@example.com".into(),
        started_by: "*9 by a-leg".into(),
        leg: Some(metaflow_proxy::base::Leg::A),
        label: None,
        format: RecordFormat::Wav,
        codecs: LegCodecs {
            a: vec![(8, Codec::Pcma)],
            b: vec![(8, Codec::Pcma)],
        },
        upload: None,
        sample_rate: 8000,
        min_sec: 0,
    }
}

/// Times windows of PCMA packets a→b through `legs`; returns the packets that never came back.
fn bench_stream(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, legs: &Legs) -> u64 {
    let mut packet = [0xD5u8; PACKET_LEN];
    packet[0] = 0x80;
    packet[1] = 8;
    packet[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    let mut received = [0u8; 2048];
    let mut lost = 0u64;
    let mut seq = 0u16;
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for _ in 0..WINDOW {
                    seq = seq.wrapping_add(1);
                    packet[2..4].copy_from_slice(&seq.to_be_bytes());
                    let timestamp = u32::from(seq).wrapping_mul(160);
                    packet[4..8].copy_from_slice(&timestamp.to_be_bytes());
                    legs.phone.send_to(&packet, legs.towards_b).unwrap();
                }
                for _ in 0..WINDOW {
                    if legs.pbx.recv_from(&mut received).is_err() {
                        lost += 1;
                    }
                }
            }
            start.elapsed()
        })
    });
    lost
}

fn relay_throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let (events, _events_rx) = tokio::sync::mpsc::channel(16);
    let factory: InspectorFactory = Arc::new(|call, _| -> Box<dyn PacketInspector> {
        if call == DTMF_CALL || call == INBAND_CALL {
            Box::new(DtmfInspector::default())
        } else {
            Box::new(NoopInspector)
        }
    });
    let config = MediaConfig {
        media_ip: Ipv4Addr::LOCALHOST.into(),
        port_min: 47500,
        port_max: 47999,
        media_timeout: Duration::from_secs(60),
        media_timeout_hold: Duration::from_secs(3600),
        workers: 1,
        latch: LatchPolicy::default(),
    };
    let mut engine = MediaEngine::new(config, events, Some(factory)).unwrap();
    let plain = anchored_call(&mut engine, PLAIN_CALL);
    let recorded = anchored_call(&mut engine, RECORDED_CALL);
    let dtmf = anchored_call(&mut engine, DTMF_CALL);
    let inband = anchored_call(&mut engine, INBAND_CALL);
    for (call, detect) in [(DTMF_CALL, false), (INBAND_CALL, true)] {
        let cfg = InspectorConfig {
            event_payload_type: Some((101, 8000)),
            suppress_binding: None,
            inband: detect.then(G711Map::default),
        };
        engine.configure_inspector(call, 0, Leg::A, cfg);
    }
    let data_dir = tempfile::tempdir().unwrap();
    let (recorder_events, _recorder_log) = tokio::sync::mpsc::channel(16);
    let limit = Duration::from_secs(3600);
    let (tap, recording) =
        Recorder::start(data_dir.path(), recording_info(), limit, recorder_events).unwrap();
    engine.set_tap(RECORDED_CALL, Some(std::sync::Arc::new(tap)));

    let mut group = c.benchmark_group("relay");
    group.throughput(Throughput::Elements(WINDOW as u64));
    let lost_plain = bench_stream(&mut group, "one_stream_a_to_b_172_bytes", &plain);
    let lost_recorded = bench_stream(
        &mut group,
        "one_stream_a_to_b_172_bytes_recorded_wav",
        &recorded,
    );
    let lost_dtmf = bench_stream(&mut group, "one_stream_dtmf_inspector", &dtmf);
    let lost_inband = bench_stream(&mut group, "one_stream_dtmf_inspector_inband", &inband);
    group.finish();
    assert_eq!(
        lost_dtmf + lost_inband,
        0,
        "packets lost with the DTMF inspector"
    );
    engine.set_tap(RECORDED_CALL, None);
    let summary = runtime
        .block_on(recording.stop(StopReason::CallEnded))
        .unwrap();
    println!(
        "recording: {} stereo frames written, {} packets dropped by the tap queue",
        summary.frames, summary.dropped
    );
    engine.release_call(PLAIN_CALL);
    engine.release_call(RECORDED_CALL);
    assert_eq!(lost_plain, 0, "packets lost in the plain relay");
    assert_eq!(lost_recorded, 0, "packets lost in the recorded relay");
    assert!(summary.frames > 0, "the recording wrote no audio");
}

criterion_group!(benches, relay_throughput);
criterion_main!(benches);
