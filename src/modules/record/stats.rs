//! Counters of what happens to recordings after the call: write failures, deletions by the
//! retention sweep, uploads. Shared (`Arc`) by the shell, the sweep and the uploader, and
//! rendered on `GET /metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::metrics::{MetricsSource, write_header, write_sample};

/// The recording counters; every method is a relaxed atomic operation.
#[derive(Debug, Default)]
pub struct RecordingStats {
    failed: AtomicU64,
    deleted_retention: AtomicU64,
    uploaded: AtomicU64,
    upload_retries: AtomicU64,
    upload_failures: AtomicU64,
    uploads_pending: AtomicU64,
}

impl RecordingStats {
    /// A recording could not start or was cut short by a write error.
    pub fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// The retention sweep deleted `count` recordings.
    pub fn deleted_by_retention(&self, count: u64) {
        self.deleted_retention.fetch_add(count, Ordering::Relaxed);
    }

    /// A recording reached its upload URL (a 2xx answer).
    pub fn uploaded(&self) {
        self.uploaded.fetch_add(1, Ordering::Relaxed);
    }

    /// An upload attempt failed and will be tried again.
    pub fn upload_retried(&self) {
        self.upload_retries.fetch_add(1, Ordering::Relaxed);
    }

    /// An upload was given up (attempts exhausted, file gone, or refused with a 4xx).
    pub fn upload_failed(&self) {
        self.upload_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets the number of uploads waiting in the spool.
    pub fn set_uploads_pending(&self, count: u64) {
        self.uploads_pending.store(count, Ordering::Relaxed);
    }
}

impl MetricsSource for RecordingStats {
    fn render_prometheus(&self, out: &mut String) {
        let counters = [
            (
                "recordings_failed_total",
                "Recordings that could not start or were cut short by a write error (the partial file is kept, marked failed).",
                &self.failed,
            ),
            (
                "recording_uploads_total",
                "Recordings delivered to their record_call url (2xx answer).",
                &self.uploaded,
            ),
            (
                "recording_upload_retries_total",
                "Upload attempts that failed and were scheduled again.",
                &self.upload_retries,
            ),
            (
                "recording_upload_failures_total",
                "Uploads given up: attempts exhausted, a 4xx answer, or the file gone.",
                &self.upload_failures,
            ),
        ];
        for (name, help, counter) in counters {
            write_header(out, name, "counter", help);
            write_sample(out, name, &[], counter.load(Ordering::Relaxed));
        }
        let name = "recordings_deleted_total";
        write_header(
            out,
            name,
            "counter",
            "Recordings deleted (file and sidecar), by reason.",
        );
        write_sample(
            out,
            name,
            &[("reason", "retention")],
            self.deleted_retention.load(Ordering::Relaxed),
        );
        let name = "recording_uploads_pending";
        write_header(out, name, "gauge", "Uploads waiting in the spool.");
        write_sample(out, name, &[], self.uploads_pending.load(Ordering::Relaxed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_is_rendered() {
        let stats = RecordingStats::default();
        stats.failed();
        stats.deleted_by_retention(3);
        stats.uploaded();
        stats.upload_retried();
        stats.upload_retried();
        stats.upload_failed();
        stats.set_uploads_pending(4);
        let mut out = String::new();
        stats.render_prometheus(&mut out);
        for line in [
            "metaflow_proxy_recordings_failed_total 1",
            "metaflow_proxy_recordings_deleted_total{reason=\"retention\"} 3",
            "metaflow_proxy_recording_uploads_total 1",
            "metaflow_proxy_recording_upload_retries_total 2",
            "metaflow_proxy_recording_upload_failures_total 1",
            "metaflow_proxy_recording_uploads_pending 4",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} missing in:\n{out}");
        }
    }
}
