//! `/v2/accounts/{A}/media`: Kazoo's crossbar `media` API. Documents (`name`, `media_source`,
//! `description`, `tts`, ...) are created with `PUT`, read, replaced with `POST` and deleted;
//! the audio is uploaded with `POST .../media/{id}/raw` (WAV or MP3, checked by decoding it, so
//! nothing unplayable is stored) and downloaded with `GET .../raw`. Files live where the sound
//! library plays them from ([`crate::audio::media_files`]).

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::channels::require_account;
use super::envelope::Reply;
use super::media_docs::{self as docs, not_found};
use super::request::submitted;
use super::{ApiError, V2State};
use crate::audio::AudioError;
use crate::audio::decode::{DecodeLimits, Format, decode_blocking};

/// The largest upload accepted (bigger bodies are refused with 413 before they are read whole).
pub(super) const MAX_UPLOAD_BYTES: usize = 20 * 1024 * 1024;

/// Content types an upload may carry.
const AUDIO_TYPES: &[&str] = &[
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/vnd.wave",
    "audio/mpeg",
    "audio/mp3",
    "audio/x-mp3",
];

/// The document of media `id` of `account_id`, 404 if the account or the media is unknown.
fn load(
    state: &V2State,
    account_id: &str,
    id: &str,
) -> Result<(Map<String, Value>, std::path::PathBuf, std::path::PathBuf), ApiError> {
    require_account(state, account_id)?;
    let (doc_path, audio_path) = docs::paths(&state.shared.data_dir, account_id, id)?;
    let doc = docs::read(&doc_path).ok_or_else(|| not_found(id))?;
    Ok((doc, doc_path, audio_path))
}

/// `GET` the collection: every media document's summary, by name.
pub(super) async fn list(
    State(state): State<V2State>,
    Path(account_id): Path<String>,
) -> Result<Reply, ApiError> {
    state
        .blocking(move |state| {
            require_account(state, &account_id)?;
            let listed = docs::list(&state.shared.data_dir, &account_id);
            Ok(Reply::ok(Value::Array(listed), None))
        })
        .await
}

/// `PUT` the collection: a new media document (no audio yet); answers it with its `id`.
pub(super) async fn create(
    State(state): State<V2State>,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let data = docs::checked(submitted(&headers, &body)?.data)?;
    let doc = state
        .blocking(move |state| {
            require_account(state, &account_id)?;
            let id = docs::fresh_id();
            let (doc_path, _) = docs::paths(&state.shared.data_dir, &account_id, &id)?;
            let mut doc = data;
            doc.insert("id".into(), Value::String(id));
            docs::write(&doc_path, &doc)?;
            Ok(doc)
        })
        .await?;
    Ok(Reply {
        status: StatusCode::CREATED,
        data: Value::Object(doc),
        revision: None,
    })
}

/// Whether `Accept` asks for audio rather than the JSON envelope (Kazoo's `GET` of a media
/// document then answers the file).
fn wants_audio(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|item| item.split(';').next().unwrap_or_default().trim())
        .any(|kind| kind.to_ascii_lowercase().starts_with("audio/"))
}

/// `GET` one document, or (as Kazoo) its audio when `Accept` asks for audio.
pub(super) async fn fetch(
    State(state): State<V2State>,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if wants_audio(&headers) {
        return download(State(state), Path((account_id, id))).await;
    }
    state
        .blocking(move |state| {
            let (doc, _, _) = load(state, &account_id, &id)?;
            Ok(Reply::ok(Value::Object(doc), None).into_response())
        })
        .await
}

/// `POST` one document: replaces what the client wrote, keeps what the upload set; with an
/// audio `Content-Type` it is an upload (as Kazoo), like `POST .../raw`.
pub(super) async fn replace(
    State(state): State<V2State>,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    if AUDIO_TYPES.contains(&content_type(&headers).as_str()) {
        return upload(State(state), Path((account_id, id)), headers, body).await;
    }
    let data = docs::checked(submitted(&headers, &body)?.data)?;
    state
        .blocking(move |state| {
            let (old, doc_path, _) = load(state, &account_id, &id)?;
            let mut doc = data;
            doc.insert("id".into(), Value::String(id));
            docs::keep_server_fields(&mut doc, &old);
            docs::write(&doc_path, &doc)?;
            Ok(Reply::ok(Value::Object(doc), None))
        })
        .await
}

/// `DELETE` one document and its audio; answers the removed document.
pub(super) async fn remove(
    State(state): State<V2State>,
    Path((account_id, id)): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    state
        .blocking(move |state| {
            let (mut doc, doc_path, audio_path) = load(state, &account_id, &id)?;
            let gone = |result: std::io::Result<()>| match result {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(%id, %error, "media not deleted");
                    Err(ApiError::Internal)
                }
                _ => Ok(()),
            };
            gone(std::fs::remove_file(&audio_path))?;
            gone(std::fs::remove_file(&doc_path))?;
            doc.insert("_deleted".into(), Value::Bool(true));
            Ok(Reply::ok(Value::Object(doc), None))
        })
        .await
}

/// The media type of a request, without parameters, lower-cased.
fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// `POST .../raw`: stores the uploaded audio after decoding it (400 if it does not decode, 413
/// if it is over the size or length limit); answers the updated document.
pub(super) async fn upload(
    State(state): State<V2State>,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let kind = content_type(&headers);
    if !AUDIO_TYPES.contains(&kind.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "Content-Type {kind:?} is not an accepted audio type ({})",
            AUDIO_TYPES.join(", ")
        )));
    }
    {
        let (account_id, id) = (account_id.clone(), id.clone());
        state
            .blocking(move |state| load(state, &account_id, &id).map(|_| ()))
            .await?;
    }
    let limits = DecodeLimits {
        max_bytes: MAX_UPLOAD_BYTES,
        ..DecodeLimits::default()
    };
    let clip = decode_blocking(body.to_vec(), limits)
        .await
        .map_err(|error| match error {
            AudioError::TooLarge(_) | AudioError::TooLong(_) => {
                ApiError::TooLarge(error.to_string())
            }
            other => ApiError::BadRequest(format!("the upload is not playable audio: {other}")),
        })?;
    let format = Format::sniff(&body).ok_or(ApiError::Internal)?;
    state
        .blocking(move |state| {
            let (mut doc, doc_path, audio_path) = load(state, &account_id, &id)?;
            crate::audio::media_files::write_atomically(&audio_path, &body).map_err(|error| {
                tracing::warn!(%id, %error, "media audio not written");
                ApiError::Internal
            })?;
            docs::uploaded(
                &mut doc,
                format.content_type(),
                body.len(),
                clip.duration().as_millis(),
            );
            docs::write(&doc_path, &doc)?;
            Ok(Reply::ok(Value::Object(doc), None))
        })
        .await
}

/// `GET .../raw`: the uploaded file as it was sent; 404 before an upload.
pub(super) async fn download(
    State(state): State<V2State>,
    Path((account_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (doc, bytes) = state
        .blocking(move |state| {
            let (doc, _, audio_path) = load(state, &account_id, &id)?;
            let bytes = std::fs::read(&audio_path).map_err(|_| not_found(&id))?;
            Ok((doc, bytes))
        })
        .await?;
    let kind = Format::sniff(&bytes).map_or("application/octet-stream", Format::content_type);
    let extension = if kind == "audio/mpeg" { "mp3" } else { "wav" };
    let name = doc
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("media")
        .to_owned();
    let length = bytes.len();
    let mut response = (StatusCode::OK, Body::from(bytes)).into_response();
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"{name}.{extension}\""))
    {
        out.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
