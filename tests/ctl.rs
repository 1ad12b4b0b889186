//! `metaflow-proxy ctl` against the real binary: a live call is listed and hung up, a reload
//! through the API answers with what it applied (and the proxy logs it), the counters are
//! summarised, and a wrong token or a dead address gets a message a person can act on.
//! Calls run with SIPp scenarios from `tests/sipp/`; needs `sipp`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use common::calls::{
    assert_both_succeeded, caller_call_id, got_bye, sent_bye, spawn_call, wait_call,
};
use common::proxy::{Proxy, metric_sum};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_metaflow-proxy");
const TOKEN: &str = "ctl-test-token";
const SIPP_TIMEOUT_SECS: u32 = 20;
const RUN_LIMIT: Duration = Duration::from_secs(25);

/// Runs `metaflow-proxy ctl ARGS` with no token in the environment.
fn ctl(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("ctl")
        .args(args)
        .env_remove("METAFLOW_PROXY_TOKEN")
        .output()
        .unwrap()
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `ctl ARGS` against `proxy` with the right token; requires exit 0 and returns stdout.
fn ok(proxy: &Proxy, args: &[&str]) -> String {
    let api = proxy.api_addr();
    let mut all = vec!["--api", api.as_str(), "--token", TOKEN];
    all.extend_from_slice(args);
    let output = ctl(&all);
    let (stdout, stderr) = text(&output);
    assert!(
        output.status.success(),
        "ctl {args:?} failed: {stderr}\n{}",
        proxy.output()
    );
    stdout
}

fn wait_until(what: &str, proxy: &Proxy, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} never happened:\n{}",
            proxy.output()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn calls_lists_the_live_call_hangup_ends_it_and_stats_count_it() {
    common::require_tool("sipp");
    let proxy = Proxy::start(&["--api-auth-token", TOKEN]);
    assert_eq!(ok(&proxy, &["calls"]).trim(), "no calls in progress");
    let (caller, callee) = spawn_call(
        &proxy,
        "uas_wait_bye.xml",
        "uac_wait_bye.xml",
        SIPP_TIMEOUT_SECS,
    );

    let mut listed = Value::Null;
    wait_until("the call answered in ctl calls", &proxy, || {
        listed = serde_json::from_str(&ok(&proxy, &["calls", "--json"])).unwrap();
        listed[0]["state"] == "answered"
    });
    let calls = listed.as_array().unwrap();
    assert_eq!(calls.len(), 1, "{listed:#}");
    let call_id = calls[0]["call_id"].as_str().unwrap().to_owned();
    assert_eq!(calls[0]["legs"], 2, "{listed:#}");
    assert_eq!(calls[0]["account_id"], "default");
    assert!(
        calls[0]["from"].as_str().unwrap().contains("<sip:sipp@"),
        "{listed:#}"
    );
    assert!(calls[0]["age_s"].as_u64().is_some(), "{listed:#}");

    let table = ok(&proxy, &["calls"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for column in ["CALL-ID", "FROM", "TO", "STATE", "AGE", "LEGS"] {
        assert!(header.contains(column), "{table}");
    }
    let line = lines.next().unwrap();
    assert!(
        line.starts_with(&call_id) && line.contains("answered"),
        "{table}"
    );
    assert!(table.ends_with("1 call(s)\n"), "{table}");

    let stats = ok(&proxy, &["stats"]);
    assert!(stats.starts_with("active calls: 1\n"), "{stats}");

    let said = ok(&proxy, &["hangup", &call_id]);
    assert!(said.contains(&call_id), "{said}");
    let (caller, callee) = wait_call(caller, callee, RUN_LIMIT);
    assert_both_succeeded(&caller, &callee);
    assert_eq!(caller_call_id(&caller), call_id);
    assert!(
        got_bye(&caller) && !sent_bye(&caller),
        "the proxy hangs up the caller"
    );
    assert!(
        got_bye(&callee) && !sent_bye(&callee),
        "the proxy hangs up the callee"
    );

    wait_until("the call gone from ctl calls", &proxy, || {
        ok(&proxy, &["calls", "--json"]).trim() == "[]"
    });
    let again = ctl(&[
        "--api",
        &proxy.api_addr(),
        "--token",
        TOKEN,
        "hangup",
        &call_id,
    ]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again)
            .1
            .contains(&format!("no call {call_id} in progress")),
        "{:?}",
        text(&again)
    );

    let stats: Value = serde_json::from_str(&ok(&proxy, &["stats", "--json"])).unwrap();
    assert_eq!(stats["active_calls"], 0, "{stats:#}");
    assert_eq!(stats["calls"]["answered"], 1, "{stats:#}");
    assert_eq!(stats["module_runs"]["hangup"]["success"], 1, "{stats:#}");
    let human = ok(&proxy, &["stats"]);
    assert!(human.contains("calls ended: 1 (answered 1"), "{human}");
    assert!(
        human.contains("module runs: 1 (hangup/success 1)"),
        "{human}"
    );
    assert_eq!(
        metric_sum(&proxy.metrics(), "metaflow_proxy_calls_total", &[]),
        Some(1.0)
    );
}

#[test]
fn reload_answers_with_what_the_changed_file_applied() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proxy.toml");
    std::fs::write(&config, "shutdown-grace = 60\n").unwrap();
    let config_arg = config.to_str().unwrap();
    let proxy = Proxy::start(&["--config", config_arg, "--api-auth-token", TOKEN]);

    let unchanged = ok(&proxy, &["reload"]);
    assert_eq!(unchanged.trim(), "configuration reloaded: nothing changed");

    std::fs::write(&config, "shutdown-grace = 5\nrtp-latch = \"strict\"\n").unwrap();
    let said = ok(&proxy, &["reload"]);
    assert!(said.contains("applied:       shutdown-grace"), "{said}");
    assert!(said.contains("needs restart: rtp-latch"), "{said}");
    wait_until("the reload in the log", &proxy, || {
        proxy
            .output()
            .lines()
            .any(|line| line.contains("configuration reloaded") && line.contains("shutdown-grace"))
    });

    std::fs::write(&config, "shutdown-grace = 1\nno-such-key = 1\n").unwrap();
    let refused = ctl(&[
        "--api",
        &proxy.api_addr(),
        "--token",
        TOKEN,
        "reload",
        "--json",
    ]);
    let (_, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("nothing changed") && stderr.contains("no-such-key"),
        "{stderr}"
    );
    assert!(
        text(&refused).0.is_empty(),
        "nothing on stdout when refused"
    );
}

#[test]
fn a_wrong_token_and_a_dead_address_are_explained() {
    let proxy = Proxy::start(&["--api-auth-token", TOKEN]);
    let api = proxy.api_addr();
    let wrong = ctl(&["--api", &api, "--token", "not-the-token", "calls"]);
    let (_, stderr) = text(&wrong);
    assert_eq!(wrong.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refused the token from --token (401)"),
        "{stderr}"
    );

    // The token file of a data directory given through --config is named when it is refused.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("api-token"), "stale-token\n").unwrap();
    let config = dir.path().join("proxy.toml");
    std::fs::write(
        &config,
        format!("api-listen = \"{api}\"\ndata-dir = \"data\"\n"),
    )
    .unwrap();
    let stale = ctl(&["--config", config.to_str().unwrap(), "calls"]);
    let (_, stderr) = text(&stale);
    assert_eq!(stale.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refused the token from the token file"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&data.join("api-token").display().to_string()),
        "{stderr}"
    );

    // The first api-auth-tokens of --config is used before any token file.
    let configured = dir.path().join("configured.toml");
    std::fs::write(
        &configured,
        format!("api-listen = \"{api}\"\napi-auth-tokens = [\"{TOKEN}\"]\n"),
    )
    .unwrap();
    let from_config = ctl(&["--config", configured.to_str().unwrap(), "calls"]);
    assert!(from_config.status.success(), "{:?}", text(&from_config));

    // No token anywhere: the message names the file looked for and the other ways.
    let none = Command::new(BIN)
        .args(["ctl", "--api", &api, "calls"])
        .current_dir(dir.path().join("data"))
        .env_remove("METAFLOW_PROXY_TOKEN")
        .output()
        .unwrap();
    let (_, stderr) = text(&none);
    assert_eq!(none.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no API token") && stderr.contains("--token"),
        "{stderr}"
    );

    let env = Command::new(BIN)
        .args(["ctl", "--api", &api, "calls"])
        .env("METAFLOW_PROXY_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(env.status.success(), "{:?}", text(&env));

    drop(proxy);
    let dead = ctl(&["--api", &api, "--token", TOKEN, "calls"]);
    let (_, stderr) = text(&dead);
    assert_eq!(dead.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("is metaflow-proxy running on {api}?")),
        "{stderr}"
    );
}

#[test]
fn ctl_help_names_every_action() {
    let help = ctl(&["--help"]);
    let (stdout, _) = text(&help);
    assert!(help.status.success());
    for action in [
        "calls", "hangup", "reload", "stats", "--api", "--token", "--json",
    ] {
        assert!(stdout.contains(action), "{action}: {stdout}");
    }
}
