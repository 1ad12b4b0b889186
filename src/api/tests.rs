//! Tests over a real listener with plain HTTP/1.1 requests.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::*;
use crate::metrics::CallOutcome;

struct Response {
    status: u16,
    headers: String,
    body: String,
}

async fn request(addr: SocketAddr, method: &str, path: &str) -> Response {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let (headers, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = headers.split(' ').nth(1).unwrap().parse().unwrap();
    Response {
        status,
        headers: headers.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

async fn start(state: ApiState) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        serve(listener, router(state), shutdown).await.unwrap();
    });
    (addr, stop, server)
}

fn state() -> ApiState {
    ApiState {
        ready: Arc::new(AtomicBool::new(false)),
        metrics: Arc::new(Metrics::new()),
        store: None,
    }
}

#[tokio::test]
async fn live_ready_and_metrics_answer() {
    let state = state();
    state.metrics.record_call_outcome(CallOutcome::Failed);
    let (addr, stop, server) = start(state.clone()).await;

    let live = request(addr, "GET", "/live").await;
    assert_eq!((live.status, live.body.as_str()), (200, "ok"));

    assert_eq!(request(addr, "GET", "/ready").await.status, 503);
    state.ready.store(true, Ordering::Release);
    assert_eq!(request(addr, "GET", "/ready").await.status, 200);

    let metrics = request(addr, "GET", "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .headers
            .contains("content-type: text/plain; version=0.0.4"),
        "{}",
        metrics.headers
    );
    assert!(
        metrics
            .body
            .contains("metaflow_proxy_calls_total{outcome=\"failed\"} 1\n")
    );

    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn unknown_routes_get_a_json_404() {
    let (addr, stop, server) = start(state()).await;
    let response = request(addr, "GET", "/nope/here").await;
    assert_eq!(response.status, 404);
    assert!(response.headers.contains("content-type: application/json"));
    let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(body["status"], "error");
    assert_eq!(body["error"], "404");
    assert_eq!(body["message"], "not_found");
    for key in ["request_id", "node", "timestamp", "version", "auth_token"] {
        assert!(body[key].is_string(), "{key} in {body}");
    }
    assert_eq!(request(addr, "POST", "/live").await.status, 405);
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn requests_are_counted_by_route_template_with_bounded_methods() {
    let state = state();
    let metrics = state.metrics.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = with_request_metrics(
        router(state).route("/items/{id}", axum::routing::get(|| async { "item" })),
        metrics.clone(),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        serve(listener, app, shutdown).await.unwrap();
    });
    assert_eq!(request(addr, "GET", "/items/42").await.status, 200);
    assert_eq!(request(addr, "GET", "/items/43").await.status, 200);
    assert_eq!(request(addr, "GET", "/nowhere/7").await.status, 404);
    request(addr, "FROB", "/live").await;
    let text = metrics.render();
    let series = |labels: &str| format!("metaflow_proxy_api_requests_total{{{labels}}} ");
    assert!(
        text.contains(&(series("route=\"/items/{id}\",method=\"GET\",status=\"200\"") + "2\n")),
        "{text}"
    );
    let unmatched = series("route=\"unmatched\",method=\"GET\",status=\"404\"") + "1\n";
    assert!(text.contains(&unmatched), "{text}");
    assert!(text.contains("route=\"/live\",method=\"other\""), "{text}");
    assert!(
        !text.contains("/items/42") && !text.contains("FROB"),
        "{text}"
    );
    stop.send(()).unwrap();
    server.await.unwrap();
}
