//! Heap allocations per relayed RTP packet, counted by a global counting allocator.
//!
//! One media stream of a `MediaEngine` (one relay worker, DTMF inspector on) relays warm-up
//! packets, then 10,000 packets a→b whose allocations are counted process-wide: relay worker,
//! runtime threads and this thread (which only sends and receives on blocking sockets). A second
//! steady phase interleaves an RFC 4733 key press every 100 packets, so the inspector decodes
//! digits and reports them. The relay's per-packet path is meant to allocate nothing; the bench
//! prints the counts and fails if the audio-only phase allocates per packet.
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)] // bench code: criterion macros, panics are failed runs

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use metaflow_proxy::base::Leg;
use metaflow_proxy::media::inspect::DtmfInspector;
use metaflow_proxy::media::{
    InspectorConfig, LatchPolicy, MediaConfig, MediaControl, MediaEngine, MediaEvent,
};

/// Counts every allocation and reallocation handed to the system allocator.
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to `System`; the counters have no effect on memory.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Packets relayed before counting starts.
const WARM_UP_PACKETS: u32 = 2_000;
/// Packets relayed in each counted phase.
const STEADY_PACKETS: u32 = 10_000;
/// Packets in flight before their relayed copies are read back.
const WINDOW: u32 = 32;
/// Payload type of telephone-event in the second phase.
const EVENT_PT: u8 = 101;
/// In the second phase, one event packet every this many packets.
const EVENT_EVERY: u32 = 100;

/// The phone's and the PBX's sockets of the one stream, and the proxy port the phone sends to.
struct Legs {
    phone: UdpSocket,
    pbx: UdpSocket,
    towards_b: SocketAddr,
}

/// Builds packet `seq` of the stream: PCMA audio, or an RFC 4733 event packet.
fn packet(seq: u32, with_events: bool, out: &mut [u8; 172]) -> usize {
    let seq16 = (seq % 65_536) as u16;
    out[0] = 0x80;
    out[2..4].copy_from_slice(&seq16.to_be_bytes());
    out[8..12].copy_from_slice(&0x0BAD_CAFEu32.to_be_bytes());
    let press = seq / EVENT_EVERY;
    let in_press = seq % EVENT_EVERY;
    if with_events && in_press < 6 {
        // One press: three growing durations, then the end packet three times.
        let start_ts = press.wrapping_mul(EVENT_EVERY).wrapping_mul(160);
        out[1] = EVENT_PT | if in_press == 0 { 0x80 } else { 0 };
        out[4..8].copy_from_slice(&start_ts.to_be_bytes());
        out[12] = (press % 10) as u8;
        out[13] = if in_press >= 3 { 0x80 | 10 } else { 10 };
        let duration = 160 * (in_press.min(3) + 1);
        out[14..16].copy_from_slice(&(duration as u16).to_be_bytes());
        16
    } else {
        out[1] = 8;
        out[4..8].copy_from_slice(&seq.wrapping_mul(160).to_be_bytes());
        out[12..].fill(0xD5);
        172
    }
}

/// Relays `count` packets from `first`; returns how many never came back.
fn relay(legs: &Legs, first: u32, count: u32, with_events: bool) -> u32 {
    let mut buffer = [0u8; 172];
    let mut received = [0u8; 2048];
    let mut lost = 0;
    let mut seq = first;
    while seq < first + count {
        let batch = WINDOW.min(first + count - seq);
        for _ in 0..batch {
            let len = packet(seq, with_events, &mut buffer);
            legs.phone
                .send_to(&buffer[..len], legs.towards_b)
                .expect("send to the proxy port");
            seq += 1;
        }
        for _ in 0..batch {
            if legs.pbx.recv_from(&mut received).is_err() {
                lost += 1;
            }
        }
    }
    lost
}

/// Counts what one phase allocates and prints it.
fn counted_phase(name: &str, legs: &Legs, first: u32, with_events: bool) -> f64 {
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    let bytes = ALLOCATED_BYTES.load(Ordering::Relaxed);
    let start = Instant::now();
    let lost = relay(legs, first, STEADY_PACKETS, with_events);
    let elapsed = start.elapsed();
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations;
    let bytes = ALLOCATED_BYTES.load(Ordering::Relaxed) - bytes;
    let per_packet = allocations as f64 / f64::from(STEADY_PACKETS);
    println!(
        "{name}: {STEADY_PACKETS} packets in {:.1} ms, {lost} lost; {allocations} allocations \
         ({bytes} bytes) process-wide = {per_packet:.4} allocations per packet",
        elapsed.as_secs_f64() * 1e3
    );
    assert_eq!(lost, 0, "{name}: packets lost in the relay");
    per_packet
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let _entered = runtime.enter();
    let (events, mut events_rx) = tokio::sync::mpsc::channel::<MediaEvent>(1024);
    let config = MediaConfig {
        media_ip: Ipv4Addr::LOCALHOST.into(),
        port_min: 46500,
        port_max: 46999,
        media_timeout: Duration::from_secs(60),
        media_timeout_hold: Duration::from_secs(3600),
        workers: 1,
        latch: LatchPolicy::default(),
    };
    let mut engine =
        MediaEngine::new(config, events, Some(DtmfInspector::factory())).expect("media engine");
    let ports = engine.allocate_stream(1, 0).expect("stream ports");
    let phone = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("phone socket");
    let pbx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("pbx socket");
    pbx.set_read_timeout(Some(Duration::from_secs(1)))
        .expect("read timeout");
    let pbx_addr = pbx.local_addr().expect("pbx address");
    let pbx_rtcp = SocketAddr::new(pbx_addr.ip(), pbx_addr.port() + 1);
    engine.set_remote(1, 0, Leg::B, pbx_addr, pbx_rtcp);
    let phone_addr = phone.local_addr().expect("phone address");
    let phone_rtcp = SocketAddr::new(phone_addr.ip(), phone_addr.port() + 1);
    engine.set_remote(1, 0, Leg::A, phone_addr, phone_rtcp);
    let inspector_config = InspectorConfig {
        event_payload_type: Some((EVENT_PT, 8000)),
        suppress_binding: None,
        inband: None,
    };
    engine.configure_inspector(1, 0, Leg::A, inspector_config);
    let legs = Legs {
        phone,
        pbx,
        towards_b: SocketAddr::from((Ipv4Addr::LOCALHOST, ports.a.rtp)),
    };

    let warm_lost = relay(&legs, 0, WARM_UP_PACKETS, true);
    assert_eq!(warm_lost, 0, "packets lost during warm-up");
    while events_rx.try_recv().is_ok() {}
    let audio = counted_phase("audio only (PCMA)", &legs, WARM_UP_PACKETS, false);
    let with_events = counted_phase(
        "audio + one RFC 4733 press per 100 packets",
        &legs,
        WARM_UP_PACKETS + STEADY_PACKETS,
        true,
    );
    let mut digits = 0;
    while let Ok(event) = events_rx.try_recv() {
        if matches!(event, MediaEvent::Inspector { .. }) {
            digits += 1;
        }
    }
    println!("inspector events reported in the second phase: {digits}");
    engine.release_call(1);
    assert!(
        audio < 0.01,
        "the relay allocates on the audio path: {audio:.4} allocations per packet"
    );
    println!("with events: {with_events:.4} allocations per packet");
}
