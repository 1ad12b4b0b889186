//! The `/v2` token on the defaults, against the real binary: with no `api-auth-tokens` the proxy
//! generates one into `DATA_DIR/api-token` (mode 0600), accepts it, names the file (never the
//! token) in its start-up line and in every 401, and keeps it across restarts; a configured
//! token replaces it and no file is created.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use common::proxy::Proxy;

/// A route of the Kazoo documentation's examples.
const METAFLOWS: &str = "/v2/accounts/default/metaflows";

fn token_file(proxy: &Proxy) -> PathBuf {
    proxy.data_dir().join("api-token")
}

fn read_token(proxy: &Proxy) -> String {
    std::fs::read_to_string(token_file(proxy))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn without_configured_tokens_a_generated_token_in_the_data_dir_lets_you_in() {
    let mut proxy = Proxy::start(&[]);
    let file = token_file(&proxy);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} has mode {mode:o}", file.display());
    let token = read_token(&proxy);
    assert_eq!(token.len(), 64, "{token}");
    assert!(
        token.bytes().all(|byte| byte.is_ascii_hexdigit()),
        "{token}"
    );

    let ok = proxy.api("GET", METAFLOWS, Some(&token), None);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["status"], "success");

    let file_name = file.display().to_string();
    for wrong in [None, Some("guess")] {
        let refused = proxy.api("GET", METAFLOWS, wrong, None);
        assert_eq!(refused.status, 401, "{}", refused.body);
        let body = refused.json();
        assert_eq!(body["status"], "error");
        assert_eq!(body["error"], "401");
        let message = body["data"]["message"].as_str().unwrap();
        assert!(message.contains("X-Auth-Token"), "{message}");
        assert!(
            message.contains(&file_name),
            "{message} does not name {file_name}"
        );
        assert!(!refused.body.contains(&token), "a 401 gave the token away");
    }

    let output = proxy.output();
    let ready = output
        .lines()
        .find(|line| line.contains("metaflow-proxy ready"))
        .unwrap_or_else(|| panic!("no start-up line in:\n{output}"));
    assert!(ready.contains(&file_name), "{ready}");
    assert!(ready.contains(&proxy.ports().rtp_range()), "{ready}");
    assert!(
        ready.contains(&proxy.data_dir().display().to_string()),
        "{ready}"
    );
    assert!(!output.contains(&token), "the token was logged");

    proxy.kill_and_restart(&[]);
    assert_eq!(read_token(&proxy), token, "a restart changed the token");
    let again = proxy.api("GET", METAFLOWS, Some(&token), None);
    assert_eq!(again.status, 200, "{}", again.body);
}

#[test]
fn a_configured_token_replaces_the_generated_one() {
    let proxy = Proxy::start(&["--api-auth-token", "configured-secret"]);
    assert!(
        !token_file(&proxy).exists(),
        "a token file was created although a token is configured"
    );
    let ok = proxy.api("GET", METAFLOWS, Some("configured-secret"), None);
    assert_eq!(ok.status, 200, "{}", ok.body);
    let refused = proxy.api("GET", METAFLOWS, None, None);
    assert_eq!(refused.status, 401, "{}", refused.body);
    let message = refused.json()["data"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("api-auth-tokens"), "{message}");
    assert!(!message.contains("api-token"), "{message}");
}
