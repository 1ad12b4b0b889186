//! Whether the store can write, and how often it could not: a failed write (a full disk, an I/O
//! error) leaves `redb` refusing every later write until the database is reopened, so the store
//! records the failure here, `/ready` reports it, and the store reopens itself once a probe
//! shows the data directory writable again.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::metrics::{MetricsSource, write_header, write_sample};

/// Name of the file written to check that the data directory takes writes again.
const PROBE_FILE_NAME: &str = "store.probe";
/// Bytes the probe writes: enough that a nearly full file system refuses it.
const PROBE_BYTES: usize = 256 * 1024;

/// The store's write health, shared by the store, `/ready` and `/metrics`.
#[derive(Default)]
pub struct StoreHealth {
    /// Why the store cannot write, while it cannot.
    problem: Mutex<Option<String>>,
    /// Writes that failed in the database (not refused for their content).
    write_failures: AtomicU64,
    /// Times the database was reopened (or reconnected to) after a failure.
    recoveries: AtomicU64,
    /// Writes refused without trying because the store could not take writes.
    refused: AtomicU64,
}

impl StoreHealth {
    /// Records a failed write and marks the store degraded with `reason`.
    pub(super) fn write_failed(&self, reason: String) {
        self.write_failures.fetch_add(1, Ordering::Relaxed);
        *self.problem.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }

    /// Marks the store degraded with `reason` without counting a failed write (the PostgreSQL
    /// connection was lost or cannot be opened).
    pub(super) fn degraded(&self, reason: String) {
        *self.problem.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }

    /// Counts a write refused because the store could not take writes.
    pub(super) fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Records that the database was reopened and takes writes again.
    pub(super) fn recovered(&self) {
        self.recoveries.fetch_add(1, Ordering::Relaxed);
        *self.problem.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Why the store cannot write, or `None` while it can.
    pub fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Writes refused since start because the store could not take writes.
    pub fn refused_writes(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Writes that failed in the database since start.
    pub fn write_failures(&self) -> u64 {
        self.write_failures.load(Ordering::Relaxed)
    }

    /// How often the store came back after being unable to write (a PostgreSQL store that had
    /// to retry its first connection counts one).
    pub fn recoveries(&self) -> u64 {
        self.recoveries.load(Ordering::Relaxed)
    }
}

impl MetricsSource for StoreHealth {
    fn render_prometheus(&self, out: &mut String) {
        write_header(
            out,
            "store_write_failures_total",
            "counter",
            "Store writes that failed in the database (full disk, I/O error).",
        );
        write_sample(
            out,
            "store_write_failures_total",
            &[],
            self.write_failures(),
        );
        write_header(
            out,
            "store_recoveries_total",
            "counter",
            "Times the store was reopened after a failed write.",
        );
        write_sample(
            out,
            "store_recoveries_total",
            &[],
            self.recoveries.load(Ordering::Relaxed),
        );
        write_header(
            out,
            "store_writes_refused_total",
            "counter",
            "Writes refused (503) because the store could not take writes (PostgreSQL away, \
             database closed after a failure).",
        );
        write_sample(
            out,
            "store_writes_refused_total",
            &[],
            self.refused.load(Ordering::Relaxed),
        );
        write_header(
            out,
            "store_degraded",
            "gauge",
            "1 while the store cannot write (/ready answers 503), else 0.",
        );
        write_sample(
            out,
            "store_degraded",
            &[],
            u8::from(self.problem().is_some()),
        );
    }
}

/// Writes, syncs and removes a probe file in `dir`: `Err` while the directory refuses writes.
pub(super) fn probe_writable(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(PROBE_FILE_NAME);
    let outcome = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut file| {
            file.write_all(&[0u8; PROBE_BYTES])?;
            file.sync_all()
        });
    // The probe's space is given back whatever happened.
    let _ = std::fs::remove_file(&path);
    outcome
}
