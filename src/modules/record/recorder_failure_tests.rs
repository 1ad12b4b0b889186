//! A disk that fills up in the middle of a recording: what was written stays, in place, with a
//! sidecar that says `failed` and why.

use std::fs::{self, File};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::net::SocketAddr;

use super::*;
use crate::base::Leg;
use crate::media::{PacketKind, PacketTap};
use crate::modules::record::sample_call::{info, read_json};
use crate::modules::record::test_support::rtp_packet;
use crate::modules::record::{RecordFormat, RecorderEvent};

/// A real file that accepts `room` bytes and then fails as a full disk does.
struct FillingFile {
    file: BufWriter<File>,
    room: usize,
}

impl Write for FillingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() > self.room {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device",
            ));
        }
        self.room -= buf.len();
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Seek for FillingFile {
    fn seek(&mut self, position: SeekFrom) -> io::Result<u64> {
        self.file.seek(position)
    }
}

impl RecordingFile for FillingFile {
    fn complete(self) -> io::Result<()> {
        self.file.complete()
    }
}

#[tokio::test]
async fn a_full_disk_keeps_the_partial_recording_marked_failed() {
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
    fs::create_dir_all(&plan.dir).unwrap();
    let file = File::create(&plan.temp_path).unwrap();
    // Room for the header and a little audio: the aligner writes in blocks, so it fails early.
    let out = FillingFile {
        file: BufWriter::with_capacity(64, file),
        room: 44 + 4 * 2000,
    };
    let sink = Sink::new(RecordFormat::Wav, out, info.codecs.clone()).unwrap();
    let job = Job {
        data_dir: data_dir.path().to_path_buf(),
        info,
        plan: plan.clone(),
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
    for n in 0..200u16 {
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
    let outcome = handle.stop(StopReason::CallEnded).await;
    assert!(
        matches!(outcome, Err(RecordError::Write { .. })),
        "{outcome:?}"
    );

    assert!(!plan.temp_path.exists(), "moved into place");
    let kept = fs::read(&plan.path).unwrap();
    assert!(
        kept.len() > 44,
        "the audio written before the error is kept"
    );
    let sidecar = read_json(&plan.sidecar);
    assert_eq!(sidecar["status"], "failed", "{sidecar:#}");
    assert_eq!(sidecar["stop_reason"], "write_error", "{sidecar:#}");
    assert!(
        sidecar["error"]
            .as_str()
            .is_some_and(|e| e.contains("no space left")),
        "{sidecar:#}"
    );
}
