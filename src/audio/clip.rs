//! A finished sound, shared between the calls that play it.

use std::sync::Arc;
use std::time::Duration;

/// Sample rate of every clip: G.711's, the only audio the relay encodes.
pub const CLIP_RATE: u32 = 8000;

/// Mono 16-bit linear PCM at [`CLIP_RATE`], immutable and cheap to clone, so one music on hold
/// serves every held call without a copy.
#[derive(Clone, PartialEq, Eq)]
pub struct Clip {
    /// The samples; never changed once built.
    samples: Arc<[i16]>,
    /// Whether the sound itself asks to repeat for ever (`tone_stream://...;loops=-1`): the
    /// player loops it whatever the module asked.
    endless: bool,
}

impl Clip {
    /// Wraps samples at [`CLIP_RATE`].
    pub fn new(samples: Vec<i16>) -> Self {
        Self {
            samples: samples.into(),
            endless: false,
        }
    }

    /// The same clip, marked to repeat until stopped.
    pub fn endless(mut self) -> Self {
        self.endless = true;
        self
    }

    /// Whether the clip repeats until stopped.
    pub fn is_endless(&self) -> bool {
        self.endless
    }

    /// The samples.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the clip holds no sample (it plays nothing).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// How long it plays.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.samples.len() as u64 * 1_000_000 / u64::from(CLIP_RATE))
    }
}

impl std::fmt::Debug for Clip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clip")
            .field("samples", &self.samples.len())
            .finish()
    }
}
