//! Behaviour of the transfer module: data validation, target URIs and the transfer state machine.

use serde_json::{Map, Value, json};

use super::*;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn params(value: Value) -> TransferParams {
    parse_params(&object(value)).unwrap()
}

fn captures(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn accepted_transfer(takeback: &str) -> BlindTransfer {
    let params = params(json!({ "takeback_dtmf": takeback }));
    let mut transfer = BlindTransfer::new(params, "sip:1234@pbx.example.com".into());
    assert_eq!(transfer.on_refer_response(202), Step::Accepted);
    transfer
}

#[test]
fn seed_data_parses_with_defaults() {
    let parsed = params(json!({ "takeback_dtmf": "*1" }));
    assert_eq!(parsed, TransferParams::default());
    let empty = params(json!({}));
    assert_eq!(empty.takeback_dtmf, "*1");
    assert_eq!(empty.transfer_type, TransferType::Blind);
    let nulls = params(json!({ "target": null, "transfer_type": null, "takeback_dtmf": null }));
    assert_eq!(nulls, TransferParams::default());
}

#[test]
fn engine_keys_are_tolerated() {
    let data = json!({ "captures": ["1234"], "collected": "21234", "dtmf_leg": "a" });
    assert_eq!(params(data), TransferParams::default());
}

#[test]
fn unknown_transfer_type_names_the_path() {
    let errors = parse_params(&object(json!({ "transfer_type": "teleport" }))).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, "data.transfer_type");
    assert_eq!(errors[0].rule, "enum");
    assert!(errors[0].message.contains("\"teleport\""), "{}", errors[0]);
    assert!(errors[0].message.contains("blind"), "{}", errors[0]);
    let warm = parse_params(&object(json!({ "transfer_type": "warm" }))).unwrap_err();
    assert!(warm[0].message.contains("\"attended\""), "{}", warm[0]);
    assert!(warm[0].to_string().starts_with("data.transfer_type: "));
    let attended = parse_params(&object(json!({ "transfer_type": "attended" }))).unwrap();
    assert_eq!(attended.transfer_type, TransferType::Attended);
}

#[test]
fn every_problem_is_reported_at_once() {
    let data = json!({
        "transfer_type": 3,
        "target": "12 34",
        "domain": "bad host!",
        "takeback_dtmf": "*x",
        "captures": "1234",
    });
    let errors = parse_params(&object(data)).unwrap_err();
    let paths: Vec<(&str, &str)> = errors
        .iter()
        .map(|error| (error.path.as_str(), error.rule.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            ("data.target", "pattern"),
            ("data.domain", "pattern"),
            ("data.takeback_dtmf", "pattern"),
            ("data.transfer_type", "type"),
            ("data.captures", "type"),
        ]
    );
}

#[test]
fn takeback_dtmf_limits() {
    let empty = parse_params(&object(json!({ "takeback_dtmf": "" }))).unwrap_err();
    assert_eq!(
        (empty[0].path.as_str(), empty[0].rule.as_str()),
        ("data.takeback_dtmf", "minLength")
    );
    let long = parse_params(&object(json!({ "takeback_dtmf": "1".repeat(17) }))).unwrap_err();
    assert_eq!(long[0].rule, "maxLength");
    assert_eq!(params(json!({ "takeback_dtmf": "#a" })).takeback_dtmf, "#A");
}

#[test]
fn normalise_adds_seed_defaults_only_when_absent() {
    let mut data = object(json!({ "takeback_dtmf": "*1" }));
    normalise(&mut data);
    let seed = json!({ "captures": ["no_match"], "takeback_dtmf": "*1", "transfer_type": "blind" });
    assert_eq!(Value::Object(data.clone()), seed);
    normalise(&mut data);
    assert_eq!(
        Value::Object(data),
        seed,
        "normalising twice changes nothing"
    );
    let mut given = object(json!({ "captures": ["55"], "transfer_type": "blind", "target": "7" }));
    let before = given.clone();
    normalise(&mut given);
    assert_eq!(given, before);
}

#[test]
fn target_comes_from_data_target_before_captures() {
    let fixed = params(json!({ "target": "2000" }));
    let uri = refer_target(&fixed, &captures(&["1234"]), "127.0.0.1").unwrap();
    assert_eq!(uri, "sip:2000@127.0.0.1");
    let from_capture = refer_target(
        &TransferParams::default(),
        &captures(&["1234", "9"]),
        "127.0.0.1",
    );
    assert_eq!(from_capture.unwrap(), "sip:1234@127.0.0.1");
}

#[test]
fn domain_overrides_the_upstream_host() {
    let with_domain = params(json!({ "domain": "pbx.example.com" }));
    let uri = refer_target(&with_domain, &captures(&["1234"]), "10.0.0.5").unwrap();
    assert_eq!(uri, "sip:1234@pbx.example.com");
    let with_port = params(json!({ "domain": "pbx.example.com:5080" }));
    let uri = refer_target(&with_port, &captures(&["1234"]), "10.0.0.5").unwrap();
    assert_eq!(uri, "sip:1234@pbx.example.com:5080");
    let ipv6 = refer_target(&TransferParams::default(), &captures(&["1"]), "::1").unwrap();
    assert_eq!(ipv6, "sip:1@[::1]");
}

#[test]
fn missing_or_bad_targets_are_errors() {
    let none = TransferParams::default();
    assert_eq!(refer_target(&none, &[], "h"), Err(TransferError::NoTarget));
    assert_eq!(
        refer_target(&none, &captures(&["no_match"]), "h"),
        Err(TransferError::NoTarget)
    );
    assert_eq!(
        refer_target(&none, &captures(&[""]), "h"),
        Err(TransferError::NoTarget)
    );
    for bad in ["12@evil", "1234>", "a b", "1;x=y", "%41", "é"] {
        let result = refer_target(&none, &captures(&[bad]), "127.0.0.1");
        assert!(
            matches!(&result, Err(TransferError::InvalidTarget { target, .. }) if target == bad),
            "{bad}: {result:?}"
        );
    }
    let long = "1".repeat(129);
    assert!(refer_target(&none, &captures(&[&long]), "h").is_err());
    for host in ["", "a b", "-x.com", "[::1", "[zz]", "h:0", "h:70000"] {
        let result = refer_target(&none, &captures(&["1"]), host);
        assert_eq!(
            result,
            Err(TransferError::InvalidHost(host.to_owned())),
            "{host}"
        );
    }
}

#[test]
fn pound_is_escaped_and_marks_pass() {
    let none = TransferParams::default();
    let uri = refer_target(&none, &captures(&["12#"]), "pbx").unwrap();
    assert_eq!(uri, "sip:12%23@pbx");
    let uri = refer_target(&none, &captures(&["+33-1.2*3"]), "[::1]:5060").unwrap();
    assert_eq!(uri, "sip:+33-1.2*3@[::1]:5060");
}

#[test]
fn accept_then_notify_trying_then_ok_succeeds() {
    let params = params(json!({}));
    let mut transfer = BlindTransfer::new(params, "sip:1234@127.0.0.1".into());
    assert_eq!(transfer.refer_to_header(), "<sip:1234@127.0.0.1>");
    assert_eq!(transfer.on_refer_response(100), Step::Pending);
    assert_eq!(transfer.on_refer_response(202), Step::Accepted);
    assert_eq!(
        transfer.on_refer_response(202),
        Step::Ignored,
        "retransmitted 202"
    );
    let trying = transfer.on_notify(b"SIP/2.0 100 Trying\r\n", Some("active;expires=60"));
    assert_eq!(trying, Step::Progress(100));
    assert!(!transfer.is_finished());
    let ok = transfer.on_notify(b"SIP/2.0 200 OK\r\n", Some("terminated;reason=noresource"));
    assert_eq!(ok, Step::Succeeded);
    assert!(transfer.is_finished());
    assert_eq!(transfer.phase(), Phase::Succeeded);
    assert_eq!(transfer.on_notify(b"SIP/2.0 200 OK", None), Step::Ignored);
}

#[test]
fn notify_busy_fails_and_the_call_goes_on() {
    let mut transfer = accepted_transfer("*1");
    let busy = transfer.on_notify(b"SIP/2.0 486 Busy Here\r\n", Some("terminated"));
    assert_eq!(busy, Step::Failed(486));
    assert_eq!(busy.outcome(), Some("failure"));
    assert_eq!(transfer.phase(), Phase::Failed(486));
    assert_eq!(transfer.on_digit('*'), Step::Ignored);
}

#[test]
fn refer_refusals_and_timeout_fail() {
    for code in [403, 481, REFER_TIMEOUT_STATUS, 500, 488] {
        let mut transfer = BlindTransfer::new(params(json!({})), "sip:1@h".into());
        assert_eq!(transfer.on_refer_response(code), Step::Failed(code));
        assert!(transfer.is_finished());
        assert_eq!(transfer.on_refer_response(202), Step::Ignored);
        assert_eq!(transfer.on_notify(b"SIP/2.0 200 OK", None), Step::Ignored);
    }
}

/// 405, 501 and 603 say the far end does not take REFER: the proxy places the call itself, and
/// the placed call's answer decides.
#[test]
fn refer_not_taken_bridges_and_the_placed_call_decides() {
    for code in [405, 501, 603] {
        let mut transfer = BlindTransfer::new(params(json!({})), "sip:1@h".into());
        let step = transfer.on_refer_response(code);
        assert_eq!(step, Step::Bridge);
        assert_eq!(step.outcome(), None, "not over while the placed call rings");
        assert_eq!(transfer.phase(), Phase::Bridging);
        assert!(!transfer.is_finished());
        let answered = transfer.on_originated(200);
        assert_eq!(answered, Step::Bridged);
        assert_eq!(answered.outcome(), Some("success"));
        assert_eq!(
            answered.events(StepSource::Originated),
            [TransferEvent::Succeeded]
        );
        assert_eq!(transfer.on_originated(200), Step::Ignored);
    }
    let mut busy = BlindTransfer::new(params(json!({})), "sip:1@h".into());
    busy.on_refer_response(405);
    assert_eq!(busy.on_originated(486), Step::Failed(486));
    assert_eq!(busy.phase(), Phase::Failed(486));
}

#[test]
fn takeback_while_the_placed_call_rings_withdraws() {
    let mut transfer = BlindTransfer::new(params(json!({"takeback_dtmf": "*1"})), "sip:1@h".into());
    transfer.on_refer_response(501);
    assert_eq!(transfer.on_digit('*'), Step::Ignored);
    assert_eq!(transfer.on_digit('1'), Step::Withdrawn);
    assert_eq!(transfer.on_originated(487), Step::Ignored);
}

#[test]
fn a_placed_call_answer_outside_bridging_is_ignored() {
    let mut transfer = accepted_transfer("*1");
    assert_eq!(transfer.on_originated(200), Step::Ignored);
    assert_eq!(transfer.phase(), Phase::Accepted);
}

#[test]
fn unreadable_notify_is_progress_and_early_notify_counts_as_acceptance() {
    let mut transfer = BlindTransfer::new(params(json!({})), "sip:1@h".into());
    assert_eq!(
        transfer.on_notify(b"garbage", Some("active")),
        Step::Progress(NO_STATUS)
    );
    assert_eq!(transfer.phase(), Phase::Accepted);
    assert_eq!(
        transfer.on_refer_response(202),
        Step::Ignored,
        "late 202 after a NOTIFY"
    );
    assert_eq!(
        transfer.on_notify(b"SIP/2.0 180 Ringing", None),
        Step::Progress(180)
    );
}

#[test]
fn subscription_terminated_without_final_status_fails() {
    let mut transfer = accepted_transfer("*1");
    let ended = transfer.on_notify(b"SIP/2.0 100 Trying", Some(" Terminated ;reason=timeout"));
    assert_eq!(ended, Step::Failed(100));
    let mut unreadable = accepted_transfer("*1");
    assert_eq!(
        unreadable.on_notify(b"", Some("terminated")),
        Step::Failed(NO_STATUS)
    );
}

#[test]
fn takeback_before_final_withdraws_and_later_notifies_are_ignored() {
    let mut transfer = accepted_transfer("*1");
    assert_eq!(
        transfer.on_notify(b"SIP/2.0 100 Trying", Some("active")),
        Step::Progress(100)
    );
    assert_eq!(transfer.on_digit('2'), Step::Ignored);
    assert_eq!(transfer.on_digit('*'), Step::Ignored);
    assert_eq!(transfer.on_digit('1'), Step::Withdrawn);
    assert!(transfer.is_finished());
    assert_eq!(
        transfer.on_notify(b"SIP/2.0 200 OK", Some("terminated")),
        Step::Ignored
    );
    assert_eq!(transfer.phase(), Phase::Withdrawn);
}

#[test]
fn takeback_works_before_the_refer_is_answered() {
    let mut transfer =
        BlindTransfer::new(params(json!({ "takeback_dtmf": "#9a" })), "sip:1@h".into());
    for digit in ['#', '9'] {
        assert_eq!(transfer.on_digit(digit), Step::Ignored);
    }
    assert_eq!(
        transfer.on_digit('a'),
        Step::Withdrawn,
        "digits compare case-insensitively"
    );
    assert_eq!(transfer.on_refer_response(202), Step::Ignored);
}

#[test]
fn takeback_after_success_is_ignored() {
    let mut transfer = accepted_transfer("*1");
    assert_eq!(transfer.on_notify(b"SIP/2.0 200 OK", None), Step::Succeeded);
    assert_eq!(transfer.on_digit('*'), Step::Ignored);
    assert_eq!(transfer.on_digit('1'), Step::Ignored);
    assert_eq!(transfer.phase(), Phase::Succeeded);
}

#[test]
fn interrupted_takeback_sequence_does_not_withdraw() {
    let mut transfer = accepted_transfer("*1");
    for digit in ['*', '2', '1'] {
        assert_eq!(transfer.on_digit(digit), Step::Ignored, "{digit}");
    }
    assert!(!transfer.is_finished());
}

#[test]
fn steps_map_to_the_documented_events() {
    let names = |events: &[TransferEvent]| events.iter().map(|e| e.name()).collect::<Vec<_>>();
    assert_eq!(
        names(Step::Accepted.events(StepSource::ReferResponse)),
        ["transfer_accepted"]
    );
    assert_eq!(
        names(Step::Failed(403).events(StepSource::ReferResponse)),
        ["transfer_failed"]
    );
    assert_eq!(
        names(Step::Progress(100).events(StepSource::Notify)),
        ["transfer_notify"]
    );
    assert_eq!(
        names(Step::Succeeded.events(StepSource::Notify)),
        ["transfer_notify", "transfer_succeeded"]
    );
    assert_eq!(
        names(Step::Failed(486).events(StepSource::Notify)),
        ["transfer_notify", "transfer_failed"]
    );
    assert_eq!(
        names(Step::Withdrawn.events(StepSource::Digit)),
        ["transfer_withdrawn"]
    );
    assert!(Step::Ignored.events(StepSource::Notify).is_empty());
    assert!(Step::Pending.events(StepSource::ReferResponse).is_empty());
    assert_eq!(Step::Succeeded.outcome(), Some("success"));
    assert_eq!(Step::Withdrawn.outcome(), Some("withdrawn"));
    assert_eq!(Step::Progress(100).outcome(), None);
}

#[test]
fn timeout_and_method_are_checked_with_kazoos_default() {
    let defaults = params(json!({}));
    assert_eq!(defaults.ringback, DEFAULT_RINGBACK);
    let custom = params(json!({"ringback": "/system_media/ring"}));
    assert_eq!(custom.ringback, "/system_media/ring");
    assert_eq!(defaults.timeout_s, DEFAULT_TIMEOUT_S);
    assert_eq!(defaults.method, TransferMethod::Refer);
    let set = params(json!({"timeout": 45, "method": "bridge"}));
    assert_eq!(set.timeout_s, 45);
    assert_eq!(set.method, TransferMethod::Bridge);
    for (data, path) in [
        (json!({"timeout": 0}), "data.timeout"),
        (json!({"timeout": "20"}), "data.timeout"),
        (json!({"method": "teleport"}), "data.method"),
    ] {
        let problems = parse_params(data.as_object().unwrap()).unwrap_err();
        assert_eq!(problems[0].path, path);
    }
}
