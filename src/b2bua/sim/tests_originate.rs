//! Calls the proxy places itself: a blind transfer whose REFER the far end does not take (405,
//! 501, 603) becomes a call of the proxy's own to the target through the PBX, which takes the
//! dialing leg's place when answered.

use crate::base::{CallEvent, Leg};
use crate::sip::SipMessage;

use super::call::Call;
use super::dialog::UaDialog;
use super::expect::{req, resp};
use super::harness::{PBX_HOST, Side, Sim, addr};
use super::sip::{body, cseq, with_body};
use super::tests_transfer::transfer_sim;

/// Where the target's phone has its media.
pub(super) const TARGET_SDP: &str = "v=0\r\no=- 7 7 IN IP4 10.0.0.77\r\ns=-\r\nc=IN IP4 10.0.0.77\r\nt=0 0\r\nm=audio 7700 RTP/AVP 8 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\n";

/// An answered call whose phone dialed `*5` and whose PBX refused the REFER with `code`;
/// returns the call and the INVITE the proxy then sent to the PBX for the target.
pub(super) fn refer_refused(sim: &mut Sim, code: u16) -> (Call, SipMessage) {
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*5");
    let refer = sim.expect(Side::Pbx, req("REFER"));
    let refused = sim.pbx.response(&refer, code);
    sim.send(Side::Pbx, &refused);
    let invite = sim.expect(Side::Pbx, req("INVITE"));
    (call, invite)
}

/// The PBX answers the placed call 180 then 200 with the target's SDP, and gets the proxy's
/// ACK; returns the PBX's dialog of the new call.
pub(super) fn target_answers(sim: &mut Sim, invite: &SipMessage) -> UaDialog {
    let ringing = sim.pbx.response(invite, 180);
    sim.send(Side::Pbx, &ringing);
    let ok = with_body(sim.pbx.response(invite, 200), "application/sdp", TARGET_SDP);
    sim.send(Side::Pbx, &ok);
    let ack = sim.expect(Side::Pbx, req("ACK"));
    assert_eq!(ack.call_id(), invite.call_id());
    assert_eq!(cseq(&ack), cseq(invite));
    UaDialog::uas(invite, &ok, sim.pbx.addr)
}

/// The placed call is a new call at the PBX: its own Call-ID, the target at the PBX host, From
/// the party that stays, and an offer of that party's codecs on the sockets the phone used.
#[test]
fn refer_not_taken_places_the_call_to_the_target_through_the_pbx() {
    for (seed, code) in [(60, 405), (61, 501), (62, 603)] {
        let mut sim = transfer_sim(seed);
        let (call, invite) = refer_refused(&mut sim, code);
        assert_ne!(invite.call_id(), call.b_invite.call_id());
        assert_ne!(invite.call_id(), call.a_invite.call_id());
        assert_eq!(
            invite.request_uri(),
            Some(format!("sip:1234@{PBX_HOST}:5070").as_str())
        );
        assert_eq!(
            invite.header("To"),
            Some(format!("<sip:1234@{PBX_HOST}:5070>").as_str())
        );
        let from = invite.header("From").unwrap_or_default();
        let served = crate::b2bua::dialog::without_tag(call.b_invite.header("To").unwrap());
        assert!(
            from.starts_with(&served),
            "{from} names the transferee {served}"
        );
        let offer = body(&invite);
        let ports = sim.media.ports(call.key);
        assert!(offer.contains("c=IN IP4 192.0.2.1"), "{offer}");
        assert!(
            offer.contains(&format!("m=audio {} RTP/AVP 8 96", ports.a.rtp)),
            "the phone's sockets, the transferee's codecs: {offer}"
        );
        assert!(
            sim.take(Side::Phone).is_empty(),
            "the phone hears nothing yet"
        );
        assert_eq!(
            sim.events_of("leg_originated"),
            [CallEvent::LegOriginated {
                leg: Leg::A,
                target: format!("sip:1234@{PBX_HOST}:5070"),
                call_id: invite.call_id().unwrap().to_string(),
            }]
        );
        assert!(sim.events_of("transfer_failed").is_empty());
    }
}

/// Answered: the phone (the transferor) gets a BYE, the target's media address becomes the
/// a-leg's, the transfer succeeds and the call goes on between transferee and target; a BYE
/// from the target then ends it, and the transferee hears it.
#[test]
fn the_answered_call_replaces_the_transferor_and_the_call_goes_on() {
    let mut sim = transfer_sim(63);
    let (call, invite) = refer_refused(&mut sim, 405);
    let mut target = target_answers(&mut sim, &invite);
    let bye = sim.expect(Side::Phone, req("BYE"));
    assert_eq!(bye.call_id(), call.a_invite.call_id());
    let ok = sim.phone.response(&bye, 200);
    sim.send(Side::Phone, &ok);
    let target_media = addr("10.0.0.77:7700");
    assert!(
        sim.media
            .log()
            .remotes
            .iter()
            .any(|&(k, _, leg, rtp)| k == call.key && leg == Leg::A && rtp == target_media),
        "the relay sends the transferee's audio to the target"
    );
    assert_eq!(
        sim.events_of("leg_replaced"),
        [CallEvent::LegReplaced {
            leg: Leg::A,
            call_id: invite.call_id().unwrap().to_string(),
        }]
    );
    assert_eq!(
        sim.events_of("transfer_succeeded"),
        [CallEvent::TransferSucceeded { status: Some(200) }]
    );
    assert!(sim.events_of("call_ended").is_empty(), "the call goes on");
    assert!(
        !sim.take(Side::Pbx)
            .iter()
            .any(|m| m.method().is_some_and(|m| m.as_str() == "BYE")),
        "the transferee stays"
    );
    // The target hangs up: the proxy answers it and hangs up the transferee.
    let target_bye = sim.pbx.request(&mut target, "BYE");
    sim.send(Side::Pbx, &target_bye);
    let answered = sim.expect(Side::Pbx, resp(200, "BYE"));
    assert_eq!(answered.call_id(), invite.call_id());
    let transferee_bye = sim.expect(Side::Pbx, req("BYE"));
    assert_eq!(transferee_bye.call_id(), call.b_invite.call_id());
    let ok = sim.pbx.response(&transferee_bye, 200);
    sim.send(Side::Pbx, &ok);
    sim.settle();
    assert_eq!(sim.events_of("call_ended").len(), 1);
}

/// The target is busy: the failure is reported with its status and nothing else changes.
#[test]
fn a_busy_target_fails_the_transfer_and_the_parties_keep_talking() {
    let mut sim = transfer_sim(64);
    let (call, invite) = refer_refused(&mut sim, 603);
    let busy = sim.pbx.response(&invite, 486);
    sim.send(Side::Pbx, &busy);
    sim.expect(Side::Pbx, req("ACK"));
    sim.settle();
    assert_eq!(
        sim.events_of("transfer_failed"),
        [CallEvent::TransferFailed {
            status: Some(486),
            reason: None
        }]
    );
    assert!(sim.take(Side::Phone).is_empty(), "the transferor stays");
    assert!(sim.events_of("leg_replaced").is_empty());
    assert!(sim.events_of("call_ended").is_empty());
    // The call is as it was: the phone can still hang up normally.
    let mut call = call;
    sim.hang_up(Side::Phone, &mut call);
}

/// Takeback while the target rings: the placed call is cancelled, the transfer withdrawn, and
/// the PBX's 487 changes nothing.
#[test]
fn takeback_while_the_target_rings_cancels_the_placed_call() {
    let mut sim = transfer_sim(65);
    let (call, invite) = refer_refused(&mut sim, 501);
    let ringing = sim.pbx.response(&invite, 180);
    sim.send(Side::Pbx, &ringing);
    sim.dial(call.key, Leg::A, "*1");
    let cancel = sim.expect(Side::Pbx, req("CANCEL"));
    assert_eq!(cancel.call_id(), invite.call_id());
    pbx_confirms_cancel(&mut sim, &cancel, &invite);
    assert_eq!(
        sim.events_of("transfer_withdrawn"),
        [CallEvent::TransferWithdrawn { status: None }]
    );
    assert!(sim.events_of("transfer_failed").is_empty());
    assert!(sim.events_of("leg_replaced").is_empty());
    assert!(sim.take(Side::Phone).is_empty(), "the transferor stays");
}

/// The metaflows of `transfer_sim` plus credentials for the PBX's challenges.
struct WithPbxAuth(crate::b2bua::StaticMetaflows);

impl crate::b2bua::MetaflowResolver for WithPbxAuth {
    fn resolve(&self, invite: &SipMessage, inbound: bool) -> Vec<crate::b2bua::CallMetaflow> {
        self.0.resolve(invite, inbound)
    }

    fn pbx_auth(&self, _account_id: Option<&str>) -> Option<(String, String)> {
        Some(("proxyuser".into(), "s3cret".into()))
    }
}

fn md5_hex(text: &str) -> String {
    use md5::{Digest, Md5};
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The value of `name="..."` (or `name=...`) in an authorization header.
fn auth_param(value: &str, name: &str) -> String {
    let start = value.find(&format!("{name}=")).unwrap() + name.len() + 1;
    let rest = &value[start..];
    match rest.strip_prefix('"') {
        Some(quoted) => quoted[..quoted.find('"').unwrap()].to_string(),
        None => rest.split(',').next().unwrap().trim().to_string(),
    }
}

/// A PBX that challenges the proxy's own call gets it again with the account's credentials:
/// same Call-ID and From tag, next CSeq, a digest answer computed as RFC 2617 says; answered,
/// the call takes the transferor's place as without a challenge.
#[test]
fn a_challenged_placed_call_is_sent_again_with_the_accounts_credentials() {
    let mut sim = transfer_sim(66);
    let flows = crate::metaflow::parse_metaflows(&serde_json::json!({
        "numbers": {"5": {"module": "transfer", "data": {"target": "1234", "takeback_dtmf": "*1"}}}
    }))
    .unwrap();
    sim.core
        .set_resolver(Box::new(WithPbxAuth(crate::b2bua::StaticMetaflows(Some(
            std::sync::Arc::new(flows),
        )))));
    let (_call, invite) = refer_refused(&mut sim, 405);
    let mut challenge = sim.pbx.response(&invite, 407);
    challenge.push_header(
        "Proxy-Authenticate",
        "Digest realm=\"pbx.example\", nonce=\"4a7f1c09\", qop=\"auth\", algorithm=MD5",
    );
    sim.send(Side::Pbx, &challenge);
    sim.expect(Side::Pbx, req("ACK"));
    let retry = sim.expect(Side::Pbx, req("INVITE"));
    assert_eq!(retry.call_id(), invite.call_id());
    assert_eq!(retry.from_tag(), invite.from_tag());
    assert_eq!(cseq(&retry), cseq(&invite) + 1);
    assert_eq!(body(&retry), body(&invite), "the same offer");
    let answer = retry.header("Proxy-Authorization").unwrap().to_string();
    let uri = auth_param(&answer, "uri");
    assert_eq!(uri, format!("sip:1234@{PBX_HOST}:5070"));
    let ha1 = md5_hex("proxyuser:pbx.example:s3cret");
    let ha2 = md5_hex(&format!("INVITE:{uri}"));
    let cnonce = auth_param(&answer, "cnonce");
    let expected = md5_hex(&format!("{ha1}:4a7f1c09:00000001:{cnonce}:auth:{ha2}"));
    assert_eq!(auth_param(&answer, "response"), expected, "{answer}");
    assert_eq!(auth_param(&answer, "username"), "proxyuser");
    target_answers(&mut sim, &retry);
    sim.expect(Side::Phone, req("BYE"));
    assert_eq!(sim.events_of("leg_replaced").len(), 1);
}

/// Without credentials (or when they are refused again) the challenge is the failure.
#[test]
fn a_challenge_without_credentials_fails_the_transfer_with_its_status() {
    let mut sim = transfer_sim(67);
    let (_call, invite) = refer_refused(&mut sim, 405);
    let mut challenge = sim.pbx.response(&invite, 401);
    challenge.push_header(
        "WWW-Authenticate",
        "Digest realm=\"pbx.example\", nonce=\"n1\"",
    );
    sim.send(Side::Pbx, &challenge);
    sim.expect(Side::Pbx, req("ACK"));
    sim.settle();
    assert_eq!(
        sim.events_of("transfer_failed"),
        [CallEvent::TransferFailed {
            status: Some(401),
            reason: None
        }]
    );
    assert!(sim.take(Side::Phone).is_empty(), "the transferor stays");
}

/// `callflow`: the phone dials `*6` and a number; the proxy calls the number through the PBX
/// offering the phone's SDP on the sockets the PBX leg used, and once answered releases the old
/// PBX leg: the phone talks to the new call.
#[test]
fn callflow_replaces_the_dialing_partys_peer_with_a_call_to_the_number() {
    let mut sim = Sim::with(super::harness::SimConfig {
        seed: 68,
        metaflows: Some(serde_json::json!({
            "binding_digit": "*",
            "patterns": {"^6(\\d+)$": {"module": "callflow"}}
        })),
        ..super::harness::SimConfig::default()
    });
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*6555");
    let invite = sim.expect(Side::Pbx, req("INVITE"));
    assert_eq!(
        invite.request_uri(),
        Some(format!("sip:555@{PBX_HOST}:5070").as_str())
    );
    let from = invite.header("From").unwrap_or_default();
    assert!(
        from.contains("alice"),
        "From is the phone, who is served: {from}"
    );
    let ports = sim.media.ports(call.key);
    let offer = body(&invite);
    assert!(
        offer.contains(&format!("m=audio {} RTP/AVP 8 101", ports.b.rtp)),
        "the phone's codecs on the PBX leg's sockets: {offer}"
    );
    target_answers(&mut sim, &invite);
    let bye = sim.expect(Side::Pbx, req("BYE"));
    assert_eq!(
        bye.call_id(),
        call.b_invite.call_id(),
        "the old peer is released"
    );
    assert!(sim.take(Side::Phone).is_empty(), "the phone stays");
    assert!(
        sim.media
            .log()
            .remotes
            .iter()
            .any(|&(k, _, leg, rtp)| k == call.key
                && leg == Leg::B
                && rtp == addr("10.0.0.77:7700")),
    );
    assert_eq!(sim.events_of("leg_replaced").len(), 1);
    let outcomes = sim.events_of("module_outcome");
    assert!(
        outcomes.iter().any(|e| matches!(e, CallEvent::ModuleOutcome { module, outcome } if module == "callflow" && outcome == "success")),
        "{outcomes:?}"
    );
}

/// The PBX answers the proxy's CANCEL 200 and the INVITE 487, and gets the ACK.
fn pbx_confirms_cancel(sim: &mut Sim, cancel: &SipMessage, invite: &SipMessage) {
    let ok = sim.pbx.response(cancel, 200);
    sim.send(Side::Pbx, &ok);
    let terminated = sim.pbx.response(invite, 487);
    sim.send(Side::Pbx, &terminated);
    sim.expect(Side::Pbx, req("ACK"));
    sim.settle();
}

/// Calls whose `*5` runs `transfer` with `data`.
fn transfer_with(seed: u64, data: serde_json::Value) -> Sim {
    Sim::with(super::harness::SimConfig {
        seed,
        metaflows: Some(serde_json::json!({
            "numbers": {"5": {"module": "transfer", "data": data}}
        })),
        ..super::harness::SimConfig::default()
    })
}

/// `method: bridge` skips the REFER: the proxy places the call to the target at once.
#[test]
fn method_bridge_places_the_call_without_a_refer() {
    let mut sim = transfer_with(
        69,
        serde_json::json!({"target": "1234", "method": "bridge"}),
    );
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*5");
    let invite = sim.expect(Side::Pbx, req("INVITE"));
    assert_eq!(
        invite.request_uri(),
        Some(format!("sip:1234@{PBX_HOST}:5070").as_str())
    );
    assert!(sim.events_of("transfer_refer_sent").is_empty(), "no REFER");
    target_answers(&mut sim, &invite);
    sim.expect(Side::Phone, req("BYE"));
    assert_eq!(
        sim.events_of("transfer_succeeded"),
        [CallEvent::TransferSucceeded { status: Some(200) }]
    );
}

/// A target that rings past `timeout` is cancelled; the transfer fails for no answer (408) and
/// the parties go on talking.
#[test]
fn a_target_ringing_past_the_timeout_is_cancelled() {
    let mut sim = transfer_with(70, serde_json::json!({"target": "1234", "timeout": 3}));
    let (_call, invite) = refer_refused(&mut sim, 501);
    let ringing = sim.pbx.response(&invite, 180);
    sim.send(Side::Pbx, &ringing);
    let sent_at = sim.elapsed();
    let cancel = sim.expect(Side::Pbx, req("CANCEL"));
    let waited = sim.elapsed() - sent_at;
    assert!(
        waited >= std::time::Duration::from_millis(2900)
            && waited <= std::time::Duration::from_millis(3100),
        "{waited:?}"
    );
    pbx_confirms_cancel(&mut sim, &cancel, &invite);
    assert_eq!(
        sim.events_of("transfer_failed"),
        [CallEvent::TransferFailed {
            status: Some(408),
            reason: None
        }]
    );
    assert!(sim.take(Side::Phone).is_empty(), "the transferor stays");
}

/// A blind transfer whose transferor left while the target rings: the target's early media
/// (183 with SDP) takes the transferor's leg at once, so the transferee hears it instead of
/// the proxy's ringback, and the answer does not refuse the target's source again.
#[test]
fn early_media_reaches_the_transferee_once_the_transferor_left() {
    let mut sim = transfer_sim(70);
    let (mut call, invite) = refer_refused(&mut sim, 405);
    let ringing = sim.pbx.response(&invite, 180);
    sim.send(Side::Pbx, &ringing);
    let bye = sim.phone.request(&mut call.phone, "BYE");
    sim.send(Side::Phone, &bye);
    sim.expect(Side::Phone, resp(200, "BYE"));
    sim.settle();
    assert!(
        sim.media.log().replaced.is_empty(),
        "the target has not spoken yet"
    );
    let progress = with_body(
        sim.pbx.response(&invite, 183),
        "application/sdp",
        TARGET_SDP,
    );
    sim.send(Side::Pbx, &progress);
    sim.settle();
    assert_eq!(sim.media.log().replaced, [(call.key, Leg::A)]);
    assert!(
        sim.media
            .log()
            .remotes
            .iter()
            .any(|&(k, _, leg, rtp)| k == call.key
                && leg == Leg::A
                && rtp == addr("10.0.0.77:7700"))
    );
    assert!(
        sim.media.log().stops.iter().any(|s| s.1 == Leg::B),
        "the transferee's ringback stops"
    );
    target_answers(&mut sim, &invite);
    sim.settle();
    assert_eq!(
        sim.media.log().replaced.len(),
        1,
        "the answer refuses nobody"
    );
    assert_eq!(sim.events_of("leg_replaced").len(), 1);
}
