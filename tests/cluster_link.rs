//! The cluster link against a real PostgreSQL: node rows and heartbeats, the live-call table
//! following a node's calls, surviving a database restart, and the channels API across nodes.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;
#[path = "cluster_link/pg.rs"]
mod pg;
#[path = "cluster_link/restart.rs"]
mod restart;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metaflow_proxy::api::v2::{LiveCalls, V2State};
use metaflow_proxy::cluster::{CallSource, Cluster, ClusterSettings, LiveCall};
use pg::Pg;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

    fn run_metaflow(&self, call_id: &str, node: Value) -> Result<(), String> {
        if !self.snapshot().iter().any(|c| c.call_id == call_id) {
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
    let pg = Pg::start();
    pg.migrate().await;
    let calls = Arc::new(Calls::default());
    calls.set(&["c1"]);
    let cluster = Cluster::start(settings(&pg, "n1", 8001), calls.clone());
    let db = pg.client().await;
    eventually(Duration::from_secs(5), "the first call", || async {
        live_ids(&db, "n1").await == ["c1"]
    })
    .await;

    pg.down();
    eventually(Duration::from_secs(5), "the link to notice", || async {
        !cluster.connected()
    })
    .await;
    // Local answers only, at once.
    let started = Instant::now();
    assert!(cluster.remote_channels("acc").await.is_err());
    assert!(started.elapsed() < Duration::from_secs(1));
    calls.set(&["c2"]);
    pg.up();

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

/// The API token both test nodes accept.
const TOKEN: &str = "cluster-test-token";

/// One proxy's API and cluster link, without the call core.
struct Node {
    addr: std::net::SocketAddr,
    calls: Arc<Calls>,
    cluster: Cluster,
    _dir: tempfile::TempDir,
}

async fn node(pg: &Pg, id: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(Calls::default());
    let live: Arc<dyn LiveCalls> = calls.clone();
    let (v2, _) = V2State::open(
        dir.path(),
        vec![TOKEN.to_owned()],
        live,
        Arc::new(|_: &str, _: &serde_json::Map<String, Value>| Vec::new()),
        Arc::new(|_: &str, _: &mut serde_json::Map<String, Value>| {}),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = ClusterSettings {
        data_dir: dir.path().to_path_buf(),
        ..settings(pg, id, addr.port())
    };
    let cluster = Cluster::start(settings, calls.clone());
    v2.serve_cluster(cluster.clone());
    tokio::spawn(async move {
        axum::serve(listener, metaflow_proxy::api::v2::routes(v2))
            .await
            .unwrap();
    });
    Node {
        addr,
        calls,
        cluster,
        _dir: dir,
    }
}

/// One HTTP/1.1 exchange: the status and the raw body (small answers only).
async fn http_raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = String::from_utf8_lossy(&answer[9..12]).parse().unwrap();
    (status, answer[split + 4..].to_vec())
}

/// One HTTP/1.1 exchange: the status and the JSON body.
async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    let status = text[9..12].parse().unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // One chunk is enough for these small envelopes.
        rest.split_once("\r\n")
            .map(|(_, r)| r.rsplit_once("\r\n0\r\n").map_or(r, |(b, _)| b))
            .unwrap_or("")
            .to_owned()
    } else {
        rest.to_owned()
    };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_are_listed_and_acted_on_across_nodes() {
    let pg = Pg::start();
    pg.migrate().await;
    let a = node(&pg, "node-a").await;
    let b = node(&pg, "node-b").await;
    a.calls.set(&["on-a"]);
    b.calls.set(&["on-b"]);
    let db = pg.client().await;
    eventually(
        Duration::from_secs(8),
        "both nodes' calls and the secret",
        || async {
            let secret = db
                .query_opt(
                    "SELECT value FROM mfp_settings WHERE name = 'cluster-secret'",
                    &[],
                )
                .await
                .unwrap()
                .map(|row| row.get::<_, String>(0))
                .unwrap_or_default();
            live_ids(&db, "node-a").await == ["on-a"]
                && live_ids(&db, "node-b").await == ["on-b"]
                && a.cluster.accepts_node_token(&secret)
                && b.cluster.accepts_node_token(&secret)
        },
    )
    .await;
    let auth = [("X-Auth-Token", TOKEN)];

    let (status, listed) = http(a.addr, "GET", "/v2/accounts/default/channels", &auth, "").await;
    assert_eq!(status, 200, "{listed}");
    let mut nodes: Vec<(String, String)> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["call_id"].as_str().unwrap().to_owned(),
                c["node"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    nodes.sort();
    assert_eq!(
        nodes,
        [
            ("on-a".into(), "node-a".into()),
            ("on-b".into(), "node-b".into())
        ]
    );

    let action = r#"{"data": {"action": "metaflow", "data": {"module": "hangup"}}}"#;
    let (status, answer) = http(
        a.addr,
        "PUT",
        "/v2/accounts/default/channels/on-b",
        &auth,
        action,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let ran = b.calls.1.lock().unwrap().clone();
    assert_eq!(ran.len(), 1);
    assert_eq!(
        (ran[0].0.as_str(), &ran[0].1["module"]),
        ("on-b", &json!("hangup"))
    );
    assert!(a.calls.1.lock().unwrap().is_empty());

    let (status, _) = http(
        a.addr,
        "PUT",
        "/v2/accounts/default/channels/nowhere",
        &auth,
        action,
    )
    .await;
    assert_eq!(status, 404);

    // The secret opens the forwarded route only, and a wrong one opens nothing.
    let secret = db
        .query_one(
            "SELECT value FROM mfp_settings WHERE name = 'cluster-secret'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, String>(0);
    let as_node = [("X-Metaflow-Node-Token", secret.as_str())];
    let (status, _) = http(
        b.addr,
        "PUT",
        "/v2/accounts/default/channels/on-b",
        &as_node,
        action,
    )
    .await;
    assert_eq!(status, 202);
    let (status, _) = http(b.addr, "GET", "/v2/accounts/default/channels", &as_node, "").await;
    assert_eq!(status, 401);
    let wrong = [("X-Metaflow-Node-Token", "guess")];
    let (status, _) = http(
        b.addr,
        "PUT",
        "/v2/accounts/default/channels/on-b",
        &wrong,
        action,
    )
    .await;
    assert_eq!(status, 401);
    // A forwarded request is never forwarded again.
    let (status, _) = http(
        b.addr,
        "PUT",
        "/v2/accounts/default/channels/on-a",
        &as_node,
        action,
    )
    .await;
    assert_eq!(status, 404);
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

/// Writes a finished recording (sidecar and media) into `data_dir`.
fn write_recording(data_dir: &std::path::Path, id: &str, media: &[u8]) -> std::path::PathBuf {
    let dir = data_dir.join("recordings/2026/12/04");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{id}.wav")), media).unwrap();
    let sidecar = json!({"id": id, "call_id": "c1", "account_id": "default",
        "file": format!("{id}.wav"), "format": "wav", "started_at": "2026-12-04T05:00:00Z",
        "duration_ms": 1000, "status": "complete", "leg": "a", "label": null});
    std::fs::write(dir.join(format!("{id}.json")), sidecar.to_string()).unwrap();
    dir.join(format!("{id}.wav"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_are_listed_fetched_and_deleted_across_nodes() {
    let pg = Pg::start();
    pg.migrate().await;
    let a = node(&pg, "node-a").await;
    let b = node(&pg, "node-b").await;
    let media = b"RIFF-not-really-a-wav-but-bytes".to_vec();
    let file = write_recording(b._dir.path(), "rec-on-b", &media);
    let db = pg.client().await;
    eventually(
        Duration::from_secs(15),
        "the recording row and the secret",
        || async {
            let secret = db
                .query_opt(
                    "SELECT value FROM mfp_settings WHERE name = 'cluster-secret'",
                    &[],
                )
                .await
                .unwrap()
                .map(|row| row.get::<_, String>(0))
                .unwrap_or_default();
            db.query_opt(
                "SELECT node_id FROM mfp_recordings WHERE id = 'rec-on-b'",
                &[],
            )
            .await
            .unwrap()
            .is_some_and(|row| row.get::<_, String>(0) == "node-b")
                && a.cluster.accepts_node_token(&secret)
                && b.cluster.accepts_node_token(&secret)
        },
    )
    .await;
    let auth = [("X-Auth-Token", TOKEN)];

    let (status, listed) = http(a.addr, "GET", "/v2/accounts/default/recordings", &auth, "").await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["data"][0]["id"], "rec-on-b", "{listed}");
    assert_eq!(listed["data"][0]["node"], "node-b");
    assert_eq!(listed["data"][0]["size"], media.len());

    let one = "/v2/accounts/default/recordings/rec-on-b";
    let (status, meta) = http(a.addr, "GET", one, &auth, "").await;
    assert_eq!(status, 200, "{meta}");
    assert_eq!(meta["data"]["call_id"], "c1");
    let with_accept = [("X-Auth-Token", TOKEN), ("Accept", "audio/wav")];
    let (status, bytes) = http_raw(a.addr, "GET", one, &with_accept).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, media);

    let (status, _) = http(
        a.addr,
        "GET",
        "/v2/accounts/default/recordings/nowhere",
        &auth,
        "",
    )
    .await;
    assert_eq!(status, 404);

    let (status, removed) = http(a.addr, "DELETE", one, &auth, "").await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["data"]["id"], "rec-on-b");
    assert!(!file.exists(), "deleted on the node that kept it");
    let rows = db
        .query("SELECT id FROM mfp_recordings WHERE id = 'rec-on-b'", &[])
        .await
        .unwrap();
    assert!(rows.is_empty(), "its row went with it");
    let (status, _) = http(a.addr, "GET", one, &auth, "").await;
    assert_eq!(status, 404);
}

/// The proxy binary, with `--store postgres://...`, keeps a phone's registration across a
/// kill and restart.
#[test]
fn a_phone_registered_before_a_restart_still_gets_calls() {
    let pg = Pg::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    restart::a_phone_registered_before_a_restart_still_gets_calls(&pg, &rt);
}
