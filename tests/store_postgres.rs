//! The document store on a real PostgreSQL (Debian's `postgresql`, a temporary cluster of the
//! test's own): two stores on one database stand for two proxies. A write through one reaches
//! the other's reads by notification within a fraction of a second; writers are serialised
//! across both; removals propagate; an acknowledged write is in the database; while PostgreSQL
//! is stopped reads go on, writes are refused as unavailable and the store heals by itself;
//! stores opened together on an empty database migrate it once, without colliding.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use metaflow_proxy::store::{Collection, Store, StoreError};
use serde_json::{Map, Value, json};

use common::postgres::Postgres;

/// How long a change may take to reach the other store before the test fails (the issue's
/// bound is 200 ms; this only guards against a hang, the figure is printed).
const PROPAGATION_LIMIT: Duration = Duration::from_secs(5);

fn doc(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

fn open(pg: &Postgres) -> Store {
    Store::open_postgres(&pg.url(), Duration::from_secs(10)).expect("store on PostgreSQL")
}

/// Polls `check` until it holds or the limit passes; returns how long it took.
fn eventually(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < PROPAGATION_LIMIT,
            "{what}: not within {PROPAGATION_LIMIT:?}"
        );
        thread::sleep(Duration::from_millis(2));
    }
    started.elapsed()
}

#[test]
fn a_write_on_one_store_reaches_the_other_and_removals_too() {
    let pg = Postgres::start();
    let a = open(&pg);
    let b = open(&pg);
    let told = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&told);
    b.on_remote_change(Box::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    }));

    let stored = a
        .write(|txn| {
            txn.put(
                Collection::Accounts,
                "acc1",
                "",
                doc(json!({"name": "one"})),
            )?;
            txn.put(
                Collection::Metaflows,
                "acc1",
                "account",
                doc(json!({"binding_digit": "*", "numbers": {"1": {"module": "hangup"}}})),
            )
        })
        .unwrap();
    let took = eventually("metaflow visible on b", || {
        b.read()
            .unwrap()
            .get(Collection::Metaflows, "acc1", "account")
            .unwrap()
            .is_some_and(|seen| seen.rev == stored.rev)
    });
    println!("propagation a -> b: {took:?}");
    let seen = b
        .read()
        .unwrap()
        .get(Collection::Metaflows, "acc1", "account")
        .unwrap()
        .unwrap();
    assert_eq!(seen.doc, stored.doc, "same document, same key order");
    eventually("b's listener told", || told.load(Ordering::SeqCst) > 0);

    // The revision follows on: a write through b continues a's numbering.
    let second = b
        .write(|txn| {
            txn.put(
                Collection::Metaflows,
                "acc1",
                "account",
                doc(json!({"binding_digit": "#"})),
            )
        })
        .unwrap();
    assert!(second.rev.starts_with("2-"), "{}", second.rev);
    eventually("b's rewrite visible on a", || {
        a.read()
            .unwrap()
            .get(Collection::Metaflows, "acc1", "account")
            .unwrap()
            .is_some_and(|seen| seen.rev == second.rev)
    });

    a.write(|txn| txn.remove_account("acc1")).unwrap();
    eventually("account removal visible on b", || {
        let view = b.read().unwrap();
        view.get(Collection::Accounts, "acc1", "")
            .unwrap()
            .is_none()
            && view.list(Collection::Metaflows, "acc1").unwrap().is_empty()
    });
}

#[test]
fn writers_on_two_stores_are_serialised() {
    let pg = Postgres::start();
    let a = Arc::new(open(&pg));
    let b = Arc::new(open(&pg));
    let bump = |store: Arc<Store>| {
        thread::spawn(move || {
            for _ in 0..40 {
                store
                    .write(|txn| {
                        let current = txn
                            .get(Collection::Accounts, "counter", "")?
                            .and_then(|stored| stored.doc.get("n").and_then(Value::as_u64))
                            .unwrap_or(0);
                        txn.put(
                            Collection::Accounts,
                            "counter",
                            "",
                            doc(json!({"n": current + 1})),
                        )
                    })
                    .unwrap();
            }
        })
    };
    let (one, two) = (bump(Arc::clone(&a)), bump(Arc::clone(&b)));
    one.join().unwrap();
    two.join().unwrap();
    let fresh = open(&pg);
    let counter = fresh
        .read()
        .unwrap()
        .get(Collection::Accounts, "counter", "")
        .unwrap()
        .unwrap();
    assert_eq!(
        counter.doc["n"], 80,
        "no increment lost between the two stores"
    );
    assert!(counter.rev.starts_with("80-"), "{}", counter.rev);
}

#[test]
fn a_refused_change_leaves_nothing_and_an_acknowledged_one_is_in_the_database() {
    let pg = Postgres::start();
    let a = open(&pg);
    let refused: Result<(), StoreError> = a.write(|txn| {
        txn.put(Collection::Users, "acc", "u1", doc(json!({"x": 1})))?;
        Err(StoreError::Unavailable {
            reason: "refused by the change".into(),
        })
    });
    assert!(refused.is_err());
    assert!(
        a.read()
            .unwrap()
            .get(Collection::Users, "acc", "u1")
            .unwrap()
            .is_none()
    );
    a.write(|txn| txn.put(Collection::Users, "acc", "u2", doc(json!({"x": 2}))))
        .unwrap();
    drop(a);
    let rows = pg.psql(
        "SELECT collection || '/' || account || '/' || id FROM mfp_documents WHERE doc IS NOT NULL",
    );
    assert_eq!(rows.trim(), "users/acc/u2", "{rows}");
    let versions = pg
        .psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM mfp_schema_migrations");
    assert_eq!(versions.trim(), "1,2");
    // Opening again neither re-runs the migrations nor loses the document.
    let again = open(&pg);
    assert!(
        again
            .read()
            .unwrap()
            .get(Collection::Users, "acc", "u2")
            .unwrap()
            .is_some()
    );
}

#[test]
fn postgres_stopped_refuses_writes_keeps_reads_and_heals() {
    let mut pg = Postgres::start();
    let a = open(&pg);
    a.write(|txn| {
        txn.put(
            Collection::Accounts,
            "acc",
            "",
            doc(json!({"name": "kept"})),
        )
    })
    .unwrap();
    pg.stop();
    eventually("store notices the loss", || a.health().problem().is_some());
    let refused = a.write(|txn| txn.put(Collection::Accounts, "acc2", "", doc(json!({}))));
    match refused {
        Err(StoreError::Unavailable { reason }) => {
            assert!(reason.contains("PostgreSQL"), "{reason}");
            assert!(reason.contains("reconnects by itself"), "{reason}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(a.health().refused_writes(), 1, "the refusal is counted");
    assert!(
        a.read()
            .unwrap()
            .get(Collection::Accounts, "acc", "")
            .unwrap()
            .is_some(),
        "reads go on from the last snapshot"
    );
    pg.start_again();
    eventually("store reconnects", || a.health().problem().is_none());
    a.write(|txn| {
        txn.put(
            Collection::Accounts,
            "acc2",
            "",
            doc(json!({"name": "after"})),
        )
    })
    .unwrap();
    assert!(
        a.read()
            .unwrap()
            .get(Collection::Accounts, "acc2", "")
            .unwrap()
            .is_some()
    );
}

/// Proxies of a cluster are often started together: on an empty database each one migrates the
/// schema at the same moment. They must take turns (one migrates, the others find it done), not
/// collide in PostgreSQL's catalog and retry.
#[test]
fn stores_opened_together_on_an_empty_database_all_migrate_cleanly() {
    let pg = Postgres::start();
    let url = pg.url();
    let stores: Vec<Store> = thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| Store::open_postgres(&url, Duration::from_secs(10))))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap().expect("store on PostgreSQL"))
            .collect()
    });
    for (n, store) in stores.iter().enumerate() {
        let health = store.health();
        assert_eq!(health.problem(), None, "store {n} is degraded");
        assert_eq!(
            health.recoveries(),
            0,
            "store {n} failed its first attempt and had to retry"
        );
    }
    let versions = pg.psql("SELECT count(*) FROM mfp_schema_migrations");
    assert_eq!(versions.trim(), "2", "each migration recorded once");
}

#[test]
fn an_unreachable_database_at_start_names_the_key() {
    let error = Store::open_postgres(
        "postgres://mfp@127.0.0.1:1/none",
        Duration::from_millis(600),
    )
    .err()
    .expect("no database there");
    let text = error.to_string();
    assert!(text.contains("key `store`"), "{text}");
    assert!(text.contains("127.0.0.1:1"), "{text}");
}
