//! Rendered speech kept on disk under `DATA_DIR/tts-cache/`, so a restart does not run the engine
//! again for every prompt: one 8 kHz 16-bit mono WAV per (engine, voice, language, text), named by
//! the SHA-256 of those. Bounded in files and bytes (the oldest files go first). Everything here
//! blocks; the library calls it on the blocking pool.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::clip::{CLIP_RATE, Clip};
use super::decode::{DecodeLimits, decode};
use super::media_files::write_atomically;
use super::sound::TtsRequest;

/// The folder below the data directory.
pub const TTS_CACHE_DIR: &str = "tts-cache";

/// A folder of rendered speech, at most `max_files` files and `max_bytes` bytes.
#[derive(Clone, Debug)]
pub struct SpeechDisk {
    dir: PathBuf,
    max_files: usize,
    max_bytes: u64,
}

impl SpeechDisk {
    /// The cache in `data_dir/tts-cache` with these bounds.
    pub fn new(data_dir: &Path, max_files: usize, max_bytes: u64) -> Self {
        Self {
            dir: data_dir.join(TTS_CACHE_DIR),
            max_files,
            max_bytes,
        }
    }

    /// The file of `request`.
    fn path(&self, request: &TtsRequest) -> PathBuf {
        let mut hash = Sha256::new();
        for part in [
            request.engine.as_str(),
            request.voice.as_str(),
            request.language.as_deref().unwrap_or_default(),
            request.text.as_str(),
        ] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
        let name: String = hash
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        self.dir.join(format!("{name}.wav"))
    }

    /// The speech kept for `request`, if any (a damaged file is removed and missed).
    pub fn get(&self, request: &TtsRequest) -> Option<Clip> {
        let path = self.path(request);
        let bytes = std::fs::read(&path).ok()?;
        match decode(&bytes, DecodeLimits::default()) {
            Ok(clip) => Some(clip),
            Err(_) => {
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Keeps `clip` for `request`, then removes the oldest files past the bounds. Failures are
    /// logged and otherwise ignored: the cache only saves work.
    pub fn put(&self, request: &TtsRequest, clip: &Clip) {
        if self.max_files == 0 {
            return;
        }
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: CLIP_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut out = Cursor::new(Vec::with_capacity(44 + clip.len() * 2));
        let written = hound::WavWriter::new(&mut out, spec).and_then(|mut writer| {
            for &sample in clip.samples() {
                writer.write_sample(sample)?;
            }
            writer.finalize()
        });
        let bytes = out.into_inner();
        if written.is_err() || bytes.len() as u64 > self.max_bytes {
            return;
        }
        if let Err(error) = write_atomically(&self.path(request), &bytes) {
            tracing::warn!(%error, dir = %self.dir.display(), "speech not cached on disk");
            return;
        }
        self.prune();
    }

    /// Removes the least recently written files until both bounds hold.
    fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "wav"))
            .filter_map(|entry| {
                let meta = entry.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), entry.path()))
            })
            .collect();
        let mut bytes: u64 = files.iter().map(|(_, len, _)| len).sum();
        if files.len() <= self.max_files && bytes <= self.max_bytes {
            return;
        }
        files.sort();
        let mut count = files.len();
        for (_, len, path) in files {
            if count <= self.max_files && bytes <= self.max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                count -= 1;
                bytes -= len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> TtsRequest {
        TtsRequest {
            text: text.into(),
            voice: "female".into(),
            language: None,
            engine: "flite".into(),
        }
    }

    #[test]
    fn clips_come_back_and_the_bounds_hold() {
        let dir = tempfile::tempdir().unwrap();
        let disk = SpeechDisk::new(dir.path(), 2, 1 << 20);
        let clip = Clip::new((0..800).map(|n| (n * 7) as i16).collect());
        assert!(disk.get(&request("a")).is_none());
        disk.put(&request("a"), &clip);
        assert_eq!(disk.get(&request("a")), Some(clip.clone()));
        assert!(
            disk.get(&request("b")).is_none(),
            "another text is another file"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        disk.put(&request("b"), &clip);
        std::thread::sleep(std::time::Duration::from_millis(20));
        disk.put(&request("c"), &clip);
        let kept = std::fs::read_dir(dir.path().join(TTS_CACHE_DIR))
            .unwrap()
            .count();
        assert_eq!(kept, 2);
        assert!(disk.get(&request("a")).is_none(), "the oldest went first");
        std::fs::write(disk.path(&request("c")), b"junk").unwrap();
        assert!(disk.get(&request("c")).is_none());
        assert!(
            !disk.path(&request("c")).exists(),
            "a damaged file is removed"
        );
    }
}
