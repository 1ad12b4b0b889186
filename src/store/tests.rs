//! Store tests: revisions, transactions, and what survives an unclean stop.

use serde_json::{Map, Value, json};

use super::*;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[test]
fn put_get_list_remove_with_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    let first = store
        .write(|txn| {
            txn.put(
                Collection::Users,
                "acc",
                "u1",
                object(json!({"first_name": "A"})),
            )
        })
        .unwrap();
    assert!(first.rev.starts_with("1-"));
    let second = store
        .write(|txn| {
            txn.put(
                Collection::Users,
                "acc",
                "u1",
                object(json!({"first_name": "B"})),
            )
        })
        .unwrap();
    assert!(second.rev.starts_with("2-"));
    store
        .write(|txn| txn.put(Collection::Users, "acc2", "u9", Map::new()))
        .unwrap();
    let view = store.read().unwrap();
    let got = view.get(Collection::Users, "acc", "u1").unwrap().unwrap();
    assert_eq!(got.doc.get("first_name"), Some(&json!("B")));
    assert_eq!(got.rev, second.rev);
    let listed = view.list(Collection::Users, "acc").unwrap();
    assert_eq!(listed.len(), 1, "other accounts' documents are not listed");
    assert_eq!(view.list_all(Collection::Users).unwrap().len(), 2);
    let removed = store
        .write(|txn| txn.remove(Collection::Users, "acc", "u1"))
        .unwrap();
    assert_eq!(removed.map(|stored| stored.rev), Some(second.rev));
    assert!(
        store
            .read()
            .unwrap()
            .get(Collection::Users, "acc", "u1")
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_failed_change_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    let outcome: Result<(), StoreError> = store.write(|txn| {
        txn.put(Collection::Accounts, "a", "", Map::new())?;
        Err(StoreError::Database(redb::Error::TransactionInProgress))
    });
    assert!(outcome.is_err());
    assert!(
        store
            .read()
            .unwrap()
            .get(Collection::Accounts, "a", "")
            .unwrap()
            .is_none()
    );
}

#[test]
fn remove_account_removes_only_that_account() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    store
        .write(|txn| {
            for account in ["a", "ab", "b"] {
                txn.put(Collection::Accounts, account, "", Map::new())?;
                txn.put(Collection::Devices, account, "d", Map::new())?;
                txn.put(Collection::Metaflows, account, "account", Map::new())?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    store.write(|txn| txn.remove_account("a")).unwrap();
    let view = store.read().unwrap();
    for collection in [
        Collection::Accounts,
        Collection::Devices,
        Collection::Metaflows,
    ] {
        let accounts: Vec<String> = view
            .list_all(collection)
            .unwrap()
            .into_iter()
            .map(|(account, _)| account)
            .collect();
        assert_eq!(accounts, ["ab", "b"]);
    }
}

/// Copies the store file as it is on disk now, as a crash at this instant would leave it.
fn snapshot_file(from: &Path, to: &Path) {
    std::fs::copy(from.join(STORE_FILE_NAME), to.join(STORE_FILE_NAME)).unwrap();
}

#[test]
fn committed_writes_survive_an_unclean_stop() {
    let live = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let store = Store::open_in(live.path()).unwrap();
    let stored = store
        .write(|txn| {
            txn.put(
                Collection::Metaflows,
                "acc",
                "account",
                object(json!({"binding_digit": "#"})),
            )
        })
        .unwrap();
    // No clean shutdown: the handle is leaked and the file copied while still open.
    std::mem::forget(store);
    snapshot_file(live.path(), crashed.path());
    let reopened = Store::open_in(crashed.path()).unwrap();
    let got = reopened
        .read()
        .unwrap()
        .get(Collection::Metaflows, "acc", "account")
        .unwrap()
        .unwrap();
    assert_eq!(got, stored);
}

#[test]
fn a_crash_during_a_write_leaves_the_old_document() {
    let live = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let store = Store::open_in(live.path()).unwrap();
    let old = store
        .write(|txn| {
            txn.put(
                Collection::Users,
                "acc",
                "u",
                object(json!({"first_name": "old"})),
            )
        })
        .unwrap();
    store
        .write(|txn| {
            txn.put(
                Collection::Users,
                "acc",
                "u",
                object(json!({"first_name": "new"})),
            )?;
            txn.put(Collection::Users, "acc", "v", Map::new())?;
            // The process dies here, before the commit.
            snapshot_file(live.path(), crashed.path());
            Ok::<_, StoreError>(())
        })
        .unwrap();
    drop(store);
    let reopened = Store::open_in(crashed.path()).unwrap();
    let view = reopened.read().unwrap();
    assert_eq!(view.get(Collection::Users, "acc", "u").unwrap(), Some(old));
    assert!(view.get(Collection::Users, "acc", "v").unwrap().is_none());
}

#[test]
fn stored_metaflows_beyond_the_pattern_budget_are_skipped_not_fatal() {
    use crate::metaflow::limits::{MAX_LOADED_PATTERNS, MAX_PATTERNS_PER_DOCUMENT};
    use crate::store::{MetaflowDirectory, device_scope};
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open_in(dir.path()).unwrap());
    let documents = MAX_LOADED_PATTERNS / MAX_PATTERNS_PER_DOCUMENT + 1;
    store
        .write(|view| {
            view.put(Collection::Accounts, "acc", "", Map::new())?;
            let last = format!("d{:03}", documents - 1);
            for (device, user) in [("d000", "first"), (last.as_str(), "last")] {
                let doc = object(json!({ "sip": { "username": user } }));
                view.put(Collection::Devices, "acc", device, doc)?;
            }
            // Written past the API, as an older version without limits could have stored it.
            let oversized: Map<String, Value> = (0..3000)
                .map(|index| (format!("^{index}$"), json!({"module": "hangup"})))
                .collect();
            view.put(
                Collection::Metaflows,
                "acc",
                &device_scope("huge"),
                object(json!({ "patterns": oversized })),
            )?;
            for document in 0..documents {
                let patterns: Map<String, Value> = (0..MAX_PATTERNS_PER_DOCUMENT)
                    .map(|index| (format!("^{index}#$"), json!({"module": "hangup"})))
                    .collect();
                view.put(
                    Collection::Metaflows,
                    "acc",
                    &device_scope(&format!("d{document:03}")),
                    object(json!({ "patterns": patterns })),
                )?;
            }
            Ok::<(), StoreError>(())
        })
        .unwrap();
    let started = std::time::Instant::now();
    let directory = MetaflowDirectory::load(store, "acc").unwrap();
    assert!(directory.for_endpoint("first", "acc", None).is_some());
    assert!(
        directory.for_endpoint("last", "acc", None).is_none(),
        "the document beyond the budget is skipped"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_accounts_pbx_auth_is_read_for_the_calls_it_places() {
    use crate::store::MetaflowDirectory;
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open_in(dir.path()).unwrap());
    store
        .write(|view| {
            view.put(Collection::Accounts, "default", "", Map::new())?;
            let auth = object(json!({"name": "A", "pbx_auth": {"username": "u", "password": "p"}}));
            view.put(Collection::Accounts, "acme", "", auth)?;
            Ok::<(), StoreError>(())
        })
        .unwrap();
    let directory = MetaflowDirectory::load(store, "default").unwrap();
    assert_eq!(
        directory.pbx_auth(Some("acme")),
        Some(("u".to_string(), "p".to_string()))
    );
    assert_eq!(
        directory.pbx_auth(None),
        None,
        "the default account has none"
    );
    assert_eq!(directory.pbx_auth(Some("nobody")), None);
}

#[test]
fn a_callflows_first_number_is_what_the_callflow_module_dials() {
    use crate::store::MetaflowDirectory;
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open_in(dir.path()).unwrap());
    store
        .write(|view| {
            view.put(Collection::Accounts, "default", "", Map::new())?;
            let callflow = object(json!({"numbers": ["2000", "2001"], "flow": {}}));
            view.put(Collection::Callflows, "default", "cf1", callflow)?;
            Ok::<(), StoreError>(())
        })
        .unwrap();
    let directory = MetaflowDirectory::load(store, "default").unwrap();
    assert_eq!(directory.callflow_number(None, "cf1"), Some("2000".into()));
    assert_eq!(directory.callflow_number(Some("default"), "nope"), None);
}

#[test]
fn devices_are_found_by_id_and_by_owner_for_move_and_intercept() {
    use crate::store::MetaflowDirectory;
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open_in(dir.path()).unwrap());
    store
        .write(|view| {
            view.put(Collection::Accounts, "default", "", Map::new())?;
            for (id, user, owner) in [
                ("d2", "desk", "u1"),
                ("d1", "mobile", "u1"),
                ("d3", "x", "u2"),
            ] {
                let doc = object(json!({"sip": {"username": user}, "owner_id": owner}));
                view.put(Collection::Devices, "default", id, doc)?;
            }
            Ok::<(), StoreError>(())
        })
        .unwrap();
    let directory = MetaflowDirectory::load(store, "default").unwrap();
    assert_eq!(directory.device_sip_user(None, "d2"), Some("desk".into()));
    assert_eq!(directory.device_sip_user(None, "d9"), None);
    assert_eq!(
        directory.owner_sip_users(None, "u1"),
        ["mobile", "desk"],
        "by device id"
    );
    assert!(directory.owner_sip_users(Some("nobody"), "u1").is_empty());
}
