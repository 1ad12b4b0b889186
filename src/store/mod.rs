//! Embedded, transactional document store for the `/v2` API (accounts, users, devices, callflows
//! and metaflows), kept in one `redb` file under the data directory.
//!
//! Every commit is made with immediate durability (fsync before the commit returns), so a write
//! acknowledged to a client survives a crash right after; `redb`'s copy-on-write commit leaves
//! either the old or the new state after a crash during a write. Each document carries a
//! [`revision`] that changes on every write.

mod directory;
pub mod revision;

use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};
use serde_json::{Map, Value};

pub use directory::{MetaflowDirectory, account_scope, device_scope, string_list, user_scope};

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

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory that was to be created.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The database file or a transaction failed.
    #[error("store failure: {0}")]
    Database(#[from] redb::Error),
    /// A stored record does not decode (the file was altered outside the store).
    #[error("stored record {account}/{id} is corrupt: {source}")]
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

/// The store: one `redb` database file.
pub struct Store {
    db: Database,
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
        let store = Self { db };
        // Create every table up front so that readers never meet a missing table.
        store.write(|_| Ok::<(), StoreError>(()))?;
        Ok(store)
    }

    /// A consistent read-only view of the last committed state.
    pub fn read(&self) -> Result<ReadView, StoreError> {
        Ok(ReadView {
            txn: self.db.begin_read().map_err(db_error)?,
        })
    }

    /// Runs `change` in one write transaction and commits it durably when it returns `Ok`;
    /// on `Err` nothing it did is kept. Writers are serialised by the database.
    pub fn write<T, E: From<StoreError>>(
        &self,
        change: impl FnOnce(&mut WriteView<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut txn = self.db.begin_write().map_err(db_error)?;
        txn.set_durability(Durability::Immediate)
            .map_err(db_error)?;
        for collection in Collection::ALL {
            txn.open_table(collection.table()).map_err(db_error)?;
        }
        let outcome = change(&mut WriteView { txn: &txn })?;
        txn.commit().map_err(db_error)?;
        Ok(outcome)
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
    /// Writes `doc` as document `id`, giving it the next revision; returns what was stored.
    pub fn put(
        &mut self,
        collection: Collection,
        account: &str,
        id: &str,
        doc: Map<String, Value>,
    ) -> Result<Stored, StoreError> {
        let mut table = self.txn.open_table(collection.table()).map_err(db_error)?;
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
            .map_err(db_error)?;
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
        let mut table = self.txn.open_table(collection.table()).map_err(db_error)?;
        let removed = table.remove((account, id)).map_err(db_error)?;
        match removed {
            Some(guard) => decode(account, id, guard.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Removes every document of `account` in every collection (the account itself included).
    pub fn remove_account(&mut self, account: &str) -> Result<(), StoreError> {
        for collection in Collection::ALL {
            let mut table = self.txn.open_table(collection.table()).map_err(db_error)?;
            table
                .retain_in((account, "").., |(key_account, _), _| {
                    key_account != account
                })
                .map_err(db_error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
