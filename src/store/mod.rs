//! Embedded, transactional document store for the `/v2` API (accounts, users, devices, callflows
//! and metaflows), kept in one `redb` file under the data directory.
//!
//! Every commit is made with immediate durability (fsync before the commit returns), so a write
//! acknowledged to a client survives a crash right after; `redb`'s copy-on-write commit leaves
//! either the old or the new state after a crash during a write. Each document carries a
//! [`revision`] that changes on every write.

mod directory;
mod health;
mod merged;
pub mod revision;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};
use serde_json::{Map, Value};

pub use directory::{MetaflowDirectory, account_scope, device_scope, string_list, user_scope};
pub use health::StoreHealth;

use crate::base::ErrorChain;

/// Name of the store file inside the data directory.
pub const STORE_FILE_NAME: &str = "store.redb";

/// Key of a document: the account it belongs to and its id inside that account's collection.
type DocKey<'a> = (&'a str, &'a str);
/// One table per collection, values are the JSON-encoded [`Record`].
type DocTable = TableDefinition<'static, DocKey<'static>, &'static [u8]>;

/// The kinds of documents the store keeps, one table each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Collection {
    /// Accounts, keyed `(account_id, "")`.
    Accounts,
    /// Users, keyed `(account_id, user_id)`.
    Users,
    /// Devices, keyed `(account_id, device_id)`.
    Devices,
    /// Callflows, keyed `(account_id, callflow_id)`.
    Callflows,
    /// Metaflow objects, keyed `(account_id, scope)` with scope from [`account_scope`],
    /// [`user_scope`] or [`device_scope`].
    Metaflows,
}

impl Collection {
    /// Every collection, for whole-account operations.
    pub const ALL: [Collection; 5] = [
        Collection::Accounts,
        Collection::Users,
        Collection::Devices,
        Collection::Callflows,
        Collection::Metaflows,
    ];

    fn table(self) -> DocTable {
        TableDefinition::new(match self {
            Collection::Accounts => "accounts",
            Collection::Users => "users",
            Collection::Devices => "devices",
            Collection::Callflows => "callflows",
            Collection::Metaflows => "metaflows",
        })
    }
}

/// Why the store could not do what was asked. Each variant prints only its own words; the
/// cause, when there is one, is its `source()` (see [`crate::base::ErrorChain`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("cannot create data directory {}", path.display())]
    DataDir {
        /// The directory that was to be created.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The database file or a transaction failed.
    #[error("store failure")]
    Database(#[from] redb::Error),
    /// The database is closed after a failed write and could not be reopened yet.
    #[error("store unavailable until it can be reopened: {reason}")]
    Unavailable {
        /// Why it was closed, or why reopening failed.
        reason: String,
    },
    /// A stored record does not decode (the file was altered outside the store).
    #[error("stored record {account}/{id} is corrupt")]
    Corrupt {
        /// Account part of the key.
        account: String,
        /// Id part of the key.
        id: String,
        /// Why it did not decode.
        source: serde_json::Error,
    },
}

/// Converts any `redb` error into a [`StoreError`].
fn db_error(error: impl Into<redb::Error>) -> StoreError {
    StoreError::Database(error.into())
}

/// A document as stored: its id, current revision and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Id of the document inside its collection (the scope for metaflows, `""` for accounts).
    pub id: String,
    /// Current revision, `N-hash`.
    pub rev: String,
    /// The document body (without the id or the revision).
    pub doc: Map<String, Value>,
}

/// The on-disk shape of one document.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    rev: String,
    doc: Map<String, Value>,
}

fn decode(account: &str, id: &str, bytes: &[u8]) -> Result<Stored, StoreError> {
    let record: Record = serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        account: account.to_owned(),
        id: id.to_owned(),
        source,
    })?;
    Ok(Stored {
        id: id.to_owned(),
        rev: record.rev,
        doc: record.doc,
    })
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

/// The store: one `redb` database file, reopened after a failed write once the data directory
/// takes writes again (`redb` refuses every write after an I/O error until it is reopened).
pub struct Store {
    /// The database file.
    path: PathBuf,
    /// The open database; `None` while it is closed after a failure and not reopened yet.
    db: RwLock<Option<Arc<Database>>>,
    /// Serialises reopening.
    reopening: Mutex<()>,
    /// Whether writes work, and the failure counters.
    health: Arc<StoreHealth>,
}

impl Store {
    /// Opens (creating when missing) `DATA_DIR/store.redb`, repairing it after an unclean stop.
    pub fn open_in(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        Self::open_file(&data_dir.join(STORE_FILE_NAME))
    }

    /// Opens (creating when missing) the store file at `path`.
    pub fn open_file(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(db_error)?;
        let store = Self {
            path: path.to_owned(),
            db: RwLock::new(Some(Arc::new(db))),
            reopening: Mutex::new(()),
            health: Arc::new(StoreHealth::default()),
        };
        // Create every table up front so that readers never meet a missing table.
        store.write(|_| Ok::<(), StoreError>(()))?;
        Ok(store)
    }

    /// Write health and failure counters, for `/ready` and `/metrics`.
    pub fn health(&self) -> Arc<StoreHealth> {
        Arc::clone(&self.health)
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
    /// succeeds; true when the store takes writes (again). Called before each write while the
    /// store is degraded and periodically by the process.
    pub fn recover(&self) -> bool {
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

    /// A consistent read-only view of the last committed state.
    pub fn read(&self) -> Result<ReadView, StoreError> {
        Ok(ReadView {
            txn: self.database()?.begin_read().map_err(db_error)?,
            failure: RefCell::new(None),
        })
    }

    /// Runs `change` in one write transaction and commits it durably when it returns `Ok`;
    /// on `Err` nothing it did is kept. Writers are serialised by the database. A failure of
    /// the database itself marks the store degraded until [`Store::recover`] reopens it.
    pub fn write<T, E: From<StoreError>>(
        &self,
        change: impl FnOnce(&mut WriteView<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        if self.health.problem().is_some() {
            self.recover();
        }
        let db = self.database()?;
        let failed = |error: StoreError| {
            self.note_failure(&error);
            error
        };
        let mut txn = db.begin_write().map_err(db_error).map_err(failed)?;
        txn.set_durability(Durability::Immediate)
            .map_err(db_error)
            .map_err(failed)?;
        for collection in Collection::ALL {
            txn.open_table(collection.table())
                .map_err(db_error)
                .map_err(failed)?;
        }
        let mut view = WriteView {
            txn: &txn,
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

/// Opens a collection's table in the transaction a view reads through, so that the reads of a
/// snapshot and of a write in progress are written once.
pub trait OpenTable {
    /// The table as this kind of transaction opens it.
    type Table<'a>: ReadableTable<DocKey<'static>, &'static [u8]>
    where
        Self: 'a;

    /// Opens `collection`'s table (created when the store was opened).
    fn open(&self, collection: Collection) -> Result<Self::Table<'_>, StoreError>;
}

impl OpenTable for ReadTransaction {
    type Table<'a> = redb::ReadOnlyTable<DocKey<'static>, &'static [u8]>;

    fn open(&self, collection: Collection) -> Result<Self::Table<'_>, StoreError> {
        self.open_table(collection.table()).map_err(db_error)
    }
}

impl<'txn> OpenTable for &'txn WriteTransaction {
    type Table<'a>
        = redb::Table<'txn, DocKey<'static>, &'static [u8]>
    where
        Self: 'a;

    fn open(&self, collection: Collection) -> Result<Self::Table<'_>, StoreError> {
        self.open_table(collection.table()).map_err(db_error)
    }
}

/// Documents seen through one transaction: [`ReadView`] or [`WriteView`].
pub struct View<T> {
    txn: T,
    /// The first database failure met through this view (writes mark the store degraded).
    failure: RefCell<Option<String>>,
}

/// A read-only snapshot of the store.
pub type ReadView = View<ReadTransaction>;

/// The inside of one write transaction: reads see the writes made before them.
pub type WriteView<'txn> = View<&'txn WriteTransaction>;

impl<T: OpenTable> View<T> {
    /// The document `id` of `account` in `collection`, if any.
    pub fn get(
        &self,
        collection: Collection,
        account: &str,
        id: &str,
    ) -> Result<Option<Stored>, StoreError> {
        get_in(&self.txn.open(collection)?, account, id)
    }

    /// Every document of `account` in `collection`, in id order.
    pub fn list(&self, collection: Collection, account: &str) -> Result<Vec<Stored>, StoreError> {
        Ok(list_in(&self.txn.open(collection)?, Some(account))?
            .into_iter()
            .map(|(_, stored)| stored)
            .collect())
    }

    /// Every document of every account in `collection`, as `(account_id, document)`.
    pub fn list_all(&self, collection: Collection) -> Result<Vec<(String, Stored)>, StoreError> {
        list_in(&self.txn.open(collection)?, None)
    }
}

impl WriteView<'_> {
    /// Converts a database error met in this write and remembers it as a store failure.
    fn failed(&self, error: impl Into<redb::Error>) -> StoreError {
        let error = db_error(error);
        self.failure
            .borrow_mut()
            .get_or_insert_with(|| ErrorChain(&error).to_string());
        error
    }

    /// Writes `doc` as document `id`, giving it the next revision; returns what was stored.
    pub fn put(
        &mut self,
        collection: Collection,
        account: &str,
        id: &str,
        doc: Map<String, Value>,
    ) -> Result<Stored, StoreError> {
        let mut table = self
            .txn
            .open_table(collection.table())
            .map_err(|error| self.failed(error))?;
        let previous = get_in(&table, account, id)?.map(|stored| stored.rev);
        let encode_error = |source| StoreError::Corrupt {
            account: account.to_owned(),
            id: id.to_owned(),
            source,
        };
        let content = serde_json::to_vec(&doc).map_err(encode_error)?;
        let rev = revision::next_revision(previous.as_deref(), &content);
        let record = Record { rev, doc };
        let bytes = serde_json::to_vec(&record).map_err(encode_error)?;
        table
            .insert((account, id), bytes.as_slice())
            .map_err(|error| self.failed(error))?;
        Ok(Stored {
            id: id.to_owned(),
            rev: record.rev,
            doc: record.doc,
        })
    }

    /// Removes document `id`; returns it as it was, if it existed.
    pub fn remove(
        &mut self,
        collection: Collection,
        account: &str,
        id: &str,
    ) -> Result<Option<Stored>, StoreError> {
        let mut table = self
            .txn
            .open_table(collection.table())
            .map_err(|error| self.failed(error))?;
        let removed = table
            .remove((account, id))
            .map_err(|error| self.failed(error))?;
        match removed {
            Some(guard) => decode(account, id, guard.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Removes every document of `account` in every collection (the account itself included).
    pub fn remove_account(&mut self, account: &str) -> Result<(), StoreError> {
        for collection in Collection::ALL {
            let mut table = self
                .txn
                .open_table(collection.table())
                .map_err(|error| self.failed(error))?;
            table
                .retain_in((account, "").., |(key_account, _), _| {
                    key_account != account
                })
                .map_err(|error| self.failed(error))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
