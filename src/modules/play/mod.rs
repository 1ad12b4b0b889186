//! The `play` metaflow module: plays a media file (or a `tone_stream://`) to the dialing leg,
//! its peer or both (Kazoo's `id` and `leg`, default `both`). A key pressed on a leg that hears
//! it stops it, as FreeSWITCH's play with Kazoo's any-digit terminators does. It finishes
//! `success` when the sound ended, `failure` when it could not play (unknown media, a codec the
//! proxy cannot encode).

use serde_json::{Map, Value};

use crate::audio::SoundRef;
use crate::base::Problem;

use super::catalog::ModuleKind;
use super::context::{CallContext, Module, PlayOptions, Progress, RunInfo};
use super::data::{self, Target};
use super::speaker::Speaker;

/// The name of this module in a metaflow node.
pub const MODULE_NAME: &str = "play";

/// Every key stops a played file (Kazoo's `?ANY_DIGIT`).
const ANY_DIGIT: &str = "0123456789*#";

/// The catalog entry of `play`.
#[derive(Debug)]
pub struct Kind;

/// `play`'s checked data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayParams {
    /// The media reference (`id`).
    pub id: String,
    /// Who hears it.
    pub target: Target,
    /// Mixed over what the leg would hear instead of replacing it (our addition, `mix`).
    pub mix: bool,
}

impl ModuleKind for Kind {
    const NAME: &'static str = MODULE_NAME;
    type Params = PlayParams;

    fn parse(data: &Map<String, Value>) -> Result<PlayParams, Vec<Problem>> {
        let mut problems = Vec::new();
        let id = data::string(data, "id", &mut problems);
        let target = Target::parse(data, "leg", "both", &mut problems);
        let mix = data::boolean(data, "mix", &mut problems).unwrap_or(false);
        match id {
            Some(id) if !id.trim().is_empty() && problems.is_empty() => {
                Ok(PlayParams { id, target, mix })
            }
            None if problems.is_empty() => Err(vec![Problem::in_data(
                "id",
                "required",
                "the media to play is required",
            )]),
            Some(_) if problems.is_empty() => Err(vec![Problem::in_data(
                "id",
                "minLength",
                "must not be empty",
            )]),
            _ => Err(problems),
        }
    }

    fn start(params: &PlayParams) -> Box<dyn Module> {
        Box::new(Play {
            params: params.clone(),
            speaker: None,
        })
    }
}

/// A `play` on one call.
#[derive(Debug)]
struct Play {
    params: PlayParams,
    speaker: Option<Speaker>,
}

impl Module for Play {
    fn name(&self) -> &'static str {
        MODULE_NAME
    }

    fn start(&mut self, ctx: &mut dyn CallContext, run: RunInfo<'_>) -> Progress {
        let account = ctx.account_id();
        let sound = SoundRef::from_media_id(&self.params.id, account.as_deref());
        let legs = self.params.target.legs(run.leg);
        let options = PlayOptions {
            looped: false,
            mix: self.params.mix,
        };
        let speaker = Speaker::start(ctx, &sound, legs, ANY_DIGIT.chars().collect(), options);
        let progress = speaker.progress();
        self.speaker = Some(speaker);
        progress
    }

    fn on_playback(
        &mut self,
        _ctx: &mut dyn CallContext,
        id: crate::base::PlaybackId,
        end: crate::base::PlaybackEnd,
    ) -> Progress {
        match self.speaker.as_mut() {
            Some(s) => s.on_playback(id, end),
            None => Progress::Pending,
        }
    }

    fn on_digit(
        &mut self,
        ctx: &mut dyn CallContext,
        leg: crate::base::Leg,
        digit: char,
    ) -> Progress {
        match self.speaker.as_mut() {
            Some(s) => s.on_digit(ctx, leg, digit),
            None => Progress::Pending,
        }
    }
}
