//! Retention: recordings older than `recordings-retention-days` are deleted (file and sidecar)
//! by a sweep that runs at start and then hourly on the blocking pool, never near the relay.
//! A recording's age is that of its sidecar, written once when the recording ended.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::library;
use super::sidecar::RECORDINGS_DIR;
use super::stats::RecordingStats;

/// Time between two sweeps.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);
/// Seconds in a retention day.
const DAY_SECS: u64 = 86_400;

/// Deletes every recording under `data_dir` whose sidecar was last written more than `max_age`
/// before `now`; returns how many were deleted. Empty day folders are removed too.
pub fn sweep(data_dir: &Path, now: SystemTime, max_age: Duration) -> u64 {
    let Some(cutoff) = now.checked_sub(max_age) else {
        return 0;
    };
    let mut deleted = 0;
    let mut emptied: Vec<PathBuf> = Vec::new();
    for recording in library::list(data_dir) {
        let written = fs::metadata(&recording.sidecar_path).and_then(|meta| meta.modified());
        let Ok(written) = written else { continue };
        if written >= cutoff {
            continue;
        }
        match recording.delete() {
            Ok(()) => {
                deleted += 1;
                if let Some(day) = recording.sidecar_path.parent() {
                    emptied.push(day.to_path_buf());
                }
            }
            Err(error) => {
                tracing::warn!(id = %recording.id, %error, "expired recording not deleted");
            }
        }
    }
    let root = data_dir.join(RECORDINGS_DIR);
    for day in emptied {
        // Fails harmlessly while a folder still holds anything; stops at the recordings root.
        let mut dir = Some(day.as_path());
        while let Some(current) = dir.filter(|d| *d != root && d.starts_with(&root)) {
            if fs::remove_dir(current).is_err() {
                break;
            }
            dir = current.parent();
        }
    }
    deleted
}

/// Runs [`sweep`] now and every [`SWEEP_INTERVAL`] while the runtime lives; `days` 0 never
/// deletes anything (the task is not even started).
pub fn spawn(data_dir: PathBuf, days: u64, stats: Arc<RecordingStats>) {
    if days == 0 {
        return;
    }
    let max_age = Duration::from_secs(days.saturating_mul(DAY_SECS));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            ticks.tick().await;
            let dir = data_dir.clone();
            let swept =
                tokio::task::spawn_blocking(move || sweep(&dir, SystemTime::now(), max_age));
            if let Ok(count) = swept.await
                && count > 0
            {
                stats.deleted_by_retention(count);
                tracing::info!(count, days, "expired recordings deleted");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::fs::File;

    fn recording(data_dir: &Path, day: &str, id: &str, age: Duration, now: SystemTime) {
        let dir = data_dir.join(RECORDINGS_DIR).join(day);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("{id}.wav")), b"RIFF").unwrap();
        let sidecar = dir.join(format!("{id}.json"));
        let doc = json!({"file": format!("{id}.wav"), "format": "wav", "started_at": "x"});
        fs::write(&sidecar, doc.to_string()).unwrap();
        File::options()
            .write(true)
            .open(&sidecar)
            .unwrap()
            .set_modified(now - age)
            .unwrap();
    }

    #[test]
    fn only_recordings_older_than_the_retention_go() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let day = Duration::from_secs(DAY_SECS);
        recording(dir.path(), "2026/01/01", "old", day * 31, now);
        recording(dir.path(), "2026/02/01", "young", day * 29, now);
        assert_eq!(sweep(dir.path(), now, day * 30), 1);
        let left: Vec<String> = library::list(dir.path())
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(left, ["young"]);
        let root = dir.path().join(RECORDINGS_DIR);
        assert!(!root.join("2026/01").exists(), "emptied folders go too");
        assert!(root.join("2026/02/01/young.wav").exists());
        assert_eq!(sweep(dir.path(), now, day * 30), 0);
        // A clock a month ahead expires the other one.
        assert_eq!(sweep(dir.path(), now + day * 2, day * 30), 1);
        assert!(root.exists(), "the recordings folder itself stays");
    }
}
