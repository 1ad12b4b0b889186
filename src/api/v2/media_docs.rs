//! The media documents of `/v2/accounts/{A}/media` on disk (the layout of
//! [`crate::audio::media_files`], shared with the sound library): reading, checking and writing
//! them. Everything here blocks; the handlers call it on the blocking pool.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::ApiError;
use crate::audio::media_files;
use crate::base::Problems;

/// Kazoo's `media_source` values.
const SOURCES: &[&str] = &["recording", "upload", "tts"];

/// Fields only the proxy writes (set by an upload); a client's values are ignored.
const SERVER_FIELDS: &[&str] = &["content_type", "content_length", "duration_ms"];

/// The not-found error of media `id`.
pub(super) fn not_found(id: &str) -> ApiError {
    ApiError::NotFound {
        kind: "media",
        id: id.to_owned(),
    }
}

/// The document and audio paths of media `id` of `account`; 404 for ids no file can have.
pub(super) fn paths(
    data_dir: &Path,
    account: &str,
    id: &str,
) -> Result<(PathBuf, PathBuf), ApiError> {
    let doc = media_files::doc_path(data_dir, Some(account), id).ok_or_else(|| not_found(id))?;
    let audio =
        media_files::audio_path(data_dir, Some(account), id).ok_or_else(|| not_found(id))?;
    Ok((doc, audio))
}

/// Checks a submitted media document against Kazoo's media schema (the fields it reads) and
/// fills in its defaults; every bad field is named.
pub(super) fn checked(mut data: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let mut problems = Problems::default();
    match data.get("name") {
        Some(Value::String(name)) if (1..=128).contains(&name.chars().count()) => {}
        Some(Value::String(_)) => {
            problems.add("name", "maxLength", "name must be 1 to 128 characters")
        }
        Some(_) => problems.add("name", "type", "name must be a string"),
        None => problems.add("name", "required", "name is required"),
    }
    for field in ["description", "language"] {
        if data.get(field).is_some_and(|value| !value.is_string()) {
            problems.add(field, "type", format!("{field} must be a string"));
        }
    }
    let description = data.get("description").and_then(Value::as_str);
    if description.is_some_and(|text| !(1..=128).contains(&text.chars().count())) {
        problems.add(
            "description",
            "maxLength",
            "description must be 1 to 128 characters",
        );
    }
    if data
        .get("streamable")
        .is_some_and(|value| !value.is_boolean())
    {
        problems.add("streamable", "type", "streamable must be a boolean");
    }
    let source = data
        .entry("media_source")
        .or_insert_with(|| Value::String("upload".into()));
    match source.as_str() {
        Some(source) if SOURCES.contains(&source) => {}
        _ => problems.add(
            "media_source",
            "enum",
            format!("media_source must be one of {}", SOURCES.join(", ")),
        ),
    }
    if data.get("media_source").and_then(Value::as_str) == Some("tts") {
        match data.get("tts").and_then(|tts| tts.get("text")) {
            Some(Value::String(text)) if !text.trim().is_empty() => {}
            _ => problems.add("tts.text", "required", "tts media need tts.text"),
        }
        let voice = data.get("tts").and_then(|tts| tts.get("voice"));
        if voice.is_some_and(|voice| !voice.is_string()) {
            problems.add("tts.voice", "type", "tts.voice must be a string");
        }
    }
    if !problems.0.is_empty() {
        return Err(ApiError::Validation(problems.0));
    }
    for field in SERVER_FIELDS {
        data.remove(*field);
    }
    data.entry("streamable").or_insert(Value::Bool(true));
    data.entry("language")
        .or_insert_with(|| Value::String("en-us".into()));
    Ok(data)
}

/// Reads the document at `path`; `None` when there is none.
pub(super) fn read(path: &Path) -> Option<Map<String, Value>> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(doc)) => Some(doc),
        _ => None,
    }
}

/// Writes `doc` to `path` (atomically).
pub(super) fn write(path: &Path, doc: &Map<String, Value>) -> Result<(), ApiError> {
    let bytes = serde_json::to_vec_pretty(doc).map_err(|_| ApiError::Internal)?;
    media_files::write_atomically(path, &bytes).map_err(|error| {
        tracing::warn!(path = %path.display(), %error, "media document not written");
        ApiError::Internal
    })
}

/// Keeps the fields only the proxy writes from `old` in `new` (a client's update keeps the
/// uploaded file's description).
pub(super) fn keep_server_fields(new: &mut Map<String, Value>, old: &Map<String, Value>) {
    for field in SERVER_FIELDS {
        if let Some(value) = old.get(*field) {
            new.insert((*field).to_owned(), value.clone());
        }
    }
}

/// The listing entry of a document.
pub(super) fn summary(doc: &Map<String, Value>) -> Value {
    let mut summary = Map::new();
    for field in [
        "id",
        "name",
        "description",
        "media_source",
        "language",
        "content_type",
        "content_length",
        "duration_ms",
    ] {
        if let Some(value) = doc.get(field) {
            summary.insert(field.to_owned(), value.clone());
        }
    }
    Value::Object(summary)
}

/// Every document of `account`, sorted by name then id.
pub(super) fn list(data_dir: &Path, account: &str) -> Vec<Value> {
    let Some(folder) = media_files::folder(data_dir, Some(account)) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut docs: Vec<Map<String, Value>> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .filter_map(|path| read(&path))
        .collect();
    let key = |doc: &Map<String, Value>| {
        (
            doc.get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            doc.get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        )
    };
    docs.sort_by_key(key);
    docs.iter().map(summary).collect()
}

/// A fresh media id: 32 hex digits, as Kazoo's.
pub(super) fn fresh_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// What an upload adds to the document.
pub(super) fn uploaded(doc: &mut Map<String, Value>, content_type: &str, length: usize, ms: u128) {
    let extra = json!({
        "content_type": content_type,
        "content_length": length,
        "duration_ms": ms as u64,
    });
    if let Value::Object(extra) = extra {
        doc.extend(extra);
    }
}
