//! The sample call the end-to-end recording tests replay: the SIPp PCMA capture as the a-leg
//! (with telephone-events and RTCP added) and a µ-law tone over IPv6 as the b-leg.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::Value;

use crate::base::Leg;
use crate::media::{PacketKind, PacketTap};
use crate::modules::record::g711::linear_to_ulaw;
use crate::modules::record::test_support::{CapturedUdp, SAMPLE_PCAP, read_pcap, rtp_packet};
use crate::modules::record::{Codec, LegCodecs, RecordFormat, RecorderTap, RecordingInfo};

pub(crate) const B_LOCAL: &str = "[2001:db8::1]:7002";
pub(crate) const B_REMOTE: &str = "[2001:db8::99]:7000";
/// The synthetic b-leg talks from 0.5 s to 6.5 s (arrival clock of the a-leg's first packet).
pub(crate) const B_START_SAMPLE: u32 = 4000;
pub(crate) const B_PACKETS: u16 = 300;
/// Network delay of the b-leg's packets: its audio lands this much later on the timeline.
pub(crate) const B_DELAY_US: u64 = 1_000;

pub(crate) fn info(format: RecordFormat) -> RecordingInfo {
    RecordingInfo {
        call_id: "rec-test@192.0.2.1".into(),
        account_id: None,
        a_uri: "sip:alice@example.com".into(),
        b_uri: "sip:bob@example.com".into(),
        started_by: "*9 by a-leg".into(),
        leg: Some(crate::base::Leg::A),
        label: Some("quality".into()),
        format,
        codecs: LegCodecs {
            a: vec![(8, Codec::Pcma), (101, Codec::TelephoneEvent)],
            b: vec![(0, Codec::Pcmu)],
        },
        upload: None,
        sample_rate: 8000,
        min_sec: 0,
    }
}

/// The b-leg's tone sample at `index` (a 440 Hz sine).
pub(crate) fn b_tone(index: u32) -> i16 {
    let phase = f64::from(index) * 2.0 * std::f64::consts::PI * 440.0 / 8000.0;
    (phase.sin() * 8000.0) as i16
}

/// One packet to offer, with everything `RecorderTap::offer` takes.
pub(crate) struct Offered {
    pub packet: Vec<u8>,
    pub leg: Leg,
    pub kind: PacketKind,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub arrival_us: u64,
}

/// The a-leg from the sample pcap, a few telephone-events and RTCP on it, and a b-leg µ-law tone
/// over IPv6, ordered by arrival.
pub(crate) fn call_packets(sample: &[CapturedUdp]) -> Vec<Offered> {
    let first = sample[0].time_us;
    let base = 10_000_000u64;
    let mut offered: Vec<Offered> = sample
        .iter()
        .map(|udp| Offered {
            packet: udp.payload.clone(),
            leg: Leg::A,
            kind: PacketKind::Rtp,
            src: udp.src,
            dst: udp.dst,
            arrival_us: base + udp.time_us - first,
        })
        .collect();
    let (a_src, a_dst) = (sample[0].src, sample[0].dst);
    for n in 0..3u16 {
        let event = rtp_packet(101, n == 0, 9000 + n, 24_000, 0xABCD, &[9, 0x0A, 0, 160]);
        let arrival_us = base + 3_000_000 + u64::from(n) * 20_000;
        let kind = PacketKind::Rtp;
        offered.push(Offered {
            packet: event,
            leg: Leg::A,
            kind,
            src: a_src,
            dst: a_dst,
            arrival_us,
        });
    }
    let rtcp = vec![
        0x80, 200, 0, 6, 0xDE, 0xE0, 0xEE, 0x8F, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let kind = PacketKind::Rtcp;
    let arrival_us = base + 2_500_000;
    offered.push(Offered {
        packet: rtcp,
        leg: Leg::A,
        kind,
        src: a_src,
        dst: a_dst,
        arrival_us,
    });
    let (b_src, b_dst) = (B_REMOTE.parse().unwrap(), B_LOCAL.parse().unwrap());
    for n in 0..B_PACKETS {
        let ts = 50_000 + u32::from(n) * 160;
        let payload: Vec<u8> = (0..160)
            .map(|i| linear_to_ulaw(b_tone(u32::from(n) * 160 + i)))
            .collect();
        let arrival_us = base + u64::from(B_START_SAMPLE + u32::from(n) * 160) * 125 + B_DELAY_US;
        let packet = rtp_packet(0, n == 0, n, ts, 0x1234, &payload);
        offered.push(Offered {
            packet,
            leg: Leg::B,
            kind: PacketKind::Rtp,
            src: b_src,
            dst: b_dst,
            arrival_us,
        });
    }
    offered.sort_by_key(|o| o.arrival_us);
    offered
}

/// Offers everything, pausing now and then so the bounded queue is not outrun.
pub(crate) async fn offer_all(tap: &RecorderTap, offered: &[Offered]) {
    for (n, o) in offered.iter().enumerate() {
        tap.offer(o.leg, o.kind, o.src, o.dst, &o.packet, o.arrival_us);
        if n % 64 == 63 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}

pub(crate) fn load_sample() -> Vec<CapturedUdp> {
    read_pcap(&std::fs::read(SAMPLE_PCAP).unwrap())
}

pub(crate) fn leftover_temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".part"))
        .collect()
}

pub(crate) fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}
