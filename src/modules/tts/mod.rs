//! The `tts` metaflow module: speaks `text` to a leg with a local speech engine (Kazoo's keys:
//! `text`, `voice` default `female`, `language`, `engine` default `flite`, `terminators`
//! default every key, `leg` default `self`). Kazoo's Konami ignores `leg` and always speaks to
//! the channel it runs on; here it is honoured. An empty `terminators` list means no key stops
//! the speech, as in Kazoo.

use serde_json::{Map, Value};

use crate::audio::{SoundRef, TtsRequest};
use crate::base::Problem;

use super::catalog::ModuleKind;
use super::context::{Module, PlayOptions};
use super::data::{self, Target};
use super::speaker::{Sound, Speak, SpeakParams};

/// The name of this module in a metaflow node.
pub const MODULE_NAME: &str = "tts";

/// Longest text accepted: speech is rendered before it plays, and a page of it is minutes.
pub const MAX_TEXT_CHARS: usize = 2000;

/// Keys Kazoo's schema allows as terminators (and its default: all of them).
const KEYS: &str = "1234567890*#";

/// The catalog entry of `tts`.
#[derive(Debug)]
pub struct Kind;

/// `tts`'s checked data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TtsParams {
    /// What to render.
    pub request: TtsRequest,
    /// Keys that stop it.
    pub terminators: Vec<char>,
    /// Who hears it.
    pub target: Target,
}

/// Reads a `text` member that must be present, non-empty and not too long.
pub(crate) fn required_text(data: &Map<String, Value>, problems: &mut Vec<Problem>) -> String {
    match data::string(data, "text", problems) {
        None if !data.contains_key("text") => {
            problems.push(Problem::in_data(
                "text",
                "required",
                "the text to say is required",
            ));
            String::new()
        }
        Some(text) if text.trim().is_empty() => {
            problems.push(Problem::in_data("text", "minLength", "must not be empty"));
            text
        }
        Some(text) if text.chars().count() > MAX_TEXT_CHARS => {
            let message = format!("must be at most {MAX_TEXT_CHARS} characters");
            problems.push(Problem::in_data("text", "maxLength", message));
            text
        }
        other => other.unwrap_or_default(),
    }
}

fn terminators(data: &Map<String, Value>, problems: &mut Vec<Problem>) -> Vec<char> {
    let Some(value) = data.get("terminators") else {
        return KEYS.chars().collect();
    };
    let Some(items) = value.as_array() else {
        problems.push(Problem::in_data(
            "terminators",
            "type",
            "must be an array of keys",
        ));
        return Vec::new();
    };
    let mut keys = Vec::new();
    for item in items {
        match item.as_str().and_then(|s| {
            let mut chars = s.chars();
            chars
                .next()
                .filter(|c| chars.next().is_none() && KEYS.contains(*c))
        }) {
            Some(key) => keys.push(key),
            None => {
                let message = "each terminator must be one of 0-9, * or #";
                problems.push(Problem::in_data("terminators", "enum", message));
            }
        }
    }
    keys
}

impl ModuleKind for Kind {
    const NAME: &'static str = MODULE_NAME;
    type Params = TtsParams;

    fn parse(data: &Map<String, Value>) -> Result<TtsParams, Vec<Problem>> {
        let mut problems = Vec::new();
        let text = required_text(data, &mut problems);
        let voice = data::string(data, "voice", &mut problems).unwrap_or_else(|| "female".into());
        let language = data::string(data, "language", &mut problems);
        let engine = data::string(data, "engine", &mut problems).unwrap_or_else(|| "flite".into());
        let terminators = terminators(data, &mut problems);
        let target = Target::parse(data, "leg", "self", &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(TtsParams {
            request: TtsRequest {
                text,
                voice,
                language,
                engine,
            },
            terminators,
            target,
        })
    }

    fn start(params: &TtsParams) -> Box<dyn Module> {
        Box::new(Speak::new(
            MODULE_NAME,
            SpeakParams {
                sound: Sound::Ready(SoundRef::Tts(params.request.clone())),
                terminators: params.terminators.clone(),
                target: params.target,
                options: PlayOptions::default(),
            },
        ))
    }
}
