//! What a sound costs the relay per packet, against a direction that plays nothing, in the same
//! run: a relayed packet with nothing playing (the header noted), a relayed packet whose volume
//! is changed (a table lookup per byte), and one packet of music on hold made by the proxy
//! (160 samples encoded to PCMA and a header written).
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)] // bench code: criterion macros, panics are failed runs

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use metaflow_proxy::audio::moh::default_moh;
use metaflow_proxy::base::Gain;
use metaflow_proxy::media::playout::{G711Map, Outbound, PACKET_BUFFER_LEN, PlayFormat, Playback};

/// A 20 ms PCMA packet as a phone sends it.
fn pcma_packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend((0..160).map(|i| (i * 7) as u8 ^ 0x55));
    p
}

fn playout(c: &mut Criterion) {
    let mut group = c.benchmark_group("playout");
    group.throughput(Throughput::Elements(1));

    let mut plain = Outbound::new(1);
    let mut seq = 0u16;
    group.bench_function("relayed, nothing playing", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            let mut packet = pcma_packet(seq);
            black_box(plain.on_relayed(&mut packet, u64::from(seq) * 20_000));
        })
    });

    let mut louder = Outbound::new(1);
    louder.set_gain(Gain::from_level(2), G711Map::default());
    group.bench_function("relayed, volume changed", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            let mut packet = pcma_packet(seq);
            black_box(louder.on_relayed(&mut packet, u64::from(seq) * 20_000));
        })
    });

    let mut moh = Outbound::new(1);
    moh.on_relayed(&mut pcma_packet(1), 0);
    moh.play(
        Playback {
            id: 1,
            clip: default_moh(),
            looped: true,
            mix: false,
            format: PlayFormat {
                map: G711Map::default(),
                preferred: Some(8),
                ptime_ms: 20,
            },
        },
        0,
    );
    let mut buf = [0u8; PACKET_BUFFER_LEN];
    let mut now = 0u64;
    group.bench_function("music on hold, one packet made", |b| {
        b.iter(|| {
            // The copy of a relayed packet keeps the comparison fair: the relay gets a buffer
            // either way.
            let _ = black_box(pcma_packet(1));
            black_box(moh.poll_packet(now, &mut buf));
            now += 20_000;
        })
    });
    group.finish();
}

criterion_group!(benches, playout);
criterion_main!(benches);
