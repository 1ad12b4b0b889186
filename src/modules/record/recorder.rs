//! One recording: the file is created when it starts, a writer drains the tap's queue into it on
//! a blocking thread (buffered I/O, never on the relay's tasks), and on stop, time limit, call end
//! or shutdown the file is completed, its sidecar written, and both renamed into place.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::base::Leg;

use super::library;
use super::params::RecordFormat;
use super::sidecar::{FilePlan, MaskSpan, SidecarFacts, media_duration_ms, sidecar_json};
use super::sink::{Sink, SinkStats, effective_format};
use super::spool::{self, SpoolEntry};
use super::tap::{Envelope, QUEUE_PACKETS, RecorderTap};
use super::types::{RecordError, RecorderEvent, RecordingInfo, RecordingSummary, StopReason};

/// Bytes buffered before the file is written to.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;
/// Name suffixes tried when recordings of one call start within the same millisecond.
const MAX_NAME_ATTEMPTS: u32 = 100;

/// A file a recording can be written to and completed.
pub(crate) trait RecordingFile: Write + Seek + Send + 'static {
    /// Flushes what is buffered and makes the bytes durable before the rename.
    fn complete(self) -> io::Result<()>;
}

impl RecordingFile for BufWriter<File> {
    fn complete(self) -> io::Result<()> {
        let file = self.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()
    }
}

/// Starts recordings; see [`Recorder::start`].
#[derive(Debug)]
pub struct Recorder;

impl Recorder {
    /// Creates the recording file under `data_dir/recordings/` and starts its writer. Feed the
    /// returned tap from the relay; stop through the handle. The recording also stops by itself
    /// after `time_limit`. Must be called within a tokio runtime.
    pub fn start(
        data_dir: &Path,
        info: RecordingInfo,
        time_limit: Duration,
        events: mpsc::Sender<RecorderEvent>,
    ) -> Result<(RecorderTap, RecorderHandle), RecordError> {
        let started = SystemTime::now();
        let (format, format_note) = effective_format(info.format, &info.codecs);
        let (plan, file) = create_file(data_dir, &info.call_id, started, format)?;
        let out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
        let sink = match Sink::with_rate(format, out, info.codecs.clone(), info.sample_rate) {
            Ok(sink) => sink,
            Err(source) => {
                let _ = fs::remove_file(&plan.temp_path);
                return Err(RecordError::Write {
                    path: plan.temp_path,
                    source,
                });
            }
        };
        let job = Job {
            data_dir: data_dir.to_path_buf(),
            info,
            plan,
            format,
            format_note,
            started,
            time_limit,
            dropped: Arc::new(AtomicU64::new(0)),
            events,
            masks: Vec::new(),
        };
        Ok(launch(sink, job))
    }
}

fn create_file(
    data_dir: &Path,
    call_id: &str,
    started: SystemTime,
    format: RecordFormat,
) -> Result<(FilePlan, File), RecordError> {
    let first = FilePlan::new(data_dir, call_id, started, format, 0);
    fs::create_dir_all(&first.dir).map_err(|source| RecordError::CreateDir {
        path: first.dir.clone(),
        source,
    })?;
    for attempt in 0..MAX_NAME_ATTEMPTS {
        let plan = FilePlan::new(data_dir, call_id, started, format, attempt);
        if plan.path.exists() || plan.sidecar.exists() {
            continue;
        }
        let opened = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&plan.temp_path);
        match opened {
            Ok(file) => return Ok((plan, file)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(RecordError::Create {
                    path: plan.temp_path,
                    source,
                });
            }
        }
    }
    Err(RecordError::Create {
        path: first.temp_path,
        source: io::Error::new(io::ErrorKind::AlreadyExists, "no free file name"),
    })
}

/// What the writer needs besides the sink and the queue.
pub(crate) struct Job {
    /// The data directory: the upload spool lives there.
    pub data_dir: PathBuf,
    pub info: RecordingInfo,
    pub plan: FilePlan,
    pub format: RecordFormat,
    pub format_note: Option<String>,
    pub started: SystemTime,
    pub time_limit: Duration,
    pub dropped: Arc<AtomicU64>,
    pub events: mpsc::Sender<RecorderEvent>,
    /// PCI masking spans so far, in the order they began.
    pub masks: Vec<MaskSpan>,
}

impl Job {
    /// Applies a mask or unmask to the sink and the spans; a repeated mask (or an unmask of an
    /// unmasked leg) changes nothing.
    fn mask<W: RecordingFile>(
        &mut self,
        sink: &mut Sink<W>,
        leg: Leg,
        masked: bool,
        at: SystemTime,
    ) {
        let open = self
            .masks
            .iter_mut()
            .find(|span| span.leg == leg && span.end.is_none());
        match (open, masked) {
            (None, true) => self.masks.push(MaskSpan {
                leg,
                start: at.max(self.started),
                end: None,
            }),
            (Some(span), false) => span.end = Some(at.max(span.start)),
            _ => return,
        }
        sink.mask(leg, masked);
        tracing::info!(call_id = %self.info.call_id, leg = leg.as_str(), masked, "recording mask");
    }
}

/// Starts the writer and the time-limit timer for `sink`.
pub(crate) fn launch<W: RecordingFile>(sink: Sink<W>, job: Job) -> (RecorderTap, RecorderHandle) {
    let (queue, receiver) = mpsc::channel(QUEUE_PACKETS);
    let tap = RecorderTap::new(queue.clone(), Arc::clone(&job.dropped));
    let path = job.plan.path.clone();
    tracing::info!(call_id = %job.info.call_id, path = %path.display(), format = job.format.as_str(), "recording started");
    emit(
        &job.events,
        RecorderEvent::Started {
            call_id: job.info.call_id.clone(),
            path: path.clone(),
        },
    );
    let timer_queue = queue.clone();
    let limit = job.time_limit;
    let timer = tokio::spawn(async move {
        tokio::time::sleep(limit).await;
        let _ = timer_queue
            .send(Envelope::Stop(StopReason::TimeLimit))
            .await;
    });
    let writer = tokio::task::spawn_blocking(move || write_recording(sink, receiver, job));
    let handle = RecorderHandle {
        queue,
        writer: Some(writer),
        timer,
        path,
    };
    (tap, handle)
}

fn emit(events: &mpsc::Sender<RecorderEvent>, event: RecorderEvent) {
    if let Err(error) = events.try_send(event) {
        tracing::warn!(%error, "recording event not delivered");
    }
}

/// The writer loop: runs on a blocking thread until a stop arrives or every sender is gone.
fn write_recording<W: RecordingFile>(
    mut sink: Sink<W>,
    mut receiver: mpsc::Receiver<Envelope>,
    mut job: Job,
) -> Result<RecordingSummary, RecordError> {
    let reason = loop {
        match receiver.blocking_recv() {
            Some(Envelope::Packet(packet)) => {
                if let Err(source) = sink.accept(&packet) {
                    return Err(fail(sink, &job, &mut receiver, source));
                }
            }
            Some(Envelope::Mask { leg, masked, at }) => job.mask(&mut sink, leg, masked, at),
            Some(Envelope::Stop(reason)) => break reason,
            None => break StopReason::Shutdown,
        }
    };
    // Packets relayed before the stop still belong to the recording; later offers are dropped.
    receiver.close();
    while let Ok(envelope) = receiver.try_recv() {
        match envelope {
            Envelope::Packet(packet) => {
                if let Err(source) = sink.accept(&packet) {
                    return Err(fail(sink, &job, &mut receiver, source));
                }
            }
            Envelope::Mask { leg, masked, at } => job.mask(&mut sink, leg, masked, at),
            Envelope::Stop(_) => {}
        }
    }
    let stats = match sink
        .finish()
        .and_then(|(out, stats)| out.complete().map(|()| stats))
    {
        Ok(stats) => stats,
        Err(source) => {
            let error = write_error(&job, source);
            keep_failed(&job, SinkStats::default(), &error);
            return Err(error);
        }
    };
    if let Some(error) = discard_if_short(&job, stats) {
        return Err(error);
    }
    publish(&job, reason, stats, None).inspect_err(|error| {
        let _ = fs::remove_file(job.plan.sidecar_temp());
        keep_failed(&job, stats, error);
    })
}

/// Deletes a complete recording shorter than `record_min_sec` (it is never published nor
/// uploaded) and reports it; `None` when it is long enough.
fn discard_if_short(job: &Job, stats: SinkStats) -> Option<RecordError> {
    let min_sec = job.info.min_sec;
    if min_sec == 0 {
        return None;
    }
    let wall_ms = SystemTime::now()
        .duration_since(job.started)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        });
    let duration_ms = media_duration_ms(job.format, job.info.sample_rate, stats.frames, wall_ms);
    if duration_ms >= min_sec.saturating_mul(1000) {
        return None;
    }
    let _ = fs::remove_file(&job.plan.temp_path);
    let _ = fs::remove_file(job.plan.sidecar_temp());
    tracing::info!(call_id = %job.info.call_id, duration_ms, min_sec, "recording shorter than record_min_sec: discarded");
    emit(
        &job.events,
        RecorderEvent::Discarded {
            call_id: job.info.call_id.clone(),
            duration_ms,
            min_sec,
        },
    );
    Some(RecordError::Discarded {
        duration_ms,
        min_sec,
    })
}

/// Puts a complete recording with a `url` into the upload spool (durably, before the
/// `Stopped` event wakes the uploader).
fn queue_upload(job: &Job) {
    let Some(target) = &job.info.upload else {
        return;
    };
    let path = &job.plan.path;
    let file = path
        .strip_prefix(&job.data_dir)
        .unwrap_or(path)
        .to_path_buf();
    let media_type = match job.format {
        RecordFormat::Wav => library::WAV_MEDIA_TYPE,
        RecordFormat::Pcap => library::PCAP_MEDIA_TYPE,
    };
    let entry = SpoolEntry::new(&job.plan.id(), file, target, media_type, &job.info.call_id);
    if let Err(error) = spool::enqueue(&job.data_dir, &entry) {
        tracing::warn!(call_id = %job.info.call_id, %error, url = %target.url, "recording not queued for upload");
        emit(
            &job.events,
            RecorderEvent::UploadNotQueued {
                call_id: job.info.call_id.clone(),
                error: error.to_string(),
            },
        );
    }
}

/// Writes the sidecar and renames both files into place; `failure` marks a recording cut
/// short by a write error (status `failed`, no `Stopped` event: the caller reports it).
fn publish(
    job: &Job,
    reason: StopReason,
    stats: SinkStats,
    failure: Option<&str>,
) -> Result<RecordingSummary, RecordError> {
    let ended = SystemTime::now();
    let dropped = job.dropped.load(Ordering::Relaxed);
    let facts = SidecarFacts {
        info: &job.info,
        plan: &job.plan,
        format: job.format,
        format_note: job.format_note.as_deref(),
        started: job.started,
        ended,
        reason: &reason,
        time_limit_s: job.time_limit.as_secs(),
        stats,
        dropped,
        failure,
        masks: &job.masks,
    };
    let sidecar_temp = job.plan.sidecar_temp();
    let write_error = |path: &PathBuf| {
        let path = path.clone();
        move |source| RecordError::Write { path, source }
    };
    let document = serde_json::to_vec_pretty(&sidecar_json(&facts))
        .map_err(io::Error::other)
        .map_err(write_error(&sidecar_temp))?;
    fs::write(&sidecar_temp, document).map_err(write_error(&sidecar_temp))?;
    fs::rename(&job.plan.temp_path, &job.plan.path).map_err(write_error(&job.plan.path))?;
    fs::rename(&sidecar_temp, &job.plan.sidecar).map_err(write_error(&job.plan.sidecar))?;
    if failure.is_none() {
        queue_upload(job);
        // Only for the metrics: a file that cannot be measured still is a finished recording.
        let bytes = fs::metadata(&job.plan.path).map_or(0, |meta| meta.len());
        tracing::info!(call_id = %job.info.call_id, path = %job.plan.path.display(),
            reason = reason.as_str(), frames = stats.frames, dropped, "recording stopped");
        emit(
            &job.events,
            RecorderEvent::Stopped {
                call_id: job.info.call_id.clone(),
                path: job.plan.path.clone(),
                sidecar: job.plan.sidecar.clone(),
                reason: reason.as_str().to_owned(),
                frames: stats.frames,
                bytes,
                dropped,
            },
        );
    }
    Ok(RecordingSummary {
        path: job.plan.path.clone(),
        sidecar: job.plan.sidecar.clone(),
        reason,
        format: job.format,
        frames: stats.frames,
        dropped,
        started_at: job.started,
        ended_at: ended,
        upload: job.info.upload.clone(),
    })
}

fn write_error(job: &Job, source: io::Error) -> RecordError {
    RecordError::Write {
        path: job.plan.temp_path.clone(),
        source,
    }
}

/// Ends the recording after a write error: the taps see a closed queue, what was written is
/// completed as far as the disk allows and kept, marked `failed` in its sidecar, and the event
/// log hears why. The call is not affected.
fn fail<W: RecordingFile>(
    sink: Sink<W>,
    job: &Job,
    receiver: &mut mpsc::Receiver<Envelope>,
    source: io::Error,
) -> RecordError {
    receiver.close();
    let error = write_error(job, source);
    // Patching the headers may fail again (disk still full): the bytes already on disk stay.
    let stats = match sink.finish() {
        Ok((out, stats)) => {
            let _ = out.complete();
            stats
        }
        Err(_) => SinkStats::default(),
    };
    keep_failed(job, stats, &error);
    error
}

/// Keeps a failed recording: its sidecar says `failed` and why; when even the sidecar cannot
/// be written, the partial file is still moved into place.
fn keep_failed(job: &Job, stats: SinkStats, error: &RecordError) {
    let reason = error.to_string();
    if publish(job, StopReason::WriteError, stats, Some(&reason)).is_err() {
        let _ = fs::remove_file(job.plan.sidecar_temp());
        let _ = fs::rename(&job.plan.temp_path, &job.plan.path);
    }
    report_failure(job, error);
}

fn report_failure(job: &Job, error: &RecordError) {
    tracing::warn!(call_id = %job.info.call_id, %error, "recording failed");
    emit(
        &job.events,
        RecorderEvent::Failed {
            call_id: job.info.call_id.clone(),
            error: error.to_string(),
        },
    );
}

/// Controls one running recording. Dropping it without [`RecorderHandle::stop`] still finishes
/// the file, with reason `call_ended`.
#[derive(Debug)]
pub struct RecorderHandle {
    queue: mpsc::Sender<Envelope>,
    writer: Option<JoinHandle<Result<RecordingSummary, RecordError>>>,
    timer: JoinHandle<()>,
    path: PathBuf,
}

impl RecorderHandle {
    /// Stops the recording (if the time limit or an error has not already) and waits until the
    /// file and sidecar are in place. Returns what was recorded, with the reason it really ended.
    pub async fn stop(mut self, reason: StopReason) -> Result<RecordingSummary, RecordError> {
        self.timer.abort();
        // Fails only when the writer has already ended; its own result is returned below.
        let _ = self.queue.send(Envelope::Stop(reason)).await;
        let writer = self.writer.take().ok_or(RecordError::WriterLost)?;
        writer.await.unwrap_or(Err(RecordError::WriterLost))
    }

    /// Final path of the recording file (it appears there once complete).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts (`masked`) or ends the PCI masking of `leg`: the packets the relay hands over
    /// after this call are written as silence. Never waits: when the queue is full the request
    /// waits for the next free slot, ahead of any later packet.
    pub fn mask(&self, leg: Leg, masked: bool) {
        let envelope = Envelope::Mask {
            leg,
            masked,
            at: SystemTime::now(),
        };
        match self.queue.try_send(envelope) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(envelope)) => {
                // A waiting sender is served before the relay's next `try_reserve`.
                let queue = self.queue.clone();
                tokio::spawn(async move {
                    let _ = queue.send(envelope).await;
                });
            }
        }
    }

    /// Whether the recording already ended by itself (time limit or write error); a toggle then
    /// starts a new one.
    pub fn is_finished(&self) -> bool {
        self.writer.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for RecorderHandle {
    fn drop(&mut self) {
        if self.writer.is_some()
            && self
                .queue
                .try_send(Envelope::Stop(StopReason::CallEnded))
                .is_ok()
        {
            self.timer.abort();
        }
    }
}

#[cfg(test)]
#[path = "recorder_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "recorder_pcap_tests.rs"]
mod pcap_tests;

#[cfg(test)]
#[path = "recorder_failure_tests.rs"]
mod failure_tests;

#[cfg(test)]
#[path = "recorder_feature_tests.rs"]
mod feature_tests;
