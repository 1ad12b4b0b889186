//! The embedded store: one `redb` file under the data directory, for a proxy on its own.
//!
//! Every commit is made with immediate durability (fsync before the commit returns), so a write
//! acknowledged to a client survives a crash right after; `redb`'s copy-on-write commit leaves
//! either the old or the new state after a crash during a write. After a failed write `redb`
//! refuses every later one until the database is reopened, which [`RedbStore::recover`] does
//! once the data directory takes writes again.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};

use super::health::{self, StoreHealth};
use super::{Collection, StoreError, Stored, View, WriteSource, decode};
use crate::base::ErrorChain;

/// Key of a document: the account it belongs to and its id inside that account's collection.
type DocKey<'a> = (&'a str, &'a str);
/// One table per collection, values are the JSON-encoded [`Record`].
type DocTable = TableDefinition<'static, DocKey<'static>, &'static [u8]>;

/// The table of `collection`.
fn table(collection: Collection) -> DocTable {
    TableDefinition::new(collection.name())
}

/// Converts any `redb` error into a [`StoreError`].
fn db_error(error: impl Into<redb::Error>) -> StoreError {
    StoreError::Database(error.into())
}

/// Reads one document from any readable table.
fn get_in(
    table: &impl ReadableTable<DocKey<'static>, &'static [u8]>,
    account: &str,
    id: &str,
) -> Result<Option<Stored>, StoreError> {
    match table.get((account, id)).map_err(db_error)? {
        Some(guard) => decode(account, id, guard.value()).map(Some),
        None => Ok(None),
    }
}

/// Reads every document of one account (or of every account with `None`), in key order.
fn list_in(
    table: &impl ReadableTable<DocKey<'static>, &'static [u8]>,
    account: Option<&str>,
) -> Result<Vec<(String, Stored)>, StoreError> {
    let mut found = Vec::new();
    let range = match account {
        Some(account) => table.range((account, "")..).map_err(db_error)?,
        None => table.range::<DocKey<'static>>(..).map_err(db_error)?,
    };
    for entry in range {
        let (key, value) = entry.map_err(db_error)?;
        let (key_account, key_id) = key.value();
        if account.is_some_and(|wanted| wanted != key_account) {
            break;
        }
        found.push((
            key_account.to_owned(),
            decode(key_account, key_id, value.value())?,
        ));
    }
    Ok(found)
}

/// Reads through a read-only snapshot.
pub(super) fn read_get(
    txn: &ReadTransaction,
    collection: Collection,
    account: &str,
    id: &str,
) -> Result<Option<Stored>, StoreError> {
    get_in(
        &txn.open_table(table(collection)).map_err(db_error)?,
        account,
        id,
    )
}

/// Lists through a read-only snapshot.
pub(super) fn read_list(
    txn: &ReadTransaction,
    collection: Collection,
    account: Option<&str>,
) -> Result<Vec<(String, Stored)>, StoreError> {
    list_in(
        &txn.open_table(table(collection)).map_err(db_error)?,
        account,
    )
}

/// Reads inside a write transaction (seeing its earlier writes).
pub(super) fn write_get(
    txn: &WriteTransaction,
    collection: Collection,
    account: &str,
    id: &str,
) -> Result<Option<Stored>, StoreError> {
    get_in(
        &txn.open_table(table(collection)).map_err(db_error)?,
        account,
        id,
    )
}

/// Lists inside a write transaction.
pub(super) fn write_list(
    txn: &WriteTransaction,
    collection: Collection,
    account: Option<&str>,
) -> Result<Vec<(String, Stored)>, StoreError> {
    list_in(
        &txn.open_table(table(collection)).map_err(db_error)?,
        account,
    )
}

/// Writes `doc` as document `id` with the next revision; returns what was stored. Errors of the
/// database itself come back as `Err(Ok(redb error))` so the view can mark the store degraded.
pub(super) fn put(
    txn: &WriteTransaction,
    collection: Collection,
    account: &str,
    id: &str,
    doc: serde_json::Map<String, serde_json::Value>,
) -> Result<Stored, Result<redb::Error, StoreError>> {
    let mut table = txn
        .open_table(table(collection))
        .map_err(|e| Ok(e.into()))?;
    let previous = get_in(&table, account, id)
        .map_err(Err)?
        .map(|stored| stored.rev);
    let (rev, bytes) = super::encode(account, id, previous.as_deref(), &doc).map_err(Err)?;
    table
        .insert((account, id), bytes.as_slice())
        .map_err(|e| Ok(e.into()))?;
    Ok(Stored {
        id: id.to_owned(),
        rev,
        doc,
    })
}

/// Removes document `id`; returns it as it was.
pub(super) fn remove(
    txn: &WriteTransaction,
    collection: Collection,
    account: &str,
    id: &str,
) -> Result<Option<Stored>, Result<redb::Error, StoreError>> {
    let mut table = txn
        .open_table(table(collection))
        .map_err(|e| Ok(e.into()))?;
    let removed = table.remove((account, id)).map_err(|e| Ok(e.into()))?;
    match removed {
        Some(guard) => decode(account, id, guard.value()).map(Some).map_err(Err),
        None => Ok(None),
    }
}

/// Removes every document of `account` in every collection.
pub(super) fn remove_account(txn: &WriteTransaction, account: &str) -> Result<(), redb::Error> {
    for collection in Collection::ALL {
        let mut table = txn.open_table(table(collection))?;
        table.retain_in((account, "").., |(key_account, _), _| {
            key_account != account
        })?;
    }
    Ok(())
}

/// The embedded store: one `redb` database file, reopened after a failed write once the data
/// directory takes writes again.
pub(super) struct RedbStore {
    /// The database file.
    path: PathBuf,
    /// The open database; `None` while it is closed after a failure and not reopened yet.
    db: RwLock<Option<Arc<Database>>>,
    /// Serialises reopening.
    reopening: Mutex<()>,
    /// Whether writes work, and the failure counters.
    health: Arc<StoreHealth>,
}

impl RedbStore {
    /// Opens (creating when missing) the store file at `path`, every table created up front so
    /// that readers never meet a missing one.
    pub(super) fn open_file(path: &Path, health: Arc<StoreHealth>) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(db_error)?;
        let store = Self {
            path: path.to_owned(),
            db: RwLock::new(Some(Arc::new(db))),
            reopening: Mutex::new(()),
            health,
        };
        store.write(|_| Ok::<(), StoreError>(()))?;
        Ok(store)
    }

    /// The open database, or why there is none.
    fn database(&self) -> Result<Arc<Database>, StoreError> {
        let current = self
            .db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        current.ok_or_else(|| StoreError::Unavailable {
            reason: self
                .health
                .problem()
                .unwrap_or_else(|| "the database is closed".to_owned()),
        })
    }

    /// Reopens the database after a failed write, once a probe write to the data directory
    /// succeeds; true when the store takes writes (again).
    pub(super) fn recover(&self) -> bool {
        let _serialised = self
            .reopening
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.health.problem().is_none() {
            return true;
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        if let Err(error) = health::probe_writable(dir) {
            tracing::debug!(%error, "store still cannot write");
            return false;
        }
        let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
        // Drop our handle first: the file stays locked while any handle is open.
        *slot = None;
        match Database::create(&self.path) {
            Ok(db) => {
                *slot = Some(Arc::new(db));
                self.health.recovered();
                tracing::info!(path = %self.path.display(), "store reopened and takes writes again");
                true
            }
            Err(error) => {
                let error = ErrorChain(&error).to_string();
                tracing::warn!(%error, "store could not be reopened yet");
                false
            }
        }
    }

    /// A consistent read-only snapshot of the last commit.
    pub(super) fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        self.database()?.begin_read().map_err(db_error)
    }

    /// Runs `change` in one write transaction and commits it durably when it returns `Ok`.
    pub(super) fn write<T, E: From<StoreError>>(
        &self,
        change: impl FnOnce(&mut View<WriteSource<'_>>) -> Result<T, E>,
    ) -> Result<T, E> {
        if self.health.problem().is_some() {
            self.recover();
        }
        let db = self.database().inspect_err(|_| self.health.refused())?;
        let failed = |error: StoreError| {
            self.note_failure(&error);
            error
        };
        let mut txn = db.begin_write().map_err(db_error).map_err(failed)?;
        txn.set_durability(Durability::Immediate)
            .map_err(db_error)
            .map_err(failed)?;
        for collection in Collection::ALL {
            txn.open_table(table(collection))
                .map_err(db_error)
                .map_err(failed)?;
        }
        let mut view = View {
            txn: WriteSource::Redb(&txn),
            failure: RefCell::new(None),
        };
        let outcome = change(&mut view);
        if let Some(reason) = view.failure.into_inner() {
            self.health.write_failed(reason);
        }
        let outcome = outcome?;
        txn.commit().map_err(db_error).map_err(failed)?;
        Ok(outcome)
    }

    /// Marks the store degraded after a database failure in a write.
    fn note_failure(&self, error: &StoreError) {
        let reason = ErrorChain(error).to_string();
        tracing::error!(error = %reason, "store write failed; writes are refused until it recovers");
        self.health.write_failed(reason);
    }
}
