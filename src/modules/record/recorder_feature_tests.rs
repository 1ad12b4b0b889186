//! Kazoo's remaining `record_call` keys end to end: PCI masking through the handle,
//! `record_min_sec` and `record_sample_rate`.

use std::net::SocketAddr;

use super::*;
use crate::base::Leg;
use crate::media::{PacketKind, PacketTap};
use crate::modules::record::g711::linear_to_alaw;
use crate::modules::record::sample_call::{info, leftover_temp_files, read_json};
use crate::modules::record::test_support::rtp_packet;
use crate::modules::record::wav::parse_wav;
use crate::modules::record::{RecordFormat, RecorderEvent};

/// A 1 kHz A-law tone on the a-leg (PCMA, pt 8) and a quieter one on the b-leg (PCMU, pt 0).
fn offer_tone(tap: &RecorderTap, packets: std::ops::Range<u16>) {
    let src: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    for n in packets {
        let ts = u32::from(n) * 160;
        let payload: Vec<u8> = (0..160u32)
            .map(|i| {
                let phase = f64::from(ts + i) * 2.0 * std::f64::consts::PI * 1000.0 / 8000.0;
                linear_to_alaw((phase.sin() * 8000.0) as i16)
            })
            .collect();
        let arrival = u64::from(ts) * 125;
        let a = rtp_packet(8, false, n, ts, 1, &payload);
        tap.offer(Leg::A, PacketKind::Rtp, src, src, &a, arrival);
        let b = rtp_packet(0, false, n, ts, 2, &[0x9F; 160]);
        tap.offer(Leg::B, PacketKind::Rtp, src, src, &b, arrival);
    }
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[tokio::test]
async fn a_mask_through_the_handle_silences_the_leg_and_is_listed_in_the_sidecar() {
    let data_dir = tempfile::tempdir().unwrap();
    let (events, _log) = mpsc::channel(16);
    let (tap, handle) = Recorder::start(
        data_dir.path(),
        info(RecordFormat::Wav),
        Duration::from_secs(60),
        events,
    )
    .unwrap();
    offer_tone(&tap, 0..50);
    handle.mask(Leg::A, true);
    settle().await;
    handle.mask(Leg::A, true); // a repeated mask changes nothing
    offer_tone(&tap, 50..100);
    handle.mask(Leg::A, false);
    offer_tone(&tap, 100..150);
    let summary = handle.stop(StopReason::CallEnded).await.unwrap();
    assert_eq!(summary.dropped, 0);

    let wav = parse_wav(&std::fs::read(&summary.path).unwrap());
    let left: Vec<i16> = wav.samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = wav.samples.iter().skip(1).step_by(2).copied().collect();
    assert_eq!(left.len(), 150 * 160);
    let loud = |samples: &[i16]| samples.iter().map(|s| i32::from(*s).abs()).max().unwrap();
    assert!(
        loud(&left[..50 * 160]) > 7000,
        "a-leg heard before the mask"
    );
    assert_eq!(
        loud(&left[50 * 160..100 * 160]),
        0,
        "exactly the masked span is silence"
    );
    assert!(
        loud(&left[100 * 160..]) > 7000,
        "a-leg heard after the unmask"
    );
    assert!(
        loud(&right[50 * 160..100 * 160]) > 0,
        "the other leg is recorded throughout"
    );

    let sidecar = read_json(&summary.sidecar);
    let spans = sidecar["masked"].as_array().unwrap();
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0]["leg"], "a");
    let (start, end) = (
        spans[0]["start_s"].as_f64().unwrap(),
        spans[0]["end_s"].as_f64().unwrap(),
    );
    assert!(start >= 0.0 && end >= start + 0.015, "{start}..{end}");
    assert_eq!(sidecar["packets_masked"], 50);
}

#[tokio::test]
async fn a_mask_left_on_is_closed_by_the_end_of_the_recording() {
    let data_dir = tempfile::tempdir().unwrap();
    let (events, _log) = mpsc::channel(16);
    let (tap, handle) = Recorder::start(
        data_dir.path(),
        info(RecordFormat::Pcap),
        Duration::from_secs(60),
        events,
    )
    .unwrap();
    offer_tone(&tap, 0..5);
    handle.mask(Leg::B, true);
    offer_tone(&tap, 5..10);
    let summary = handle.stop(StopReason::CallEnded).await.unwrap();
    let sidecar = read_json(&summary.sidecar);
    let spans = sidecar["masked"].as_array().unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0]["leg"], "b");
    assert_eq!(sidecar["packets_masked"], 5);
    let capture = std::fs::read(&summary.path).unwrap();
    let voice = capture.windows(160).filter(|w| *w == [0x9F; 160]).count();
    assert_eq!(
        voice, 5,
        "only the b-leg's unmasked packets keep their payload"
    );
    let silence = capture.windows(160).filter(|w| *w == [0xFF; 160]).count();
    assert!(silence >= 5, "masked µ-law payloads are µ-law silence");
}

#[tokio::test]
async fn a_recording_shorter_than_record_min_sec_is_discarded() {
    let data_dir = tempfile::tempdir().unwrap();
    let (events, mut log) = mpsc::channel(16);
    let mut short = info(RecordFormat::Wav);
    short.min_sec = 5;
    short.upload = Some(crate::modules::record::UploadTarget {
        url: "http://192.0.2.9/in".into(),
        method: crate::modules::record::UploadMethod::Put,
    });
    let (tap, handle) =
        Recorder::start(data_dir.path(), short, Duration::from_secs(60), events).unwrap();
    let path = handle.path().to_path_buf();
    offer_tone(&tap, 0..100); // two seconds
    let error = handle.stop(StopReason::CallEnded).await.unwrap_err();
    assert!(
        matches!(
            error,
            RecordError::Discarded {
                duration_ms: 2000,
                min_sec: 5
            }
        ),
        "{error}"
    );
    assert!(!path.exists(), "no file");
    let dir = path.parent().unwrap();
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
    assert!(left.is_empty(), "no sidecar, no temporary file: {left:?}");
    assert!(leftover_temp_files(dir).is_empty());
    assert!(
        !data_dir.path().join("spool").exists()
            || std::fs::read_dir(data_dir.path().join("spool"))
                .unwrap()
                .next()
                .is_none(),
        "nothing queued for upload"
    );
    assert!(matches!(
        log.recv().await,
        Some(RecorderEvent::Started { .. })
    ));
    assert_eq!(
        log.recv().await,
        Some(RecorderEvent::Discarded {
            call_id: "rec-test@192.0.2.1".into(),
            duration_ms: 2000,
            min_sec: 5,
        })
    );

    // Long enough: kept.
    let (events, _log) = mpsc::channel(16);
    let mut long = info(RecordFormat::Wav);
    long.min_sec = 1;
    let (tap, handle) =
        Recorder::start(data_dir.path(), long, Duration::from_secs(60), events).unwrap();
    offer_tone(&tap, 0..100);
    let summary = handle.stop(StopReason::CallEnded).await.unwrap();
    assert!(summary.path.exists() && summary.sidecar.exists());
}

#[tokio::test]
async fn record_sample_rate_resamples_the_wav() {
    let data_dir = tempfile::tempdir().unwrap();
    for rate in [16_000u32, 44_100, 48_000] {
        let (events, _log) = mpsc::channel(16);
        let mut at_rate = info(RecordFormat::Wav);
        at_rate.sample_rate = rate;
        let (tap, handle) =
            Recorder::start(data_dir.path(), at_rate, Duration::from_secs(60), events).unwrap();
        offer_tone(&tap, 0..50); // one second
        let summary = handle.stop(StopReason::CallEnded).await.unwrap();
        let wav = parse_wav(&std::fs::read(&summary.path).unwrap());
        assert_eq!((wav.channels, wav.sample_rate), (2, rate));
        let frames = wav.samples.len() / 2;
        assert_eq!(frames as u32, rate, "one second at {rate} Hz");
        assert_eq!(summary.frames, u64::from(rate));
        // The a-leg's 1 kHz tone is still 1 kHz: 2000 sign changes in one second.
        let left: Vec<i16> = wav.samples.iter().step_by(2).copied().collect();
        let crossings = left
            .windows(2)
            .filter(|w| (w[0] >= 0) != (w[1] >= 0))
            .count();
        assert!(
            crossings.abs_diff(2000) <= 4,
            "{rate} Hz: {crossings} crossings"
        );
        let sidecar = read_json(&summary.sidecar);
        assert_eq!(sidecar["sample_rate"], rate);
        assert_eq!(sidecar["duration_ms"], 1000);
    }
}
