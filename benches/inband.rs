//! Per-packet cost of the in-band DTMF detector: one 20 ms PCMA packet (160 bytes) of silence,
//! of speech-like audio (a vowel with harmonics and noise) and of a DTMF tone.
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)] // bench code: criterion macros, panics are failed runs

use std::f32::consts::PI;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use metaflow_proxy::audio::g711::Law;
use metaflow_proxy::dtmf::InbandDetector;

/// 50 packets (1 s) of `f(n)` encoded as PCMA.
fn packets(f: impl Fn(usize) -> f32) -> Vec<[u8; 160]> {
    (0..50)
        .map(|p| {
            let mut pkt = [0u8; 160];
            for (i, b) in pkt.iter_mut().enumerate() {
                *b = Law::A.encode(f(p * 160 + i).clamp(-32768.0, 32767.0) as i16);
            }
            pkt
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut rng = fastrand::Rng::with_seed(1);
    let noise: Vec<f32> = (0..8000).map(|_| rng.f32() * 2.0 - 1.0).collect();
    let t = |n: usize| n as f32 / 8000.0;
    let cases = [
        ("silence", packets(|_| 0.0)),
        (
            "speech_like",
            packets(|n| {
                (1..=12)
                    .map(|h| 3000.0 / h as f32 * (2.0 * PI * 140.0 * h as f32 * t(n)).sin())
                    .sum::<f32>()
                    + 800.0 * noise[n % noise.len()]
            }),
        ),
        (
            "tone",
            packets(|n| {
                5000.0 * ((2.0 * PI * 770.0 * t(n)).sin() + (2.0 * PI * 1336.0 * t(n)).sin())
            }),
        ),
    ];
    let mut group = c.benchmark_group("inband_packet");
    group.throughput(Throughput::Elements(1));
    for (name, pkts) in &cases {
        let mut det = InbandDetector::new();
        let mut i = 0usize;
        group.bench_function(*name, |b| {
            b.iter(|| {
                let pkt = &pkts[i % pkts.len()];
                let mut events = 0u32;
                det.feed(
                    Law::A,
                    black_box(pkt),
                    (i as u32).wrapping_mul(160),
                    &mut |_| events += 1,
                );
                i += 1;
                black_box(events)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
