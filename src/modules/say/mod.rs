//! The `say` metaflow module: renders numbers, digits, currency, dates and the like into words
//! and speaks them to the dialing leg (Kazoo's keys: `text`, `type` default `name_spelled`,
//! `method` default `pronounced`, `language`, `gender`, as Kazoo's `say_command` defaults
//! them). FreeSWITCH's say modules play prerecorded words; here the words go to the speech
//! engine. Any key stops it, as it stops FreeSWITCH's say.

use serde_json::{Map, Value};

use crate::audio::{SayRequest, SoundRef};
use crate::base::Problem;

use super::catalog::ModuleKind;
use super::context::{Module, PlayOptions};
use super::data::{self, Target};
use super::speaker::{Sound, Speak, SpeakParams};
use super::tts::required_text;

/// The name of this module in a metaflow node.
pub const MODULE_NAME: &str = "say";

/// Kazoo's `type` values.
pub const TYPES: &[&str] = &[
    "account_number",
    "currency",
    "current_date",
    "current_date_time",
    "current_time",
    "email_address",
    "ip_address",
    "items",
    "messages",
    "name_phonetic",
    "name_spelled",
    "number",
    "persons",
    "postal_address",
    "short_date_time",
    "telephone_extension",
    "telephone_number",
    "time_measurement",
    "url",
];

/// The catalog entry of `say`.
#[derive(Debug)]
pub struct Kind;

impl ModuleKind for Kind {
    const NAME: &'static str = MODULE_NAME;
    type Params = SayRequest;

    fn parse(data: &Map<String, Value>) -> Result<SayRequest, Vec<Problem>> {
        let mut problems = Vec::new();
        let kind = data::one_of(data, "type", TYPES, "name_spelled", &mut problems);
        // The current date and time need no text (a unix time in it says another moment).
        let text = if kind.starts_with("current_") && !data.contains_key("text") {
            String::new()
        } else {
            required_text(data, &mut problems)
        };
        let methods = &["pronounced", "iterated", "counted"];
        let method = data::one_of(data, "method", methods, "pronounced", &mut problems);
        let language = data::string(data, "language", &mut problems);
        let genders = &["feminine", "masculine", "neuter"];
        let gender = data
            .contains_key("gender")
            .then(|| data::one_of(data, "gender", genders, "feminine", &mut problems).to_string());
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(SayRequest {
            text,
            kind: kind.to_string(),
            method: method.to_string(),
            language,
            gender,
        })
    }

    fn start(params: &SayRequest) -> Box<dyn Module> {
        Box::new(Speak::new(
            MODULE_NAME,
            SpeakParams {
                sound: Sound::Ready(SoundRef::Say(params.clone())),
                terminators: "0123456789*#".chars().collect(),
                target: Target::Own,
                options: PlayOptions::default(),
            },
        ))
    }
}
