//! Tests of loading, precedence and error messages.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use super::*;
use crate::media::latch::{LatchMode, LatchPolicy, SourceMatch};

const EXAMPLE_FILE: &str = include_str!("../../config/metaflow-proxy.toml");

fn write_config(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn cli(args: &[&str]) -> Cli {
    Cli::parse_from(std::iter::once("metaflow-proxy").chain(args.iter().copied()))
}

fn load_text(text: &str) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    config.apply_toml(Path::new("config.toml"), text)?;
    config.validate()?;
    Ok(config)
}

#[test]
fn no_arguments_gives_the_documented_defaults() {
    let config = Config::load(&cli(&[])).unwrap();
    assert_eq!(config.sip_listen, "127.0.0.1:5060".parse().unwrap());
    assert_eq!(config.upstream, None);
    assert_eq!(
        config.media_ip_effective(),
        "127.0.0.1".parse::<IpAddr>().unwrap()
    );
    assert_eq!(config.rtp_ports, (30000, 39999));
    assert_eq!(config.latch_policy(), LatchPolicy::default());
    assert_eq!(
        (
            config.rtp_latch,
            config.rtp_learning,
            config.rtp_source_match
        ),
        (
            LatchMode::Learning,
            Duration::from_millis(500),
            SourceMatch::Ip
        )
    );
    assert_eq!(config.api_listen, "127.0.0.1:8000".parse().unwrap());
    assert_eq!(config.data_dir, PathBuf::from("./data"));
    assert_eq!(config.media_timeout, Duration::from_secs(60));
    assert_eq!(config.media_timeout_hold, Duration::from_secs(3600));
    assert_eq!(config.shutdown_grace, Duration::from_secs(30));
    assert_eq!(config.timer_c, Duration::from_secs(180));
    assert_eq!(config.no_answer_timeout, None);
    assert_eq!(
        (config.sip_t1, config.sip_t2, config.sip_t4),
        (
            Duration::from_millis(500),
            Duration::from_millis(4000),
            Duration::from_millis(5000)
        )
    );
    assert_eq!(config.log_level, "info");
    assert_eq!(config.log_format, LogFormat::Text);
    assert_eq!(config.max_calls, 10_000);
    assert!(config.api_auth_tokens.is_empty() && config.metaflows.is_none());
}

#[test]
fn flags_win_over_the_file_and_the_file_over_defaults() {
    let file = write_config(
        "sip-listen = \"127.0.0.2:5070\"\nrtp-ports = \"20000-20999\"\n\
         media-timeout = 20\nmax-calls = 5\nlog-format = \"json\"\n",
    );
    let path = file.path().to_str().unwrap();
    let config = Config::load(&cli(&[
        "--config",
        path,
        "--rtp-ports",
        "40000-40999",
        "--media-timeout",
        "7",
    ]))
    .unwrap();
    assert_eq!(config.sip_listen, "127.0.0.2:5070".parse().unwrap());
    assert_eq!(config.rtp_ports, (40000, 40999));
    assert_eq!(config.media_timeout, Duration::from_secs(7));
    assert_eq!(config.max_calls, 5);
    assert_eq!(config.log_format, LogFormat::Json);
    assert_eq!(config.api_listen, Config::default().api_listen);
}

#[test]
fn media_timeout_hold_loads_from_the_file_and_the_flag_wins() {
    let config = load_text("media-timeout-hold = 0").unwrap();
    assert_eq!(config.media_timeout_hold, Duration::ZERO, "0 means never");
    let file = write_config("media-timeout-hold = 600\n");
    let path = file.path().to_str().unwrap();
    let config = Config::load(&cli(&["--config", path])).unwrap();
    assert_eq!(config.media_timeout_hold, Duration::from_secs(600));
    let config = Config::load(&cli(&["--config", path, "--media-timeout-hold", "90"])).unwrap();
    assert_eq!(config.media_timeout_hold, Duration::from_secs(90));
}

#[test]
fn call_setup_limits_load_from_the_file_and_flags_win() {
    let config = load_text("timer-c = 240\nno-answer-timeout = 90").unwrap();
    assert_eq!(config.timer_c, Duration::from_secs(240));
    assert_eq!(config.no_answer_timeout, Some(Duration::from_secs(90)));
    let config = load_text("no-answer-timeout = 0").unwrap();
    assert_eq!(config.no_answer_timeout, None, "0 turns the limit off");
    let file = write_config("timer-c = 240\nno-answer-timeout = 90\n");
    let path = file.path().to_str().unwrap();
    let config = Config::load(&cli(&[
        "--config",
        path,
        "--timer-c",
        "300",
        "--no-answer-timeout",
        "0",
    ]))
    .unwrap();
    assert_eq!(config.timer_c, Duration::from_secs(300));
    assert_eq!(config.no_answer_timeout, None);
    let message = Config::load(&cli(&["--timer-c", "30"]))
        .unwrap_err()
        .to_string();
    assert!(message.contains("--timer-c"), "{message}");
}

#[test]
fn latch_keys_load_from_the_file_and_flags_win() {
    let file = write_config(
        "rtp-latch = \"strict\"\nrtp-learning-ms = 800\nrtp-source-match = \"ip-port\"\n",
    );
    let path = file.path().to_str().unwrap();
    let config = Config::load(&cli(&["--config", path])).unwrap();
    assert_eq!(
        config.latch_policy(),
        LatchPolicy {
            mode: LatchMode::Strict,
            learning_window: Duration::from_millis(800),
            source_match: SourceMatch::IpPort,
        }
    );
    let config = Config::load(&cli(&[
        "--config",
        path,
        "--rtp-latch",
        "learning",
        "--rtp-learning-ms",
        "250",
        "--rtp-source-match",
        "ip",
    ]))
    .unwrap();
    assert_eq!(
        config.latch_policy(),
        LatchPolicy {
            mode: LatchMode::Learning,
            learning_window: Duration::from_millis(250),
            source_match: SourceMatch::Ip,
        }
    );
    let summary = check_config(file.path()).unwrap();
    assert!(
        summary.contains("rtp-latch strict, source match ip-port"),
        "{summary}"
    );
}

#[test]
fn bad_latch_values_name_the_key_or_flag() {
    for (text, key) in [
        ("rtp-latch = \"off\"", "\"rtp-latch\""),
        ("rtp-latch = 1", "\"rtp-latch\""),
        ("rtp-learning-ms = 0", "\"rtp-learning-ms\""),
        ("rtp-learning-ms = 60000", "\"rtp-learning-ms\""),
        ("rtp-learning-ms = \"500\"", "\"rtp-learning-ms\""),
        ("rtp-source-match = \"port\"", "\"rtp-source-match\""),
    ] {
        let message = load_text(text).unwrap_err().to_string();
        assert!(message.contains(key), "{text}: {message}");
        assert!(message.contains("in config.toml"), "{text}: {message}");
    }
    let message = Config::load(&cli(&["--rtp-learning-ms", "0"]))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("--rtp-learning-ms on the command line"),
        "{message}"
    );
    for flag in ["--rtp-latch", "--rtp-source-match"] {
        let err = Cli::try_parse_from(["metaflow-proxy", flag, "sometimes"]).unwrap_err();
        assert!(err.to_string().contains(flag), "{err}");
    }
}

#[test]
fn api_auth_token_flags_are_merged_with_the_file_list() {
    let file = write_config("api-auth-tokens = [\"alpha\", \"beta\"]\n");
    let path = file.path().to_str().unwrap();
    let config = Config::load(&cli(&[
        "--config",
        path,
        "--api-auth-token",
        "gamma",
        "--api-auth-token",
        "alpha",
    ]))
    .unwrap();
    assert_eq!(config.api_auth_tokens, vec!["alpha", "beta", "gamma"]);
}

#[test]
fn unknown_key_is_named_with_the_known_keys() {
    let err = load_text("sip-listen = \"127.0.0.1:5060\"\nsip-listn = \"x\"\n").unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("unknown key \"sip-listn\" in config.toml; known keys: sip-listen,"),
        "{message}"
    );
    assert!(message.contains("max-calls"), "{message}");
    let err = load_text("[sip]\nlisten = \"127.0.0.1:5060\"\n").unwrap_err();
    assert!(err.to_string().contains("unknown key \"sip\""), "{err}");
}

#[test]
fn bad_rtp_ports_name_the_key_and_the_problem() {
    let message = load_text("rtp-ports = \"40000-30000\"")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("\"rtp-ports\"") && message.contains("below"),
        "{message}"
    );
    let message = load_text("rtp-ports = \"100-200\"")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("\"rtp-ports\"") && message.contains("1024"),
        "{message}"
    );
    let message = load_text("rtp-ports = 30000").unwrap_err().to_string();
    assert!(
        message.contains("expected a string, got integer"),
        "{message}"
    );
}

#[test]
fn bad_addresses_name_the_key() {
    for (text, key) in [
        ("sip-listen = \"localhost\"", "\"sip-listen\""),
        ("api-listen = \"1.2.3.4\"", "\"api-listen\""),
        ("upstream = \"pbx-without-port\"", "\"upstream\""),
        ("media-ip = \"192.0.2.300\"", "\"media-ip\""),
        ("sip-listen = 5060", "\"sip-listen\""),
    ] {
        let message = load_text(text).unwrap_err().to_string();
        assert!(message.contains(key), "{text}: {message}");
        assert!(message.contains("in config.toml"), "{text}: {message}");
    }
    let message = Config::load(&cli(&["--upstream", "10.0.0.1"]))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("--upstream on the command line"),
        "{message}"
    );
}

#[test]
fn upstream_is_resolved_and_its_host_kept() {
    let config = load_text("upstream = \"localhost:5080\"").unwrap();
    assert_eq!(config.upstream.map(|addr| addr.port()), Some(5080));
    assert!(config.upstream.unwrap().ip().is_loopback());
    assert_eq!(config.upstream_host.as_deref(), Some("localhost"));
}

#[test]
fn wrong_types_and_ranges_name_the_key() {
    for (text, key) in [
        ("media-timeout = 0", "\"media-timeout\""),
        ("media-timeout = \"60\"", "\"media-timeout\""),
        ("media-timeout-hold = -1", "\"media-timeout-hold\""),
        ("media-timeout-hold = \"1h\"", "\"media-timeout-hold\""),
        ("max-calls = -1", "\"max-calls\""),
        ("sip-t1-ms = 0", "\"sip-t1-ms\""),
        ("timer-c = 60", "\"timer-c\""),
        ("timer-c = \"180\"", "\"timer-c\""),
        ("no-answer-timeout = -5", "\"no-answer-timeout\""),
        ("log-format = \"xml\"", "\"log-format\""),
        ("log-level = \"verbose\"", "\"log-level\""),
        ("api-auth-tokens = \"one\"", "\"api-auth-tokens\""),
        ("api-auth-tokens = [\"\"]", "\"api-auth-tokens\""),
        ("data-dir = \"\"", "\"data-dir\""),
    ] {
        let message = load_text(text).unwrap_err().to_string();
        assert!(message.contains(key), "{text}: {message}");
    }
}

#[test]
fn cross_key_rules_are_checked() {
    let message = load_text("sip-t1-ms = 5000\nsip-t2-ms = 1000")
        .unwrap_err()
        .to_string();
    assert!(message.contains("sip-t2-ms"), "{message}");
    let message = load_text("sip-listen = \"0.0.0.0:5060\"")
        .unwrap_err()
        .to_string();
    assert!(message.contains("media-ip"), "{message}");
    let config = load_text("sip-listen = \"0.0.0.0:5060\"\nmedia-ip = \"192.0.2.7\"").unwrap();
    assert_eq!(
        config.media_ip_effective(),
        "192.0.2.7".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn syntax_errors_and_missing_files_are_reported() {
    let message = load_text("sip-listen = ").unwrap_err().to_string();
    assert!(
        message.contains("not valid TOML") && message.contains("line 1"),
        "{message}"
    );
    let err = check_config(Path::new("/nonexistent/metaflow-proxy.toml")).unwrap_err();
    let message = crate::base::ErrorChain(&err).to_string();
    assert!(
        message.contains("cannot read config file /nonexistent"),
        "{message}"
    );
    assert_eq!(
        message.matches("No such file").count(),
        1,
        "the cause once: {message}"
    );
}

#[test]
fn check_config_summarises_a_good_file() {
    let file = write_config("upstream = \"127.0.0.1:5080\"\nmax-calls = 12\n");
    let summary = check_config(file.path()).unwrap();
    assert!(summary.starts_with("config OK: "), "{summary}");
    assert!(summary.contains("upstream 127.0.0.1:5080"), "{summary}");
    assert!(summary.contains("max-calls 12"), "{summary}");
}

#[test]
fn example_file_parses_and_matches_the_built_in_defaults() {
    assert_eq!(load_text(EXAMPLE_FILE).unwrap(), Config::default());
}

/// The key documenting each field of `Config`. The exhaustive destructuring stops compiling when
/// a field is added, so the example file cannot silently fall behind.
fn documented_key_of_every_field(config: Config) -> Vec<&'static str> {
    let Config {
        sip_listen: _,
        upstream: _,
        upstream_host: _,
        media_ip: _,
        rtp_ports: _,
        rtp_latch: _,
        rtp_learning: _,
        rtp_source_match: _,
        api_listen: _,
        data_dir: _,
        store: _,
        node_id: _,
        api_advertise: _,
        metaflows: _,
        api_auth_tokens: _,
        media_timeout: _,
        media_timeout_hold: _,
        timer_c: _,
        digit_timeout: _,
        fast_rearm: _,
        no_answer_timeout: _,
        upstream_transport: _,
        media_workers: _,
        media_fastpath: _,
        placed_call_from: _,
        max_transactions: _,
        shutdown_grace: _,
        recordings_retention_days: _,
        sip_t1: _,
        sip_t2: _,
        sip_t4: _,
        log_level: _,
        log_format: _,
        max_calls: _,
        tcp_idle_timeout: _,
        tcp_first_byte_timeout: _,
        tcp_header_timeout: _,
        tcp_max_per_source: _,
        api_header_timeout: _,
        api_idle_timeout: _,
        api_max_per_source: _,
        drop_scanners: _,
        scanner_user_agents: _,
        rate_limit_requests: _,
        rate_limit_window: _,
        rate_limit_block: _,
        rate_limit_max_sources: _,
        pbx_addresses: _,
        rate_limit_exempt: _,
        max_registrations: _,
        sip_advertise: _,
        media_advertise: _,
        webhook_urls: _,
        webhook_events: _,
        webhook_secret: _,
    } = config;
    vec![
        "sip-listen",
        "upstream",
        "upstream",
        "media-ip",
        "rtp-ports",
        "rtp-latch",
        "rtp-learning-ms",
        "rtp-source-match",
        "api-listen",
        "data-dir",
        "store",
        "node-id",
        "api-advertise",
        "metaflows",
        "api-auth-tokens",
        "media-timeout",
        "media-timeout-hold",
        "timer-c",
        "digit-timeout-ms",
        "use-fast-rearm",
        "no-answer-timeout",
        "upstream-transport",
        "media-workers",
        "media-fastpath",
        "placed-call-from",
        "max-transactions",
        "shutdown-grace",
        "recordings-retention-days",
        "sip-t1-ms",
        "sip-t2-ms",
        "sip-t4-ms",
        "log-level",
        "log-format",
        "max-calls",
        "tcp-idle-timeout",
        "tcp-first-byte-timeout",
        "tcp-header-timeout",
        "tcp-max-per-source",
        "api-header-timeout",
        "api-idle-timeout",
        "api-max-per-source",
        "drop-scanners",
        "scanner-user-agents",
        "rate-limit-requests",
        "rate-limit-window",
        "rate-limit-block",
        "rate-limit-max-sources",
        "pbx-addresses",
        "rate-limit-exempt",
        "max-registrations",
        "sip-advertise",
        "media-advertise",
        "webhook-urls",
        "webhook-events",
        "webhook-secret",
    ]
}

#[test]
fn example_file_documents_every_key() {
    let keys = documented_key_of_every_field(Config::default());
    for key in keys.iter().chain(KNOWN_KEYS.iter()) {
        let documented = EXAMPLE_FILE.lines().any(|line| {
            let line = line.trim_start_matches('#').trim_start();
            line.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        });
        assert!(
            documented,
            "key {key} is missing from config/metaflow-proxy.toml"
        );
        assert!(
            KNOWN_KEYS.contains(key),
            "{key} is not accepted by the loader"
        );
    }
}

#[test]
fn commented_examples_in_the_example_file_load() {
    let uncommented: String = EXAMPLE_FILE
        .lines()
        .map(|line| {
            line.strip_prefix("# ")
                .filter(|rest| rest.contains(" = \""))
                .unwrap_or(line)
        })
        .map(|line| {
            line.replace("pbx.example.net:5060", "127.0.0.1:5060")
                .replace(
                    "sip-listen = \"127.0.0.1:5060\"",
                    "sip-listen = \"0.0.0.0:5060\"",
                )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = load_text(&uncommented).unwrap();
    assert_eq!(config.media_ip, Some("192.0.2.10".parse().unwrap()));
    assert!(config.metaflows.is_some() && config.upstream.is_some());
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/metaflow-proxy"));
}

/// A relative path in a file is relative to the file, not to the working directory; an
/// absolute one stays as written, and a flag's relative path is the working directory's.
#[test]
fn relative_paths_in_a_file_are_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    std::fs::write(
        &path,
        "data-dir = \"state\"\nmetaflows = \"../flows.json\"\n",
    )
    .unwrap();
    let config = Config::load(&cli(&["--config", path.to_str().unwrap()])).unwrap();
    assert_eq!(config.data_dir, dir.path().join("state"));
    assert_eq!(config.metaflows, Some(dir.path().join("../flows.json")));
    std::fs::write(&path, "data-dir = \"/srv/mfp\"\n").unwrap();
    let config = Config::load(&cli(&["--config", path.to_str().unwrap()])).unwrap();
    assert_eq!(config.data_dir, PathBuf::from("/srv/mfp"));
    let config = Config::load(&cli(&[
        "--config",
        path.to_str().unwrap(),
        "--data-dir",
        "here",
    ]))
    .unwrap();
    assert_eq!(config.data_dir, PathBuf::from("here"));
}

#[test]
fn connection_limits_load_from_file_and_flags_and_zero_names_the_key() {
    let file = write_config("tcp-header-timeout = 4\napi-max-per-source = 7\n");
    let config = Config::from_file(file.path()).unwrap();
    assert_eq!(config.tcp_header_timeout, Duration::from_secs(4));
    assert_eq!(config.api_max_per_source, 7);
    assert_eq!(config.tcp_idle_timeout, Duration::from_secs(600));
    assert_eq!(config.tcp_first_byte_timeout, Duration::from_secs(30));
    assert_eq!(config.tcp_max_per_source, 32);
    assert_eq!(config.api_idle_timeout, Duration::from_secs(60));

    let file = write_config("tcp-max-per-source = 0\n");
    let message = Config::from_file(file.path()).unwrap_err().to_string();
    assert!(message.contains("\"tcp-max-per-source\""), "{message}");

    let config = Config::load(&cli(&[
        "--api-idle-timeout",
        "5",
        "--tcp-max-per-source",
        "3",
    ]))
    .unwrap();
    assert_eq!(config.api_idle_timeout, Duration::from_secs(5));
    assert_eq!(config.tcp_max_per_source, 3);
    let message = Config::load(&cli(&["--tcp-first-byte-timeout", "0"]))
        .unwrap_err()
        .to_string();
    assert!(message.contains("--tcp-first-byte-timeout"), "{message}");
}

#[test]
fn scanner_and_rate_limit_defaults_are_on_and_generous() {
    let config = Config::default();
    assert!(config.drop_scanners);
    assert!(
        config
            .scanner_user_agents
            .iter()
            .any(|ua| ua == "friendly-scanner")
    );
    assert!(
        !config
            .scanner_user_agents
            .iter()
            .any(|ua| ua.eq_ignore_ascii_case("cisco"))
    );
    assert_eq!(config.rate_limit_requests, 200);
    assert_eq!(config.rate_limit_window, Duration::from_secs(2));
    assert_eq!(config.rate_limit_block, Duration::from_secs(60));
    assert_eq!(config.rate_limit_max_sources, 10_000);
}

#[test]
fn scanner_list_is_replaced_by_the_file_and_extended_by_flags() {
    let file = write_config(
        "drop-scanners = true\nscanner-user-agents = [\"evil-dialer\", \"friendly-scanner\"]\n",
    );
    let path = file.path().to_str().unwrap();
    let config = Config::load(&cli(&[
        "--config",
        path,
        "--scanner-user-agent",
        "sipcli",
        "--scanner-user-agent",
        "evil-dialer",
    ]))
    .unwrap();
    assert_eq!(
        config.scanner_user_agents,
        vec!["evil-dialer", "friendly-scanner", "sipcli"]
    );
    let config = Config::load(&cli(&["--config", path, "--drop-scanners", "false"])).unwrap();
    assert!(!config.drop_scanners);
}

#[test]
fn rate_limit_keys_load_from_the_file_and_flags_win() {
    let file = write_config(
        "rate-limit-requests = 50\nrate-limit-window = 1\nrate-limit-block = 300\n\
         rate-limit-max-sources = 500\n",
    );
    let path = file.path().to_str().unwrap();
    let config = Config::load(&cli(&["--config", path, "--rate-limit-block", "10"])).unwrap();
    assert_eq!(config.rate_limit_requests, 50);
    assert_eq!(config.rate_limit_window, Duration::from_secs(1));
    assert_eq!(config.rate_limit_block, Duration::from_secs(10));
    assert_eq!(config.rate_limit_max_sources, 500);
    let off = load_text("rate-limit-requests = 0").unwrap();
    assert_eq!(off.rate_limit_requests, 0);
}

#[test]
fn bad_scanner_and_rate_limit_values_name_the_key_or_flag() {
    for (text, key) in [
        ("drop-scanners = \"yes\"", "\"drop-scanners\""),
        (
            "scanner-user-agents = \"sipcli\"",
            "\"scanner-user-agents\"",
        ),
        ("scanner-user-agents = [\"\"]", "\"scanner-user-agents\""),
        ("scanner-user-agents = [\"  \"]", "\"scanner-user-agents\""),
        ("scanner-user-agents = [1]", "\"scanner-user-agents\""),
        ("rate-limit-requests = -1", "\"rate-limit-requests\""),
        (
            "rate-limit-requests = 9999999999",
            "\"rate-limit-requests\"",
        ),
        ("rate-limit-window = 0", "\"rate-limit-window\""),
        ("rate-limit-window = 100000", "\"rate-limit-window\""),
        ("rate-limit-block = 0", "\"rate-limit-block\""),
        ("rate-limit-max-sources = 0", "\"rate-limit-max-sources\""),
    ] {
        let message = load_text(text).unwrap_err().to_string();
        assert!(message.contains(key), "{text}: {message}");
    }
    for (args, flag) in [
        (&["--scanner-user-agent", ""][..], "--scanner-user-agent"),
        (&["--rate-limit-window", "0"][..], "--rate-limit-window"),
        (&["--rate-limit-block", "0"][..], "--rate-limit-block"),
        (
            &["--rate-limit-max-sources", "0"][..],
            "--rate-limit-max-sources",
        ),
        (
            &["--rate-limit-requests", "9999999999"][..],
            "--rate-limit-requests",
        ),
    ] {
        let message = Config::load(&cli(args)).unwrap_err().to_string();
        assert!(message.contains(flag), "{args:?}: {message}");
    }
    let err = Cli::try_parse_from(["metaflow-proxy", "--drop-scanners", "maybe"]).unwrap_err();
    assert!(err.to_string().contains("--drop-scanners"), "{err}");
}

/// Every key of the file is also a flag of the same name (the repeatable lists take one value
/// per flag, in the singular), so the README's promise holds and a new key cannot forget it.
#[test]
fn every_key_is_also_a_flag() {
    use clap::CommandFactory;
    let command = Cli::command();
    let flags: Vec<String> = command
        .get_arguments()
        .filter_map(|arg| arg.get_long().map(str::to_owned))
        .collect();
    let singular = |key: &str| match key {
        "api-auth-tokens" => "api-auth-token".to_owned(),
        "scanner-user-agents" => "scanner-user-agent".to_owned(),
        "pbx-addresses" => "pbx-address".to_owned(),
        "webhook-urls" => "webhook-url".to_owned(),
        "webhook-events" => "webhook-event".to_owned(),
        other => other.to_owned(),
    };
    let missing: Vec<&str> = KNOWN_KEYS
        .iter()
        .copied()
        .filter(|key| !flags.contains(&singular(key)))
        .collect();
    assert!(missing.is_empty(), "keys without a flag: {missing:?}");
}

/// The flags added for the keys that were file-only load like the keys.
#[test]
fn the_former_file_only_keys_load_from_flags() {
    let config = Config::load(&cli(&[
        "--upstream-transport",
        "tcp",
        "--media-workers",
        "3",
        "--shutdown-grace",
        "5",
        "--recordings-retention-days",
        "30",
        "--sip-t1-ms",
        "100",
        "--sip-t2-ms",
        "800",
        "--sip-t4-ms",
        "900",
        "--max-calls",
        "7",
        "--max-transactions",
        "70",
        "--max-registrations",
        "9",
    ]))
    .unwrap();
    assert_eq!(
        config.upstream_transport,
        crate::sip::transport::Transport::Tcp
    );
    assert_eq!(config.media_workers, 3);
    assert_eq!(config.shutdown_grace, Duration::from_secs(5));
    assert_eq!(config.recordings_retention_days, 30);
    assert_eq!(config.sip_t1, Duration::from_millis(100));
    assert_eq!(config.sip_t2, Duration::from_millis(800));
    assert_eq!(config.sip_t4, Duration::from_millis(900));
    assert_eq!(
        (
            config.max_calls,
            config.max_transactions,
            config.max_registrations
        ),
        (7, 70, 9)
    );
    let err = Config::load(&cli(&["--max-calls", "0"])).unwrap_err();
    assert!(err.to_string().contains("--max-calls"), "{err}");
}

/// The webhook keys load from the file and the flags (which add), map Kazoo hook names to our
/// kinds and refuse https and unknown kinds with the key's name.
#[test]
fn webhook_keys_load_from_file_and_flags() {
    let file = write_config(
        "webhook-urls = [\"http://127.0.0.1:9000/hooks\"]\n\
         webhook-events = [\"channel_create\", \"metaflow_match\"]\n\
         webhook-secret = \"k\"\n",
    );
    let config = Config::load(&cli(&[
        "--config",
        file.path().to_str().unwrap(),
        "--webhook-url",
        "http://127.0.0.1:9001/",
        "--webhook-event",
        "channel_destroy",
    ]))
    .unwrap();
    let urls: Vec<String> = config
        .webhook_urls
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        urls,
        ["http://127.0.0.1:9000/hooks", "http://127.0.0.1:9001/"]
    );
    assert_eq!(
        config.webhook_events,
        ["call_started", "metaflow_match", "call_ended"]
    );
    assert_eq!(config.webhook_secret.as_ref().unwrap().as_bytes(), b"k");
    assert!(
        !format!("{config:?}").contains("\"k\""),
        "the secret is not in Debug"
    );

    let err = load_text("webhook-urls = [\"https://hooks.example/\"]\n").unwrap_err();
    assert!(err.to_string().contains("webhook-urls"), "{err}");
    assert!(err.to_string().contains("TLS"), "{err}");
    let err = load_text("webhook-events = [\"channel_bridge\"]\n").unwrap_err();
    assert!(err.to_string().contains("webhook-events"), "{err}");
    let err = load_text("webhook-secret = \"\"\n").unwrap_err();
    assert!(err.to_string().contains("webhook-secret"), "{err}");
    let err = Config::load(&cli(&["--webhook-url", "https://x/"])).unwrap_err();
    assert!(err.to_string().contains("--webhook-url"), "{err}");
}

#[test]
fn metaflow_system_settings_come_from_file_and_flags() {
    let config = Config::load(&cli(&[])).unwrap();
    assert_eq!(
        (config.digit_timeout, config.fast_rearm),
        (Duration::from_millis(800), false)
    );
    let file = write_config("digit-timeout-ms = 1500\nuse-fast-rearm = true\n");
    let path = file.path().to_str().unwrap();
    let config = Config::load(&cli(&["--config", path])).unwrap();
    assert_eq!(
        (config.digit_timeout, config.fast_rearm),
        (Duration::from_millis(1500), true)
    );
    let config = Config::load(&cli(&[
        "--config",
        path,
        "--digit-timeout-ms",
        "300",
        "--use-fast-rearm",
        "false",
    ]))
    .unwrap();
    assert_eq!(
        (config.digit_timeout, config.fast_rearm),
        (Duration::from_millis(300), false)
    );
    let message = load_text("use-fast-rearm = 1").unwrap_err().to_string();
    assert!(message.contains("use-fast-rearm"), "{message}");
}
