//! The `play` metaflow module: plays a media file (or a `tone_stream://`) to the dialing leg,
//! its peer or both (Kazoo's `id` and `leg`, default `both`). A key pressed on a leg that hears
//! it stops it, as FreeSWITCH's play with Kazoo's any-digit terminators does. It finishes
//! `success` when the sound ended, `failure` when it could not play (unknown media, a codec the
//! proxy cannot encode).

use serde_json::{Map, Value};

use crate::base::Problem;

use super::catalog::ModuleKind;
use super::context::{Module, PlayOptions};
use super::data::{self, Target};
use super::speaker::{Sound, Speak, SpeakParams};

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
        Box::new(Speak::new(
            MODULE_NAME,
            SpeakParams {
                sound: Sound::Media(params.id.clone()),
                terminators: ANY_DIGIT.chars().collect(),
                target: params.target,
                options: PlayOptions {
                    looped: false,
                    mix: params.mix,
                },
            },
        ))
    }
}
