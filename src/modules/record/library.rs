//! The finished recordings on disk, as the API and the retention sweep see them: each is a
//! sidecar `DATA_DIR/recordings/YYYY/MM/DD/{id}.json` beside its media file. Ids are checked
//! before they touch the file system, so no request can name a path outside that tree.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::sidecar::{RECORDINGS_DIR, TEMP_SUFFIX};

/// Longest id accepted (a Call-ID part, a timestamp and a suffix).
const MAX_ID_LEN: usize = 160;
/// Media type of a WAV recording.
pub const WAV_MEDIA_TYPE: &str = "audio/wav";
/// Media type of a pcap recording.
pub const PCAP_MEDIA_TYPE: &str = "application/vnd.tcpdump.pcap";

/// One finished recording.
#[derive(Clone, Debug)]
pub struct StoredRecording {
    /// Its id: the file name without extension.
    pub id: String,
    /// The JSON sidecar.
    pub sidecar_path: PathBuf,
    /// The media file (named by the sidecar's `file`, beside it).
    pub media_path: PathBuf,
    /// The sidecar's content.
    pub sidecar: Value,
}

impl StoredRecording {
    /// Media type of the file, from the sidecar's `format`.
    pub fn media_type(&self) -> &'static str {
        match self.sidecar["format"].as_str() {
            Some("pcap") => PCAP_MEDIA_TYPE,
            _ => WAV_MEDIA_TYPE,
        }
    }

    /// Size of the media file in bytes (0 when it is gone).
    pub fn size(&self) -> u64 {
        fs::metadata(&self.media_path)
            .map(|meta| meta.len())
            .unwrap_or(0)
    }

    /// Whether the recording is listed under `account_id`: the account of its call, or, when
    /// none was resolved (or the sidecar predates accounts), the default account.
    pub fn belongs_to(&self, account_id: &str, default_account_id: &str) -> bool {
        match self.sidecar["account_id"].as_str() {
            Some(owner) => owner == account_id,
            None => account_id == default_account_id,
        }
    }

    /// The API's summary: id, call, leg, label, start, duration, media type, size, status.
    pub fn summary(&self) -> Value {
        let doc = &self.sidecar;
        json!({
            "id": self.id,
            "call_id": doc["call_id"],
            "account_id": doc["account_id"],
            "leg": doc["leg"],
            "label": doc["label"],
            "started_by": doc["started_by"],
            "started": doc["started_at"],
            "duration_ms": doc["duration_ms"],
            "format": doc["format"],
            "media_type": self.media_type(),
            "size": self.size(),
            "status": doc.get("status").cloned().unwrap_or_else(|| json!("complete")),
        })
    }

    /// Removes the media file and then the sidecar; a file already gone is not an error.
    pub fn delete(&self) -> io::Result<()> {
        remove_if_present(&self.media_path)?;
        remove_if_present(&self.sidecar_path)
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Whether `id` can name a recording: the characters of a recording's file name only
/// (letters, digits, `.`, `_`, `-`), not starting with a dot, bounded in length.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Every finished recording under `data_dir`, newest first. Files still being written and
/// sidecars that do not parse are skipped.
pub fn list(data_dir: &Path) -> Vec<StoredRecording> {
    let mut found = Vec::new();
    for day in day_dirs(&data_dir.join(RECORDINGS_DIR)) {
        let Ok(entries) = fs::read_dir(&day) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == "json")
                && let Some(recording) = load(&path)
            {
                found.push(recording);
            }
        }
    }
    found.sort_by(|a, b| {
        let started = |r: &StoredRecording| r.sidecar["started_at"].as_str().map(str::to_owned);
        started(b).cmp(&started(a)).then_with(|| a.id.cmp(&b.id))
    });
    found
}

/// The recording `id`, if it exists; `None` for an id that is not valid.
pub fn find(data_dir: &Path, id: &str) -> Option<StoredRecording> {
    if !valid_id(id) {
        return None;
    }
    let file = format!("{id}.json");
    day_dirs(&data_dir.join(RECORDINGS_DIR))
        .into_iter()
        .map(|day| day.join(&file))
        .find(|path| path.is_file())
        .and_then(|path| load(&path))
}

/// Reads one sidecar; `None` when it is not a recording's sidecar.
pub fn load(sidecar_path: &Path) -> Option<StoredRecording> {
    let id = sidecar_path.file_stem()?.to_str()?.to_owned();
    if !valid_id(&id) || id.ends_with(TEMP_SUFFIX) {
        return None;
    }
    let text = fs::read(sidecar_path).ok()?;
    let sidecar: Value = serde_json::from_slice(&text).ok()?;
    let file = sidecar["file"]
        .as_str()
        .filter(|file| valid_file_name(file))?;
    let media_path = sidecar_path.with_file_name(file);
    Some(StoredRecording {
        id,
        sidecar_path: sidecar_path.to_path_buf(),
        media_path,
        sidecar,
    })
}

fn valid_file_name(name: &str) -> bool {
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return false;
    };
    valid_id(stem) && matches!(ext, "wav" | "pcap")
}

/// The `YYYY/MM/DD` folders under `root` (three levels of directories, nothing else).
pub fn day_dirs(root: &Path) -> Vec<PathBuf> {
    let mut level = vec![root.to_path_buf()];
    for _ in 0..3 {
        level = level
            .iter()
            .filter_map(|dir| fs::read_dir(dir).ok())
            .flat_map(|entries| entries.flatten())
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
            .map(|entry| entry.path())
            .collect();
    }
    level
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_recording(data_dir: &Path, day: &str, id: &str, started: &str) -> PathBuf {
        let dir = data_dir.join(RECORDINGS_DIR).join(day);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("{id}.wav")), b"RIFF....").unwrap();
        let sidecar = json!({"id": id, "call_id": "c1", "file": format!("{id}.wav"),
            "format": "wav", "started_at": started, "duration_ms": 1000,
            "status": "complete", "leg": "a", "label": null});
        let path = dir.join(format!("{id}.json"));
        fs::write(&path, sidecar.to_string()).unwrap();
        path
    }

    #[test]
    fn ids_cannot_leave_the_recordings_tree() {
        assert!(valid_id("c1_host-20261121T053428123Z"));
        for bad in ["", "..", ".hidden", "../x", "a/b", "a\\b", "x%2f", "é"] {
            assert!(!valid_id(bad), "{bad}");
        }
        assert!(!valid_id(&"x".repeat(MAX_ID_LEN + 1)));
    }

    #[test]
    fn list_find_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        write_recording(dir.path(), "2026/11/20", "old", "2026-11-20T10:00:00.000Z");
        write_recording(dir.path(), "2026/11/21", "new", "2026-11-21T10:00:00.000Z");
        let day = dir.path().join("recordings/2026/11/21");
        fs::write(day.join("partial.wav.part"), b"x").unwrap();
        fs::write(day.join("broken.json"), b"{").unwrap();
        let ids: Vec<String> = list(dir.path()).into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["new", "old"]);
        let found = find(dir.path(), "old").unwrap();
        let summary = found.summary();
        assert_eq!(summary["media_type"], "audio/wav");
        assert_eq!(summary["size"], 8);
        assert_eq!(summary["started"], "2026-11-20T10:00:00.000Z");
        assert!(find(dir.path(), "../old").is_none());
        assert!(find(dir.path(), "missing").is_none());
        assert!(
            found.belongs_to("default", "default"),
            "no account: the default's"
        );
        assert!(!found.belongs_to("other", "default"));
        let mut owned = found.clone();
        owned.sidecar["account_id"] = json!("other");
        assert!(owned.belongs_to("other", "default") && !owned.belongs_to("default", "default"));
        found.delete().unwrap();
        assert!(find(dir.path(), "old").is_none());
        assert!(!found.media_path.exists());
    }

    #[test]
    fn a_sidecar_cannot_point_outside_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_recording(dir.path(), "2026/11/21", "evil", "2026-11-21T10:00:00Z");
        let doc = json!({"file": "../../../../etc/passwd.wav", "format": "wav"});
        fs::write(&path, doc.to_string()).unwrap();
        assert!(find(dir.path(), "evil").is_none());
    }
}
