//! What `play`, `tts` and `say` share: play one sound to one or both legs, stop it when a
//! terminator key is pressed on a leg that hears it, and finish when every leg's sound ended:
//! `success` when it played out or was stopped, `failure` when it could not play.

use crate::audio::SoundRef;
use crate::base::{Leg, PlaybackEnd, PlaybackId};

use super::context::{CallContext, PlayOptions, Progress};

/// One sound towards some legs, followed to its end.
#[derive(Debug)]
pub struct Speaker {
    /// The playbacks still running, with the leg each plays to.
    running: Vec<(PlaybackId, Leg)>,
    /// Keys that stop the sound when pressed on a leg that hears it.
    terminators: Vec<char>,
    /// Whether one of the playbacks failed (the outcome is then `failure`).
    failed: bool,
}

impl Speaker {
    /// Starts `sound` towards each of `legs`.
    pub fn start(
        ctx: &mut dyn CallContext,
        sound: &SoundRef,
        legs: &[Leg],
        terminators: Vec<char>,
        options: PlayOptions,
    ) -> Self {
        let running = legs
            .iter()
            .map(|&leg| (ctx.play(leg, sound.clone(), options), leg))
            .collect();
        Self {
            running,
            terminators,
            failed: false,
        }
    }

    /// Where the module stands now.
    pub fn progress(&self) -> Progress {
        match (self.running.is_empty(), self.failed) {
            (false, _) => Progress::Pending,
            (true, false) => Progress::Done("success"),
            (true, true) => Progress::Done("failure"),
        }
    }

    /// A playback of the module ended.
    pub fn on_playback(&mut self, id: PlaybackId, end: PlaybackEnd) -> Progress {
        self.running.retain(|(p, _)| *p != id);
        if matches!(end, PlaybackEnd::Failed(_)) {
            self.failed = true;
        }
        self.progress()
    }

    /// A key press: a terminator on a leg that hears the sound stops it everywhere.
    pub fn on_digit(&mut self, ctx: &mut dyn CallContext, leg: Leg, digit: char) -> Progress {
        let hears = self.running.iter().any(|(_, l)| *l == leg);
        if hears && self.terminators.contains(&digit) {
            for (_, to) in std::mem::take(&mut self.running) {
                ctx.stop_playback(to);
            }
        }
        self.progress()
    }
}
