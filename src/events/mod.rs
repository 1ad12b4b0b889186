//! The event log: one JSON object per line in `DATA_DIR/events.jsonl`, for operators and tests to
//! follow what the proxy did to each call (codes matched, transfers, recordings, hangups).
//!
//! Emitting never blocks: events go through a bounded queue to a writer task, and when the queue
//! is full the event is dropped and counted.

pub mod clock;
pub mod logging;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::metrics::{MetricsSource, write_header, write_sample};

pub use logging::{LoggingError, init_tracing};

/// Name of the event log file inside the data directory.
pub const EVENTS_FILE_NAME: &str = "events.jsonl";
/// Events that may wait for the writer before new ones are dropped.
pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;
/// Keys every event carries; fields with these names are ignored.
const RESERVED_KEYS: [&str; 3] = ["ts", "event", "call_id"];

/// Why the event log could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The data directory could not be created.
    #[error("cannot create data directory {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The event log file could not be opened for appending.
    #[error("cannot open event log {}", path.display())]
    OpenFile {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// What travels from emitters to the writer task.
#[derive(Debug)]
enum Message {
    /// A complete event object, serialised by the writer.
    Event(Map<String, Value>),
    /// Write everything queued, flush and stop.
    Close,
    /// Flush, close the file and open `events.jsonl` again (after logrotate renamed it).
    Reopen,
}

/// Counters of the event log, exposed on `/metrics` (register with `Metrics::add_source`).
#[derive(Debug, Default)]
pub struct EventLogStats {
    written: AtomicU64,
    dropped: AtomicU64,
    write_errors: AtomicU64,
}

impl EventLogStats {
    /// Events written to the file.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Events lost because the queue was full or the writer had stopped.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events lost because the file could not be written.
    pub fn write_errors(&self) -> u64 {
        self.write_errors.load(Ordering::Relaxed)
    }
}

impl MetricsSource for EventLogStats {
    fn render_prometheus(&self, out: &mut String) {
        let name = "events_written_total";
        write_header(out, name, "counter", "Events appended to events.jsonl.");
        write_sample(out, name, &[], self.written());
        let name = "events_dropped_total";
        let help = "Events lost because the event queue was full or closed.";
        write_header(out, name, "counter", help);
        write_sample(out, name, &[], self.dropped());
        let name = "events_write_errors_total";
        write_header(
            out,
            name,
            "counter",
            "Events lost because the file write failed.",
        );
        write_sample(out, name, &[], self.write_errors());
    }
}

/// Handle for emitting events; cheap to clone and share between tasks.
#[derive(Debug, Clone)]
pub struct EventLog {
    sender: Option<mpsc::Sender<Message>>,
    stats: Arc<EventLogStats>,
}

impl EventLog {
    /// Creates `data_dir` if needed, opens `events.jsonl` for appending and spawns the writer
    /// task on the current tokio runtime. The task ends after [`EventLog::flush_and_close`] or
    /// once every clone of the handle is dropped, having written everything queued.
    pub fn start(data_dir: &Path) -> Result<(EventLog, JoinHandle<()>), EventError> {
        EventLog::start_with_capacity(data_dir, DEFAULT_QUEUE_CAPACITY)
    }

    /// Like [`EventLog::start`] with a queue of `capacity` events (at least 1).
    pub fn start_with_capacity(
        data_dir: &Path,
        capacity: usize,
    ) -> Result<(EventLog, JoinHandle<()>), EventError> {
        std::fs::create_dir_all(data_dir).map_err(|source| EventError::CreateDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(EVENTS_FILE_NAME);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| EventError::OpenFile {
                path: path.clone(),
                source,
            })?;
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let stats = Arc::new(EventLogStats::default());
        let writer = write_events(
            tokio::fs::File::from_std(file),
            path,
            receiver,
            Arc::clone(&stats),
        );
        let handle = tokio::spawn(writer);
        Ok((
            EventLog {
                sender: Some(sender),
                stats,
            },
            handle,
        ))
    }

    /// A log that discards every event, for tests and tools that keep no record.
    pub fn disabled() -> EventLog {
        EventLog {
            sender: None,
            stats: Arc::new(EventLogStats::default()),
        }
    }

    /// The counters of this log, to register on `/metrics`.
    pub fn stats(&self) -> Arc<EventLogStats> {
        Arc::clone(&self.stats)
    }

    /// Queues one event of a call: `{"ts":..,"event":kind,"call_id":..,...fields}`. Never blocks;
    /// when the queue is full the event is dropped and counted.
    pub fn emit_call(&self, call_id: &str, event: &crate::base::CallEvent) {
        self.emit(event.kind(), Some(call_id), event.fields());
    }

    /// Queues one event of any kind (process events such as `proxy_started` have no call);
    /// call events go through [`EventLog::emit_call`]. Fields named `ts`, `event` or `call_id`
    /// are ignored.
    pub fn emit(&self, kind: &str, call_id: Option<&str>, fields: Map<String, Value>) {
        let Some(sender) = &self.sender else {
            return;
        };
        let mut event = Map::with_capacity(fields.len() + RESERVED_KEYS.len());
        event.insert("ts".to_owned(), Value::String(clock::utc_now_rfc3339()));
        event.insert("event".to_owned(), Value::String(kind.to_owned()));
        let call_id = call_id.map_or(Value::Null, |id| Value::String(id.to_owned()));
        event.insert("call_id".to_owned(), call_id);
        for (key, value) in fields {
            if !RESERVED_KEYS.contains(&key.as_str()) {
                event.insert(key, value);
            }
        }
        if sender.try_send(Message::Event(event)).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Asks the writer to flush and reopen `events.jsonl` by name once everything queued before
    /// is written, so a file renamed by logrotate stops growing and a new one starts (SIGHUP).
    /// Waits only until the request is queued.
    pub async fn reopen(&self) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(Message::Reopen).await;
        }
    }

    /// Asks the writer to write everything queued so far, flush and stop, then waits until the
    /// request is queued. Await the `JoinHandle` from `start` to know the file is complete.
    pub async fn flush_and_close(self) {
        if let Some(sender) = &self.sender {
            // An error means the writer already stopped, which is the goal.
            let _ = sender.send(Message::Close).await;
        }
    }
}

/// The writer task: appends each event as one line, flushing whenever the queue runs empty.
async fn write_events(
    file: tokio::fs::File,
    path: PathBuf,
    mut receiver: mpsc::Receiver<Message>,
    stats: Arc<EventLogStats>,
) {
    let mut writer = BufWriter::new(file);
    let mut line = Vec::with_capacity(512);
    while let Some(first) = receiver.recv().await {
        let mut next = Some(first);
        let mut closing = false;
        while let Some(message) = next {
            match message {
                Message::Event(event) => {
                    write_line(&mut writer, &mut line, &event, &stats).await;
                }
                Message::Close => {
                    closing = true;
                    receiver.close();
                }
                Message::Reopen => {
                    if let Err(err) = writer.flush().await {
                        tracing::warn!(error = %err, "cannot flush the event log");
                    }
                    let opened = tokio::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .await;
                    match opened {
                        Ok(file) => {
                            writer = BufWriter::new(file);
                            tracing::info!(path = %path.display(), "event log reopened");
                        }
                        Err(err) => {
                            // Keep writing to the old file rather than lose events.
                            tracing::warn!(path = %path.display(), error = %err, "cannot reopen the event log; still writing to the old file");
                        }
                    }
                }
            }
            next = receiver.try_recv().ok();
        }
        if let Err(err) = writer.flush().await {
            tracing::warn!(error = %err, "cannot flush the event log");
        }
        if closing {
            return;
        }
    }
    if let Err(err) = writer.flush().await {
        tracing::warn!(error = %err, "cannot flush the event log");
    }
}

async fn write_line(
    writer: &mut BufWriter<tokio::fs::File>,
    line: &mut Vec<u8>,
    event: &Map<String, Value>,
    stats: &EventLogStats,
) {
    line.clear();
    let written = match serde_json::to_writer(&mut *line, event) {
        Ok(()) => {
            line.push(b'\n');
            writer.write_all(line).await.map_err(|err| err.to_string())
        }
        Err(err) => Err(err.to_string()),
    };
    match written {
        Ok(()) => {
            stats.written.fetch_add(1, Ordering::Relaxed);
        }
        Err(reason) => {
            if stats.write_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(%reason, "cannot write to the event log; events are being lost");
            }
        }
    }
}

#[cfg(test)]
mod tests;
