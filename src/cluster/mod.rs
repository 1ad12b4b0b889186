//! What the proxies sharing one PostgreSQL database (`store = "postgres://..."`) tell each other
//! besides the `/v2` documents: which nodes are up (`mfp_nodes`), which calls each one holds
//! (`mfp_live_calls`), the registrations relayed through each (`mfp_registrations`, so that
//! they survive a restart), which node keeps which recording (`mfp_recordings`), and the secret one node shows another when it forwards an API request
//! for a call it does not hold.
//!
//! Everything here runs in tasks of the main runtime on the link's own connection, never on
//! the call path: the SIP task only updates the live-call registry, which the sync task reads.
//! When the database is away the link reconnects by itself and every cluster answer falls back
//! to what this node knows locally. With the embedded store none of this starts.

mod error;
mod forward;
mod link;
mod live;
mod nodes;
mod recordings;
mod registrations;
mod remote;
mod secret;
mod settings;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Response};
use serde_json::Value;

pub use error::ClusterError;
pub use forward::{FORWARD_TIMEOUT, encode_segment};
pub use live::{CallSource, Diff, LiveCall, SYNC_INTERVAL, diff};
pub use nodes::{ALIVE_WITHIN, DEAD_AFTER, FORGET_AFTER, HEARTBEAT, is_alive};
pub use recordings::{MAX_ROWS, RecordingsDiff, SCAN_INTERVAL, diff_recordings, sidecars};
pub use registrations::{MAX_PENDING, QUEUE, RegistrationWriter, decode, encode};
pub use remote::{MAX_REMOTE_CHANNELS, Owner, with_node};
pub use secret::{NODE_TOKEN_HEADER, token_matches};
pub use settings::{ClusterSettings, default_node_id};

/// What every task of the link shares.
struct Shared {
    settings: ClusterSettings,
    link: Arc<link::Link>,
    secret: secret::Secret,
    /// The connection generation on which this node's row was last written: its calls are
    /// written only after it, so that pruning never takes them for a dead node's.
    announced_on: std::sync::atomic::AtomicU64,
    /// Where [`RegistrationWriter`]s queue binding changes.
    registrations: tokio::sync::mpsc::Sender<crate::b2bua::BindingChange>,
}

/// The handle the API holds on the cluster link; cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    shared: Arc<Shared>,
}

impl Cluster {
    /// Starts the link on the current tokio runtime: the connection supervisor, the heartbeat
    /// and the live-call sync reading `calls`. Returns at once; nothing waits for the database.
    pub fn start(settings: ClusterSettings, calls: Arc<dyn CallSource>) -> Cluster {
        let link = Arc::new(link::Link::default());
        let (registrations_tx, registrations_rx) = tokio::sync::mpsc::channel(registrations::QUEUE);
        tokio::spawn(link::supervise(Arc::clone(&link), settings.url.clone()));
        tracing::info!(
            node = %settings.node_id,
            sip = %settings.sip_addr,
            api = %settings.api_addr,
            "cluster link starting"
        );
        if settings.api_addr.ip().is_unspecified() {
            tracing::warn!(api = %settings.api_addr, "the API address other nodes forward to is unspecified; set api-advertise");
        }
        let shared = Arc::new(Shared {
            settings,
            link,
            secret: secret::Secret::default(),
            announced_on: std::sync::atomic::AtomicU64::new(0),
            registrations: registrations_tx,
        });
        tokio::spawn(nodes::run(Arc::clone(&shared)));
        tokio::spawn(registrations::run(Arc::clone(&shared), registrations_rx));
        tokio::spawn(live::run(Arc::clone(&shared), calls));
        let data_dir = shared.settings.data_dir.clone();
        tokio::spawn(recordings::run(Arc::clone(&shared), data_dir));
        Cluster { shared }
    }

    /// This node's id, as the channels API names it.
    pub fn node_id(&self) -> &str {
        &self.shared.settings.node_id
    }

    /// Whether `token` (from [`NODE_TOKEN_HEADER`]) is the cluster secret.
    pub fn accepts_node_token(&self, token: &str) -> bool {
        self.shared.secret.accepts(token)
    }

    /// Whether the link has a database connection now.
    pub fn connected(&self) -> bool {
        self.shared.link.client().is_ok()
    }

    /// The channels of `account` that the other alive nodes hold, each with its `node`.
    pub async fn remote_channels(&self, account: &str) -> Result<Vec<Value>, ClusterError> {
        remote::channels(&self.shared, account).await
    }

    /// The alive node other than this one that holds call `call_id` of `account`.
    pub async fn call_owner(
        &self,
        account: &str,
        call_id: &str,
    ) -> Result<Option<Owner>, ClusterError> {
        remote::call_owner(&self.shared, account, call_id).await
    }

    /// The sink the call core reports registration binding changes to; they are written to
    /// the database off the SIP task.
    pub fn registration_writer(&self) -> RegistrationWriter {
        RegistrationWriter::new(self.shared.registrations.clone())
    }

    /// This node's registration bindings kept from an earlier run (unexpired ones), waiting at
    /// most `wait` for the database; for [`crate::b2bua::B2bua::restore_bindings`] at start.
    pub async fn load_bindings(
        &self,
        wait: std::time::Duration,
    ) -> Result<Vec<crate::b2bua::StoredBinding>, ClusterError> {
        registrations::load(&self.shared, wait).await
    }

    /// The recordings of `account` the other nodes keep (rows without an account count as
    /// `default_account`'s), each as its metadata with its `node`.
    pub async fn remote_recordings(
        &self,
        account: &str,
        default_account: &str,
    ) -> Result<Vec<Value>, ClusterError> {
        recordings::list(&self.shared, account, default_account).await
    }

    /// Where recording `id` of `account` is kept when another node keeps it: that node if it is
    /// alive (`None` if not), and the recording's metadata.
    pub async fn recording_owner(
        &self,
        account: &str,
        default_account: &str,
        id: &str,
    ) -> Result<Option<(Option<Owner>, Value)>, ClusterError> {
        recordings::owner(&self.shared, account, default_account, id).await
    }

    /// Deletes the row of this node's recording `id` now, after its files were deleted.
    pub async fn forget_recording(&self, id: &str) -> Result<(), ClusterError> {
        recordings::forget(&self.shared, id).await
    }

    /// Sends `method path_and_query` (with a JSON `body`, or an empty one, and the client's
    /// `Accept` if any) to `owner` with the cluster secret, and returns its answer unread.
    pub async fn forward(
        &self,
        owner: &Owner,
        method: Method,
        path_and_query: &str,
        accept: Option<&str>,
        body: String,
    ) -> Result<Response<Incoming>, ClusterError> {
        let secret = match self.shared.secret.get() {
            Some(secret) => secret,
            None => {
                // The heartbeat reads the secret, but a request may come first: a node lists
                // another's calls as soon as it reaches the database. Read it now.
                let client = self.shared.link.client()?;
                self.shared.secret.load(&client).await?;
                self.shared.secret.get().ok_or(ClusterError::NoSecret)?
            }
        };
        forward::send(owner, method, path_and_query, &secret, accept, body).await
    }
}
