//! End-to-end pcap recordings, checked with tshark, and a flood of the tap.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::base::Leg;
use crate::media::{PacketKind, PacketTap};
use crate::modules::record::sample_call::{
    call_packets, info, leftover_temp_files, load_sample, offer_all, read_json,
};
use crate::modules::record::test_support::rtp_packet;
use crate::modules::record::{QUEUE_PACKETS, RecordFormat, Recorder, SLOT_BYTES, StopReason};

/// Runs tshark on `file`, decoding both legs' ports as RTP; one (seq, payload hex) per packet.
fn tshark_rtp(file: &Path, ports: &[u16]) -> Vec<(String, String, String)> {
    let mut command = Command::new("tshark");
    command.arg("-r").arg(file).args([
        "-T",
        "fields",
        "-e",
        "rtp.seq",
        "-e",
        "rtp.payload",
        "-e",
        "frame.time_epoch",
    ]);
    for port in ports {
        command.args(["-d", &format!("udp.port=={port},rtp")]);
    }
    let output = command.output().expect("tshark runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let mut fields = line.split('\t').map(str::to_owned);
            let mut next = || fields.next().unwrap_or_default();
            (next(), next(), next())
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn pcap_recording_opens_in_tshark_with_every_packet() {
    let data_dir = tempfile::tempdir().unwrap();
    let (events, _event_log) = mpsc::channel(16);
    let limit = Duration::from_secs(60);
    let (tap, handle) =
        Recorder::start(data_dir.path(), info(RecordFormat::Pcap), limit, events).unwrap();
    let sample = load_sample();
    let offered = call_packets(&sample);
    offer_all(&tap, &offered).await;
    let summary = handle.stop(StopReason::CallEnded).await.unwrap();
    assert_eq!(summary.format, RecordFormat::Pcap);
    assert!(summary.path.extension().is_some_and(|ext| ext == "pcap"));
    assert_eq!(summary.frames, offered.len() as u64);
    assert!(leftover_temp_files(summary.path.parent().unwrap()).is_empty());

    let rows = tshark_rtp(&summary.path, &[5000, 7000]);
    assert_eq!(
        rows.len(),
        offered.len(),
        "every RTP and RTCP packet is in the capture"
    );
    let first_epoch: f64 = rows[0].2.parse().unwrap();
    for (row, sent) in rows.iter().zip(&offered) {
        if sent.kind == PacketKind::Rtcp {
            assert_eq!(row.0, "", "RTCP is not decoded as RTP");
            continue;
        }
        let seq = u16::from_be_bytes([sent.packet[2], sent.packet[3]]);
        assert_eq!(row.0, seq.to_string());
        assert_eq!(row.1, hex(&sent.packet[12..]));
        let offset_us = (row.2.parse::<f64>().unwrap() - first_epoch) * 1e6;
        let expected_us = (sent.arrival_us - offered[0].arrival_us) as f64;
        assert!(
            (offset_us - expected_us).abs() < 2.0,
            "timestamp {offset_us} vs {expected_us}"
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    assert!(
        (now.as_secs_f64() - first_epoch).abs() < 60.0,
        "capture carries wall-clock time"
    );

    let sidecar = read_json(&summary.sidecar);
    assert_eq!(
        (sidecar["format"].as_str(), sidecar["stop_reason"].as_str()),
        (Some("pcap"), Some("call_ended"))
    );
    assert_eq!(sidecar["stopped_by"], Value::Null);
}

#[tokio::test]
async fn flooding_the_tap_never_blocks_and_every_packet_is_accounted_for() {
    let data_dir = tempfile::tempdir().unwrap();
    let (events, _event_log) = mpsc::channel(16);
    let limit = Duration::from_secs(60);
    let (tap, handle) =
        Recorder::start(data_dir.path(), info(RecordFormat::Pcap), limit, events).unwrap();
    let src: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    let offered = 20 * QUEUE_PACKETS as u64;
    for n in 0..offered {
        let packet = rtp_packet(8, false, n as u16, n as u32 * 160, 1, &[0xD5; 160]);
        tap.offer(Leg::B, PacketKind::Rtp, src, src, &packet, n * 20_000);
    }
    tap.offer(Leg::B, PacketKind::Rtp, src, src, &[0; SLOT_BYTES + 1], 0);
    let summary = handle.stop(StopReason::Shutdown).await.unwrap();
    assert_eq!(summary.frames + summary.dropped, offered + 1);
    assert!(summary.dropped >= 1);
    assert_eq!(
        read_json(&summary.sidecar)["packets_dropped"],
        summary.dropped
    );
}
