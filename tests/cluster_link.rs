//! The cluster link against a real PostgreSQL (started by the test, see `cluster_link/pg.rs`):
//! node rows and heartbeats, the live-call table following a node's calls, surviving a database
//! restart, registrations kept across a restart, the channels and recordings API across nodes
//! (`cluster_link/api.rs`) and, with the proxy binary, a phone's registration surviving a kill
//! and restart (`cluster_link/restart.rs`). Fails, never skips, without PostgreSQL.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

#[path = "cluster_link/api.rs"]
mod api;
mod common;
#[path = "cluster_link/pg.rs"]
mod pg;
#[path = "cluster_link/restart.rs"]
mod restart;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metaflow_proxy::api::v2::LiveCalls;
use metaflow_proxy::cluster::{CallSource, Cluster, ClusterSettings, LiveCall};
use pg::{Pg, PgClient};
use serde_json::Value;

/// A node's calls, set by the test; it also remembers the actions run on them.
#[derive(Default)]
struct Calls(Mutex<Vec<LiveCall>>, Mutex<Vec<(String, Value)>>);

impl Calls {
    fn set(&self, ids: &[&str]) {
        *self.0.lock().unwrap() = ids
            .iter()
            .map(|id| LiveCall {
                call_id: id.to_string(),
                account: "default".into(),
                channel: format!(r#"{{"call_id":"{id}","account_id":"default"}}"#),
            })
            .collect();
    }
}

impl LiveCalls for Calls {
    fn list(&self, account_id: &str) -> Vec<Value> {
        self.snapshot()
            .into_iter()
            .filter(|c| c.account == account_id)
            .map(|c| serde_json::from_str(&c.channel).unwrap())
            .collect()
    }

    fn run_metaflow(&self, account_id: &str, call_id: &str, node: Value) -> Result<(), String> {
        let mine = |c: &LiveCall| c.call_id == call_id && c.account == account_id;
        if !self.snapshot().iter().any(mine) {
            return Err(format!("no call {call_id}"));
        }
        self.1.lock().unwrap().push((call_id.to_owned(), node));
        Ok(())
    }
}

impl CallSource for Calls {
    fn snapshot(&self) -> Vec<LiveCall> {
        self.0.lock().unwrap().clone()
    }
}

fn settings(pg: &Pg, node: &str, api_port: u16) -> ClusterSettings {
    ClusterSettings {
        url: pg.url(),
        node_id: node.into(),
        sip_addr: "127.0.0.1:5060".parse().unwrap(),
        api_addr: format!("127.0.0.1:{api_port}").parse().unwrap(),
        max_calls: 100,
        data_dir: std::env::temp_dir().join(format!("mfp-cluster-test-{node}-{api_port}")),
    }
}

/// Polls `check` until it holds, failing with `what` after `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn live_ids(client: &tokio_postgres::Client, node: &str) -> Vec<String> {
    client
        .query(
            "SELECT call_id FROM mfp_live_calls WHERE node_id = $1 ORDER BY call_id",
            &[&node],
        )
        .await
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default()
}

async fn heartbeat(client: &tokio_postgres::Client, node: &str) -> String {
    client
        .query_one(
            "SELECT heartbeat::text FROM mfp_nodes WHERE id = $1",
            &[&node],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_announces_itself_and_mirrors_its_calls() {
    let pg = Pg::start();
    pg.migrate().await;
    let db = pg.client().await;
    // A crash left a call of this node behind.
    db.execute(
        "INSERT INTO mfp_live_calls (call_id, node_id, account, channel) VALUES ('stale', 'n1', 'acc', '{}')",
        &[],
    )
    .await
    .unwrap();
    let calls = Arc::new(Calls::default());
    calls.set(&["c1", "c2"]);
    let cluster = Cluster::start(settings(&pg, "n1", 8001), calls.clone());
    assert_eq!(cluster.node_id(), "n1");

    eventually(Duration::from_secs(5), "the node row", || async {
        db.query_opt("SELECT api_addr FROM mfp_nodes WHERE id = 'n1'", &[])
            .await
            .unwrap()
            .is_some_and(|row| row.get::<_, String>(0) == "127.0.0.1:8001")
    })
    .await;
    eventually(Duration::from_secs(5), "this node's calls only", || async {
        live_ids(&db, "n1").await == ["c1", "c2"]
    })
    .await;
    let first = heartbeat(&db, "n1").await;
    eventually(Duration::from_secs(5), "a later heartbeat", || async {
        heartbeat(&db, "n1").await != first
    })
    .await;

    calls.set(&["c2", "c3"]);
    eventually(Duration::from_secs(5), "the table to follow", || async {
        live_ids(&db, "n1").await == ["c2", "c3"]
    })
    .await;
    // The secret is generated once and shared.
    eventually(Duration::from_secs(5), "the cluster secret", || async {
        db.query_opt(
            "SELECT value FROM mfp_settings WHERE name = 'cluster-secret'",
            &[],
        )
        .await
        .unwrap()
        .is_some_and(|row| cluster.accepts_node_token(&row.get::<_, String>(0)))
    })
    .await;
    assert!(!cluster.accepts_node_token("guess"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_survives_a_database_restart() {
    let mut pg = Pg::start();
    pg.migrate().await;
    let calls = Arc::new(Calls::default());
    calls.set(&["c1"]);
    let cluster = Cluster::start(settings(&pg, "n1", 8001), calls.clone());
    let db = pg.client().await;
    eventually(Duration::from_secs(5), "the first call", || async {
        live_ids(&db, "n1").await == ["c1"]
    })
    .await;

    pg.stop();
    eventually(Duration::from_secs(5), "the link to notice", || async {
        !cluster.connected()
    })
    .await;
    // Local answers only, at once.
    let started = Instant::now();
    assert!(cluster.remote_channels("acc").await.is_err());
    assert!(started.elapsed() < Duration::from_secs(1));
    calls.set(&["c2"]);
    pg.start_again();

    let db = pg.client().await;
    eventually(
        Duration::from_secs(15),
        "the table after the restart",
        || async { live_ids(&db, "n1").await == ["c2"] },
    )
    .await;
    assert!(cluster.connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_alive_nodes_calls_are_listed_and_owned() {
    let pg = Pg::start();
    pg.migrate().await;
    let db = pg.client().await;
    db.batch_execute(
        "INSERT INTO mfp_nodes (id, sip_addr, api_addr) VALUES ('n2', '127.0.0.1:5070', '127.0.0.1:8002');
         INSERT INTO mfp_nodes (id, sip_addr, api_addr, heartbeat) VALUES ('dead', '127.0.0.1:5080', '127.0.0.1:8003', now() - interval '30 seconds');
         INSERT INTO mfp_live_calls (call_id, node_id, account, channel) VALUES
           ('r1', 'n2', 'acc', '{\"call_id\":\"r1\"}'),
           ('r2', 'n2', 'other', '{\"call_id\":\"r2\"}'),
           ('r3', 'dead', 'acc', '{\"call_id\":\"r3\"}');",
    )
    .await
    .unwrap();
    let calls = Arc::new(Calls::default());
    calls.set(&["c1"]);
    let cluster = Cluster::start(settings(&pg, "n1", 8001), calls);
    eventually(Duration::from_secs(5), "the connection", || async {
        cluster.connected()
    })
    .await;
    eventually(Duration::from_secs(5), "this node's call", || async {
        live_ids(&db, "n1").await == ["c1"]
    })
    .await;
    db.execute(
        "UPDATE mfp_nodes SET heartbeat = now() WHERE id = 'n2'",
        &[],
    )
    .await
    .unwrap();

    let remote = cluster.remote_channels("acc").await.unwrap();
    assert_eq!(
        remote,
        vec![serde_json::json!({"call_id": "r1", "node": "n2"})]
    );
    let owner = cluster.call_owner("acc", "r1").await.unwrap().unwrap();
    assert_eq!(
        (owner.node_id.as_str(), owner.api_addr.as_str()),
        ("n2", "127.0.0.1:8002")
    );
    assert!(
        cluster
            .call_owner("other-acc", "r1")
            .await
            .unwrap()
            .is_none(),
        "wrong account"
    );
    assert!(
        cluster.call_owner("acc", "r3").await.unwrap().is_none(),
        "dead node"
    );
    assert!(
        cluster.call_owner("default", "c1").await.unwrap().is_none(),
        "local call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_outlive_the_node_that_relayed_them() {
    use metaflow_proxy::b2bua::{BindingChange, BindingSink, StoredBinding};
    use metaflow_proxy::sip::transport::Peer;

    let pg = Pg::start();
    pg.migrate().await;
    let db = pg.client().await;
    let first = Cluster::start(settings(&pg, "n1", 8001), Arc::new(Calls::default()));
    let mut writer = first.registration_writer();
    let phone = |contact: &str, secs: u64| StoredBinding {
        aor: "sip:alice@pbx".into(),
        contact: contact.into(),
        source: Peer::udp("198.51.100.7:40123".parse().unwrap()),
        expires_at: Instant::now() + Duration::from_secs(secs),
    };
    // Written even though the link is not up yet: the change waits for it.
    writer.changed(BindingChange::Bound(phone("sip:alice@10.0.0.5", 600)));
    writer.changed(BindingChange::Bound(phone("sip:alice@10.0.0.6", 600)));
    writer.changed(BindingChange::Removed {
        aor: "sip:alice@pbx".into(),
        contact: "sip:alice@10.0.0.6".into(),
    });
    eventually(Duration::from_secs(8), "the binding row", || async {
        db.query(
            "SELECT contact FROM mfp_registrations WHERE node_id = 'n1'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
            == ["sip:alice@10.0.0.5"]
    })
    .await;

    // The restarted node (same id) reads it back; another node does not.
    let again = Cluster::start(settings(&pg, "n1", 8001), Arc::new(Calls::default()));
    let kept = again.load_bindings(Duration::from_secs(5)).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].contact, "sip:alice@10.0.0.5");
    assert_eq!(kept[0].source, phone("x", 1).source);
    let left = kept[0].expires_at.saturating_duration_since(Instant::now());
    assert!(
        left > Duration::from_secs(590) && left <= Duration::from_secs(600),
        "{left:?}"
    );
    let other = Cluster::start(settings(&pg, "n2", 8002), Arc::new(Calls::default()));
    assert!(
        other
            .load_bindings(Duration::from_secs(5))
            .await
            .unwrap()
            .is_empty()
    );
}

/// The proxy binary, with `--store postgres://...`, keeps a phone's registration across a
/// kill and restart.
#[test]
fn a_phone_registered_before_a_restart_still_gets_calls() {
    let pg = Pg::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    restart::a_phone_registered_before_a_restart_still_gets_calls(&pg, &rt);
}
