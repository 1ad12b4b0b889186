//! Where uploaded media live, shared by the media API (which writes them) and the
//! [`super::SoundLibrary`] (which plays them), so both agree on one layout:
//! `DATA_DIR/media/{account}/{id}.json` (the Kazoo media document) and
//! `DATA_DIR/media/{account}/{id}.audio` (the uploaded file, WAV or MP3 as sent); system media
//! (`/system_media/ID`) under `DATA_DIR/media/system/`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The folder below the data directory that holds every media file.
pub const MEDIA_DIR: &str = "media";

/// The folder of system media, in place of an account id.
pub const SYSTEM_DIR: &str = "system";

/// Whether `id` may name a media document or an account folder: 1 to 64 ASCII letters, digits,
/// `-` or `_` (so no id can climb out of its folder, and none is `system`'s double).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The folder of `account`'s media (`None`: system media); `None` when an id is not valid.
pub fn folder(data_dir: &Path, account: Option<&str>) -> Option<PathBuf> {
    let owner = match account {
        Some(account) if valid_id(account) && account != SYSTEM_DIR => account,
        Some(_) => return None,
        None => SYSTEM_DIR,
    };
    Some(data_dir.join(MEDIA_DIR).join(owner))
}

/// The document of media `id`; `None` when an id is not valid.
pub fn doc_path(data_dir: &Path, account: Option<&str>, id: &str) -> Option<PathBuf> {
    valid_id(id).then_some(())?;
    Some(folder(data_dir, account)?.join(format!("{id}.json")))
}

/// The uploaded audio of media `id`; `None` when an id is not valid.
pub fn audio_path(data_dir: &Path, account: Option<&str>, id: &str) -> Option<PathBuf> {
    valid_id(id).then_some(())?;
    Some(folder(data_dir, account)?.join(format!("{id}.audio")))
}

/// What identifies one upload of a file: a re-upload changes it, so a cache keyed by it never
/// plays the old audio.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    /// Size in bytes.
    pub len: u64,
    /// Modification time, in nanoseconds since the epoch.
    pub modified_ns: u128,
}

/// The version of the file at `path`, `None` when it cannot be read.
pub fn version(path: &Path) -> Option<Version> {
    let meta = std::fs::metadata(path).ok()?;
    let modified_ns = meta
        .modified()
        .ok()?
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some(Version {
        len: meta.len(),
        modified_ns,
    })
}

/// Writes `bytes` to `path` through a temporary file and a rename, creating the folder, so that
/// a reader sees the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let folder = path
        .parent()
        .ok_or_else(|| std::io::Error::other("media path without a folder"))?;
    std::fs::create_dir_all(folder)?;
    let mut scratch = path.as_os_str().to_owned();
    scratch.push(format!(".tmp{}", fastrand::u32(..)));
    let scratch = PathBuf::from(scratch);
    std::fs::write(&scratch, bytes)?;
    std::fs::rename(&scratch, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&scratch);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_leave_their_folder() {
        let root = Path::new("/data");
        assert_eq!(
            audio_path(root, Some("acct1"), "abc").unwrap(),
            Path::new("/data/media/acct1/abc.audio")
        );
        assert_eq!(
            doc_path(root, None, "moh").unwrap(),
            Path::new("/data/media/system/moh.json")
        );
        for bad in ["", "..", "../x", "a/b", "a b", "é"] {
            assert!(audio_path(root, Some("acct"), bad).is_none(), "{bad:?}");
            assert!(folder(root, Some(bad)).is_none(), "{bad:?}");
        }
        assert!(folder(root, Some("system")).is_none());
    }
}
