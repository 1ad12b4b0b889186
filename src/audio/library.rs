//! Turns a [`SoundRef`] into a [`Clip`], off the packet path.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::OnceCell;

use super::cache::ClipCache;
use super::clip::Clip;
use super::decode::{DecodeLimits, decode_blocking};
use super::media_files::{self, Version};
use super::moh::default_moh;
use super::say;
use super::sound::{SoundRef, TtsRequest};
use super::speech_disk::SpeechDisk;
use super::{tone, tts};

/// Why a sound could not be produced; the module that asked for it ends with `failure` and this
/// as its reason.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AudioError {
    /// No media with that id (or it has no audio uploaded yet).
    #[error("no media {0}")]
    NotFound(String),
    /// A kind of sound this proxy does not produce.
    #[error("unsupported sound: {0}")]
    Unsupported(String),
    /// The file is not audio the proxy can decode.
    #[error("cannot decode {0}")]
    Decode(String),
    /// The speech engine failed or is missing.
    #[error("speech engine: {0}")]
    Engine(String),
    /// The file is larger than the decoder accepts.
    #[error("file too large: {0}")]
    TooLarge(String),
    /// The audio plays longer than the decoder accepts.
    #[error("audio too long: {0}")]
    TooLong(String),
    /// A `tone_stream://` description that does not parse; the text says where.
    #[error("bad tone_stream: {0}")]
    BadTone(String),
    /// A `say` request whose text does not fit its type.
    #[error("cannot say: {0}")]
    Say(String),
}

/// Where the library finds what it plays, and how much it keeps.
#[derive(Clone, Debug)]
pub struct LibraryConfig {
    /// The proxy's data directory: uploaded media live below it.
    pub data_dir: PathBuf,
    /// The largest and longest media file decoded.
    pub limits: DecodeLimits,
    /// Decoded media kept: at most this many clips ...
    pub media_cache_entries: usize,
    /// ... and this many bytes of samples.
    pub media_cache_bytes: usize,
    /// Rendered speech kept: at most this many clips ...
    pub speech_cache_entries: usize,
    /// ... and this many bytes of samples.
    pub speech_cache_bytes: usize,
    /// Rendered speech kept on disk in `data_dir/tts-cache` (none without a data directory):
    /// at most this many files (0 turns it off) ...
    pub speech_disk_files: usize,
    /// ... and this many bytes.
    pub speech_disk_bytes: u64,
}

impl Default for LibraryConfig {
    /// No data directory; caches of 128 media clips / 64 MiB and 256 speech clips / 32 MiB
    /// in memory (a minute of 8 kHz audio is 960 kB), 2000 files / 256 MiB of speech on disk.
    fn default() -> Self {
        Self {
            data_dir: PathBuf::new(),
            limits: DecodeLimits::default(),
            media_cache_entries: 128,
            media_cache_bytes: 64 << 20,
            speech_cache_entries: 256,
            speech_cache_bytes: 32 << 20,
            speech_disk_files: 2000,
            speech_disk_bytes: 256 << 20,
        }
    }
}

/// One rendering of speech in progress, awaited by every call that asked for it.
type Rendering = Arc<OnceCell<Result<Clip, AudioError>>>;

/// What a decoded media clip is kept under: owner, id and the upload it came from.
type MediaKey = (Option<String>, String, Version);

/// Produces clips for the calls, caching what is dear to make (decoded files, speech) in caches
/// bounded as [`LibraryConfig`] says.
#[derive(Clone, Debug)]
pub struct SoundLibrary {
    /// Shared by every clone (the shell hands one to each resolving task).
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: LibraryConfig,
    /// The built-in music, rendered once on first use.
    moh: OnceLock<Clip>,
    /// Decoded media by owner, id and file version (a re-upload misses).
    media: ClipCache<MediaKey>,
    /// Rendered speech by engine, voice, language and text.
    speech: ClipCache<TtsRequest>,
    /// The same on disk, when there is a data directory.
    speech_disk: Option<SpeechDisk>,
    /// Speech being rendered, by request: one entry per distinct rendering in progress (removed
    /// when it ends), so the map is bounded by the calls waiting.
    pending: Mutex<HashMap<TtsRequest, Rendering>>,
    /// Rendered tones by description.
    tones: ClipCache<String>,
}

impl SoundLibrary {
    /// A library reading media below `cfg.data_dir`.
    pub fn new(cfg: LibraryConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                media: ClipCache::new(cfg.media_cache_entries, cfg.media_cache_bytes),
                speech: ClipCache::new(cfg.speech_cache_entries, cfg.speech_cache_bytes),
                // Tones are cheap to render; a few kept spare the common ringback and beep.
                tones: ClipCache::new(32, 8 << 20),
                pending: Mutex::new(HashMap::new()),
                speech_disk: (!cfg.data_dir.as_os_str().is_empty() && cfg.speech_disk_files > 0)
                    .then(|| {
                        SpeechDisk::new(&cfg.data_dir, cfg.speech_disk_files, cfg.speech_disk_bytes)
                    }),
                cfg,
                moh: OnceLock::new(),
            }),
        }
    }

    /// A library over `data_dir` with the default limits and cache sizes.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self::new(LibraryConfig {
            data_dir: data_dir.into(),
            ..LibraryConfig::default()
        })
    }

    /// The clip `sound` names.
    pub async fn resolve(&self, sound: &SoundRef) -> Result<Clip, AudioError> {
        match sound {
            SoundRef::DefaultMoh => Ok(self.inner.moh.get_or_init(default_moh).clone()),
            // One second of zeros, played on a loop.
            SoundRef::Silence => Ok(Clip::new(vec![0; super::CLIP_RATE as usize])),
            SoundRef::Tone(description) => {
                if let Some(clip) = self.inner.tones.get(description) {
                    return Ok(clip);
                }
                let owned = description.clone();
                // Up to ten minutes of samples: rendered on the blocking pool.
                let clip = tokio::task::spawn_blocking(move || tone::render(&owned))
                    .await
                    .map_err(|error| AudioError::BadTone(format!("renderer failed: {error}")))??;
                self.inner.tones.insert(description.clone(), clip.clone());
                Ok(clip)
            }
            SoundRef::Tts(request) => self.speak(request).await,
            SoundRef::Say(request) => {
                let words = say::words(request)?;
                self.speak(&say::speech(request, words)).await
            }
            SoundRef::Media { account, id } => self.media(account.as_deref(), id).await,
            SoundRef::Url(_) => Err(AudioError::Unsupported(
                "http(s) media is not fetched; upload it through the media API".into(),
            )),
        }
    }

    /// Forgets the decoded clips of media `id` (the API calls it on re-upload and delete; a
    /// changed file would miss the cache anyway, this frees the memory at once).
    pub fn forget_media(&self, account: Option<&str>, id: &str) {
        self.inner
            .media
            .remove_where(|(owner, media, _)| owner.as_deref() == account && media == id);
    }

    /// Speech for `request`, from the cache or the engine.
    async fn speak(&self, request: &TtsRequest) -> Result<Clip, AudioError> {
        if let Some(clip) = self.inner.speech.get(request) {
            return Ok(clip);
        }
        // Calls asking for the same speech at once share one rendering.
        let cell = {
            let mut pending = self.inner.pending.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(pending.entry(request.clone()).or_default())
        };
        let outcome = cell
            .get_or_init(|| self.render_speech(request))
            .await
            .clone();
        let mut pending = self.inner.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending
            .get(request)
            .is_some_and(|current| Arc::ptr_eq(current, &cell))
        {
            pending.remove(request);
        }
        outcome
    }

    /// Speech for `request` from the disk cache or the engine, kept in both caches.
    async fn render_speech(&self, request: &TtsRequest) -> Result<Clip, AudioError> {
        let disk = self.inner.speech_disk.clone();
        if let Some(disk) = disk.clone() {
            let wanted = request.clone();
            if let Ok(Some(clip)) = tokio::task::spawn_blocking(move || disk.get(&wanted)).await {
                self.inner.speech.insert(request.clone(), clip.clone());
                return Ok(clip);
            }
        }
        let clip = tts::render(request).await?;
        self.inner.speech.insert(request.clone(), clip.clone());
        if let Some(disk) = disk {
            let (kept, request) = (clip.clone(), request.clone());
            // Written in the background: the call need not wait for the cache.
            tokio::task::spawn_blocking(move || disk.put(&request, &kept));
        }
        Ok(clip)
    }

    /// Uploaded media `id` of `account` (`None`: system media), decoded; a document without
    /// audio whose `media_source` is `tts` is spoken from its `tts.text`.
    async fn media(&self, account: Option<&str>, id: &str) -> Result<Clip, AudioError> {
        let data_dir = &self.inner.cfg.data_dir;
        let name = || match account {
            Some(account) => format!("{account}/{id}"),
            None => format!("system/{id}"),
        };
        let audio = media_files::audio_path(data_dir, account, id)
            .ok_or_else(|| AudioError::NotFound(name()))?;
        let path = audio.clone();
        let version = tokio::task::spawn_blocking(move || media_files::version(&path))
            .await
            .ok()
            .flatten();
        let Some(version) = version else {
            return match self.tts_media(account, id).await? {
                Some(request) => self.speak(&request).await,
                None => Err(AudioError::NotFound(name())),
            };
        };
        let key = (account.map(str::to_owned), id.to_owned(), version);
        if let Some(clip) = self.inner.media.get(&key) {
            return Ok(clip);
        }
        let limits = self.inner.cfg.limits;
        if version.len > limits.max_bytes as u64 {
            return Err(AudioError::TooLarge(format!("media {}", name())));
        }
        let bytes = tokio::fs::read(&audio)
            .await
            .map_err(|_| AudioError::NotFound(name()))?;
        let clip = decode_blocking(bytes, limits).await?;
        self.inner.media.insert(key, clip.clone());
        Ok(clip)
    }

    /// The speech a `media_source: tts` document asks for, if it is one.
    async fn tts_media(
        &self,
        account: Option<&str>,
        id: &str,
    ) -> Result<Option<TtsRequest>, AudioError> {
        let Some(path) = media_files::doc_path(&self.inner.cfg.data_dir, account, id) else {
            return Ok(None);
        };
        let Ok(bytes) = tokio::fs::read(&path).await else {
            return Ok(None);
        };
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return Ok(None);
        };
        if doc["media_source"] != "tts" {
            return Ok(None);
        }
        let text = doc["tts"]["text"].as_str().unwrap_or_default();
        Ok(Some(TtsRequest {
            text: text.to_owned(),
            voice: doc["tts"]["voice"].as_str().unwrap_or("female").to_owned(),
            language: doc["language"].as_str().map(str::to_owned),
            engine: "flite".to_owned(),
        }))
    }
}

#[cfg(test)]
#[path = "library_tests.rs"]
mod tests;
