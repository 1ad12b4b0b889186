//! The upload spool: one small JSON file per recording waiting for its `record_call` `url`, in
//! `DATA_DIR/upload-spool/`. Entries are written atomically (temporary file, then rename), so a
//! crash leaves either the old or the new entry; they survive restarts and are removed once the
//! receiver has answered 2xx (or the upload is given up). The spool is bounded in entries.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::params::UploadTarget;
use super::sidecar::TEMP_SUFFIX;

/// Folder of the spool under the data directory.
pub const SPOOL_DIR: &str = "upload-spool";
/// Most entries the spool holds; a recording finished beyond that is not queued (and counted).
pub const MAX_ENTRIES: usize = 10_000;

/// One recording waiting to be uploaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolEntry {
    /// The recording's id (its file name without extension).
    pub id: String,
    /// The recording file, relative to the data directory.
    pub file: PathBuf,
    /// Where it goes.
    pub url: String,
    /// `put` or `post`.
    pub method: String,
    /// `Content-Type` of the upload.
    pub media_type: String,
    /// The recorded call's Call-ID, sent as `X-Call-Id`.
    pub call_id: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not to be tried before this Unix time, in milliseconds.
    pub next_attempt_ms: u64,
}

impl SpoolEntry {
    /// A fresh entry for recording `id` at `file` (relative to the data directory).
    pub fn new(
        id: &str,
        file: PathBuf,
        target: &UploadTarget,
        media_type: &str,
        call_id: &str,
    ) -> Self {
        Self {
            id: id.to_owned(),
            file,
            url: target.url.clone(),
            method: target.method.as_str().to_owned(),
            media_type: media_type.to_owned(),
            call_id: call_id.to_owned(),
            attempts: 0,
            next_attempt_ms: 0,
        }
    }
}

/// Why an entry could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The spool already holds [`MAX_ENTRIES`].
    #[error("the upload spool is full ({MAX_ENTRIES} entries)")]
    Full,
    /// The entry could not be written.
    #[error("cannot write the upload spool entry {}: {source}", path.display())]
    Write {
        /// The entry's file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
}

fn spool_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(SPOOL_DIR)
}

fn entry_path(data_dir: &Path, id: &str) -> PathBuf {
    spool_dir(data_dir).join(format!("{id}.json"))
}

/// Adds a new entry (refused when the spool is full).
pub fn enqueue(data_dir: &Path, entry: &SpoolEntry) -> Result<(), SpoolError> {
    let dir = spool_dir(data_dir);
    let write = |source| SpoolError::Write {
        path: dir.clone(),
        source,
    };
    fs::create_dir_all(&dir).map_err(write)?;
    let count = fs::read_dir(&dir).map_err(write)?.count();
    if count >= MAX_ENTRIES {
        return Err(SpoolError::Full);
    }
    save(data_dir, entry)
}

/// Writes `entry` (new or updated) atomically and durably.
pub fn save(data_dir: &Path, entry: &SpoolEntry) -> Result<(), SpoolError> {
    let path = entry_path(data_dir, &entry.id);
    let write = |source| SpoolError::Write {
        path: path.clone(),
        source,
    };
    let mut temp = path.clone().into_os_string();
    temp.push(TEMP_SUFFIX);
    let temp = PathBuf::from(temp);
    let text = serde_json::to_vec_pretty(entry).map_err(|e| write(io::Error::other(e)))?;
    let file = fs::File::create(&temp).map_err(write)?;
    io::Write::write_all(&mut &file, &text).map_err(write)?;
    file.sync_all().map_err(write)?;
    fs::rename(&temp, &path).map_err(write)
}

/// Removes the entry of recording `id` (gone already is fine).
pub fn remove(data_dir: &Path, id: &str) -> io::Result<()> {
    match fs::remove_file(entry_path(data_dir, id)) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Up to `limit` entries, soonest due first, and how many readable entries the spool holds. Unreadable entries are left for an operator (and
/// logged); temporary files (a write in progress, or one a crash interrupted) are skipped.
pub fn load(data_dir: &Path, limit: usize) -> (Vec<SpoolEntry>, usize) {
    let Ok(files) = fs::read_dir(spool_dir(data_dir)) else {
        return (Vec::new(), 0);
    };
    let mut entries = Vec::new();
    for path in files.flatten().map(|file| file.path()) {
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        match fs::read(&path).map(|bytes| serde_json::from_slice::<SpoolEntry>(&bytes)) {
            Ok(Ok(entry)) if super::library::valid_id(&entry.id) => entries.push(entry),
            _ => tracing::warn!(path = %path.display(), "unreadable upload spool entry skipped"),
        }
    }
    entries.sort_by(|a, b| (a.next_attempt_ms, &a.id).cmp(&(b.next_attempt_ms, &b.id)));
    let total = entries.len();
    entries.truncate(limit);
    (entries, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::record::params::UploadMethod;

    #[test]
    fn entries_survive_a_reload_and_go_when_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = UploadTarget {
            url: "http://h/x".into(),
            method: UploadMethod::Post,
        };
        let mut entry = SpoolEntry::new("a", "recordings/a.wav".into(), &target, "audio/wav", "c");
        enqueue(dir.path(), &entry).unwrap();
        entry.attempts = 2;
        entry.next_attempt_ms = 5;
        save(dir.path(), &entry).unwrap();
        let other = SpoolEntry::new("b", "recordings/b.wav".into(), &target, "audio/wav", "c");
        enqueue(dir.path(), &other).unwrap();
        fs::write(dir.path().join(SPOOL_DIR).join("c.json.part"), b"{").unwrap();
        let loaded = load(dir.path(), 10);
        assert_eq!(loaded, (vec![other.clone(), entry.clone()], 2));
        assert_eq!(load(dir.path(), 1), (vec![other], 2));
        remove(dir.path(), "b").unwrap();
        remove(dir.path(), "b").unwrap();
        assert_eq!(load(dir.path(), 10), (vec![entry], 1));
    }
}
