//! Per-packet cost of the media hot path: RtpView::parse + DtmfDecoder::on_packet.
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)] // bench code: criterion macros, panics are failed runs

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use metaflow_proxy::dtmf::{DtmfDecoder, EventConfig};
use metaflow_proxy::rtp::RtpView;

const CONFIG: EventConfig = EventConfig {
    payload_type: 101,
    clock_rate: 8000,
};

/// A PCMA packet as in SIPp's g711a.pcap: PT 8, 240-byte payload.
fn pcma_packet() -> Vec<u8> {
    let mut pkt = vec![
        0x80, 8, 0x12, 0x34, 0, 0, 0x1f, 0x40, 0xde, 0xe0, 0xee, 0x8f,
    ];
    pkt.extend(std::iter::repeat_n(0xd5, 240));
    pkt
}

/// The packets of SIPp's dtmf_2833_2.pcap: 8 updates and the end sent 3 times.
fn event_stream() -> Vec<[u8; 16]> {
    let mut pkts = Vec::new();
    for i in 0..11u16 {
        let (seq, end, duration) = if i < 8 {
            (8042 + i, 0, i * 320)
        } else {
            (8049, 0x80, 2240)
        };
        let mut p = [
            0x80,
            101,
            0,
            0,
            0,
            0,
            0x5a,
            0xa0,
            0x0e,
            0x05,
            0x38,
            0x4e,
            2,
            end | 10,
            0,
            0,
        ];
        if i == 0 {
            p[1] |= 0x80;
        }
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[14..16].copy_from_slice(&duration.to_be_bytes());
        pkts.push(p);
    }
    pkts
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("dtmf_inspect");
    let audio = pcma_packet();
    let mut decoder = DtmfDecoder::new(Some(CONFIG));
    let mut now = 0u64;
    group.throughput(Throughput::Elements(1));
    group.bench_function("pcma_audio_packet", |b| {
        b.iter(|| {
            now += 20_000;
            let pkt = RtpView::parse(black_box(&audio)).ok();
            pkt.and_then(|p| decoder.on_packet(&p, now))
        })
    });
    let stream = event_stream();
    group.throughput(Throughput::Elements(stream.len() as u64));
    group.bench_function("telephone_event_stream_11_packets", |b| {
        let mut decoder = DtmfDecoder::new(Some(CONFIG));
        let mut now = 0u64;
        b.iter(|| {
            let mut presses = 0u32;
            for raw in &stream {
                now += 20_000;
                if let Ok(pkt) = RtpView::parse(black_box(raw)) {
                    presses += u32::from(decoder.on_packet(&pkt, now).is_some());
                }
            }
            // A silence between replays so that each round is a new press.
            now += 1_000_000;
            presses
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
