//! `/v2/system/...`: operations on the running process rather than on stored documents.
//! `POST /v2/system/reload` performs the reload SIGHUP performs and answers with its outcome, so
//! that `metaflow-proxy ctl reload` (or any API client) can reload without a shell on the host.

use axum::extract::State;
use tokio::sync::{mpsc, oneshot};

use super::envelope::Reply;
use super::{ApiError, V2State};

/// What one reload did, as `POST /v2/system/reload` answers it and `metaflow-proxy ctl reload`
/// prints it: the same outcome SIGHUP logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadOutcome {
    /// `false` when the configuration did not load and nothing changed (`refused` says why).
    pub reloaded: bool,
    /// Changed keys applied now.
    pub applied: Vec<String>,
    /// Changed keys that keep their old value until the next restart.
    pub need_restart: Vec<String>,
    /// Parts of an accepted reload that could not be applied (the metaflows file, the log level).
    pub problems: Vec<String>,
    /// Why the configuration was refused, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl ReloadOutcome {
    /// A reload refused because the configuration does not load: nothing changed.
    pub fn refused(reason: impl Into<String>) -> Self {
        Self {
            refused: Some(reason.into()),
            ..Self::default()
        }
    }

    /// An accepted reload that changed the keys `applied` and `need_restart`; problems are
    /// added as they happen.
    pub fn accepted(applied: &[&str], need_restart: &[&str]) -> Self {
        let owned = |keys: &[&str]| keys.iter().map(|key| (*key).to_owned()).collect();
        Self {
            reloaded: true,
            applied: owned(applied),
            need_restart: owned(need_restart),
            problems: Vec::new(),
            refused: None,
        }
    }
}

/// Where the API asks the process to reload: each request carries the sender its outcome comes
/// back on. The signal loop that handles SIGHUP receives them, so both run one reload at a time.
pub type ReloadRequests = mpsc::Sender<oneshot::Sender<ReloadOutcome>>;

/// `POST`: asks for a reload and waits for it; 422 when the configuration does not load (nothing
/// changed then), 503 when this process has no reloader (or is shutting down).
pub(super) async fn reload(State(state): State<V2State>) -> Result<Reply, ApiError> {
    let Some(requests) = state.shared.reload.get().cloned() else {
        return Err(ApiError::Unavailable(
            "this process cannot reload its configuration".into(),
        ));
    };
    let (reply, outcome) = oneshot::channel();
    let stopping = || ApiError::Unavailable("the proxy is shutting down".into());
    requests.send(reply).await.map_err(|_| stopping())?;
    let outcome = outcome.await.map_err(|_| stopping())?;
    if let Some(reason) = &outcome.refused {
        return Err(ApiError::Unprocessable(format!(
            "the configuration does not load; nothing changed: {reason}"
        )));
    }
    let data = serde_json::to_value(&outcome).map_err(|_| ApiError::Internal)?;
    Ok(Reply::ok(data, None))
}
