//! Kazoo-compatible `/v2` REST API: accounts, users, devices, callflows, metaflows at account,
//! user and device level, live channels, recordings and media (uploaded audio), each answered in Kazoo's JSON envelope and kept in
//! the embedded [`Store`]. Every route except `GET /v2/openapi.json` needs an `X-Auth-Token`:
//! a configured one, or the one generated in `DATA_DIR/api-token` ([`ApiTokens`]).
//!
//! Writes may name the revision they were based on, in an `If-Match` header or as `data._rev`
//! (CouchDB style); a stale one is refused with 409. Replies carry the document's revision in
//! the envelope's `revision` and in an `ETag` header. A write answered with 2xx is on disk.

mod access;
mod auth;
mod channel_commands;
mod channels;
mod credentials;
mod defaults;
mod embedded;
mod entities;
mod envelope;
mod forwarded;
mod listing;
mod located;
mod login;
mod media;
mod media_docs;
mod metaflows;
mod nodes;
mod recordings;
mod request;
mod routes;
mod schema;
mod sessions;
mod system;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use crate::base::Problem;
use crate::cluster::Cluster;
use crate::store::{MetaflowDirectory, Store, StoreError};

pub use auth::{ApiTokens, TOKEN_FILE_NAME, TokenFileError};
pub use envelope::{ApiError, unknown_route};
pub use metaflows::MetaflowOwner;
pub use routes::{OPENAPI_DOCUMENT, ROUTE_PATHS, routes};
pub use sessions::Sessions;
pub use system::{ReloadOutcome, ReloadRequests};

/// Metaflow modules the proxy can execute; any other `module` name is refused.
pub const KNOWN_MODULES: &[&str] = crate::modules::KNOWN;

/// Id of the account created at first start; its realm is [`DEFAULT_REALM`]. Legs whose host
/// matches no account's realm resolve to it.
pub const DEFAULT_ACCOUNT_ID: &str = "default";

/// Realm of the account created at first start.
pub const DEFAULT_REALM: &str = "default";

/// Module-specific checks of a metaflow node's `data`: given the module name and its data,
/// returns every problem with its path below the node (`data.FIELD`).
pub type NodeValidator = Arc<dyn Fn(&str, &Map<String, Value>) -> Vec<Problem> + Send + Sync>;

/// Fills in module-specific defaults of a metaflow node's `data` before it is stored.
pub type NodeNormaliser = Arc<dyn Fn(&str, &mut Map<String, Value>) + Send + Sync>;

/// The calls in progress, as the `/channels` routes see them.
pub trait LiveCalls: Send + Sync {
    /// Summaries of the calls of `account_id` in progress (Kazoo channel objects).
    fn list(&self, account_id: &str) -> Vec<Value>;
    /// Runs a metaflow node on call `call_id` of account `account_id` now; `Err` explains why
    /// not (unknown call, a call of another account, ...).
    fn run_metaflow(&self, account_id: &str, call_id: &str, node: Value) -> Result<(), String>;
}

/// A [`LiveCalls`] with no calls, for tests and for running the API without the call core.
pub struct NoLiveCalls;

impl LiveCalls for NoLiveCalls {
    fn list(&self, _account_id: &str) -> Vec<Value> {
        Vec::new()
    }

    fn run_metaflow(&self, _account_id: &str, call_id: &str, _node: Value) -> Result<(), String> {
        Err(format!("no call {call_id} in progress"))
    }
}

/// Everything a `/v2` handler reads; cheap to clone.
#[derive(Clone)]
pub struct V2State {
    shared: Arc<Shared>,
}

/// The state behind [`V2State`].
struct Shared {
    store: Arc<Store>,
    directory: MetaflowDirectory,
    tokens: ApiTokens,
    /// Tokens handed out by `user_auth` and `api_auth`.
    sessions: Arc<Sessions>,
    live: Arc<dyn LiveCalls>,
    validator: NodeValidator,
    normaliser: NodeNormaliser,
    default_account_id: String,
    /// Where `POST /v2/system/reload` sends its requests; unset, the route answers 503.
    reload: OnceLock<ReloadRequests>,
    /// Where recordings are kept (`DATA_DIR`).
    data_dir: PathBuf,
    /// The other proxies sharing the PostgreSQL store; unset with the embedded store.
    cluster: OnceLock<Cluster>,
}

impl V2State {
    /// Opens the store in `data_dir` with the default account [`DEFAULT_ACCOUNT_ID`]; see
    /// [`V2State::open_with_default_account`].
    pub fn open(
        data_dir: &Path,
        tokens: impl Into<ApiTokens>,
        live: Arc<dyn LiveCalls>,
        validator: NodeValidator,
        normaliser: NodeNormaliser,
    ) -> Result<(V2State, MetaflowDirectory), StoreError> {
        Self::open_with_default_account(
            data_dir,
            tokens,
            live,
            validator,
            normaliser,
            DEFAULT_ACCOUNT_ID,
        )
    }

    /// Opens (creating when missing) `DATA_DIR/store.redb`, creates the default account with
    /// realm [`DEFAULT_REALM`] when it does not exist, and loads the directory the call core
    /// resolves metaflows with. A plain list of tokens with nothing in it refuses every
    /// authenticated request; [`ApiTokens::configured_or_generated`] never leaves it empty.
    pub fn open_with_default_account(
        data_dir: &Path,
        tokens: impl Into<ApiTokens>,
        live: Arc<dyn LiveCalls>,
        validator: NodeValidator,
        normaliser: NodeNormaliser,
        default_account_id: &str,
    ) -> Result<(V2State, MetaflowDirectory), StoreError> {
        let store = Arc::new(Store::open_in(data_dir)?);
        Self::with_store(
            store,
            data_dir,
            tokens,
            live,
            validator,
            normaliser,
            default_account_id,
        )
    }

    /// Like [`V2State::open_with_default_account`] on a store opened by the caller (PostgreSQL,
    /// shared with other proxies): the directory is also rebuilt whenever another proxy changes
    /// a document. `data_dir` still holds recordings and media.
    pub fn with_store(
        store: Arc<Store>,
        data_dir: &Path,
        tokens: impl Into<ApiTokens>,
        live: Arc<dyn LiveCalls>,
        validator: NodeValidator,
        normaliser: NodeNormaliser,
        default_account_id: &str,
    ) -> Result<(V2State, MetaflowDirectory), StoreError> {
        entities::ensure_default_account(&store, default_account_id)?;
        let directory = MetaflowDirectory::load(Arc::clone(&store), default_account_id)?;
        let follower = directory.clone();
        store.on_remote_change(Box::new(move || {
            if let Err(error) = follower.refresh() {
                let error = crate::base::ErrorChain(&error);
                tracing::error!(%error, "metaflow directory refresh failed after a remote change");
            }
        }));
        let state = V2State {
            shared: Arc::new(Shared {
                store,
                directory: directory.clone(),
                tokens: tokens.into(),
                sessions: Arc::default(),
                live,
                validator,
                normaliser,
                default_account_id: default_account_id.to_owned(),
                reload: OnceLock::new(),
                data_dir: data_dir.to_path_buf(),
                cluster: OnceLock::new(),
            }),
        };
        Ok((state, directory))
    }

    /// Lets `POST /v2/system/reload` reach the process's reloader; only the first call counts
    /// (a process has one reloader). Without it the route answers 503.
    pub fn serve_reloads(&self, requests: ReloadRequests) {
        let _ = self.shared.reload.set(requests);
    }

    /// Makes the channels and recordings routes cluster-wide: they add what the other proxies
    /// hold and forward requests for their calls and recordings to them. Only the first call
    /// counts; without it the API answers from this process alone.
    pub fn serve_cluster(&self, cluster: Cluster) {
        let _ = self.shared.cluster.set(cluster);
    }

    /// The cluster link, when the store is shared.
    fn cluster(&self) -> Option<&Cluster> {
        self.shared.cluster.get()
    }

    /// The directory the call core resolves metaflows with (the one `open` returned).
    pub fn directory(&self) -> MetaflowDirectory {
        self.shared.directory.clone()
    }

    /// The store behind the API, for its health on `/ready` and `/metrics` and its recovery.
    pub fn store(&self) -> Arc<Store> {
        Arc::clone(&self.shared.store)
    }

    /// The login tokens' table, whose refusal counters and size `/metrics` shows.
    pub fn sessions(&self) -> Arc<Sessions> {
        Arc::clone(&self.shared.sessions)
    }

    /// Id of the default account.
    pub fn default_account_id(&self) -> &str {
        &self.shared.default_account_id
    }

    /// Validates and stores `doc` as the metaflows of `owner` (as a `POST` would), for loading
    /// a metaflow file at start-up; returns the new revision.
    pub fn replace_metaflows(
        &self,
        owner: &MetaflowOwner,
        doc: &Value,
    ) -> Result<String, ApiError> {
        self.replace_metaflows_at(owner, doc, None)
    }

    /// Like [`V2State::replace_metaflows`], only if the stored document is still at revision
    /// `expected_rev` (409 otherwise), so a document edited through the API meanwhile is kept.
    pub fn replace_metaflows_at(
        &self,
        owner: &MetaflowOwner,
        doc: &Value,
        expected_rev: Option<String>,
    ) -> Result<String, ApiError> {
        let Value::Object(doc) = doc else {
            return Err(ApiError::BadRequest(
                "metaflows must be a JSON object".into(),
            ));
        };
        metaflows::replace(self, owner, doc.clone(), expected_rev).map(|stored| stored.rev)
    }

    /// Whether `token` is one of the accepted API tokens (compared in constant time).
    fn accepts(&self, token: &str) -> bool {
        self.shared.tokens.accepts(token)
    }

    /// What a request without an accepted token is told: how to get in.
    fn how_to_get_in(&self) -> String {
        self.shared.tokens.how_to_get_in()
    }

    /// Runs `job` on the blocking pool (store commits wait for fsync).
    async fn blocking<T: Send + 'static>(
        &self,
        job: impl FnOnce(&V2State) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let state = self.clone();
        tokio::task::spawn_blocking(move || job(&state))
            .await
            .map_err(|_| ApiError::Internal)?
    }

    /// Commits `change` durably, then refreshes the directory so new lookups see it at once.
    fn write<T>(
        &self,
        change: impl FnOnce(&mut crate::store::WriteView<'_>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let outcome = self.shared.store.write(change)?;
        if let Err(error) = self.shared.directory.refresh() {
            let error = crate::base::ErrorChain(&error);
            tracing::error!(%error, "metaflow directory refresh failed after a write");
        }
        Ok(outcome)
    }
}
