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
/// Sounds waiting or in production at most; more fail at once ("busy").
const QUEUED: usize = 256;

/// A finished sound for the core: the call, the playback and the clip or the error.
pub type SoundResult = (CallKey, PlaybackId, Result<Clip, String>);

/// The library and the channel its results come back on.
pub struct Sounds {
    library: SoundLibrary,
    permits: Arc<Semaphore>,
    /// Requests not answered yet (bounded by [`QUEUED`]).
    pending: Arc<std::sync::atomic::AtomicUsize>,
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
            pending: Arc::default(),
            tx,
            rx,
        }
    }

    /// Starts producing `sound` for playback `id` of `call`.
    pub fn resolve(&self, call: CallKey, id: PlaybackId, sound: SoundRef) {
        use std::sync::atomic::Ordering;
        let library = self.library.clone();
        let permits = Arc::clone(&self.permits);
        let pending = Arc::clone(&self.pending);
        let tx = self.tx.clone();
        if pending.fetch_add(1, Ordering::Relaxed) >= QUEUED {
            pending.fetch_sub(1, Ordering::Relaxed);
            let busy = Err("too many sounds being made (busy)".to_string());
            tokio::spawn(async move {
                let _ = tx.send((call, id, busy)).await;
            });
            return;
        }
        // Music on hold and silence are made once and shared: no turn to wait for.
        let cheap = matches!(sound, SoundRef::DefaultMoh | SoundRef::Silence);
        tokio::spawn(async move {
            let result = if cheap {
                library.resolve(&sound).await.map_err(|e| e.to_string())
            } else {
                match permits.acquire_owned().await {
                    Ok(_permit) => library.resolve(&sound).await.map_err(|e| e.to_string()),
                    Err(_) => Err("shutting down".to_string()),
                }
            };
            pending.fetch_sub(1, Ordering::Relaxed);
            if let Err(err) = &result {
                tracing::debug!(call, sound = %sound.describe(), error = %err, "sound not produced");
            }
            let _ = tx.send((call, id, result)).await;
        });
    }
}
