//! The words the call core, the media relay and the modules share about sounds played into a
//! leg, so none of them depends on another for them.

/// Names one playback on a call, chosen by the call core; the relay reports its end with it.
pub type PlaybackId = u64;

/// How a playback ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaybackEnd {
    /// The sound played to its end.
    Finished,
    /// It was stopped before its end (`break`, `resume`, another sound replaced it, the call
    /// ended).
    Stopped,
    /// It could not play: the reason, for the module's `failure` outcome and the event log.
    Failed(&'static str),
}

impl PlaybackEnd {
    /// The word used in events and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Finished => "finished",
            Self::Stopped => "stopped",
            Self::Failed(_) => "failed",
        }
    }
}

/// A volume change applied to the audio towards one leg (`audio_level`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Gain {
    /// Unchanged.
    Unity,
    /// Multiplied by the factor (FreeSWITCH's levels: -4..=4 map to 0.2..=4.3).
    Factor(f32),
    /// Replaced by silence.
    Mute,
}

impl Gain {
    /// FreeSWITCH's `switch_change_sln_volume` chart, which Kazoo's `audio_level` levels drive:
    /// level 1..4 multiply by 1.3, 2.3, 3.3, 4.3 and -1..-4 by 0.8, 0.6, 0.4, 0.2.
    pub fn from_level(level: i8) -> Self {
        const UP: [f32; 4] = [1.3, 2.3, 3.3, 4.3];
        const DOWN: [f32; 4] = [0.8, 0.6, 0.4, 0.2];
        let step = usize::from(level.unsigned_abs().min(4));
        match level {
            0 => Self::Unity,
            l if l > 0 => Self::Factor(UP[step - 1]),
            _ => Self::Factor(DOWN[step - 1]),
        }
    }
}
