//! Cost of handing one relayed packet to a recording (`RecorderTap::offer`), the only recording
//! work done on the relay path: accepted into the queue, and dropped once the recording ended.
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)] // bench code: criterion macros, panics are failed runs

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use metaflow_proxy::base::Leg;
use metaflow_proxy::media::{PacketKind, PacketTap};
use metaflow_proxy::modules::record::{
    Codec, LegCodecs, QUEUE_PACKETS, RecordFormat, Recorder, RecordingInfo, StopReason,
};

/// Packets offered per timed batch: well below the queue size so none is dropped.
const BATCH: usize = QUEUE_PACKETS / 2;

fn rtp_packet(seq: u16) -> Vec<u8> {
    let mut packet = vec![0x80, 8];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    packet.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    packet.extend_from_slice(&[0xD5; 160]);
    packet
}

fn info(format: RecordFormat) -> RecordingInfo {
    RecordingInfo {
        call_id: "bench@example.com".into(),
        account_id: None,
        a_uri: "sip:a@example.com".into(),
        b_uri: "sip:b@example.com".into(),
        started_by: "*9 by a-leg".into(),
        leg: Some(metaflow_proxy::base::Leg::A),
        label: None,
        format,
        codecs: LegCodecs {
            a: vec![(8, Codec::Pcma)],
            b: vec![(8, Codec::Pcma)],
        },
        upload: None,
        sample_rate: 8000,
        min_sec: 0,
    }
}

fn offer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let _context = runtime.enter();
    let data_dir = tempfile::tempdir().expect("temp dir");
    let src: SocketAddr = "192.0.2.10:4000".parse().expect("address");
    let dst: SocketAddr = "192.0.2.1:30000".parse().expect("address");
    let packet = rtp_packet(1);

    for format in [RecordFormat::Wav, RecordFormat::Pcap] {
        let (events, _event_log) = tokio::sync::mpsc::channel(16);
        let limit = Duration::from_secs(3600);
        let (tap, handle) =
            Recorder::start(data_dir.path(), info(format), limit, events).expect("recording");
        let name = format!("offer_accepted_{}", format.as_str());
        c.bench_function(&name, |b| {
            b.iter_custom(|iterations| {
                let mut busy = Duration::ZERO;
                let mut arrival_us = 0u64;
                for _ in 0..iterations.div_ceil(BATCH as u64) {
                    let started = Instant::now();
                    for _ in 0..BATCH {
                        arrival_us += 20_000;
                        tap.offer(Leg::A, PacketKind::Rtp, src, dst, &packet, arrival_us);
                    }
                    busy += started.elapsed();
                    // Let the writer drain the queue outside the timed part.
                    std::thread::sleep(Duration::from_millis(2));
                }
                busy.div_f64(iterations.div_ceil(BATCH as u64) as f64 * BATCH as f64)
                    .mul_f64(iterations as f64)
            })
        });
        println!("{name}: packets dropped during the run: {}", tap.dropped());
        let summary = runtime
            .block_on(handle.stop(StopReason::Shutdown))
            .expect("finished");
        println!("{name}: frames written {}", summary.frames);
        c.bench_function(&format!("offer_after_end_{}", format.as_str()), |b| {
            b.iter(|| tap.offer(Leg::B, PacketKind::Rtp, src, dst, &packet, 0))
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = offer
}
criterion_main!(benches);
