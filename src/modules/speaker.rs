//! What `play`, `tts` and `say` share: the [`Speak`] module plays one sound to one or both legs,
//! stops it when a terminator key is pressed on a leg that hears it, and finishes when every
//! leg's sound ended: `success` when it played out or was stopped, `failure` when it could not
//! play.

use crate::audio::SoundRef;
use crate::base::{Leg, PlaybackEnd, PlaybackId};

use super::context::{CallContext, Module, PlayOptions, Progress, RunInfo};
use super::data::Target;

/// What to play, as the node named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sound {
    /// A sound known at parse time (speech, rendered words).
    Ready(SoundRef),
    /// A Kazoo media reference, read against the call's account when the module starts.
    Media(String),
}

/// How a [`Speak`] plays its sound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpeakParams {
    /// What to play.
    pub sound: Sound,
    /// Keys that stop it when pressed on a leg that hears it.
    pub terminators: Vec<char>,
    /// Who hears it, relative to the dialing leg.
    pub target: Target,
    /// Mixed over the leg's audio, or instead of it.
    pub options: PlayOptions,
}

/// One sound towards some legs on one call, followed to its end (`play`, `tts`, `say`).
#[derive(Debug)]
pub struct Speak {
    /// The module's name in nodes.
    name: &'static str,
    params: SpeakParams,
    /// The playbacks still running, with the leg each plays to.
    running: Vec<(PlaybackId, Leg)>,
    /// Whether one of the playbacks failed (the outcome is then `failure`).
    failed: bool,
}

impl Speak {
    /// The module `name` playing as `params` say.
    pub fn new(name: &'static str, params: SpeakParams) -> Self {
        Self {
            name,
            params,
            running: Vec::new(),
            failed: false,
        }
    }

    fn progress(&self) -> Progress {
        match (self.running.is_empty(), self.failed) {
            (false, _) => Progress::Pending,
            (true, false) => Progress::Done("success"),
            (true, true) => Progress::Done("failure"),
        }
    }
}

impl Module for Speak {
    fn name(&self) -> &'static str {
        self.name
    }

    fn start(&mut self, ctx: &mut dyn CallContext, run: RunInfo<'_>) -> Progress {
        let sound = match &self.params.sound {
            Sound::Ready(sound) => sound.clone(),
            Sound::Media(id) => SoundRef::from_media_id(id, ctx.account_id().as_deref()),
        };
        let options = self.params.options;
        self.running = self
            .params
            .target
            .legs(run.leg)
            .iter()
            .map(|&leg| (ctx.play(leg, sound.clone(), options), leg))
            .collect();
        self.progress()
    }

    fn on_playback(
        &mut self,
        _ctx: &mut dyn CallContext,
        id: PlaybackId,
        end: PlaybackEnd,
    ) -> Progress {
        self.running.retain(|(p, _)| *p != id);
        if matches!(end, PlaybackEnd::Failed(_)) {
            self.failed = true;
        }
        self.progress()
    }

    fn on_digit(&mut self, ctx: &mut dyn CallContext, leg: Leg, digit: char) -> Progress {
        let hears = self.running.iter().any(|(_, l)| *l == leg);
        if hears && self.params.terminators.contains(&digit) {
            for (_, to) in std::mem::take(&mut self.running) {
                ctx.stop_playback(to);
            }
        }
        self.progress()
    }
}
