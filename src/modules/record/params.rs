//! The `record_call` module's `data` object: parsing and validation with Kazoo-style errors.

use crate::base::Problem;
use std::time::Duration;

use serde_json::{Map, Value};

/// Recording length when `data.time_limit` is absent (Kazoo's default, one hour).
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(3600);
/// Longest `time_limit` accepted, one day: bounds the size of a single file.
pub const MAX_TIME_LIMIT_SECS: u64 = 86_400;
/// Longest `label` accepted, in characters; the label is copied into the metadata.
pub const MAX_LABEL_CHARS: usize = 256;

/// What `record_call` does to the call's recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordAction {
    /// Start a recording unless one is running.
    Start,
    /// Stop the running recording, if any.
    Stop,
    /// Start when none is running, stop otherwise (so a second `*9` stops).
    Toggle,
    /// PCI masking: from now on what the dialing leg says is written as silence.
    Mask,
    /// Ends the masking of the dialing leg.
    Unmask,
}

/// What the caller should do once the action is applied to the call's current state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordStep {
    /// Start a new recording.
    Start,
    /// Stop the running recording.
    Stop,
    /// Nothing to do (start while recording, stop while idle).
    Nothing,
    /// Mask (`true`) or unmask (`false`) the dialing leg in the running recording, if any.
    Mask(bool),
}

impl RecordAction {
    /// Resolves the action against whether the call is being recorded right now.
    pub fn step(self, recording: bool) -> RecordStep {
        match (self, recording) {
            (Self::Start, false) | (Self::Toggle, false) => RecordStep::Start,
            (Self::Stop, true) | (Self::Toggle, true) => RecordStep::Stop,
            (Self::Start, true) | (Self::Stop, false) => RecordStep::Nothing,
            (Self::Mask, _) => RecordStep::Mask(true),
            (Self::Unmask, _) => RecordStep::Mask(false),
        }
    }
}

/// File format of a recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordFormat {
    /// 16-bit linear PCM, 8 kHz, stereo (left a-leg, right b-leg).
    Wav,
    /// Every RTP and RTCP packet of both legs, as a libpcap capture.
    Pcap,
}

impl RecordFormat {
    /// The name used in `data.format` and in the metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::Pcap => "pcap",
        }
    }

    /// File name extension of this format.
    pub fn extension(self) -> &'static str {
        self.as_str()
    }
}

/// HTTP method of an upload (`data.method`, Kazoo's `put` or `post`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadMethod {
    /// `PUT` the file to the URL (Kazoo's default).
    Put,
    /// `POST` the file to the URL.
    Post,
}

impl UploadMethod {
    /// The name used in `data.method` and in spool entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::Post => "post",
        }
    }

    /// Parses `put` or `post` (any case).
    pub fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("put") {
            Some(Self::Put)
        } else if text.eq_ignore_ascii_case("post") {
            Some(Self::Post)
        } else {
            None
        }
    }
}

/// Where a finished recording is sent, from Kazoo's `data.url` and `data.method`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadTarget {
    /// An `http://` URL; the file is the request body.
    pub url: String,
    /// `PUT` (default) or `POST`.
    pub method: UploadMethod,
}

/// WAV sample rates `data.record_sample_rate` accepts (the recording is resampled from G.711's
/// 8 kHz to it).
pub const SAMPLE_RATES: [u32; 7] = [8000, 11025, 16000, 22050, 32000, 44100, 48000];
/// The WAV sample rate when `data.record_sample_rate` is absent: G.711's own.
pub const DEFAULT_SAMPLE_RATE: u32 = 8000;

/// Longest `url` accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// The validated `data` of a `record_call` module run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordParams {
    /// Start, stop or toggle.
    pub action: RecordAction,
    /// Requested file format.
    pub format: RecordFormat,
    /// The recording stops by itself after this long.
    pub time_limit: Duration,
    /// Free text kept in the metadata.
    pub label: Option<String>,
    /// Where the finished recording is uploaded, when `data.url` is set.
    pub upload: Option<UploadTarget>,
    /// `data.record_on_answer`: on a call not yet answered, start when it is answered.
    pub on_answer: bool,
    /// `data.record_min_sec`: a shorter recording is discarded (0: every recording is kept).
    pub min_sec: u64,
    /// `data.record_sample_rate`: the WAV's sample rate, one of [`SAMPLE_RATES`].
    pub sample_rate: u32,
}

/// Validates `data`; every problem is reported, not only the first. Unknown keys (such as the
/// `captures` and `collected` the metaflow engine adds) are ignored.
pub fn parse_params(data: &Map<String, Value>) -> Result<RecordParams, Vec<Problem>> {
    let mut problems = Vec::new();
    let action = match data.get("action") {
        None | Some(Value::Null) => Some(RecordAction::Toggle),
        Some(Value::String(text)) => match text.as_str() {
            "start" => Some(RecordAction::Start),
            "stop" => Some(RecordAction::Stop),
            "toggle" => Some(RecordAction::Toggle),
            "mask" => Some(RecordAction::Mask),
            "unmask" => Some(RecordAction::Unmask),
            _ => {
                problems.push(Problem::in_data(
                    "action",
                    "enum",
                    "must be start, stop, toggle, mask or unmask",
                ));
                None
            }
        },
        Some(_) => {
            problems.push(Problem::in_data("action", "type", "must be a string"));
            None
        }
    };
    let format = match data.get("format") {
        None | Some(Value::Null) => Some(RecordFormat::Wav),
        Some(Value::String(text)) => match text.as_str() {
            "wav" => Some(RecordFormat::Wav),
            "pcap" => Some(RecordFormat::Pcap),
            "mp3" => {
                problems.push(Problem::in_data(
                    "format",
                    "enum",
                    "mp3 is not supported (see docs/DECISIONS.md); must be wav or pcap",
                ));
                None
            }
            _ => {
                problems.push(Problem::in_data("format", "enum", "must be wav or pcap"));
                None
            }
        },
        Some(_) => {
            problems.push(Problem::in_data("format", "type", "must be a string"));
            None
        }
    };
    let time_limit = parse_time_limit(data.get("time_limit"), &mut problems);
    let label = parse_label(data.get("label"), &mut problems);
    let upload = parse_upload(data.get("url"), data.get("method"), &mut problems);
    let on_answer = crate::modules::data::boolean(data, "record_on_answer", &mut problems);
    let max_min_sec = i64::try_from(MAX_TIME_LIMIT_SECS).unwrap_or(i64::MAX);
    let min_sec =
        crate::modules::data::integer(data, "record_min_sec", 0, max_min_sec, &mut problems)
            .and_then(|secs| u64::try_from(secs).ok());
    let sample_rate = parse_sample_rate(data.get("record_sample_rate"), &mut problems);
    match (action, format, time_limit, label, upload) {
        (Some(action), Some(format), Some(time_limit), Some(label), Some(upload))
            if problems.is_empty() =>
        {
            Ok(RecordParams {
                action,
                format,
                time_limit,
                label,
                upload,
                on_answer: on_answer.unwrap_or(false),
                min_sec: min_sec.unwrap_or(0),
                sample_rate: sample_rate.unwrap_or(DEFAULT_SAMPLE_RATE),
            })
        }
        _ => Err(problems),
    }
}

fn parse_sample_rate(value: Option<&Value>, problems: &mut Vec<Problem>) -> Option<u32> {
    match value {
        None | Some(Value::Null) => Some(DEFAULT_SAMPLE_RATE),
        Some(Value::Number(number)) if number.as_i64().is_some() => {
            let rate = number
                .as_u64()
                .and_then(|rate| u32::try_from(rate).ok())
                .filter(|rate| SAMPLE_RATES.contains(rate));
            if rate.is_none() {
                problems.push(Problem::in_data(
                    "record_sample_rate",
                    "enum",
                    "must be one of 8000, 11025, 16000, 22050, 32000, 44100, 48000",
                ));
            }
            rate
        }
        Some(_) => {
            problems.push(Problem::in_data(
                "record_sample_rate",
                "type",
                "must be an integer",
            ));
            None
        }
    }
}

fn parse_time_limit(value: Option<&Value>, problems: &mut Vec<Problem>) -> Option<Duration> {
    let number = match value {
        None | Some(Value::Null) => return Some(DEFAULT_TIME_LIMIT),
        Some(Value::Number(number)) => number,
        Some(_) => {
            problems.push(Problem::in_data("time_limit", "type", "must be an integer"));
            return None;
        }
    };
    let Some(seconds) = number.as_i64() else {
        let (rule, message) = match number.as_f64() {
            Some(float) if float > 0.0 && float.fract() != 0.0 => ("type", "must be an integer"),
            Some(float) if float > 0.0 => ("maximum", "must be at most 86400"),
            _ => ("minimum", "must be at least 1"),
        };
        problems.push(Problem::in_data("time_limit", rule, message));
        return None;
    };
    match u64::try_from(seconds) {
        Ok(secs) if (1..=MAX_TIME_LIMIT_SECS).contains(&secs) => Some(Duration::from_secs(secs)),
        Ok(secs) if secs > MAX_TIME_LIMIT_SECS => {
            problems.push(Problem::in_data(
                "time_limit",
                "maximum",
                "must be at most 86400",
            ));
            None
        }
        _ => {
            problems.push(Problem::in_data(
                "time_limit",
                "minimum",
                "must be at least 1",
            ));
            None
        }
    }
}

fn parse_label(value: Option<&Value>, problems: &mut Vec<Problem>) -> Option<Option<String>> {
    match value {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(text)) if text.chars().count() <= MAX_LABEL_CHARS => {
            Some(Some(text.clone()))
        }
        Some(Value::String(_)) => {
            problems.push(Problem::in_data(
                "label",
                "maxLength",
                "must be at most 256 characters",
            ));
            None
        }
        Some(_) => {
            problems.push(Problem::in_data("label", "type", "must be a string"));
            None
        }
    }
}

/// `data.url` (an `http://` URL; HTTPS is not supported and refused rather than ignored) and
/// `data.method` (`put`, the default, or `post`).
fn parse_upload(
    url: Option<&Value>,
    method: Option<&Value>,
    problems: &mut Vec<Problem>,
) -> Option<Option<UploadTarget>> {
    let method = match method {
        None | Some(Value::Null) => Some(UploadMethod::Put),
        Some(Value::String(text)) => UploadMethod::parse(text).or_else(|| {
            problems.push(Problem::in_data("method", "enum", "must be put or post"));
            None
        }),
        Some(_) => {
            problems.push(Problem::in_data("method", "type", "must be a string"));
            None
        }
    };
    let url = match url {
        None | Some(Value::Null) => return method.map(|_| None),
        Some(Value::String(text)) if text.len() > MAX_URL_LEN => {
            problems.push(Problem::in_data(
                "url",
                "maxLength",
                "must be at most 2048 bytes",
            ));
            return None;
        }
        Some(Value::String(text)) => text,
        Some(_) => {
            problems.push(Problem::in_data("url", "type", "must be a string"));
            return None;
        }
    };
    if crate::modules::record::upload_url::HttpUrl::parse(url).is_none() {
        problems.push(Problem::in_data(
            "url",
            "format",
            "must be an http:// URL with a host (https is not supported)",
        ));
        return None;
    }
    method.map(|method| {
        Some(UploadTarget {
            url: url.clone(),
            method,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<RecordParams, Vec<Problem>> {
        match value {
            Value::Object(map) => parse_params(&map),
            other => panic!("test input must be an object, got {other}"),
        }
    }

    #[test]
    fn empty_data_gives_the_documented_defaults() {
        let params = parse(json!({})).unwrap();
        assert_eq!(params.action, RecordAction::Toggle);
        assert_eq!(params.format, RecordFormat::Wav);
        assert_eq!(params.time_limit, Duration::from_secs(3600));
        assert_eq!(params.label, None);
    }

    #[test]
    fn every_field_is_read() {
        let data = json!({"action": "stop", "format": "pcap", "time_limit": 90,
                          "label": "sales", "captures": ["9"], "collected": "*9"});
        let params = parse(data).unwrap();
        assert_eq!(params.action, RecordAction::Stop);
        assert_eq!(params.format, RecordFormat::Pcap);
        assert_eq!(params.time_limit, Duration::from_secs(90));
        assert_eq!(params.label.as_deref(), Some("sales"));
    }

    #[test]
    fn all_problems_are_reported_with_path_and_rule() {
        let data = json!({"action": "pause", "format": 3, "time_limit": 0, "label": ["x"]});
        let problems = parse(data).unwrap_err();
        let found: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.path.as_str(), p.rule.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![
                ("data.action", "enum"),
                ("data.format", "type"),
                ("data.time_limit", "minimum"),
                ("data.label", "type"),
            ]
        );
    }

    #[test]
    fn time_limit_bounds_and_types() {
        let rule = |value: Value| {
            parse(json!({ "time_limit": value })).unwrap_err()[0]
                .rule
                .clone()
        };
        assert_eq!(rule(json!(-5)), "minimum");
        assert_eq!(rule(json!(86_401)), "maximum");
        assert_eq!(rule(json!(1e30)), "maximum");
        assert_eq!(rule(json!(2.5)), "type");
        assert_eq!(rule(json!("60")), "type");
        let limit = parse(json!({"time_limit": 86_400})).unwrap().time_limit;
        assert_eq!(limit, Duration::from_secs(86_400));
    }

    #[test]
    fn label_length_is_bounded_in_characters() {
        let long = "é".repeat(MAX_LABEL_CHARS);
        assert!(parse(json!({ "label": long })).is_ok());
        let too_long = "a".repeat(MAX_LABEL_CHARS + 1);
        assert_eq!(
            parse(json!({ "label": too_long })).unwrap_err()[0].rule,
            "maxLength"
        );
    }

    #[test]
    fn url_and_method_follow_kazoo() {
        let params = parse(json!({"url": "http://rec.example:8080/in/x.wav"})).unwrap();
        let upload = params.upload.unwrap();
        assert_eq!(upload.method, UploadMethod::Put, "put is Kazoo's default");
        assert_eq!(upload.url, "http://rec.example:8080/in/x.wav");
        let post = parse(json!({"url": "http://h/", "method": "post"})).unwrap();
        assert_eq!(post.upload.unwrap().method, UploadMethod::Post);
        assert_eq!(parse(json!({})).unwrap().upload, None);
        let rules = |value: Value| -> Vec<String> {
            parse(value)
                .unwrap_err()
                .into_iter()
                .map(|p| format!("{}:{}", p.path, p.rule))
                .collect()
        };
        assert_eq!(rules(json!({"url": "https://h/x"})), ["data.url:format"]);
        assert_eq!(rules(json!({"url": "ftp://h/x"})), ["data.url:format"]);
        assert_eq!(rules(json!({"url": 3})), ["data.url:type"]);
        assert_eq!(
            rules(json!({"url": "http://h/", "method": "get"})),
            ["data.method:enum"]
        );
    }

    #[test]
    fn kazoo_keys_mask_on_answer_min_sec_and_sample_rate() {
        let params = parse(json!({})).unwrap();
        assert_eq!(
            (params.on_answer, params.min_sec, params.sample_rate),
            (false, 0, 8000),
            "Kazoo's defaults"
        );
        let params = parse(json!({"action": "mask", "record_on_answer": true,
                                  "record_min_sec": 5, "record_sample_rate": 16000}))
        .unwrap();
        assert_eq!(params.action, RecordAction::Mask);
        assert_eq!(
            (params.on_answer, params.min_sec, params.sample_rate),
            (true, 5, 16000)
        );
        assert_eq!(
            parse(json!({"action": "unmask"})).unwrap().action,
            RecordAction::Unmask
        );
        for rate in SAMPLE_RATES {
            assert!(parse(json!({ "record_sample_rate": rate })).is_ok());
        }
        let rules = |value: Value| -> Vec<String> {
            parse(value)
                .unwrap_err()
                .into_iter()
                .map(|p| format!("{}:{}", p.path, p.rule))
                .collect()
        };
        assert_eq!(
            rules(json!({"record_sample_rate": 12345})),
            ["data.record_sample_rate:enum"]
        );
        assert_eq!(
            rules(json!({"record_sample_rate": "8000"})),
            ["data.record_sample_rate:type"]
        );
        assert_eq!(
            rules(json!({"record_min_sec": -1})),
            ["data.record_min_sec:minimum"]
        );
        assert_eq!(
            rules(json!({"record_min_sec": 1.5})),
            ["data.record_min_sec:type"]
        );
        assert_eq!(
            rules(json!({"record_on_answer": "yes"})),
            ["data.record_on_answer:type"]
        );
        assert_eq!(rules(json!({"format": "mp3"})), ["data.format:enum"]);
    }

    #[test]
    fn mask_and_unmask_apply_whatever_the_recording_state() {
        assert_eq!(RecordAction::Mask.step(true), RecordStep::Mask(true));
        assert_eq!(RecordAction::Mask.step(false), RecordStep::Mask(true));
        assert_eq!(RecordAction::Unmask.step(true), RecordStep::Mask(false));
    }

    #[test]
    fn toggle_really_toggles() {
        assert_eq!(RecordAction::Toggle.step(false), RecordStep::Start);
        assert_eq!(RecordAction::Toggle.step(true), RecordStep::Stop);
        assert_eq!(RecordAction::Start.step(true), RecordStep::Nothing);
        assert_eq!(RecordAction::Stop.step(false), RecordStep::Nothing);
        assert_eq!(RecordAction::Start.step(false), RecordStep::Start);
        assert_eq!(RecordAction::Stop.step(true), RecordStep::Stop);
    }
}
