//! End-to-end attended transfers through metaflow-proxy: SIPp carries the signalling (the
//! transferor calls and later hangs up; the PBX answers the call and the one the proxy places to
//! the target), and the test is every party's RTP, so it checks who hears whom at each step:
//! transferor and target during the consultation (the transferee hears neither), transferee
//! and target once the transferor hangs up, transferor and transferee again after a takeback.
//! Scenarios: `tests/sipp/attended_*.xml`. Needs `sipp`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::time::Duration;

use common::calls::{MetaflowsProxy, assert_no_active_call, got_bye, wait_for_events};
use common::rtp_party::{RtpParty, exchange};
use common::sipp::{RunningSipp, SippResult};

/// Limit for one SIPp run (the longest scenario lasts about 9 s).
const RUN_LIMIT: Duration = Duration::from_secs(30);
/// SIPp's own timeout.
const SIPP_TIMEOUT_SECS: u32 = 20;
/// How long a step's event may take to appear.
const STEP_WAIT: Duration = Duration::from_secs(10);
/// `*2` runs an attended transfer to 1234; `*1` takes it back.
const ATTENDED: &str = r#"{"binding_digit":"*","numbers":{"2":{"module":"transfer","data":{"target":"1234","transfer_type":"attended","takeback_dtmf":"*1"}}}}"#;

/// The three parties of a transfer, each the test's own RTP.
struct Parties {
    transferor: RtpParty,
    transferee: RtpParty,
    target: RtpParty,
}

/// The proxy's ports facing each party: the transferor's (a-leg), the transferee's (b-leg), and
/// the consultation's (the third pair the fresh proxy hands out).
struct Ports {
    transferor: u16,
    transferee: u16,
    target: u16,
}

/// Starts the PBX side (`uas`, the target ringing for `ring_ms`) and the transferor (hanging
/// up `hangup_ms` after the answer), then waits for the call to be answered.
fn start(
    proxy: &MetaflowsProxy,
    uas: &str,
    ring_ms: u32,
    hangup_ms: u32,
) -> (Parties, Ports, RunningSipp, RunningSipp) {
    let parties = Parties {
        transferor: RtpParty::bind(0xA),
        transferee: RtpParty::bind(0xB),
        target: RtpParty::bind(0xC),
    };
    let (ring, hangup) = (ring_ms.to_string(), hangup_ms.to_string());
    let callee = common::calls::callee(proxy, uas, SIPP_TIMEOUT_SECS)
        .calls(2)
        .key("transferee_rtp", &parties.transferee.port().to_string())
        .key("target_rtp", &parties.target.port().to_string())
        .spawn_with_args(&["-d", &ring]);
    let caller = common::calls::caller(proxy, "attended_uac.xml", SIPP_TIMEOUT_SECS)
        .key("transferor_rtp", &parties.transferor.port().to_string())
        .spawn_with_args(&["-d", &hangup]);
    wait_for_events(proxy, &["call_answered"], STEP_WAIT);
    let rtp_low = proxy.ports().rtp_low;
    let ports = Ports {
        transferor: rtp_low,
        transferee: rtp_low + 2,
        target: rtp_low + 4,
    };
    (parties, ports, caller, callee)
}

/// The transferor dials `digits`.
fn dial(parties: &mut Parties, ports: &Ports, digits: &str) {
    for digit in digits.chars() {
        parties.transferor.press(ports.transferor, digit);
    }
}

/// Transferor and target hear each other through the consultation's ports; the transferee
/// hears neither.
fn assert_consulting(parties: &mut Parties, ports: &Ports) {
    let (target_heard, transferor_heard, overheard) = exchange(
        &mut parties.transferor,
        ports.transferor,
        &mut parties.target,
        ports.target,
        &[&parties.transferee],
    );
    assert!(target_heard >= 20, "the target heard {target_heard} of 25");
    assert!(
        transferor_heard >= 20,
        "the transferor heard {transferor_heard} of 25"
    );
    assert_eq!(overheard, 0, "the parked transferee heard the consultation");
}

/// The event names logged so far, in order.
fn event_names(proxy: &MetaflowsProxy, required: &[&str]) -> Vec<String> {
    wait_for_events(proxy, required, STEP_WAIT)
        .iter()
        .filter_map(|e| e.get("event")?.as_str().map(str::to_owned))
        .collect()
}

fn position(events: &[String], name: &str) -> usize {
    events
        .iter()
        .position(|e| e == name)
        .unwrap_or_else(|| panic!("{name} not logged: {events:?}"))
}

/// The PBX received no REFER: the proxy did the transfer itself.
fn assert_no_refer(pbx: &SippResult) {
    assert!(
        !pbx.received().iter().any(|m| m.starts_with("REFER ")),
        "no REFER at the PBX"
    );
}

/// Kazoo's flow to the end: `*2`, the transferee on hold, the target answers and talks with the
/// transferor; the transferor hangs up and the transferee talks with the target, on the ports
/// each already knew (nobody re-INVITEd); the target hangs up and the transferee is hung up.
#[test]
fn attended_transfer_consults_the_target_then_bridges_it_to_the_transferee() {
    let proxy = MetaflowsProxy::start(ATTENDED);
    let (mut parties, ports, caller, callee) = start(&proxy, "attended_uas.xml", 300, 5000);
    dial(&mut parties, &ports, "*2");
    wait_for_events(&proxy, &["leg_originated"], STEP_WAIT);
    std::thread::sleep(Duration::from_millis(700));
    assert_consulting(&mut parties, &ports);
    wait_for_events(&proxy, &["leg_replaced"], STEP_WAIT);
    let (target_heard, transferee_heard, overheard) = exchange(
        &mut parties.transferee,
        ports.transferee,
        &mut parties.target,
        ports.target,
        &[&parties.transferor],
    );
    assert!(target_heard >= 20, "the target heard {target_heard} of 25");
    assert!(
        transferee_heard >= 20,
        "the transferee heard {transferee_heard} of 25"
    );
    assert_eq!(overheard, 0, "the departed transferor heard the call");
    let (caller, callee) = common::calls::wait_call(caller, callee, RUN_LIMIT);
    common::calls::assert_both_succeeded(&caller, &callee);
    assert_no_refer(&callee);
    assert!(
        !callee
            .received()
            .iter()
            .any(|m| m.starts_with("INVITE ") && m.contains("a=sendonly")),
        "nobody is re-INVITEd to hold"
    );
    let events = event_names(
        &proxy,
        &[
            "leg_originated",
            "leg_replaced",
            "transfer_succeeded",
            "call_ended",
        ],
    );
    assert!(position(&events, "leg_originated") < position(&events, "leg_replaced"));
    assert!(position(&events, "leg_replaced") <= position(&events, "transfer_succeeded"));
    assert!(!events.iter().any(|e| e == "transfer_failed"), "{events:?}");
    assert_no_active_call(&proxy);
}

/// Takeback while consulting: the target gets the proxy's BYE and transferor and transferee hear
/// each other again; the transferor then hangs up and the transferee is hung up.
#[test]
fn takeback_while_consulting_reconnects_transferor_and_transferee() {
    let proxy = MetaflowsProxy::start(ATTENDED);
    let (mut parties, ports, caller, callee) =
        start(&proxy, "attended_uas_takeback.xml", 300, 5000);
    dial(&mut parties, &ports, "*2");
    wait_for_events(&proxy, &["leg_originated"], STEP_WAIT);
    std::thread::sleep(Duration::from_millis(700));
    assert_consulting(&mut parties, &ports);
    dial(&mut parties, &ports, "*1");
    wait_for_events(&proxy, &["transfer_withdrawn"], STEP_WAIT);
    let (transferee_heard, transferor_heard, overheard) = exchange(
        &mut parties.transferor,
        ports.transferor,
        &mut parties.transferee,
        ports.transferee,
        &[&parties.target],
    );
    assert!(
        transferee_heard >= 20,
        "the transferee heard {transferee_heard} of 25"
    );
    assert!(
        transferor_heard >= 20,
        "the transferor heard {transferor_heard} of 25"
    );
    assert_eq!(overheard, 0, "the target heard the call after the takeback");
    let (caller, callee) = common::calls::wait_call(caller, callee, RUN_LIMIT);
    common::calls::assert_both_succeeded(&caller, &callee);
    assert_no_refer(&callee);
    let events = event_names(&proxy, &["transfer_withdrawn", "call_ended"]);
    assert!(!events.iter().any(|e| e == "leg_replaced"), "{events:?}");
    assert_no_active_call(&proxy);
}

/// Partial transfer: the transferor hangs up while the target still rings; the target answers
/// and talks with the transferee.
#[test]
fn partial_transfer_completes_when_the_target_answers_after_the_transferor_left() {
    let proxy = MetaflowsProxy::start(ATTENDED);
    let (mut parties, ports, caller, callee) = start(&proxy, "attended_uas.xml", 3000, 1500);
    dial(&mut parties, &ports, "*2");
    let caller = caller.wait(RUN_LIMIT);
    caller.assert_success("the transferor, hanging up while the target rings");
    assert!(!got_bye(&caller), "the transferor hung up itself");
    wait_for_events(&proxy, &["leg_replaced"], STEP_WAIT);
    let (target_heard, transferee_heard, _) = exchange(
        &mut parties.transferee,
        ports.transferee,
        &mut parties.target,
        ports.target,
        &[],
    );
    assert!(target_heard >= 20, "the target heard {target_heard} of 25");
    assert!(
        transferee_heard >= 20,
        "the transferee heard {transferee_heard} of 25"
    );
    let callee = callee.wait(RUN_LIMIT);
    callee.assert_success("the PBX");
    let events = event_names(&proxy, &["transfer_succeeded", "call_ended"]);
    assert!(position(&events, "leg_replaced") < position(&events, "transfer_succeeded"));
    assert_no_active_call(&proxy);
}
