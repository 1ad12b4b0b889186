//! Webhooks end to end: the real binary POSTs the events of a SIPp call (`uas_bye.xml`,
//! `uac_wait_bye.xml`) to a receiver inside the test, which checks the HMAC signature of every
//! request with the configured secret; a receiver that answers 500 once gets that batch exactly
//! once more and loses nothing. Needs `sipp`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use common::calls::{assert_no_active_call, caller_call_id, run_call};
use common::proxy::{Proxy, metric_sum};
use metaflow_proxy::webhooks::sign;

/// Limit for one SIPp run (the call lasts about 2 s).
const RUN_LIMIT: Duration = Duration::from_secs(20);
/// SIPp's own timeout.
const SIPP_TIMEOUT_SECS: u32 = 15;
/// How long the receiver may wait for the call's end to arrive (flush, retries included).
const DELIVERY_WAIT: Duration = Duration::from_secs(10);
/// The key shared by the proxy and the receiver.
const SECRET: &str = "test-secret-0123";
/// How old a signed timestamp may be before the receiver calls it a replay.
const MAX_SKEW_SECS: u64 = 300;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    /// The status it was answered with.
    status: u16,
    /// Whether the signature matched the secret, the timestamp and the exact body.
    signed_ok: bool,
    body: String,
    events: Vec<Value>,
}

/// An HTTP receiver on loopback that answers each request with the next status of a script
/// (200 once the script is used up) and keeps what it got.
struct Receiver {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(script: &[u16]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.to_vec()));
        let log = Arc::clone(&received);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let status = {
                    let mut script = script.lock().unwrap();
                    if script.is_empty() {
                        200
                    } else {
                        script.remove(0)
                    }
                };
                if let Some(request) = serve(stream, status) {
                    log.lock().unwrap().push(request);
                }
            }
        });
        Receiver { port, received }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until an accepted request carried an event with `hook_event`.
    fn wait_for_hook(&self, hook_event: &str) -> Vec<Received> {
        let deadline = Instant::now() + DELIVERY_WAIT;
        loop {
            let got = self.received();
            let seen = got
                .iter()
                .filter(|r| r.status == 200)
                .flat_map(|r| &r.events)
                .any(|e| e["hook_event"] == hook_event);
            if seen {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "no {hook_event} delivered: {got:#?}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Reads one request from `stream`, checks its signature, answers `status` and closes.
fn serve(stream: TcpStream, status: u16) -> Option<Received> {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut parts = request_line.split_whitespace();
    assert_eq!(parts.next(), Some("POST"), "{request_line}");
    let path = parts.next()?.to_owned();
    let mut length = 0usize;
    let mut timestamp = None;
    let mut signature = None;
    let mut content_type = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        let value = value.trim().to_owned();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().ok()?,
            "x-metaflow-timestamp" => timestamp = value.parse::<u64>().ok(),
            "x-metaflow-signature" => signature = Some(value),
            "content-type" => content_type = Some(value),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signed_ok = match (timestamp, &signature) {
        (Some(ts), Some(sig)) => {
            now.abs_diff(ts) <= MAX_SKEW_SECS && sign::verify(SECRET.as_bytes(), ts, &body, sig)
        }
        _ => false,
    };
    let body = String::from_utf8(body).ok()?;
    let events = match serde_json::from_str(&body) {
        Ok(Value::Array(events)) => events,
        other => panic!("the body is not a JSON array: {other:?}: {body}"),
    };
    let reason = if status == 200 { "OK" } else { "Error" };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let _ = stream.flush();
    Some(Received {
        path,
        status,
        signed_ok,
        body,
        events,
    })
}

/// Every event of the accepted requests, in order.
fn accepted_events(received: &[Received]) -> Vec<Value> {
    received
        .iter()
        .filter(|r| r.status == 200)
        .flat_map(|r| r.events.clone())
        .collect()
}

#[test]
fn a_call_reaches_the_receiver_signed_with_kazoo_hook_names() {
    common::require_tool("sipp");
    let receiver = Receiver::start(&[]);
    let url = receiver.url();
    let proxy = Proxy::start(&["--webhook-url", &url, "--webhook-secret", SECRET]);
    let (caller, _) = run_call(
        &proxy,
        "uas_bye.xml",
        "uac_wait_bye.xml",
        SIPP_TIMEOUT_SECS,
        RUN_LIMIT,
    );
    let call_id = caller_call_id(&caller);
    let received = receiver.wait_for_hook("channel_destroy");
    assert_no_active_call(&proxy);

    for request in &received {
        assert!(request.signed_ok, "bad signature: {request:#?}");
        assert_eq!(request.path, "/hooks");
    }
    let events = accepted_events(&received);
    let hook = |name: &str| -> Value {
        events
            .iter()
            .find(|e| e["hook_event"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {events:#?}"))
    };
    let create = hook("channel_create");
    assert_eq!(create["event"], "call_started");
    assert_eq!(create["call_id"], call_id.as_str());
    assert!(create["timestamp"].as_u64().is_some(), "{create:#}");
    assert!(create["ts"].is_string(), "{create:#}");
    let answer = hook("channel_answer");
    assert_eq!(answer["event"], "call_answered");
    let destroy = hook("channel_destroy");
    assert_eq!(destroy["event"], "call_ended");
    assert_eq!(destroy["call_id"], call_id.as_str());
    assert_eq!(destroy["hangup_cause"], "NORMAL_CLEARING");
    if let Some(account) = create.get("account_id") {
        assert_eq!(destroy["account_id"], *account, "{destroy:#}");
    }

    let metrics = proxy.metrics();
    let sent = metric_sum(
        &metrics,
        "metaflow_proxy_webhook_events_total",
        &["result=\"sent\""],
    );
    assert_eq!(sent, Some(events.len() as f64), "{metrics}");
    let ok = metric_sum(
        &metrics,
        "metaflow_proxy_webhook_requests_total",
        &["status=\"200\""],
    );
    assert_eq!(ok, Some(received.len() as f64), "{metrics}");
}

#[test]
fn a_batch_refused_with_500_is_sent_once_more_and_nothing_is_lost() {
    common::require_tool("sipp");
    let receiver = Receiver::start(&[500]);
    let url = receiver.url();
    let proxy = Proxy::start(&[
        "--webhook-url",
        &url,
        "--webhook-secret",
        SECRET,
        "--webhook-event",
        "channel_create",
        "--webhook-event",
        "call_ended",
    ]);
    let (caller, _) = run_call(
        &proxy,
        "uas_bye.xml",
        "uac_wait_bye.xml",
        SIPP_TIMEOUT_SECS,
        RUN_LIMIT,
    );
    let call_id = caller_call_id(&caller);
    let received = receiver.wait_for_hook("channel_destroy");
    // Anything late (a third copy) would show within the longest backoff.
    thread::sleep(Duration::from_secs(1));
    let received_now = receiver.received();
    assert_eq!(received_now.len(), received.len(), "{received_now:#?}");

    assert!(received.iter().all(|r| r.signed_ok), "{received:#?}");
    assert_eq!(received[0].status, 500);
    assert_eq!(received[1].status, 200);
    assert_eq!(
        received[1].body, received[0].body,
        "the retry carries the refused batch"
    );
    let refused: Vec<&Value> = received[0].events.iter().collect();
    let events = accepted_events(&received);
    for event in &refused {
        let copies = events.iter().filter(|e| e == event).count();
        assert_eq!(copies, 1, "{event:#} delivered {copies} times: {events:#?}");
    }
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["call_started", "call_ended"],
        "the filter: {events:#?}"
    );
    assert!(events.iter().all(|e| e["call_id"] == call_id.as_str()));

    let metrics = proxy.metrics();
    let refused_requests = metric_sum(
        &metrics,
        "metaflow_proxy_webhook_requests_total",
        &["status=\"500\""],
    );
    assert_eq!(refused_requests, Some(1.0), "{metrics}");
    let failed = metric_sum(
        &metrics,
        "metaflow_proxy_webhook_events_total",
        &["result=\"dropped_failed\""],
    );
    assert_eq!(failed, Some(0.0), "{metrics}");
}
