//! Transactional document store for the `/v2` API (accounts, users, devices, callflows and
//! metaflows): an embedded `redb` file for a proxy on its own ([`embedded`]), or PostgreSQL
//! shared by the proxies of a cluster ([`postgres`]), behind one API.
//!
//! Both keep the same promises: a write runs as one transaction that sees the latest committed
//! state, an acknowledged write is durable, and each document carries a [`revision`] that
//! changes on every write. Reads never wait on a network: the PostgreSQL store serves them from
//! a snapshot in memory that follows the database's changes.

mod directory;
mod embedded;
mod health;
mod memory;
mod merged;
pub mod postgres;
pub mod revision;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

pub use directory::{MetaflowDirectory, account_scope, device_scope, string_list, user_scope};
pub use health::StoreHealth;
pub use memory::Docs;

use crate::base::ErrorChain;
use embedded::RedbStore;
use memory::Overlay;
use postgres::PgStore;

/// Name of the store file inside the data directory.
pub const STORE_FILE_NAME: &str = "store.redb";

/// The kinds of documents the store keeps, one table each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

    /// The collection's name: its `redb` table, its `collection` in PostgreSQL.
    pub fn name(self) -> &'static str {
        match self {
            Collection::Accounts => "accounts",
            Collection::Users => "users",
            Collection::Devices => "devices",
            Collection::Callflows => "callflows",
            Collection::Metaflows => "metaflows",
        }
    }

    /// The collection called `name`, as written by [`Collection::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
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
    /// PostgreSQL refused or failed a statement.
    #[error("PostgreSQL failure")]
    Postgres(#[from] tokio_postgres::Error),
    /// The store cannot take writes now (the database is closed after a failed write, or
    /// PostgreSQL is unreachable); reads still work.
    #[error("store unavailable: {reason}")]
    Unavailable {
        /// Why, in words an operator can act on.
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

/// The stored shape of one document in `redb`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    rev: String,
    doc: Map<String, Value>,
}

/// Decodes a `redb` record.
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

/// The next revision of a document and its `redb` record bytes.
fn encode(
    account: &str,
    id: &str,
    previous_rev: Option<&str>,
    doc: &Map<String, Value>,
) -> Result<(String, Vec<u8>), StoreError> {
    let encode_error = |source| StoreError::Corrupt {
        account: account.to_owned(),
        id: id.to_owned(),
        source,
    };
    let content = serde_json::to_vec(doc).map_err(encode_error)?;
    let rev = revision::next_revision(previous_rev, &content);
    let record = Record {
        rev,
        doc: doc.clone(),
    };
    let bytes = serde_json::to_vec(&record).map_err(encode_error)?;
    Ok((record.rev, bytes))
}

/// Where the documents are kept.
enum Backend {
    /// The embedded file.
    Redb(RedbStore),
    /// A PostgreSQL database shared with other proxies.
    Postgres(PgStore),
}

/// The store the API and the call core share.
pub struct Store {
    backend: Backend,
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
        let health = Arc::new(StoreHealth::default());
        Ok(Self {
            backend: Backend::Redb(RedbStore::open_file(path, Arc::clone(&health))?),
            health,
        })
    }

    /// Connects to the PostgreSQL database at `url`, creates or migrates its schema and loads
    /// every document, waiting at most `wait` for the first connection; afterwards the store
    /// reconnects by itself whenever the connection is lost.
    pub fn open_postgres(url: &str, wait: std::time::Duration) -> Result<Self, StoreError> {
        let health = Arc::new(StoreHealth::default());
        Ok(Self {
            backend: Backend::Postgres(PgStore::connect(url, Arc::clone(&health), wait)?),
            health,
        })
    }

    /// Write health and failure counters, for `/ready` and `/metrics`.
    pub fn health(&self) -> Arc<StoreHealth> {
        Arc::clone(&self.health)
    }

    /// Brings a degraded store back when it can be: reopens the embedded file once the data
    /// directory takes writes; a PostgreSQL store reconnects by itself, so this only reports.
    /// True when the store takes writes.
    pub fn recover(&self) -> bool {
        match &self.backend {
            Backend::Redb(store) => store.recover(),
            Backend::Postgres(_) => self.health.problem().is_none(),
        }
    }

    /// Calls `listener` after documents were changed by someone else (another proxy sharing the
    /// PostgreSQL database), so that what is derived from them (the metaflow directory) is
    /// rebuilt. Writes made through this store are not reported: their caller knows.
    pub fn on_remote_change(&self, listener: Box<dyn Fn() + Send + Sync>) {
        if let Backend::Postgres(store) = &self.backend {
            store.on_remote_change(listener);
        }
    }

    /// A consistent read-only view of the last committed state (for PostgreSQL: the last state
    /// this proxy has seen, which follows the database within a fraction of a second).
    pub fn read(&self) -> Result<ReadView, StoreError> {
        let txn = match &self.backend {
            Backend::Redb(store) => ReadSource::Redb(store.begin_read()?),
            Backend::Postgres(store) => ReadSource::Memory(store.snapshot()),
        };
        Ok(ReadView {
            txn,
            failure: RefCell::new(None),
        })
    }

    /// Runs `change` in one write transaction and commits it durably when it returns `Ok`;
    /// on `Err` nothing it did is kept. Writers are serialised (across every proxy of a
    /// cluster). A failure of the database itself marks the store degraded until it recovers.
    pub fn write<T, E: From<StoreError>>(
        &self,
        change: impl FnOnce(&mut WriteView<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        match &self.backend {
            Backend::Redb(store) => store.write(change),
            Backend::Postgres(store) => store.write(change),
        }
    }
}

/// Reads documents through one kind of transaction: what [`View`]'s reads go through.
pub trait OpenTable {
    /// The document `id` of `account` in `collection`.
    fn get_doc(
        &self,
        collection: Collection,
        account: &str,
        id: &str,
    ) -> Result<Option<Stored>, StoreError>;

    /// The documents of `account` (of every account with `None`) in `collection`, in key order.
    fn list_docs(
        &self,
        collection: Collection,
        account: Option<&str>,
    ) -> Result<Vec<(String, Stored)>, StoreError>;
}

/// What a read-only view reads: a `redb` snapshot or the in-memory one.
pub enum ReadSource {
    /// A `redb` read transaction.
    Redb(redb::ReadTransaction),
    /// The PostgreSQL store's snapshot.
    Memory(Arc<Docs>),
}

impl OpenTable for ReadSource {
    fn get_doc(
        &self,
        collection: Collection,
        account: &str,
        id: &str,
    ) -> Result<Option<Stored>, StoreError> {
        match self {
            Self::Redb(txn) => embedded::read_get(txn, collection, account, id),
            Self::Memory(docs) => Ok(docs.get(collection, account, id).cloned()),
        }
    }

    fn list_docs(
        &self,
        collection: Collection,
        account: Option<&str>,
    ) -> Result<Vec<(String, Stored)>, StoreError> {
        match self {
            Self::Redb(txn) => embedded::read_list(txn, collection, account),
            Self::Memory(docs) => Ok(docs.list(collection, account)),
        }
    }
}

/// What a write transaction works on: a `redb` write transaction or an overlay that the
/// PostgreSQL store commits when the change returns `Ok`.
pub enum WriteSource<'txn> {
    /// A `redb` write transaction.
    Redb(&'txn redb::WriteTransaction),
    /// Changes over the freshest snapshot, taken under the cluster-wide write lock.
    Memory(Overlay),
}

impl OpenTable for WriteSource<'_> {
    fn get_doc(
        &self,
        collection: Collection,
        account: &str,
        id: &str,
    ) -> Result<Option<Stored>, StoreError> {
        match self {
            Self::Redb(txn) => embedded::write_get(txn, collection, account, id),
            Self::Memory(overlay) => Ok(overlay.get(collection, account, id)),
        }
    }

    fn list_docs(
        &self,
        collection: Collection,
        account: Option<&str>,
    ) -> Result<Vec<(String, Stored)>, StoreError> {
        match self {
            Self::Redb(txn) => embedded::write_list(txn, collection, account),
            Self::Memory(overlay) => Ok(overlay.list(collection, account)),
        }
    }
}

/// Documents seen through one transaction: [`ReadView`] or [`WriteView`].
pub struct View<T> {
    txn: T,
    /// The first database failure met through this view (writes mark the store degraded).
    failure: RefCell<Option<String>>,
}

/// A read-only snapshot of the store.
pub type ReadView = View<ReadSource>;

/// The inside of one write transaction: reads see the writes made before them.
pub type WriteView<'txn> = View<WriteSource<'txn>>;

impl<T: OpenTable> View<T> {
    /// The document `id` of `account` in `collection`, if any.
    pub fn get(
        &self,
        collection: Collection,
        account: &str,
        id: &str,
    ) -> Result<Option<Stored>, StoreError> {
        self.txn.get_doc(collection, account, id)
    }

    /// Every document of `account` in `collection`, in id order.
    pub fn list(&self, collection: Collection, account: &str) -> Result<Vec<Stored>, StoreError> {
        Ok(self
            .txn
            .list_docs(collection, Some(account))?
            .into_iter()
            .map(|(_, stored)| stored)
            .collect())
    }

    /// Every document of every account in `collection`, as `(account_id, document)`.
    pub fn list_all(&self, collection: Collection) -> Result<Vec<(String, Stored)>, StoreError> {
        self.txn.list_docs(collection, None)
    }
}

impl WriteView<'_> {
    /// Remembers a database error met in this write as a store failure, and converts it.
    fn failed(&self, error: redb::Error) -> StoreError {
        let error = StoreError::Database(error);
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
        match &mut self.txn {
            WriteSource::Redb(txn) => {
                let txn = *txn;
                embedded::put(txn, collection, account, id, doc).map_err(|error| match error {
                    Ok(database) => self.failed(database),
                    Err(other) => other,
                })
            }
            WriteSource::Memory(overlay) => {
                let previous = overlay
                    .get(collection, account, id)
                    .map(|stored| stored.rev);
                let (rev, _) = encode(account, id, previous.as_deref(), &doc)?;
                let stored = Stored {
                    id: id.to_owned(),
                    rev,
                    doc,
                };
                overlay.put(collection, account, stored.clone());
                Ok(stored)
            }
        }
    }

    /// Removes document `id`; returns it as it was, if it existed.
    pub fn remove(
        &mut self,
        collection: Collection,
        account: &str,
        id: &str,
    ) -> Result<Option<Stored>, StoreError> {
        match &mut self.txn {
            WriteSource::Redb(txn) => {
                let txn = *txn;
                embedded::remove(txn, collection, account, id).map_err(|error| match error {
                    Ok(database) => self.failed(database),
                    Err(other) => other,
                })
            }
            WriteSource::Memory(overlay) => Ok(overlay.remove(collection, account, id)),
        }
    }

    /// Removes every document of `account` in every collection (the account itself included).
    pub fn remove_account(&mut self, account: &str) -> Result<(), StoreError> {
        match &mut self.txn {
            WriteSource::Redb(txn) => {
                let txn = *txn;
                embedded::remove_account(txn, account).map_err(|error| self.failed(error))
            }
            WriteSource::Memory(overlay) => {
                overlay.remove_account(account);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests;
