//! `/v2/accounts/{A}/recordings`: the finished recordings of `record_call` (list, metadata,
//! the media file, delete), as Kazoo's crossbar `recordings` API serves them: `GET` of one
//! recording answers its metadata in the envelope, or the file itself when the request's
//! `Accept` asks for audio (or pcap, or octet-stream).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::channels::require_account;
use super::envelope::Reply;
use super::{ApiError, V2State};
use crate::modules::record::file_body::FileBody;
use crate::modules::record::library::{self, StoredRecording};

/// Whether `Accept` asks for the media rather than the JSON envelope.
fn wants_media(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|item| item.split(';').next().unwrap_or_default().trim())
        .any(|kind| {
            kind.starts_with("audio/")
                || kind.eq_ignore_ascii_case(library::PCAP_MEDIA_TYPE)
                || kind.eq_ignore_ascii_case("application/octet-stream")
        })
}

fn not_found(id: String) -> ApiError {
    ApiError::NotFound {
        kind: "recording",
        id,
    }
}

/// Finds recording `id` of `account_id` on the blocking pool.
async fn lookup(
    state: &V2State,
    account_id: String,
    id: String,
) -> Result<StoredRecording, ApiError> {
    state
        .blocking(move |state| {
            require_account(state, &account_id)?;
            library::find(&state.shared.data_dir, &id)
                .filter(|found| found.belongs_to(&account_id, state.default_account_id()))
                .ok_or_else(|| not_found(id))
        })
        .await
}

/// `GET` the collection: every recording's summary, newest first.
pub(super) async fn list(
    State(state): State<V2State>,
    Path(account_id): Path<String>,
) -> Result<Reply, ApiError> {
    state
        .blocking(move |state| {
            require_account(state, &account_id)?;
            let default_account = state.default_account_id();
            let summaries = library::list(&state.shared.data_dir)
                .iter()
                .filter(|found| found.belongs_to(&account_id, default_account))
                .map(StoredRecording::summary)
                .collect();
            Ok(Reply::ok(Value::Array(summaries), None))
        })
        .await
}

/// `GET` one: the sidecar and summary in the envelope, or the file for an `Accept` of media.
pub(super) async fn fetch(
    State(state): State<V2State>,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let recording = lookup(&state, account_id, id).await?;
    if !wants_media(&headers) {
        return Ok(Reply::ok(metadata(&recording), None).into_response());
    }
    let body = FileBody::open(&recording.media_path)
        .await
        .map_err(|_| not_found(recording.id.clone()))?;
    let length = body.len();
    let mut response = (StatusCode::OK, Body::new(body)).into_response();
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(recording.media_type()),
    );
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    let file_name = recording
        .media_path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        out.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// The metadata of one recording: its whole sidecar plus the summary's fields.
fn metadata(recording: &StoredRecording) -> Value {
    let mut doc = recording.sidecar.clone();
    if let (Value::Object(doc), Value::Object(summary)) = (&mut doc, recording.summary()) {
        doc.extend(summary);
    }
    doc
}

/// `DELETE`: removes the file and its sidecar; answers the summary of what was removed.
pub(super) async fn remove(
    State(state): State<V2State>,
    Path((account_id, id)): Path<(String, String)>,
) -> Result<Reply, ApiError> {
    let recording = lookup(&state, account_id, id).await?;
    let summary = recording.summary();
    state
        .blocking(move |_| {
            recording.delete().map_err(|error| {
                tracing::warn!(id = %recording.id, %error, "recording not deleted");
                ApiError::Internal
            })
        })
        .await?;
    Ok(Reply::ok(summary, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_picks_the_media() {
        let with = |accept: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
            wants_media(&headers)
        };
        assert!(with("audio/wav"));
        assert!(with("application/json;q=0.5, audio/*"));
        assert!(with("application/vnd.tcpdump.pcap"));
        assert!(!with("application/json"));
        assert!(!with("*/*"));
        assert!(!wants_media(&HeaderMap::new()));
    }
}
