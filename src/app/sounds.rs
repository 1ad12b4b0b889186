//! Produces the sounds the call core asks for, off the SIP task: each request runs as its own
//! task (reading a file or running a speech engine may take a while) and its clip comes back on
//! a bounded channel that the SIP task reads like any other input.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};

use crate::audio::{Clip, SoundLibrary, SoundRef};
use crate::base::{CallKey, PlaybackId};

/// Sounds produced at once; more wait for a permit, so a burst of `tts` cannot start a hundred
/// speech engines.
const CONCURRENT: usize = 4;

/// A finished sound for the core: the call, the playback and the clip or the error.
pub type SoundResult = (CallKey, PlaybackId, Result<Clip, String>);

/// The library and the channel its results come back on.
pub struct Sounds {
    library: SoundLibrary,
    permits: Arc<Semaphore>,
    tx: mpsc::Sender<SoundResult>,
    /// Where the SIP task reads finished sounds.
    pub rx: mpsc::Receiver<SoundResult>,
}

impl Sounds {
    /// Sounds from `library`.
    pub fn new(library: SoundLibrary) -> Self {
        let (tx, rx) = mpsc::channel(256);
        Self {
            library,
            permits: Arc::new(Semaphore::new(CONCURRENT)),
            tx,
            rx,
        }
    }

    /// Starts producing `sound` for playback `id` of `call`.
    pub fn resolve(&self, call: CallKey, id: PlaybackId, sound: SoundRef) {
        let library = self.library.clone();
        let permits = Arc::clone(&self.permits);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let result = match permits.acquire_owned().await {
                Ok(_permit) => library.resolve(&sound).await.map_err(|e| e.to_string()),
                Err(_) => Err("shutting down".to_string()),
            };
            if let Err(err) = &result {
                tracing::info!(call, sound = %sound.describe(), error = %err, "sound not produced");
            }
            let _ = tx.send((call, id, result)).await;
        });
    }
}
