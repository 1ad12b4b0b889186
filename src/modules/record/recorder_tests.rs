//! End-to-end recordings into a temporary data directory, fed with the SIPp sample call.

use std::net::SocketAddr;

use super::*;
use crate::base::Leg;
use crate::media::{PacketKind, PacketTap};
use crate::modules::record::g711::{alaw_to_linear, linear_to_ulaw, ulaw_to_linear};
use crate::modules::record::sample_call::{
    B_DELAY_US, B_PACKETS, B_START_SAMPLE, b_tone, call_packets, info, leftover_temp_files,
    load_sample, offer_all, read_json,
};
use crate::modules::record::test_support::{correlation, rtp_packet};
use crate::modules::record::wav::parse_wav;
use crate::modules::record::{RecordFormat, RecorderEvent};

#[tokio::test]
async fn wav_recording_of_the_sample_call() {
    let data_dir = tempfile::tempdir().unwrap();
    let (events, mut event_log) = mpsc::channel(16);
    let time_limit = Duration::from_secs(60);
    let (tap, handle) =
        Recorder::start(data_dir.path(), info(RecordFormat::Wav), time_limit, events).unwrap();
    let planned = handle.path().to_path_buf();
    assert!(!planned.exists(), "nothing visible until complete");
    let sample = load_sample();
    offer_all(&tap, &call_packets(&sample)).await;
    let summary = handle
        .stop(StopReason::Stopped {
            by: "*9 by b-leg".into(),
        })
        .await
        .unwrap();

    assert_eq!(summary.path, planned);
    assert_eq!(summary.dropped, 0);
    let dir = summary.path.parent().unwrap();
    assert!(dir.starts_with(data_dir.path().join("recordings")));
    assert!(leftover_temp_files(dir).is_empty());
    let wav = parse_wav(&std::fs::read(&summary.path).unwrap());
    assert_eq!(
        (wav.channels, wav.sample_rate, wav.bits_per_sample),
        (2, 8000, 16)
    );
    let frames = wav.samples.len() / 2;
    assert_eq!(frames as u64, summary.frames);
    let audio_samples: usize = sample.iter().map(|udp| udp.payload.len() - 12).sum();
    assert!(
        frames.abs_diff(audio_samples) <= 240,
        "{frames} frames for {audio_samples} samples"
    );

    let left: Vec<f64> = wav
        .samples
        .iter()
        .step_by(2)
        .map(|s| f64::from(*s))
        .collect();
    let decoded: Vec<f64> = sample
        .iter()
        .flat_map(|udp| {
            udp.payload[12..]
                .iter()
                .map(|c| f64::from(alaw_to_linear(*c)))
        })
        .collect();
    let n = left.len().min(decoded.len());
    let left_match = correlation(&left[..n], &decoded[..n]);
    assert!(left_match > 0.99, "left channel correlation {left_match}");

    let right: Vec<f64> = wav
        .samples
        .iter()
        .skip(1)
        .step_by(2)
        .map(|s| f64::from(*s))
        .collect();
    let start = B_START_SAMPLE as usize + (B_DELAY_US / 125) as usize;
    let talk = usize::from(B_PACKETS) * 160;
    let tone: Vec<f64> = (0..talk as u32)
        .map(|i| f64::from(ulaw_to_linear(linear_to_ulaw(b_tone(i)))))
        .collect();
    let right_match = correlation(&right[start..start + talk], &tone);
    assert!(
        right_match > 0.99,
        "right channel correlation {right_match}"
    );
    assert!(
        right[..start].iter().all(|s| *s == 0.0),
        "b-leg silent before it talks"
    );

    let sidecar = read_json(&summary.sidecar);
    assert_eq!(sidecar["call_id"], "rec-test@192.0.2.1");
    assert_eq!(sidecar["a_uri"], "sip:alice@example.com");
    assert_eq!(sidecar["b_uri"], "sip:bob@example.com");
    assert_eq!(sidecar["started_by"], "*9 by a-leg");
    assert_eq!(sidecar["stopped_by"], "*9 by b-leg");
    assert_eq!(sidecar["stop_reason"], "stopped");
    assert_eq!(sidecar["format"], "wav");
    assert_eq!(sidecar["codec"]["a"], "PCMA");
    assert_eq!(sidecar["codec"]["b"], "PCMU");
    assert_eq!(sidecar["label"], "quality");
    assert_eq!(sidecar["frames_written"], summary.frames);
    // The sidecar's duration is the WAV's own length, not the wall-clock time.
    assert_eq!(sidecar["duration_ms"], summary.frames * 1000 / 8000);
    assert!(sidecar["wall_duration_ms"].is_u64());
    assert_eq!(sidecar["status"], "complete");
    assert_eq!(sidecar["leg"], "a");
    assert_eq!(sidecar["packets_dropped"], 0);
    assert_eq!(sidecar["telephone_event_packets"], 3);
    assert!(sidecar["started_at"].as_str().unwrap().ends_with('Z'));
    assert!(sidecar["ended_at"].as_str().unwrap() >= sidecar["started_at"].as_str().unwrap());
    let file_name = summary
        .path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(sidecar["file"], file_name);
    assert!(file_name.starts_with("rec-test_192.0.2.1-") && file_name.ends_with(".wav"));

    assert!(
        matches!(event_log.recv().await, Some(RecorderEvent::Started { path, .. }) if path == planned)
    );
    match event_log.recv().await {
        Some(RecorderEvent::Stopped {
            path,
            sidecar,
            reason,
            frames,
            dropped,
            ..
        }) => {
            assert_eq!(
                (path, sidecar),
                (summary.path.clone(), summary.sidecar.clone())
            );
            assert_eq!(
                (reason.as_str(), frames, dropped),
                ("stopped", summary.frames, 0)
            );
        }
        other => panic!("expected Stopped, got {other:?}"),
    }
}

#[tokio::test]
async fn time_limit_stops_the_recording_by_itself() {
    let data_dir = tempfile::tempdir().unwrap();
    let (events, mut event_log) = mpsc::channel(16);
    let (tap, handle) = Recorder::start(
        data_dir.path(),
        info(RecordFormat::Wav),
        Duration::from_secs(1),
        events,
    )
    .unwrap();
    let src: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    for n in 0..10u16 {
        let packet = rtp_packet(8, false, n, u32::from(n) * 160, 1, &[0xD5; 160]);
        tap.offer(
            Leg::A,
            PacketKind::Rtp,
            src,
            src,
            &packet,
            u64::from(n) * 20_000,
        );
    }
    assert!(matches!(
        event_log.recv().await,
        Some(RecorderEvent::Started { .. })
    ));
    let stopped = tokio::time::timeout(Duration::from_secs(5), event_log.recv())
        .await
        .unwrap();
    assert!(
        matches!(stopped, Some(RecorderEvent::Stopped { ref reason, frames: 1600, .. }) if reason == "time_limit"),
        "{stopped:?}"
    );
    // The event is sent just before the writer thread returns; give it a moment to end.
    tokio::time::timeout(Duration::from_secs(5), async {
        while !handle.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the writer ends by itself after the time limit");
    tap.offer(Leg::A, PacketKind::Rtp, src, src, &[0x80, 8, 0, 0], 0);
    assert_eq!(
        tap.dropped(),
        0,
        "offers after the end are ignored, not counted as losses"
    );
    let summary = handle
        .stop(StopReason::Stopped {
            by: "*9 by a-leg".into(),
        })
        .await
        .unwrap();
    assert_eq!(summary.reason, StopReason::TimeLimit);
    assert_eq!(read_json(&summary.sidecar)["stop_reason"], "time_limit");
}

#[tokio::test]
async fn dropping_the_handle_finishes_the_file_as_call_ended() {
    let data_dir = tempfile::tempdir().unwrap();
    let (events, mut event_log) = mpsc::channel(16);
    let limit = Duration::from_secs(60);
    let (_tap, handle) =
        Recorder::start(data_dir.path(), info(RecordFormat::Wav), limit, events).unwrap();
    let path = handle.path().to_path_buf();
    drop(handle);
    assert!(matches!(
        event_log.recv().await,
        Some(RecorderEvent::Started { .. })
    ));
    let stopped = tokio::time::timeout(Duration::from_secs(5), event_log.recv())
        .await
        .unwrap();
    assert!(
        matches!(stopped, Some(RecorderEvent::Stopped { ref reason, .. }) if reason == "call_ended")
    );
    assert!(parse_wav(&std::fs::read(path).unwrap()).samples.is_empty());
}

/// Accepts the first `room` bytes, then fails as a full disk does.
struct FullDisk {
    room: usize,
}

impl Write for FullDisk {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() > self.room {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device",
            ));
        }
        self.room -= buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for FullDisk {
    fn seek(&mut self, _: io::SeekFrom) -> io::Result<u64> {
        Ok(0)
    }
}

impl RecordingFile for FullDisk {
    fn complete(self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_write_error_ends_the_recording_with_failed() {
    let data_dir = tempfile::tempdir().unwrap();
    let (events, mut event_log) = mpsc::channel(16);
    let info = info(RecordFormat::Wav);
    let plan = FilePlan::new(
        data_dir.path(),
        &info.call_id,
        SystemTime::now(),
        RecordFormat::Wav,
        0,
    );
    let sink = Sink::new(
        RecordFormat::Wav,
        FullDisk { room: 44 },
        info.codecs.clone(),
    )
    .unwrap();
    let job = Job {
        data_dir: data_dir.path().to_path_buf(),
        info,
        plan,
        format: RecordFormat::Wav,
        format_note: None,
        started: SystemTime::now(),
        time_limit: Duration::from_secs(60),
        dropped: Arc::new(AtomicU64::new(0)),
        events,
        masks: Vec::new(),
    };
    let (tap, handle) = launch(sink, job);
    let src: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    for n in 0..50u16 {
        let packet = rtp_packet(8, false, n, u32::from(n) * 160, 1, &[0xD5; 160]);
        tap.offer(
            Leg::A,
            PacketKind::Rtp,
            src,
            src,
            &packet,
            u64::from(n) * 20_000,
        );
    }
    assert!(matches!(
        event_log.recv().await,
        Some(RecorderEvent::Started { .. })
    ));
    let failed = tokio::time::timeout(Duration::from_secs(5), event_log.recv())
        .await
        .unwrap();
    assert!(
        matches!(failed, Some(RecorderEvent::Failed { ref error, .. }) if error.contains("no space left")),
        "{failed:?}"
    );
    assert!(tap.is_closed());
    let outcome = handle.stop(StopReason::CallEnded).await;
    assert!(
        matches!(outcome, Err(RecordError::Write { .. })),
        "{outcome:?}"
    );
}
