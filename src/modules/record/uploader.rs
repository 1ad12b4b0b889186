//! Delivers finished recordings to their `record_call` `url` (Kazoo: the file is the body of a
//! `PUT`, or a `POST` with `method: "post"`). One background task works through the on-disk
//! [`spool`](super::spool), one upload at a time, off the relay and the SIP task; a failed attempt
//! is retried with exponential backoff, across restarts, until the receiver answers 2xx.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::file_body::FileBody;
use super::spool::{self, SpoolEntry};
use super::stats::RecordingStats;
use super::upload_url::HttpUrl;

/// Entries looked at per pass over the spool.
const BATCH: usize = 64;
/// The spool is read again at least this often, even without a wake-up.
const RESCAN: Duration = Duration::from_secs(30);
/// Time allowed to open the TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for one whole upload, body and answer included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// When failed attempts are tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure; it doubles with each further one.
    pub first_delay: Duration,
    /// Longest delay between two attempts.
    pub max_delay: Duration,
    /// Attempts before the upload is given up.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 1 s, doubling up to 5 min, 30 attempts: about two hours of trying.
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
            max_attempts: 30,
        }
    }
}

impl RetryPolicy {
    /// Delay before attempt `attempts + 1`, given that `attempts` (at least 1) have failed.
    pub fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.first_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }
}

/// What one attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the receiver has the file.
    Delivered,
    /// Not worth trying again (a 4xx other than 408/429, a redirect, the file gone, a bad URL).
    Refused(String),
    /// Worth trying again (connection refused or cut, timeout, 5xx, 408, 429).
    Transient(String),
}

/// Wakes the uploader when a recording was queued (and at start); cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct UploadWake(Arc<Notify>);

impl UploadWake {
    /// Tells the uploader to read the spool now; never blocks, never queues more than one wake.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Starts the upload task for the spool of `data_dir`; it runs while the runtime lives.
pub fn spawn(data_dir: PathBuf, stats: Arc<RecordingStats>, wake: UploadWake, policy: RetryPolicy) {
    tokio::spawn(run(data_dir, stats, wake, policy));
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

async fn run(data_dir: PathBuf, stats: Arc<RecordingStats>, wake: UploadWake, policy: RetryPolicy) {
    loop {
        let dir = data_dir.clone();
        let (entries, total) = tokio::task::spawn_blocking(move || spool::load(&dir, BATCH))
            .await
            .unwrap_or_default();
        let mut pending = total as u64;
        stats.set_uploads_pending(pending);
        let mut next_due: Option<u64> = None;
        // Entries come soonest due first: a batch with one not yet due leaves none due behind it.
        let more_due =
            total > entries.len() && entries.iter().all(|e| e.next_attempt_ms <= unix_ms());
        for mut entry in entries {
            if entry.next_attempt_ms > unix_ms() {
                next_due = Some(
                    next_due.map_or(entry.next_attempt_ms, |due| due.min(entry.next_attempt_ms)),
                );
                continue;
            }
            let outcome = attempt(&data_dir, &entry).await;
            match settle(&data_dir, &mut entry, outcome, &stats, &policy).await {
                Some(due) => next_due = Some(next_due.map_or(due, |next| next.min(due))),
                None => {
                    pending = pending.saturating_sub(1);
                    stats.set_uploads_pending(pending);
                }
            }
        }
        if more_due {
            continue;
        }
        let wait = next_due
            .map(|due| Duration::from_millis(due.saturating_sub(unix_ms())))
            .unwrap_or(RESCAN)
            .min(RESCAN);
        tokio::select! {
            () = wake.0.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Updates the spool after an attempt; returns when the entry is due again, if it stays.
async fn settle(
    data_dir: &Path,
    entry: &mut SpoolEntry,
    outcome: Outcome,
    stats: &RecordingStats,
    policy: &RetryPolicy,
) -> Option<u64> {
    entry.attempts = entry.attempts.saturating_add(1);
    let (keep, reason) = match outcome {
        Outcome::Delivered => {
            tracing::info!(id = %entry.id, url = %entry.url, attempts = entry.attempts, "recording uploaded");
            stats.uploaded();
            (false, None)
        }
        Outcome::Refused(reason) => (false, Some(reason)),
        Outcome::Transient(reason) if entry.attempts >= policy.max_attempts => (
            false,
            Some(format!("{reason} (after {} attempts)", entry.attempts)),
        ),
        Outcome::Transient(reason) => {
            let delay = policy.delay(entry.attempts);
            tracing::info!(id = %entry.id, url = %entry.url, attempts = entry.attempts,
                retry_in_ms = delay.as_millis() as u64, %reason, "recording upload failed, will retry");
            stats.upload_retried();
            entry.next_attempt_ms =
                unix_ms().saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
            (true, None)
        }
    };
    if let Some(reason) = &reason {
        tracing::warn!(id = %entry.id, url = %entry.url, %reason, "recording upload given up");
        stats.upload_failed();
    }
    let dir = data_dir.to_path_buf();
    let saved = entry.clone();
    let next = saved.next_attempt_ms;
    let written = tokio::task::spawn_blocking(move || {
        if keep {
            spool::save(&dir, &saved).map_err(|e| e.to_string())
        } else {
            spool::remove(&dir, &saved.id).map_err(|e| e.to_string())
        }
    })
    .await;
    if let Ok(Err(error)) = written {
        tracing::warn!(id = %entry.id, %error, "upload spool not updated");
    }
    keep.then_some(next)
}

/// One upload of `entry`'s file.
pub async fn attempt(data_dir: &Path, entry: &SpoolEntry) -> Outcome {
    let Some(url) = HttpUrl::parse(&entry.url) else {
        return Outcome::Refused(format!("not an http URL: {}", entry.url));
    };
    let method = if entry.method.eq_ignore_ascii_case("post") {
        Method::POST
    } else {
        Method::PUT
    };
    // An entry names a file below the data directory, never an absolute or `..` path.
    let inside = entry
        .file
        .components()
        .all(|part| matches!(part, std::path::Component::Normal(_)));
    if !inside {
        return Outcome::Refused(format!("not a recording path: {}", entry.file.display()));
    }
    let body = match FileBody::open(&data_dir.join(&entry.file)).await {
        Ok(body) => body,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Outcome::Refused("the recording file is gone".into());
        }
        Err(error) => return Outcome::Transient(format!("cannot read the recording: {error}")),
    };
    let length = body.len();
    let request = Request::builder()
        .method(method)
        .uri(&url.path_and_query)
        .header(header::HOST, &url.authority)
        .header(header::CONTENT_TYPE, &entry.media_type)
        .header(header::CONTENT_LENGTH, length)
        .header("x-recording-id", &entry.id)
        .header("x-call-id", &entry.call_id)
        .body(body);
    let request = match request {
        Ok(request) => request,
        Err(error) => return Outcome::Refused(format!("cannot build the request: {error}")),
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, send(&url, request)).await {
        Err(_) => Outcome::Transient("timed out".into()),
        Ok(Err(reason)) => Outcome::Transient(reason),
        Ok(Ok(status)) if status.is_success() => Outcome::Delivered,
        Ok(Ok(status))
            if status.is_server_error()
                || status == StatusCode::REQUEST_TIMEOUT
                || status == StatusCode::TOO_MANY_REQUESTS =>
        {
            Outcome::Transient(format!("answered {status}"))
        }
        Ok(Ok(status)) => Outcome::Refused(format!("answered {status}")),
    }
}

async fn send(url: &HttpUrl, request: Request<FileBody>) -> Result<StatusCode, String> {
    let host = url.host.trim_start_matches('[').trim_end_matches(']');
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, url.port)))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|error| format!("cannot connect: {error}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| format!("handshake: {error}"))?;
    let driver = tokio::spawn(connection);
    let answer = sender.send_request(request).await;
    driver.abort();
    answer
        .map(|response| response.status())
        .map_err(|error| format!("request: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_naming_paths_outside_the_data_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = crate::modules::record::UploadTarget {
            url: "http://127.0.0.1:9/x".into(),
            method: crate::modules::record::UploadMethod::Put,
        };
        for file in ["/etc/passwd", "../secret.wav", "recordings/../../x.wav"] {
            let entry = SpoolEntry::new("a", file.into(), &target, "audio/wav", "c");
            let outcome = attempt(dir.path(), &entry).await;
            assert!(
                matches!(outcome, Outcome::Refused(_)),
                "{file}: {outcome:?}"
            );
        }
        let gone = SpoolEntry::new("a", "recordings/a.wav".into(), &target, "audio/wav", "c");
        assert_eq!(
            attempt(dir.path(), &gone).await,
            Outcome::Refused("the recording file is gone".into())
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(1), Duration::from_secs(1));
        assert_eq!(policy.delay(2), Duration::from_secs(2));
        assert_eq!(policy.delay(4), Duration::from_secs(8));
        assert_eq!(policy.delay(10), Duration::from_secs(300));
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(300));
    }
}
