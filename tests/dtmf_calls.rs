//! End-to-end DTMF detection through metaflow-proxy: SIPp parties dial metaflow codes with
//! RFC 2833 telephone-events (the stock `dtmf_2833_*.pcap`) or SIP INFO, and the `hangup` module
//! must end both legs; digits on a payload type the leg never negotiated must be ignored.
//! Scenarios: `tests/sipp/dtmf_*.xml` (plus `uas_wait_bye.xml`). Needs `sipp`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::time::Duration;

use common::calls::{
    MetaflowsProxy, assert_no_active_call, got_bye, named, run_call, sent_bye, wait_for_events,
};
use common::proxy::metric_sum;
use common::sipp::SippResult;
use serde_json::Value;

/// Limit for one SIPp run (the longest scenario, the callee dialing late, lasts about 4 s).
const RUN_LIMIT: Duration = Duration::from_secs(20);
/// SIPp's own timeout: a message that never comes fails the run before [`RUN_LIMIT`].
const SIPP_TIMEOUT_SECS: u32 = 15;
/// How long the event log may take to show the end of the call after both SIPp exited.
const EVENT_WAIT: Duration = Duration::from_secs(3);

/// `*0` hangs up, dialed by the caller (the owner of the `--metaflows` object).
const HANGUP_ON_0: &str = r#"{"numbers":{"0":{"module":"hangup"}}}"#;

/// A proxy started with a `--metaflows` file, and the calls run through it.
struct DtmfProxy {
    proxy: MetaflowsProxy,
}

impl DtmfProxy {
    fn start(metaflows: &str) -> DtmfProxy {
        DtmfProxy {
            proxy: MetaflowsProxy::start(metaflows),
        }
    }

    /// Runs the callee scenario then the caller scenario through the proxy, waits for both,
    /// requires both to exit 0 and returns (caller, callee).
    fn call(&self, uas: &str, uac: &str) -> (SippResult, SippResult) {
        run_call(&self.proxy, uas, uac, SIPP_TIMEOUT_SECS, RUN_LIMIT)
    }

    /// Every event of `events.jsonl` once the call has ended (`call_ended` logged); panics
    /// after [`EVENT_WAIT`] with what the log holds.
    fn events_after_call(&self) -> Vec<Value> {
        wait_for_events(&self.proxy, &["call_ended"], EVENT_WAIT)
    }

    /// Waits (2 s) until `/metrics` reports no active call.
    fn assert_idle(&self) {
        assert_no_active_call(&self.proxy);
    }
}

/// Position of the first event satisfying `wanted`; panics with the log if none does.
fn position(events: &[Value], what: &str, wanted: impl Fn(&Value) -> bool) -> usize {
    events
        .iter()
        .position(wanted)
        .unwrap_or_else(|| panic!("no {what} in {events:#?}"))
}

/// The `(digit, source)` of every `digit` event of `leg`, in order.
fn digits_of(events: &[Value], leg: &str) -> Vec<(String, String)> {
    named(events, "digit")
        .into_iter()
        .filter(|event| event["leg"] == leg)
        .map(|event| {
            let text = |key: &str| event[key].as_str().unwrap_or_default().to_owned();
            (text("digit"), text("source"))
        })
        .collect()
}

/// `(digit, source)` pairs for `digits`, all from `source`.
fn expected_digits(digits: &str, source: &str) -> Vec<(String, String)> {
    digits
        .chars()
        .map(|digit| (digit.to_string(), source.to_owned()))
        .collect()
}

/// The single `metaflow_match` event; panics unless there is exactly one.
fn only_match(events: &[Value]) -> &Value {
    let matches = named(events, "metaflow_match");
    assert_eq!(matches.len(), 1, "expected one metaflow_match: {events:#?}");
    matches[0]
}

/// The proxy itself hung up both parties (neither sent a BYE), after the match on `leg`
/// collecting `collected` ran the hangup module.
fn assert_hung_up_by_code(
    events: &[Value],
    caller: &SippResult,
    callee: &SippResult,
    leg: &str,
    collected: &str,
) {
    assert!(got_bye(caller), "the proxy must send BYE to the caller");
    assert!(got_bye(callee), "the proxy must send BYE to the callee");
    assert!(
        !sent_bye(caller) && !sent_bye(callee),
        "the BYEs must come from the proxy, not be relayed"
    );
    let matched = only_match(events);
    assert_eq!(matched["leg"], leg, "{matched}");
    assert_eq!(matched["collected"], collected, "{matched}");
    assert_eq!(matched["module"], "hangup", "{matched}");
    assert_eq!(
        matched["early"], true,
        "a code that no longer digit could change must act at once: {matched}"
    );
    let match_at = position(events, "metaflow_match", |e| e["event"] == "metaflow_match");
    let run_at = position(events, "hangup module_run", |e| {
        e["event"] == "module_run" && e["module"] == "hangup"
    });
    let ended_at = position(events, "call_ended", |e| e["event"] == "call_ended");
    assert!(match_at < run_at && run_at < ended_at, "{events:#?}");
}

#[test]
fn caller_dials_star_0_and_the_hangup_module_ends_both_legs() {
    let proxy = DtmfProxy::start(HANGUP_ON_0);
    let (caller, callee) = proxy.call("uas_wait_bye.xml", "dtmf_uac_star0.xml");
    let events = proxy.events_after_call();
    assert_eq!(
        digits_of(&events, "a"),
        expected_digits("*0", "rtp"),
        "{events:#?}"
    );
    assert!(digits_of(&events, "b").is_empty(), "{events:#?}");
    assert_hung_up_by_code(&events, &caller, &callee, "a", "0");
    proxy.assert_idle();
}

#[test]
fn listen_on_peer_ignores_the_caller_and_acts_on_the_callee() {
    let proxy = DtmfProxy::start(r#"{"listen_on":"peer","numbers":{"0":{"module":"hangup"}}}"#);
    let (caller, callee) = proxy.call("dtmf_uas_star0.xml", "dtmf_uac_star0.xml");
    let events = proxy.events_after_call();
    // The caller's *0 is decoded but arms nothing; its scenario would fail on an early BYE.
    assert_eq!(
        digits_of(&events, "a"),
        expected_digits("*0", "rtp"),
        "{events:#?}"
    );
    assert!(
        named(&events, "metaflow_armed")
            .iter()
            .all(|event| event["leg"] != "a"),
        "the a-leg must not arm a peer-only metaflow: {events:#?}"
    );
    assert_eq!(
        digits_of(&events, "b"),
        expected_digits("*0", "rtp"),
        "{events:#?}"
    );
    assert_hung_up_by_code(&events, &caller, &callee, "b", "0");
    let last_a_digit = events
        .iter()
        .rposition(|e| e["event"] == "digit" && e["leg"] == "a")
        .unwrap();
    let armed_b = position(&events, "metaflow_armed on b", |e| {
        e["event"] == "metaflow_armed" && e["leg"] == "b"
    });
    assert!(last_a_digit < armed_b, "{events:#?}");
    proxy.assert_idle();
}

#[test]
fn the_same_digit_twice_in_a_row_counts_twice() {
    let proxy = DtmfProxy::start(r#"{"numbers":{"225":{"module":"hangup"}}}"#);
    let (caller, callee) = proxy.call("uas_wait_bye.xml", "dtmf_uac_star225.xml");
    let events = proxy.events_after_call();
    assert_eq!(
        digits_of(&events, "a"),
        expected_digits("*225", "rtp"),
        "{events:#?}"
    );
    assert!(
        named(&events, "metaflow_no_match").is_empty(),
        "{events:#?}"
    );
    assert_hung_up_by_code(&events, &caller, &callee, "a", "225");
    proxy.assert_idle();
}

#[test]
fn sip_info_digits_dial_the_code_and_are_relayed() {
    let proxy = DtmfProxy::start(HANGUP_ON_0);
    let (caller, callee) = proxy.call("dtmf_uas_info_wait_bye.xml", "dtmf_uac_info_star0.xml");
    let events = proxy.events_after_call();
    assert_eq!(
        digits_of(&events, "a"),
        expected_digits("*0", "info"),
        "{events:#?}"
    );
    let relayed: Vec<String> = callee
        .received()
        .into_iter()
        .filter(|message| message.starts_with("INFO "))
        .collect();
    assert!(
        relayed.len() >= 2
            && relayed[0].contains("Signal=*")
            && relayed.iter().any(|info| info.contains("Signal=0")),
        "the callee must get both INFOs: {relayed:#?}"
    );
    assert_hung_up_by_code(&events, &caller, &callee, "a", "0");
    proxy.assert_idle();
}

/// The caller offers PCMA alone yet plays `*0` on payload type 101; `uas` answers the call.
/// No digit may be seen, the events must still have been relayed a-to-b, and only the caller's
/// own BYE ends the call.
fn assert_unnegotiated_events_ignored(uas: &str) {
    let proxy = DtmfProxy::start(HANGUP_ON_0);
    let (caller, callee) = proxy.call(uas, "dtmf_uac_nodtmf_star0_bye.xml");
    let events = proxy.events_after_call();
    assert!(named(&events, "digit").is_empty(), "{events:#?}");
    for name in ["metaflow_armed", "metaflow_match", "module_run"] {
        assert!(named(&events, name).is_empty(), "{events:#?}");
    }
    assert!(
        sent_bye(&caller) && !got_bye(&caller),
        "only the caller's own BYE may end the call"
    );
    assert!(got_bye(&callee), "the caller's BYE must reach the callee");
    assert!(!sent_bye(&callee));
    let metrics = proxy.proxy.metrics();
    let relayed = metric_sum(
        &metrics,
        "metaflow_proxy_rtp_packets_total",
        &[r#"direction="a_to_b""#, r#"kind="rtp""#],
    );
    // Each stock pcap holds 10 packets (7 updates, 3 end copies).
    assert!(
        relayed.is_some_and(|count| count >= 20.0),
        "the proxy must have relayed the caller's 20 event packets:\n{metrics}"
    );
    proxy.assert_idle();
}

#[test]
fn events_on_an_unnegotiated_payload_type_are_not_digits() {
    assert_unnegotiated_events_ignored("dtmf_uas_pcma_wait_bye.xml");
}

/// The callee's answer lists telephone-event 101 although the offer had none (RFC 3264 forbids
/// an answer to add formats): the payload type is still not negotiated for the caller.
#[test]
fn an_answer_adding_telephone_event_does_not_negotiate_it() {
    assert_unnegotiated_events_ignored("uas_wait_bye.xml");
}
