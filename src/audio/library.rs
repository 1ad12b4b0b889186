//! Turns a [`SoundRef`] into a [`Clip`], off the packet path.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use super::clip::Clip;
use super::moh::default_moh;
use super::sound::SoundRef;

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
}

/// Where the library finds what it plays.
#[derive(Clone, Debug, Default)]
pub struct LibraryConfig {
    /// The proxy's data directory: uploaded media live below it.
    pub data_dir: PathBuf,
}

/// Produces clips for the calls, caching what is dear to make (decoded files, speech).
#[derive(Clone, Debug)]
pub struct SoundLibrary {
    /// Shared by every clone (the shell hands one to each resolving task).
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Kept for media lookups.
    #[allow(dead_code)]
    cfg: LibraryConfig,
    /// The built-in music, rendered once on first use.
    moh: OnceLock<Clip>,
}

impl SoundLibrary {
    /// A library reading media below `cfg.data_dir`.
    pub fn new(cfg: LibraryConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                cfg,
                moh: OnceLock::new(),
            }),
        }
    }

    /// The clip `sound` names.
    pub async fn resolve(&self, sound: &SoundRef) -> Result<Clip, AudioError> {
        match sound {
            SoundRef::DefaultMoh => Ok(self.inner.moh.get_or_init(default_moh).clone()),
            other => Err(AudioError::Unsupported(other.describe())),
        }
    }
}
