//! The channels and recordings routes across two nodes: each node an in-process `/v2` API
//! with its own cluster link on the shared PostgreSQL, calls and recordings set by the test.

use std::sync::Arc;
use std::time::Duration;

use metaflow_proxy::api::v2::{LiveCalls, V2State};
use metaflow_proxy::cluster::{Cluster, ClusterSettings};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::pg::{Pg, PgClient};
use super::{Calls, eventually, live_ids, settings};

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
