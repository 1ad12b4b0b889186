//! `POST /v2/system/reload` without the binary: the request reaches whoever serves reloads and
//! its outcome is the answer; a refused configuration is 422, no reloader is 503, no token 401.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod api_support;

use axum::http::StatusCode;
use metaflow_proxy::api::v2::ReloadOutcome;
use serde_json::json;
use tokio::sync::mpsc;

use api_support::api;

const PATH: &str = "/v2/system/reload";

#[tokio::test]
async fn the_reloaders_outcome_is_the_answer() {
    let api = api();
    let (requests, mut reloads) = mpsc::channel(1);
    api.state.serve_reloads(requests);
    tokio::spawn(async move {
        let mut answers = vec![
            ReloadOutcome::refused("unknown key \"x\""),
            ReloadOutcome {
                reloaded: true,
                applied: vec!["max-calls".into()],
                need_restart: vec!["rtp-ports".into()],
                problems: Vec::new(),
                refused: None,
            },
        ];
        while let Some(reply) = reloads.recv().await {
            let _ = reply.send(answers.pop().unwrap_or_default());
        }
    });

    let done = api.call("POST", PATH, None).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(
        done.body["data"],
        json!({"reloaded": true, "applied": ["max-calls"], "need_restart": ["rtp-ports"],
               "problems": []})
    );
    let refused = api.call("POST", PATH, None).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = refused.body["data"]["message"].as_str().unwrap();
    assert!(
        message.contains("nothing changed") && message.contains("unknown key"),
        "{message}"
    );

    let anonymous = api.call_with("POST", PATH, None, &[]).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let read = api.call("GET", PATH, None).await;
    assert_eq!(read.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn without_a_reloader_the_route_is_unavailable() {
    let api = api();
    let answer = api.call("POST", PATH, None).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert_eq!(answer.body["status"], "error");
}
