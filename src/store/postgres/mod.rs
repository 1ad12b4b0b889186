//! The document store on PostgreSQL, for proxies that share their configuration.
//!
//! Reads never touch the database: every proxy keeps the documents in memory ([`Docs`]) and
//! follows the database's changes, told of each commit by `LISTEN/NOTIFY` and catching up by
//! change number (`mfp_documents.seq`), so a committed change reaches every proxy's next call
//! within a fraction of a second and a call never waits on the database. Writes run in one
//! database transaction under a cluster-wide advisory lock: the change is computed on the
//! freshest state (caught up inside the lock), committed, and only then acknowledged, so an
//! acknowledged write is in the database and revisions and uniqueness rules hold across proxies.
//!
//! One connection does it all ([`link`]): a thread of its own drives it and reconnects when it
//! is lost; while it is down reads go on from the last snapshot, writes are refused with
//! [`StoreError::Unavailable`] (the API answers 503) and [`StoreHealth`] says why.

mod link;
mod migrate;
mod wait;

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use tokio_postgres::{Client, Row};

pub use migrate::MigrationError;

use super::memory::{DocKey, Docs, Overlay};
use super::{Collection, StoreError, StoreHealth, Stored, View, WriteSource};
use crate::base::ErrorChain;
use wait::wait;

/// How long one statement of a write may take before the write is refused and the connection
/// is dropped (and reopened): a database that stops answering must not hold API threads.
const STATEMENT_LIMIT: Duration = Duration::from_secs(5);

/// Advisory lock key serialising writers across every proxy sharing the database.
const WRITE_LOCK: i64 = 0x6d66_705f_7772_6974; // "mfp_writ"

/// The notification channel a commit announces itself on.
const CHANNEL: &str = "mfp_documents";

/// The changes past a change number, in order (removals included: `doc` is NULL).
const CHANGES_SINCE: &str = "SELECT collection, account, id, rev, doc, seq FROM mfp_documents \
                             WHERE seq > $1 ORDER BY seq";

/// Writes one document (or its removal) with the next change number.
const UPSERT: &str = "INSERT INTO mfp_documents (collection, account, id, rev, doc, seq) \
                      VALUES ($1, $2, $3, $4, $5, nextval('mfp_documents_seq')) \
                      ON CONFLICT (collection, account, id) DO UPDATE \
                      SET rev = EXCLUDED.rev, doc = EXCLUDED.doc, seq = EXCLUDED.seq \
                      RETURNING seq";

/// A store whose documents live in PostgreSQL.
pub(super) struct PgStore {
    shared: Arc<Shared>,
}

/// What the store, its connection thread and its catch-up thread share.
pub(super) struct Shared {
    /// The connection settings.
    config: tokio_postgres::Config,
    /// The URL as logs and errors show it (no password).
    shown_url: String,
    /// The open connection's client; `None` while disconnected. Held for the whole of a write
    /// or a catch-up, which also orders their updates of `docs`.
    client: Mutex<Option<Client>>,
    /// The documents as last seen.
    docs: RwLock<Arc<Docs>>,
    /// Whether writes work.
    health: Arc<StoreHealth>,
    /// Called after changes made by other proxies were applied.
    listeners: Mutex<Vec<Box<dyn Fn() + Send + Sync>>>,
    /// Wakes the catch-up thread (a notification arrived, or the connection is back).
    wake: Mutex<Option<mpsc::Sender<()>>>,
    /// The first connection's outcome, waited for by [`PgStore::connect`].
    first: (Mutex<FirstConnection>, Condvar),
    /// Set when the store is dropped: the threads end.
    stopping: AtomicBool,
}

/// How the first connection went.
#[derive(Debug, Clone, PartialEq)]
enum FirstConnection {
    /// Still trying.
    Pending,
    /// Connected, migrated and loaded.
    Ready,
    /// Cannot work with this database at all (schema newer than this program).
    Fatal(String),
}

impl PgStore {
    /// Connects to `url`, migrates the schema and loads every document, waiting up to `wait`
    /// for the first connection.
    pub(super) fn connect(
        url: &str,
        health: Arc<StoreHealth>,
        wait_for: Duration,
    ) -> Result<Self, StoreError> {
        let shown_url = crate::config::redact_password(url);
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|error| StoreError::Unavailable {
                reason: format!(
                    "key `store`: {shown_url} is not a PostgreSQL URL: {}",
                    ErrorChain(&error)
                ),
            })?;
        config
            .application_name("metaflow-proxy")
            .connect_timeout(Duration::from_secs(3))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10));
        let (wake_tx, wake_rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            config,
            shown_url,
            client: Mutex::new(None),
            docs: RwLock::new(Arc::new(Docs::default())),
            health,
            listeners: Mutex::new(Vec::new()),
            wake: Mutex::new(Some(wake_tx)),
            first: (Mutex::new(FirstConnection::Pending), Condvar::new()),
            stopping: AtomicBool::new(false),
        });
        let store = Self {
            shared: Arc::clone(&shared),
        };
        link::start(Arc::clone(&shared), wake_rx).map_err(|error| StoreError::Unavailable {
            reason: format!("cannot start the PostgreSQL connection thread: {error}"),
        })?;
        let (lock, ready) = &shared.first;
        let state = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let (state, _) = ready
            .wait_timeout_while(state, wait_for, |state| *state == FirstConnection::Pending)
            .unwrap_or_else(PoisonError::into_inner);
        match &*state {
            FirstConnection::Ready => Ok(store),
            FirstConnection::Fatal(reason) => Err(StoreError::Unavailable {
                reason: format!("key `store`: {}: {reason}", shared.shown_url),
            }),
            FirstConnection::Pending => Err(StoreError::Unavailable {
                reason: format!(
                    "key `store`: cannot reach PostgreSQL at {} within {} s: {}",
                    shared.shown_url,
                    wait_for.as_secs(),
                    shared
                        .health
                        .problem()
                        .unwrap_or_else(|| "no answer".to_owned())
                ),
            }),
        }
    }

    /// The documents as last seen.
    pub(super) fn snapshot(&self) -> Arc<Docs> {
        self.shared.snapshot()
    }

    /// See [`super::Store::on_remote_change`].
    pub(super) fn on_remote_change(&self, listener: Box<dyn Fn() + Send + Sync>) {
        self.shared
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(listener);
    }

    /// Runs `change` on the freshest documents under the cluster-wide write lock and commits
    /// what it wrote; refused with [`StoreError::Unavailable`] while disconnected.
    pub(super) fn write<T, E: From<StoreError>>(
        &self,
        change: impl FnOnce(&mut View<WriteSource<'_>>) -> Result<T, E>,
    ) -> Result<T, E> {
        let shared = &self.shared;
        let mut slot = shared.lock_client();
        let Some(client) = slot.as_mut() else {
            shared.health.refused();
            return Err(shared.unavailable(None).into());
        };
        let mut caught_up = false;
        let outcome = shared.write_in(client, change, &mut caught_up);
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(failure) => {
                // The connection's state is unknown after a failed or timed-out statement:
                // drop it; the connection thread reconnects.
                *slot = None;
                let reason = format!("PostgreSQL failed during a write: {failure}");
                tracing::error!(url = %shared.shown_url, %reason, "store write failed; reconnecting");
                shared.health.write_failed(reason);
                drop(slot);
                return Err(shared.unavailable(Some(&failure)).into());
            }
        };
        drop(slot);
        if caught_up {
            shared.tell_listeners();
        }
        outcome
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        // Ends the catch-up thread, and with the client gone the connection ends too.
        self.shared
            .wake
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.shared.lock_client().take();
    }
}

/// Why a write could not be carried out by the database.
#[derive(Debug, thiserror::Error)]
enum WriteFailure {
    #[error("{}", ErrorChain(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error(transparent)]
    TimedOut(#[from] wait::TimedOut),
}

impl Shared {
    /// The documents as last seen.
    fn snapshot(&self) -> Arc<Docs> {
        Arc::clone(&self.docs.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The client slot, locked.
    fn lock_client(&self) -> MutexGuard<'_, Option<Client>> {
        self.client.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The error a refused write gets: why, and that calls are not affected.
    fn unavailable(&self, cause: Option<&WriteFailure>) -> StoreError {
        let why = match cause {
            Some(cause) => cause.to_string(),
            None => self
                .health
                .problem()
                .unwrap_or_else(|| "not connected".to_owned()),
        };
        StoreError::Unavailable {
            reason: format!(
                "PostgreSQL ({}) cannot take writes now: {why}; calls go on with the last \
                 configuration and the proxy reconnects by itself, retry the request later",
                self.shown_url
            ),
        }
    }

    /// The write itself, on a connected client. `Err` is a failure of the database (the
    /// connection is then dropped); `Ok(Err)` is the change's own refusal (rolled back).
    fn write_in<T, E: From<StoreError>>(
        &self,
        client: &mut Client,
        change: impl FnOnce(&mut View<WriteSource<'_>>) -> Result<T, E>,
        caught_up: &mut bool,
    ) -> Result<Result<T, E>, WriteFailure> {
        let txn = wait(client.transaction(), STATEMENT_LIMIT)??;
        wait(
            txn.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK]),
            STATEMENT_LIMIT,
        )??;
        let since = self.snapshot().seq();
        let rows = wait(txn.query(CHANGES_SINCE, &[&since]), STATEMENT_LIMIT)??;
        *caught_up = self.apply_rows(&rows) > 0;
        let mut view = View {
            txn: WriteSource::Memory(Overlay::new(self.snapshot())),
            failure: RefCell::new(None),
        };
        let value = match change(&mut view) {
            Ok(value) => value,
            // Dropping the transaction rolls it back.
            Err(refused) => return Ok(Err(refused)),
        };
        let WriteSource::Memory(overlay) = view.txn else {
            return Ok(Err(StoreError::Unavailable {
                reason: "internal: a PostgreSQL write saw another kind of transaction".into(),
            }
            .into()));
        };
        let changes = overlay.into_changes();
        if changes.is_empty() {
            wait(txn.commit(), STATEMENT_LIMIT)??;
            return Ok(Ok(value));
        }
        let upsert = wait(txn.prepare(UPSERT), STATEMENT_LIMIT)??;
        let mut written = Vec::with_capacity(changes.len());
        for ((collection, account, id), stored) in changes {
            let (rev, doc) = match &stored {
                Some(stored) => (
                    Some(stored.rev.clone()),
                    Some(serde_json::Value::Object(stored.doc.clone()).to_string()),
                ),
                None => (None, None),
            };
            let row = wait(
                txn.query_one(&upsert, &[&collection.name(), &account, &id, &rev, &doc]),
                STATEMENT_LIMIT,
            )??;
            let seq: i64 = row.try_get(0)?;
            written.push(((collection, account, id), stored, seq));
        }
        wait(
            txn.execute("SELECT pg_notify($1, '')", &[&CHANNEL]),
            STATEMENT_LIMIT,
        )??;
        wait(txn.commit(), STATEMENT_LIMIT)??;
        let mut docs = (*self.snapshot()).clone();
        for (key, stored, seq) in written {
            docs.apply(key, stored, seq);
        }
        *self.docs.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(docs);
        Ok(Ok(value))
    }

    /// Applies changes read from `mfp_documents` (in `seq` order) to the snapshot; returns how
    /// many were new. A row that does not decode (written by hand) is skipped and logged.
    fn apply_rows(&self, rows: &[Row]) -> usize {
        let current = self.snapshot();
        let mut docs: Option<Docs> = None;
        let mut applied = 0;
        for row in rows {
            let Some((key, stored, seq)) = decode_row(row) else {
                continue;
            };
            if seq <= current.seq() {
                continue;
            }
            docs.get_or_insert_with(|| (*current).clone())
                .apply(key, stored, seq);
            applied += 1;
        }
        if let Some(docs) = docs {
            *self.docs.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(docs);
        }
        applied
    }

    /// Replaces the snapshot with every document of the database (after a reconnection, which
    /// may have missed notifications or follow a restore).
    fn replace_all(&self, rows: &[Row]) {
        let mut docs = Docs::default();
        for row in rows {
            if let Some((key, stored, seq)) = decode_row(row) {
                docs.apply(key, stored, seq);
            }
        }
        *self.docs.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(docs);
    }

    /// Catches up with changes committed by others, on the catch-up thread.
    fn catch_up(&self) {
        let applied = {
            let slot = self.lock_client();
            let Some(client) = slot.as_ref() else {
                return;
            };
            let since = self.snapshot().seq();
            match wait(client.query(CHANGES_SINCE, &[&since]), STATEMENT_LIMIT) {
                Ok(Ok(rows)) => self.apply_rows(&rows),
                Ok(Err(error)) => {
                    tracing::debug!(error = %ErrorChain(&error), "store catch-up failed");
                    0
                }
                Err(error) => {
                    tracing::debug!(%error, "store catch-up timed out");
                    0
                }
            }
        };
        if applied > 0 {
            tracing::debug!(applied, "store caught up with changes from other proxies");
            self.tell_listeners();
        }
    }

    /// Runs the change listeners.
    fn tell_listeners(&self) {
        for listener in self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            listener();
        }
    }

    /// Wakes the catch-up thread.
    fn wake_catch_up(&self) {
        if let Some(wake) = self
            .wake
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            let _ = wake.send(());
        }
    }

    /// Records the first connection's outcome for [`PgStore::connect`].
    fn first_connection(&self, outcome: FirstConnection) {
        let (lock, ready) = &self.first;
        let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
        if *state == FirstConnection::Pending {
            *state = outcome;
            ready.notify_all();
        }
    }
}

/// One row of `mfp_documents` as a snapshot change; `None` (logged) when it does not decode.
fn decode_row(row: &Row) -> Option<(DocKey, Option<Stored>, i64)> {
    let decoded = (|| -> Result<_, tokio_postgres::Error> {
        Ok((
            row.try_get::<_, String>(0)?,
            row.try_get::<_, String>(1)?,
            row.try_get::<_, String>(2)?,
            row.try_get::<_, Option<String>>(3)?,
            row.try_get::<_, Option<String>>(4)?,
            row.try_get::<_, i64>(5)?,
        ))
    })();
    let (collection, account, id, rev, doc, seq) = match decoded {
        Ok(columns) => columns,
        Err(error) => {
            tracing::error!(error = %ErrorChain(&error), "mfp_documents row skipped");
            return None;
        }
    };
    let kind = Collection::from_name(&collection);
    let stored = match (rev, doc) {
        (Some(rev), Some(doc)) => match serde_json::from_str(&doc) {
            Ok(serde_json::Value::Object(doc)) => Some(Some(Stored {
                id: id.clone(),
                rev,
                doc,
            })),
            _ => None,
        },
        _ => Some(None),
    };
    match (kind, stored) {
        (Some(kind), Some(stored)) => Some(((kind, account, id), stored, seq)),
        _ => {
            tracing::error!(%collection, %account, %id, "mfp_documents row does not decode; skipped");
            None
        }
    }
}
