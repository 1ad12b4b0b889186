//! Shared set-up for the `/v2` API tests: an in-process router over a temporary store, with
//! small module hooks that behave like the transfer module's (default `transfer_type`).

#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use metaflow_proxy::api::v2::{LiveCalls, NodeNormaliser, NodeValidator, V2State, routes};
use metaflow_proxy::base::Problem;
use metaflow_proxy::store::MetaflowDirectory;
use serde_json::{Map, Value, json};
use tempfile::TempDir;
use tower::ServiceExt;

/// The token the tests configure.
pub const TOKEN: &str = "test-token-1";

/// A fake call core: one known call, remembering the nodes it was asked to run.
#[derive(Default)]
pub struct FakeCalls {
    pub ran: Mutex<Vec<(String, Value)>>,
}

impl LiveCalls for FakeCalls {
    fn list(&self, account_id: &str) -> Vec<Value> {
        vec![json!({"uuid": "call-1", "account_id": account_id})]
    }

    fn run_metaflow(&self, _account_id: &str, call_id: &str, node: Value) -> Result<(), String> {
        if call_id != "call-1" {
            return Err(format!("unknown call {call_id}"));
        }
        self.ran.lock().unwrap().push((call_id.to_owned(), node));
        Ok(())
    }
}

/// `transfer` data: `transfer_type` must be `blind` or `attended`.
pub fn validator() -> NodeValidator {
    Arc::new(|module: &str, data: &Map<String, Value>| {
        let mut problems = Vec::new();
        if module == "transfer" {
            match data.get("transfer_type") {
                None => {}
                Some(Value::String(kind)) if kind == "blind" || kind == "attended" => {}
                Some(Value::String(_)) => problems.push(Problem::in_data(
                    "transfer_type",
                    "enum",
                    "transfer_type must be blind or attended",
                )),
                Some(_) => problems.push(Problem::in_data(
                    "transfer_type",
                    "type",
                    "transfer_type must be a string",
                )),
            }
        }
        problems
    })
}

/// `transfer` data gets the defaults Kazoo shows in its example response.
pub fn normaliser() -> NodeNormaliser {
    Arc::new(|module: &str, data: &mut Map<String, Value>| {
        if module == "transfer" {
            data.entry("transfer_type")
                .or_insert_with(|| json!("blind"));
            data.entry("captures")
                .or_insert_with(|| json!(["no_match"]));
        }
    })
}

/// One API instance over its own store.
pub struct Api {
    pub router: Router,
    pub state: V2State,
    pub directory: MetaflowDirectory,
    pub calls: Arc<FakeCalls>,
    pub dir: TempDir,
}

/// A reply: status, headers and the JSON body.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The envelope's `data`.
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// The envelope's `revision` as a string.
    pub fn revision(&self) -> String {
        self.body["revision"].as_str().unwrap().to_owned()
    }
}

/// An API over a fresh temporary store, accepting [`TOKEN`].
pub fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    api_in(dir, vec![TOKEN.to_owned()])
}

/// An API over the store in `dir` with `tokens`.
pub fn api_in(dir: TempDir, tokens: Vec<String>) -> Api {
    let (state, directory, calls) = open(dir.path(), tokens);
    Api {
        router: routes(state.clone()),
        state,
        directory,
        calls,
        dir,
    }
}

/// Opens the state over `path`.
pub fn open(path: &Path, tokens: Vec<String>) -> (V2State, MetaflowDirectory, Arc<FakeCalls>) {
    let calls = Arc::new(FakeCalls::default());
    let live: Arc<dyn LiveCalls> = calls.clone();
    let (state, directory) = V2State::open(path, tokens, live, validator(), normaliser()).unwrap();
    (state, directory, calls)
}

impl Api {
    /// Sends a request with the test token.
    pub async fn call(&self, method: &str, path: &str, body: Option<&str>) -> Answer {
        self.call_with(method, path, body, &[("X-Auth-Token", TOKEN)])
            .await
    }

    /// Sends a request with exactly `headers`.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Body::from(body.unwrap_or_default().to_owned()))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Creates a document with `PUT` and returns its id.
    pub async fn create(&self, path: &str, data: Value) -> String {
        let answer = self
            .call("PUT", path, Some(&json!({ "data": data }).to_string()))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.data()["id"].as_str().unwrap().to_owned()
    }
}

/// The sorted keys of a JSON object.
pub fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

/// Asserts a Kazoo success envelope with `status`, echoing [`TOKEN`].
pub fn assert_success(answer: &Answer, status: StatusCode) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["status"], "success");
    assert_eq!(answer.body["auth_token"], TOKEN);
    for key in ["node", "request_id", "timestamp", "version"] {
        assert!(
            answer.body[key]
                .as_str()
                .is_some_and(|text| !text.is_empty()),
            "{key}"
        );
    }
}

/// Asserts a Kazoo error envelope with `status` and returns its `data`.
pub fn assert_error(answer: &Answer, status: StatusCode) -> Value {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["status"], "error");
    assert_eq!(answer.body["error"], status.as_str());
    assert!(
        answer.body["message"]
            .as_str()
            .is_some_and(|text| !text.is_empty())
    );
    for key in ["auth_token", "node", "request_id", "timestamp", "version"] {
        assert!(
            answer.body[key].is_string(),
            "{key} missing in {}",
            answer.body
        );
    }
    answer.body["data"].clone()
}
