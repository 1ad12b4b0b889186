//! End-to-end blind transfers through metaflow-proxy: a SIPp party dials a code with RFC 2833
//! events, the proxy REFERs the other leg, follows its NOTIFYs and hangs up (or not) as the
//! `transfer` module says; the proxy places the call itself when REFER is not taken, and for a
//! `callflow` code. Scenarios: `tests/sipp/transfer_*.xml`, `callflow_uas.xml`. Needs `sipp`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::time::Duration;

use common::calls::{
    MetaflowsProxy, assert_no_active_call, got_bye, run_call, sent_bye, wait_for_events,
};
use common::rtp_party::{RtpParty, exchange};
use common::sipp::{SippResult, header};

/// Limit for one SIPp run (the longest scenario, the takeback, lasts about 9 s).
const RUN_LIMIT: Duration = Duration::from_secs(30);
/// SIPp's own timeout: a message that never comes fails the run before [`RUN_LIMIT`].
const SIPP_TIMEOUT_SECS: u32 = 20;
/// How long the event log may take to show an event after the calls ended.
const EVENT_WAIT: Duration = Duration::from_secs(3);

/// The seed's pattern as Kazoo documents it (unanchored: acts after `digit_timeout`).
const SEED_METAFLOWS: &str = r#"{"binding_digit":"*","patterns":{"2(\\d+)":{"module":"transfer","data":{"takeback_dtmf":"*1"}}}}"#;
/// The same code, anchored.
const ANCHORED_METAFLOWS: &str = r#"{"binding_digit":"*","patterns":{"^2(\\d+)$":{"module":"transfer","data":{"takeback_dtmf":"*1"}}}}"#;

/// A proxy started with `metaflows` (JSON text) as its `--metaflows` file.
struct TransferProxy {
    proxy: MetaflowsProxy,
}

impl TransferProxy {
    fn start(metaflows: &str) -> TransferProxy {
        TransferProxy {
            proxy: MetaflowsProxy::start(metaflows),
        }
    }

    /// Runs the callee scenario then the caller scenario through the proxy, waits for both and
    /// returns (caller, callee).
    fn call(&self, uas: &str, uac: &str) -> (SippResult, SippResult) {
        run_call(&self.proxy, uas, uac, SIPP_TIMEOUT_SECS, RUN_LIMIT)
    }

    /// Polls `events.jsonl` until every name of `required` appears (panics after
    /// [`EVENT_WAIT`]), then returns the `event` values of all lines, in order.
    fn events_once_logged(&self, required: &[&str]) -> Vec<String> {
        wait_for_events(&self.proxy, required, EVENT_WAIT)
            .iter()
            .filter_map(|event| event.get("event")?.as_str().map(str::to_owned))
            .collect()
    }

    /// Waits (2 s) until the proxy reports no active call: both legs are gone.
    fn assert_idle(&self) {
        assert_no_active_call(&self.proxy);
    }
}

/// Position of the first `name` in `events`; panics if absent.
fn position(events: &[String], name: &str) -> usize {
    events
        .iter()
        .position(|event| event == name)
        .unwrap_or_else(|| panic!("no {name} in {events:?}"))
}

fn count(events: &[String], name: &str) -> usize {
    events.iter().filter(|event| *event == name).count()
}

/// The first message of `messages` starting with `start_line`; panics if none.
fn first<'a>(messages: &'a [String], start_line: &str, who: &str) -> &'a String {
    messages
        .iter()
        .find(|message| message.starts_with(start_line))
        .unwrap_or_else(|| panic!("{who} never got a message starting {start_line:?}"))
}

/// The CSeq number of a message.
fn cseq_number(message: &str) -> u32 {
    let cseq = header(message, "CSeq").expect("CSeq");
    cseq.split_whitespace().next().unwrap().parse().unwrap()
}

/// Checks the REFER the transferee got: inside the dialog its INVITE or 200 created (same
/// Call-ID, a CSeq above the INVITE's when the proxy sent the INVITE), `Refer-To` naming
/// `expected_uri`, and `Referred-By` naming the dialing party (`referred_by_user`).
fn assert_refer(
    transferee: &SippResult,
    expected_uri: &str,
    referred_by_user: &str,
    proxy_sent_invite: bool,
) {
    let received = transferee.received();
    let refer = first(&received, "REFER ", "the transferee");
    let refer_to = header(refer, "Refer-To").expect("REFER without Refer-To");
    assert!(
        refer_to.contains(expected_uri),
        "Refer-To {refer_to:?} should name {expected_uri}"
    );
    let referred_by = header(refer, "Referred-By").expect("REFER without Referred-By");
    assert!(
        referred_by.contains(&format!("sip:{referred_by_user}@")),
        "Referred-By {referred_by:?} should name the dialing party {referred_by_user}"
    );
    let invite = if proxy_sent_invite {
        first(&received, "INVITE ", "the transferee").clone()
    } else {
        first(&transferee.sent(), "INVITE ", "the transferee").clone()
    };
    assert_eq!(
        header(refer, "Call-ID"),
        header(&invite, "Call-ID"),
        "the REFER must be sent inside the transferee's dialog"
    );
    if proxy_sent_invite {
        assert!(
            cseq_number(refer) > cseq_number(&invite),
            "the REFER needs a fresh CSeq above the INVITE's:\n{refer}"
        );
    }
}

/// Neither the REFER nor its NOTIFYs may reach the dialing party.
fn assert_not_relayed(dialing: &SippResult) {
    for message in dialing.received() {
        assert!(
            !message.starts_with("REFER ") && !message.starts_with("NOTIFY "),
            "the dialing party got a transfer message:\n{message}"
        );
    }
}

/// A successful transfer: REFER, 202, NOTIFY 100 and 200 answered, BYE to both legs, and the
/// events in order.
fn assert_completed_transfer(proxy: &TransferProxy, caller: &SippResult, callee: &SippResult) {
    assert_refer(callee, "sip:1234@127.0.0.1", "sipp", true);
    assert_not_relayed(caller);
    assert!(got_bye(caller), "the dialing caller must be hung up");
    assert!(got_bye(callee), "the transferee must be hung up");
    let events = proxy.events_once_logged(&["transfer_succeeded"]);
    let sent = position(&events, "transfer_refer_sent");
    let accepted = position(&events, "transfer_accepted");
    let notify = position(&events, "transfer_notify");
    let succeeded = position(&events, "transfer_succeeded");
    assert!(
        sent < accepted && accepted < notify && notify < succeeded,
        "{events:?}"
    );
    assert_eq!(count(&events, "transfer_notify"), 2, "{events:?}");
    assert_eq!(count(&events, "transfer_failed"), 0, "{events:?}");
    proxy.assert_idle();
}

#[test]
fn anchored_code_dialed_by_caller_transfers_the_callee() {
    let proxy = TransferProxy::start(ANCHORED_METAFLOWS);
    let (caller, callee) = proxy.call("transfer_uas_refer.xml", "transfer_uac_dial.xml");
    assert_completed_transfer(&proxy, &caller, &callee);
}

#[test]
fn seed_code_dialed_by_caller_transfers_after_the_digit_timeout() {
    let proxy = TransferProxy::start(SEED_METAFLOWS);
    let (caller, callee) = proxy.call("transfer_uas_refer.xml", "transfer_uac_dial.xml");
    assert_completed_transfer(&proxy, &caller, &callee);
}

#[test]
fn code_dialed_by_callee_transfers_the_caller() {
    let metaflows =
        r#"{"binding_digit":"*","listen_on":"both","patterns":{"2(\\d+)":{"module":"transfer"}}}"#;
    let proxy = TransferProxy::start(metaflows);
    let (caller, callee) = proxy.call("transfer_uas_dial.xml", "transfer_uac_refer.xml");
    assert_refer(&caller, "sip:1234@127.0.0.1", "service", false);
    assert_not_relayed(&callee);
    assert!(got_bye(&callee), "the dialing callee must be hung up");
    assert!(got_bye(&caller), "the transferee caller must be hung up");
    let events = proxy.events_once_logged(&["transfer_refer_sent", "transfer_succeeded"]);
    assert_eq!(count(&events, "transfer_notify"), 2, "{events:?}");
    proxy.assert_idle();
}

#[test]
fn refused_refer_with_hangup_failure_child_ends_both_legs() {
    let metaflows = r#"{"patterns":{"2(\\d+)":{"module":"transfer",
        "children":{"failure":{"module":"hangup"}}}}}"#;
    let proxy = TransferProxy::start(metaflows);
    let (caller, callee) = proxy.call("transfer_uas_refer_403.xml", "transfer_uac_dial.xml");
    assert_refer(&callee, "sip:1234@127.0.0.1", "sipp", true);
    assert!(got_bye(&caller), "the hangup child must hang up the caller");
    assert!(got_bye(&callee), "the hangup child must hang up the callee");
    assert!(!sent_bye(&caller) && !sent_bye(&callee));
    let events = proxy.events_once_logged(&["transfer_refer_sent", "transfer_failed"]);
    assert_eq!(count(&events, "transfer_accepted"), 0, "{events:?}");
    assert_eq!(count(&events, "transfer_succeeded"), 0, "{events:?}");
    proxy.assert_idle();
}

#[test]
fn refused_refer_without_children_keeps_the_call_up() {
    let proxy = TransferProxy::start(SEED_METAFLOWS);
    let (caller, callee) = proxy.call("transfer_uas_refer_403.xml", "transfer_uac_dial_hangup.xml");
    assert_refer(&callee, "sip:1234@127.0.0.1", "sipp", true);
    assert!(sent_bye(&caller), "the caller hangs up itself");
    assert!(!got_bye(&caller), "the proxy must not hang up the caller");
    assert!(got_bye(&callee), "the caller's BYE reaches the callee");
    let events = proxy.events_once_logged(&["transfer_refer_sent", "transfer_failed"]);
    assert_eq!(count(&events, "transfer_succeeded"), 0, "{events:?}");
    proxy.assert_idle();
}

#[test]
fn busy_target_fails_the_transfer_and_the_call_goes_on() {
    let proxy = TransferProxy::start(SEED_METAFLOWS);
    let (caller, callee) = proxy.call(
        "transfer_uas_notify_486.xml",
        "transfer_uac_dial_hangup.xml",
    );
    assert_refer(&callee, "sip:1234@127.0.0.1", "sipp", true);
    assert_not_relayed(&caller);
    assert!(
        sent_bye(&caller) && !got_bye(&caller),
        "only the caller's own BYE ends the call"
    );
    assert!(got_bye(&callee), "the caller's BYE reaches the callee");
    let events = proxy.events_once_logged(&["transfer_accepted", "transfer_failed"]);
    assert_eq!(count(&events, "transfer_notify"), 2, "{events:?}");
    assert!(position(&events, "transfer_notify") < position(&events, "transfer_failed"));
    assert_eq!(count(&events, "transfer_succeeded"), 0, "{events:?}");
    proxy.assert_idle();
}

#[test]
fn takeback_before_the_final_notify_keeps_the_call_up() {
    let proxy = TransferProxy::start(SEED_METAFLOWS);
    let (caller, callee) = proxy.call("transfer_uas_takeback.xml", "transfer_uac_takeback.xml");
    assert_refer(&callee, "sip:1234@127.0.0.1", "sipp", true);
    assert_not_relayed(&caller);
    assert!(
        sent_bye(&caller) && !got_bye(&caller),
        "the call must survive the late 200 sipfrag"
    );
    assert!(got_bye(&callee), "the caller's BYE reaches the callee");
    let events = proxy.events_once_logged(&["transfer_accepted", "transfer_withdrawn"]);
    assert_eq!(count(&events, "transfer_succeeded"), 0, "{events:?}");
    assert!(position(&events, "transfer_accepted") < position(&events, "transfer_withdrawn"));
    proxy.assert_idle();
}

#[test]
fn fixed_target_of_a_numbers_code_is_referred() {
    let metaflows = r#"{"numbers":{"5":{"module":"transfer","data":{"target":"2000"}}}}"#;
    let proxy = TransferProxy::start(metaflows);
    let (caller, callee) = proxy.call("transfer_uas_refer_2000.xml", "transfer_uac_dial_star5.xml");
    assert_refer(&callee, "sip:2000@127.0.0.1", "sipp", true);
    assert!(got_bye(&caller) && got_bye(&callee));
    let events = proxy.events_once_logged(&["transfer_refer_sent", "transfer_succeeded"]);
    assert_eq!(count(&events, "transfer_failed"), 0, "{events:?}");
    proxy.assert_idle();
}

/// The PBX does not take REFER (405): the proxy places the call to 1234 through the PBX itself
/// (a second INVITE at the PBX, with the transferee's codecs, on the sockets the transferor
/// used), and when it is answered hangs up the transferor. The transferee and the target then
/// talk: this test is both parties' RTP, and each hears the other through the proxy. The target
/// hangs up and the transferee gets the proxy's BYE.
#[test]
fn refer_not_taken_falls_back_to_a_call_the_proxy_places() {
    let proxy = TransferProxy::start(SEED_METAFLOWS);
    let mut transferee = RtpParty::bind(0x0B0B_0B0B);
    let mut target = RtpParty::bind(0x0A0A_0A0A);
    let callee = common::calls::callee(
        &proxy.proxy,
        "transfer_uas_refer_405_bridge.xml",
        SIPP_TIMEOUT_SECS,
    )
    .calls(2)
    .key("transferee_rtp", &transferee.port().to_string())
    .key("target_rtp", &target.port().to_string())
    .spawn();
    let caller =
        common::calls::caller(&proxy.proxy, "transfer_uac_dial.xml", SIPP_TIMEOUT_SECS).spawn();
    wait_for_events(&proxy.proxy, &["leg_replaced"], Duration::from_secs(10));
    // The first call's ports: the transferor's side (now the target's) first, the PBX side next.
    let rtp_low = proxy.proxy.ports().rtp_low;
    let (towards_target, towards_transferee) = (rtp_low, rtp_low + 2);
    let (heard_by_target, heard_by_transferee, _) = exchange(
        &mut transferee,
        towards_transferee,
        &mut target,
        towards_target,
        &[],
    );
    let (caller, callee) = common::calls::wait_call(caller, callee, RUN_LIMIT);
    common::calls::assert_both_succeeded(&caller, &callee);
    assert!(
        heard_by_target >= 20,
        "the target heard {heard_by_target} of 25 packets"
    );
    assert!(
        heard_by_transferee >= 20,
        "the transferee heard {heard_by_transferee} of 25 packets"
    );
    let invites = invites_received(&callee);
    let placed = &invites[1];
    assert!(placed.starts_with("INVITE sip:1234@127.0.0.1"), "{placed}");
    assert_ne!(header(&invites[0], "Call-ID"), header(placed, "Call-ID"));
    assert!(placed.contains("a=rtpmap:8 PCMA/8000"), "{placed}");
    assert!(
        placed.contains(&format!("m=audio {towards_target} ")),
        "the placed call is offered the transferor's sockets:\n{placed}"
    );
    assert!(
        got_bye(&caller),
        "the transferor is hung up once the target answers"
    );
    assert!(!sent_bye(&caller));
    let events = proxy.events_once_logged(&[
        "transfer_refer_sent",
        "leg_originated",
        "leg_replaced",
        "transfer_succeeded",
        "call_ended",
    ]);
    assert!(position(&events, "leg_originated") < position(&events, "leg_replaced"));
    assert!(position(&events, "leg_replaced") < position(&events, "transfer_succeeded"));
    assert_eq!(count(&events, "transfer_failed"), 0, "{events:?}");
    proxy.assert_idle();
}

/// The two INVITEs a PBX scenario run with `-m 2` received: the original call's, then the one
/// the proxy placed.
fn invites_received(pbx: &SippResult) -> Vec<String> {
    let invites: Vec<String> = pbx
        .received()
        .into_iter()
        .filter(|m| m.starts_with("INVITE "))
        .collect();
    assert_eq!(invites.len(), 2, "the original call and the placed one");
    invites
}

/// `callflow` (Kazoo's "overlay a callflow onto the caller"): the caller dials `*21234`; the
/// proxy calls 1234 through the PBX, and once that call answers releases the PBX's first call;
/// the caller talks to 1234 until 1234 hangs up, and is then hung up by the proxy.
#[test]
fn callflow_code_moves_the_caller_to_a_call_to_the_number() {
    let proxy = TransferProxy::start(
        r#"{"binding_digit":"*","patterns":{"^2(\\d+)$":{"module":"callflow"}}}"#,
    );
    let callee = common::calls::callee(&proxy.proxy, "callflow_uas.xml", SIPP_TIMEOUT_SECS)
        .calls(2)
        .spawn();
    let caller =
        common::calls::caller(&proxy.proxy, "transfer_uac_dial.xml", SIPP_TIMEOUT_SECS).spawn();
    let (caller, callee) = common::calls::wait_call(caller, callee, RUN_LIMIT);
    common::calls::assert_both_succeeded(&caller, &callee);
    let invites = invites_received(&callee);
    let received = callee.received();
    assert!(
        invites[1].starts_with("INVITE sip:1234@127.0.0.1"),
        "{}",
        invites[1]
    );
    assert!(
        !received.iter().any(|m| m.starts_with("REFER ")),
        "no REFER"
    );
    assert!(got_bye(&caller), "the caller is hung up when 1234 hangs up");
    let events = proxy.events_once_logged(&["leg_originated", "leg_replaced", "call_ended"]);
    assert!(position(&events, "leg_originated") < position(&events, "leg_replaced"));
    proxy.assert_idle();
}
