//! The `transfer` module on a live call: a code dialed by the phone makes the proxy REFER the
//! PBX leg; the PBX's answer and NOTIFYs decide what happens to the call.

use std::time::Duration;

use serde_json::json;

use crate::base::{CallEvent, Leg};
use crate::sip::SipMessage;

use super::call::Call;
use super::expect::{req, resp};
use super::harness::{PBX_HOST, Side, Sim, SimConfig};
use super::sip::{cseq, with_body};

/// A simulation whose calls carry `*2<number>` → blind transfer to that number, takeback `*1`.
fn pattern_sim(seed: u64) -> Sim {
    Sim::with(SimConfig {
        seed,
        metaflows: Some(json!({
            "binding_digit": "*",
            "patterns": {"2(\\d+)": {"module": "transfer", "data": {"takeback_dtmf": "*1"}}}
        })),
        ..SimConfig::default()
    })
}

/// A simulation whose calls carry `*5` → blind transfer to 1234, takeback `*1` (an exact
/// number: no pattern to compile, and decided at the `5`).
pub(super) fn transfer_sim(seed: u64) -> Sim {
    Sim::with(SimConfig {
        seed,
        metaflows: Some(json!({
            "numbers": {"5": {"module": "transfer", "data": {"target": "1234", "takeback_dtmf": "*1"}}}
        })),
        ..SimConfig::default()
    })
}

/// An answered call on which the phone dialed `*5`; returns the call and the REFER the PBX got.
fn refer_sent(sim: &mut Sim) -> (Call, SipMessage) {
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*5");
    let refer = sim.expect(Side::Pbx, req("REFER"));
    (call, refer)
}

/// The PBX sends a NOTIFY of the REFER's subscription reporting `sipfrag`.
fn notify(sim: &mut Sim, call: &mut Call, sipfrag: &str, state: &str) -> SipMessage {
    let mut n = sim.pbx.request(&mut call.pbx, "NOTIFY");
    n.push_header("Event", "refer");
    n.push_header("Subscription-State", state);
    let n = with_body(n, "message/sipfrag", sipfrag);
    sim.send(Side::Pbx, &n);
    n
}

/// The code waits for the digit timeout (the pattern could go on), then a REFER goes to the PBX
/// in its dialog: Refer-To the dialed number at the PBX host, Referred-By the phone.
#[test]
fn a_dialed_code_refers_the_pbx_leg_to_the_number() {
    let mut sim = pattern_sim(40);
    let call = sim.answered_call();
    let dialed_at = sim.elapsed();
    sim.dial(call.key, Leg::A, "*21234");
    let refer = sim.expect(Side::Pbx, req("REFER"));
    let took = sim.elapsed() - dialed_at;
    assert_eq!(
        took,
        Duration::from_millis(810),
        "800 ms digit timeout, 10 ms on the wire"
    );
    // The PBX listens on 5070, not SIP's default: the target keeps the port.
    assert_eq!(
        refer.header("Refer-To"),
        Some(format!("<sip:1234@{PBX_HOST}:5070>").as_str())
    );
    assert_eq!(
        refer.header("Referred-By"),
        Some(format!("\"Alice\" <sip:alice@{}>", sim.phone.addr).as_str())
    );
    assert_eq!(refer.call_id(), call.b_invite.call_id());
    assert_eq!(refer.from_tag(), call.b_invite.from_tag());
    assert_eq!(refer.to_tag(), Some(call.pbx.local_tag()));
    assert_eq!(refer.request_uri(), Some(call.pbx_contact_uri().as_str()));
    assert!(cseq(&refer) > cseq(&call.b_invite));
    assert!(
        sim.take(Side::Phone).is_empty(),
        "nothing reaches the phone"
    );
    assert_eq!(
        sim.events_of("transfer_refer_sent"),
        [CallEvent::TransferReferSent {
            refer_to: format!("sip:1234@{PBX_HOST}:5070"),
            referred_by: format!("\"Alice\" <sip:alice@{}>", sim.phone.addr),
            dialing_leg: Leg::A
        }]
    );
}

/// 202, then NOTIFY sipfrag 200: the proxy answers the NOTIFY itself (never relayed), hangs up
/// both legs and reports success.
#[test]
fn notify_200_completes_the_transfer_and_hangs_up_both_legs() {
    let mut sim = transfer_sim(41);
    let (mut call, refer) = refer_sent(&mut sim);
    let accepted = sim.pbx.response(&refer, 202);
    sim.send(Side::Pbx, &accepted);
    notify(
        &mut sim,
        &mut call,
        "SIP/2.0 200 OK\r\n",
        "terminated;reason=noresource",
    );
    sim.expect(Side::Pbx, resp(200, "NOTIFY"));
    let pbx_bye = sim.expect(Side::Pbx, req("BYE"));
    assert_eq!(pbx_bye.call_id(), call.b_invite.call_id());
    let phone_bye = sim.expect(Side::Phone, req("BYE"));
    assert_eq!(phone_bye.call_id(), call.a_invite.call_id());
    assert!(
        sim.take(Side::Phone).is_empty(),
        "the NOTIFY is not relayed"
    );
    let kinds: Vec<&str> = sim
        .event_kinds()
        .into_iter()
        .filter(|k| k.starts_with("transfer") || *k == "call_ended")
        .collect();
    assert_eq!(
        kinds,
        [
            "transfer_refer_sent",
            "transfer_accepted",
            "transfer_notify",
            "transfer_succeeded",
            "call_ended"
        ]
    );
    assert_eq!(
        sim.events_of("transfer_succeeded"),
        [CallEvent::TransferSucceeded { status: Some(200) }]
    );
    assert_eq!(sim.media.log().released, vec![call.key]);
}

/// NOTIFY sipfrag 486: the transfer fails, nobody is hung up, the call goes on and ends by BYE
/// as usual.
#[test]
fn notify_486_fails_the_transfer_and_the_call_goes_on() {
    let mut sim = transfer_sim(42);
    let (mut call, refer) = refer_sent(&mut sim);
    let accepted = sim.pbx.response(&refer, 202);
    sim.send(Side::Pbx, &accepted);
    notify(
        &mut sim,
        &mut call,
        "SIP/2.0 486 Busy Here\r\n",
        "terminated",
    );
    sim.expect(Side::Pbx, resp(200, "NOTIFY"));
    sim.run_for(Duration::from_secs(1));
    assert!(sim.take(Side::Pbx).is_empty() && sim.take(Side::Phone).is_empty());
    assert_eq!(
        sim.events_of("transfer_failed"),
        [CallEvent::TransferFailed {
            status: Some(486),
            reason: None
        }]
    );
    sim.hang_up(Side::Phone, &mut call);
    assert_eq!(sim.media.log().released, vec![call.key]);
}

/// A REFER refused with 403 fails the transfer; the call goes on.
#[test]
fn a_refused_refer_fails_the_transfer() {
    let mut sim = transfer_sim(43);
    let (mut call, refer) = refer_sent(&mut sim);
    let refused = sim.pbx.response(&refer, 403);
    sim.send(Side::Pbx, &refused);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(
        sim.events_of("transfer_failed"),
        [CallEvent::TransferFailed {
            status: Some(403),
            reason: None
        }]
    );
    sim.hang_up(Side::Pbx, &mut call);
}

/// The phone dials the takeback digits before the transfer completed: the transfer is
/// withdrawn; a later NOTIFY 200 is answered but hangs nobody up.
#[test]
fn takeback_digits_withdraw_the_transfer() {
    let mut sim = transfer_sim(44);
    let (mut call, refer) = refer_sent(&mut sim);
    let accepted = sim.pbx.response(&refer, 202);
    sim.send(Side::Pbx, &accepted);
    sim.settle();
    sim.dial(call.key, Leg::A, "*1");
    assert_eq!(
        sim.events_of("transfer_withdrawn"),
        [CallEvent::TransferWithdrawn { status: None }]
    );
    notify(&mut sim, &mut call, "SIP/2.0 200 OK\r\n", "terminated");
    sim.expect(Side::Pbx, resp(200, "NOTIFY"));
    sim.run_for(Duration::from_secs(1));
    assert!(sim.take(Side::Pbx).is_empty() && sim.take(Side::Phone).is_empty());
    assert!(sim.events_of("transfer_succeeded").is_empty());
    assert!(sim.events_of("call_ended").is_empty());
}

/// A transfer code dialed before the call is answered does nothing on the wire: the module
/// reports failure.
#[test]
fn a_transfer_before_answer_is_refused() {
    let mut sim = transfer_sim(45);
    let (_, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 180, None);
    let key = sim.media.last_call();
    sim.dial(key, Leg::A, "*5");
    sim.run_for(Duration::from_secs(1));
    assert!(sim.take(Side::Pbx).is_empty(), "no REFER");
    assert_eq!(
        sim.events_of("module_outcome"),
        [CallEvent::ModuleOutcome {
            module: "transfer".into(),
            outcome: "failure".into()
        }]
    );
}

impl Call {
    /// The URI of the Contact the PBX answered with: where its dialog's requests go.
    fn pbx_contact_uri(&self) -> String {
        format!("sip:ua@{}", self.pbx.addr)
    }
}
