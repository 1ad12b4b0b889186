//! `/v2/accounts/{A}/recordings`: the finished recordings of `record_call` (list, metadata,
//! the media file, delete), as Kazoo's crossbar `recordings` API serves them: `GET` of one
//! recording answers its metadata in the envelope, or the file itself when the request's
//! `Accept` asks for audio (or pcap, or octet-stream). With a shared PostgreSQL store the list
//! adds the recordings the other nodes keep, and one kept by another node is fetched from (or
//! deleted on) that node.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::channels::require_account;
use super::envelope::Reply;
use super::forwarded;
use super::{ApiError, V2State};
use crate::cluster::{Owner, with_node};
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

/// `GET` the collection: every recording's summary, newest first; in a cluster, with the
/// recordings the other nodes keep, each naming its `node`.
pub(super) async fn list(
    State(state): State<V2State>,
    Path(account_id): Path<String>,
) -> Result<Reply, ApiError> {
    let account = account_id.clone();
    let local: Vec<Value> = state
        .blocking(move |state| {
            require_account(state, &account)?;
            let default_account = state.default_account_id();
            Ok(library::list(&state.shared.data_dir)
                .iter()
                .filter(|found| found.belongs_to(&account, default_account))
                .map(StoredRecording::summary)
                .collect())
        })
        .await?;
    let Some(cluster) = state.cluster() else {
        return Ok(Reply::ok(Value::Array(local), None));
    };
    let mut all: Vec<Value> = local
        .into_iter()
        .map(|summary| with_node(summary, cluster.node_id()))
        .collect();
    match cluster
        .remote_recordings(&account_id, state.default_account_id())
        .await
    {
        Ok(remote) => all.extend(remote.iter().map(summary_of_meta)),
        Err(error) => {
            let error = crate::base::ErrorChain(&error);
            tracing::debug!(%error, "recordings listed from this node only");
        }
    }
    all.sort_by(|a, b| {
        let started = |v: &Value| v["started"].as_str().map(str::to_owned);
        started(b)
            .cmp(&started(a))
            .then_with(|| a["id"].as_str().cmp(&b["id"].as_str()))
    });
    Ok(Reply::ok(Value::Array(all), None))
}

/// The summary fields of another node's recording metadata (its sidecar plus the summary it
/// had when written), with its `node`.
fn summary_of_meta(meta: &Value) -> Value {
    let mut summary = serde_json::Map::new();
    for key in SUMMARY_FIELDS.iter().chain(["node"].iter()) {
        summary.insert(
            (*key).to_owned(),
            meta.get(*key).cloned().unwrap_or(Value::Null),
        );
    }
    Value::Object(summary)
}

/// The members of [`StoredRecording::summary`].
const SUMMARY_FIELDS: &[&str] = &[
    "id",
    "call_id",
    "account_id",
    "leg",
    "label",
    "started_by",
    "started",
    "duration_ms",
    "format",
    "media_type",
    "size",
    "status",
];

/// Where a recording this node does not keep is: the other node's, if the cluster knows it
/// (`None` otherwise, or while the cluster database is away).
async fn kept_elsewhere(
    state: &V2State,
    headers: &HeaderMap,
    account_id: &str,
    id: &str,
) -> Option<(Option<Owner>, Value)> {
    let cluster = state.cluster()?;
    if forwarded::from_another_node(headers) {
        return None;
    }
    cluster
        .recording_owner(account_id, state.default_account_id(), id)
        .await
        .map_err(|error| {
            let error = crate::base::ErrorChain(&error);
            tracing::debug!(%error, %id, "recording looked up on this node only");
        })
        .ok()
        .flatten()
}

/// The node keeping recording `id` is down.
fn owner_down(id: &str, meta: &Value) -> ApiError {
    ApiError::Unavailable(format!(
        "recording {id} is kept by node {}, which is not up",
        meta["node"].as_str().unwrap_or("?")
    ))
}

/// `GET` one kept by another node: the metadata from the cluster database, the media from the
/// node itself.
async fn fetch_elsewhere(
    state: &V2State,
    headers: &HeaderMap,
    account_id: &str,
    id: String,
) -> Result<Response, ApiError> {
    let Some((owner, meta)) = kept_elsewhere(state, headers, account_id, &id).await else {
        return Err(not_found(id));
    };
    if !wants_media(headers) {
        return Ok(Reply::ok(meta, None).into_response());
    }
    let (Some(owner), Some(cluster)) = (owner, state.cluster()) else {
        return Err(owner_down(&id, &meta));
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let path = forwarded::path(account_id, "recordings", &id);
    let what = format!("recording {id}");
    forwarded::media(cluster, &owner, &path, accept, &what, not_found(id)).await
}

/// `GET` one: the sidecar and summary in the envelope, or the file for an `Accept` of media.
pub(super) async fn fetch(
    State(state): State<V2State>,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let recording = match lookup(&state, account_id.clone(), id.clone()).await {
        Err(ApiError::NotFound {
            kind: "recording", ..
        }) => {
            return fetch_elsewhere(&state, &headers, &account_id, id).await;
        }
        other => other?,
    };
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

/// `DELETE`: removes the file and its sidecar; answers the summary of what was removed. In a
/// cluster, a recording another node keeps is deleted there.
pub(super) async fn remove(
    State(state): State<V2State>,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Reply, ApiError> {
    let recording = match lookup(&state, account_id.clone(), id.clone()).await {
        Err(ApiError::NotFound {
            kind: "recording", ..
        }) => {
            return remove_elsewhere(&state, &headers, &account_id, id).await;
        }
        other => other?,
    };
    let summary = recording.summary();
    state
        .blocking(move |_| {
            recording.delete().map_err(|error| {
                tracing::warn!(id = %recording.id, %error, "recording not deleted");
                ApiError::Internal
            })
        })
        .await?;
    if let Some(cluster) = state.cluster()
        && let Err(error) = cluster.forget_recording(&id).await
    {
        // The next scan of the recordings folder deletes the row.
        let error = crate::base::ErrorChain(&error);
        tracing::debug!(%error, %id, "recording row left for the next scan");
    }
    Ok(Reply::ok(summary, None))
}

/// `DELETE` of a recording another node keeps: asked of that node.
async fn remove_elsewhere(
    state: &V2State,
    headers: &HeaderMap,
    account_id: &str,
    id: String,
) -> Result<Reply, ApiError> {
    let Some((owner, meta)) = kept_elsewhere(state, headers, account_id, &id).await else {
        return Err(not_found(id));
    };
    let (Some(owner), Some(cluster)) = (owner, state.cluster()) else {
        return Err(owner_down(&id, &meta));
    };
    let path = forwarded::path(account_id, "recordings", &id);
    let what = format!("recording {id}");
    let (status, data) =
        forwarded::envelope(cluster, &owner, Method::DELETE, &path, String::new(), &what).await?;
    match status {
        status if status.is_success() => Ok(Reply::ok(data, None)),
        StatusCode::NOT_FOUND => Err(not_found(id)),
        other => Err(forwarded::refused(&owner, &what, other)),
    }
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
