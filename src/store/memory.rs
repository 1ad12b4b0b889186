//! The documents held in memory: the snapshot a PostgreSQL-backed store serves every read from
//! (calls and API reads never wait on the database), and the overlay a write transaction builds
//! on top of it before it is sent to the database.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Collection, Stored};

/// Key of one document: collection, account, id.
pub(super) type DocKey = (Collection, String, String);

/// Every document of the store as of database change number `seq`.
#[derive(Debug, Default, Clone)]
pub struct Docs {
    /// The documents, in key order (account, then id, inside each collection).
    map: BTreeMap<DocKey, Stored>,
    /// The highest change number applied (PostgreSQL's `mfp_documents.seq`).
    seq: i64,
}

impl Docs {
    /// The highest change number this snapshot includes.
    pub(super) fn seq(&self) -> i64 {
        self.seq
    }

    /// The document `id` of `account` in `collection`.
    pub(super) fn get(&self, collection: Collection, account: &str, id: &str) -> Option<&Stored> {
        self.map
            .get(&(collection, account.to_owned(), id.to_owned()))
    }

    /// Every document of `account` (of every account with `None`) in `collection`, in key order.
    pub(super) fn list(
        &self,
        collection: Collection,
        account: Option<&str>,
    ) -> Vec<(String, Stored)> {
        in_range(&self.map, collection, account)
            .map(|((_, key_account, _), stored)| (key_account.clone(), stored.clone()))
            .collect()
    }

    /// Applies one change: `Some` writes the document, `None` removes it; `seq` is its number.
    pub(super) fn apply(&mut self, key: DocKey, value: Option<Stored>, seq: i64) {
        match value {
            Some(stored) => {
                self.map.insert(key, stored);
            }
            None => {
                self.map.remove(&key);
            }
        }
        self.seq = self.seq.max(seq);
    }
}

/// The entries of `map` in `collection` (and `account` when given), in key order.
fn in_range<'m, V>(
    map: &'m BTreeMap<DocKey, V>,
    collection: Collection,
    account: Option<&'m str>,
) -> impl Iterator<Item = (&'m DocKey, &'m V)> + 'm {
    let start = (
        collection,
        account.unwrap_or_default().to_owned(),
        String::new(),
    );
    map.range(start..)
        .take_while(move |((key_collection, key_account, _), _)| {
            *key_collection == collection && account.is_none_or(|wanted| wanted == key_account)
        })
}

/// A write in progress over a snapshot: reads see the writes made before them; nothing is
/// visible to anyone else until the store commits the changes.
#[derive(Debug)]
pub struct Overlay {
    /// The snapshot the write started from (fresh: taken under the cluster-wide write lock).
    base: Arc<Docs>,
    /// The writes so far: `Some` written, `None` removed.
    changes: BTreeMap<DocKey, Option<Stored>>,
}

impl Overlay {
    /// A write starting from `base`.
    pub(super) fn new(base: Arc<Docs>) -> Self {
        Self {
            base,
            changes: BTreeMap::new(),
        }
    }

    /// The document as this write sees it.
    pub(super) fn get(&self, collection: Collection, account: &str, id: &str) -> Option<Stored> {
        let key = (collection, account.to_owned(), id.to_owned());
        match self.changes.get(&key) {
            Some(changed) => changed.clone(),
            None => self.base.map.get(&key).cloned(),
        }
    }

    /// The documents as this write sees them, in key order.
    pub(super) fn list(
        &self,
        collection: Collection,
        account: Option<&str>,
    ) -> Vec<(String, Stored)> {
        let mut merged: BTreeMap<&DocKey, Option<&Stored>> =
            in_range(&self.base.map, collection, account)
                .map(|(key, stored)| (key, Some(stored)))
                .collect();
        for (key, changed) in in_range(&self.changes, collection, account) {
            merged.insert(key, changed.as_ref());
        }
        merged
            .into_iter()
            .filter_map(|((_, key_account, _), stored)| {
                stored.map(|stored| (key_account.clone(), stored.clone()))
            })
            .collect()
    }

    /// Records a write of `stored`.
    pub(super) fn put(&mut self, collection: Collection, account: &str, stored: Stored) {
        self.changes.insert(
            (collection, account.to_owned(), stored.id.clone()),
            Some(stored),
        );
    }

    /// Records a removal; returns the document as it was.
    pub(super) fn remove(
        &mut self,
        collection: Collection,
        account: &str,
        id: &str,
    ) -> Option<Stored> {
        let previous = self.get(collection, account, id);
        if previous.is_some() {
            self.changes
                .insert((collection, account.to_owned(), id.to_owned()), None);
        }
        previous
    }

    /// Records the removal of every document of `account` in every collection.
    pub(super) fn remove_account(&mut self, account: &str) {
        for collection in Collection::ALL {
            for (_, stored) in self.list(collection, Some(account)) {
                self.remove(collection, account, &stored.id);
            }
        }
    }

    /// The changes to commit, in key order.
    pub(super) fn into_changes(self) -> Vec<(DocKey, Option<Stored>)> {
        self.changes.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    fn stored(id: &str, n: u64) -> Stored {
        let mut doc = Map::new();
        doc.insert("n".into(), json!(n));
        Stored {
            id: id.to_owned(),
            rev: format!("{n}-x"),
            doc,
        }
    }

    fn key(collection: Collection, account: &str, id: &str) -> DocKey {
        (collection, account.to_owned(), id.to_owned())
    }

    fn base() -> Arc<Docs> {
        let mut docs = Docs::default();
        docs.apply(key(Collection::Users, "a", "u1"), Some(stored("u1", 1)), 1);
        docs.apply(key(Collection::Users, "a", "u2"), Some(stored("u2", 2)), 2);
        docs.apply(key(Collection::Users, "b", "u1"), Some(stored("u1", 3)), 3);
        docs.apply(
            key(Collection::Devices, "a", "d1"),
            Some(stored("d1", 4)),
            4,
        );
        Arc::new(docs)
    }

    #[test]
    fn lists_stay_inside_their_collection_and_account() {
        let docs = base();
        let ids = |list: Vec<(String, Stored)>| -> Vec<String> {
            list.into_iter()
                .map(|(account, s)| format!("{account}/{}", s.id))
                .collect()
        };
        assert_eq!(
            ids(docs.list(Collection::Users, Some("a"))),
            ["a/u1", "a/u2"]
        );
        assert_eq!(
            ids(docs.list(Collection::Users, None)),
            ["a/u1", "a/u2", "b/u1"]
        );
        assert_eq!(
            ids(docs.list(Collection::Devices, Some("b"))),
            Vec::<String>::new()
        );
        assert_eq!(docs.seq(), 4);
    }

    #[test]
    fn an_overlay_sees_its_own_writes_and_removals_and_leaves_the_base_alone() {
        let docs = base();
        let mut overlay = Overlay::new(Arc::clone(&docs));
        overlay.put(Collection::Users, "a", stored("u3", 9));
        assert_eq!(
            overlay.remove(Collection::Users, "a", "u1").map(|s| s.id),
            Some("u1".into())
        );
        assert!(overlay.remove(Collection::Users, "a", "nope").is_none());
        let seen: Vec<String> = overlay
            .list(Collection::Users, Some("a"))
            .into_iter()
            .map(|(_, s)| s.id)
            .collect();
        assert_eq!(seen, ["u2", "u3"]);
        assert!(overlay.get(Collection::Users, "a", "u1").is_none());
        assert!(
            docs.get(Collection::Users, "a", "u1").is_some(),
            "base untouched"
        );
        let changes = overlay.into_changes();
        assert_eq!(changes.len(), 2, "{changes:?}");
    }

    #[test]
    fn removing_an_account_removes_its_documents_in_every_collection_only() {
        let mut overlay = Overlay::new(base());
        overlay.remove_account("a");
        assert!(overlay.list(Collection::Users, Some("a")).is_empty());
        assert!(overlay.list(Collection::Devices, Some("a")).is_empty());
        assert_eq!(overlay.list(Collection::Users, Some("b")).len(), 1);
        let mut docs = (*base()).clone();
        for (key, value) in overlay.into_changes() {
            docs.apply(key, value, 10);
        }
        assert_eq!(docs.list(Collection::Users, None).len(), 1);
        assert_eq!(docs.seq(), 10);
    }
}
