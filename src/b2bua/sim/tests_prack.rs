//! Reliable provisional responses (RFC 3262) across the proxy: the PBX's reliable 183 reaches
//! the phone with its option tags, and the phone's PRACK reaches the PBX in the PBX's dialog.

use std::time::Duration;

use crate::sip::SipMessage;

use super::dialog::UaDialog;
use super::expect::{req, resp};
use super::harness::{Side, Sim};
use super::sip::{ANSWER, OFFER, body, cseq, uri_of, with_body};

/// The phone's INVITE offering 100rel, the PBX's copy of it, and the PBX's reliable 183.
fn reliable_183(sim: &mut Sim) -> (SipMessage, SipMessage, SipMessage) {
    let mut invite = sim.phone.invite(Some(OFFER));
    invite.push_header("Supported", "100rel");
    sim.send(Side::Phone, &invite);
    let b_invite = sim.expect(Side::Pbx, req("INVITE"));
    let mut progress = sim.pbx.response(&b_invite, 183);
    progress.push_header("Require", "100rel");
    progress.push_header("RSeq", "1");
    let progress = with_body(progress, "application/sdp", ANSWER);
    sim.send(Side::Pbx, &progress);
    (invite, b_invite, progress)
}

/// `Supported: 100rel` reaches the PBX; its 183 reaches the phone with `Require: 100rel`,
/// the same RSeq, the caller's dialog tag and an anchored SDP.
#[test]
fn a_reliable_183_is_relayed_with_its_option_tags() {
    let mut sim = Sim::new(10);
    let (_, b_invite, _) = reliable_183(&mut sim);
    assert_eq!(b_invite.header("Supported"), Some("100rel"));
    let got = sim.expect(Side::Phone, resp(183, "INVITE"));
    assert_eq!(got.header("Require"), Some("100rel"));
    assert_eq!(got.header("RSeq"), Some("1"));
    assert!(got.to_tag().is_some());
    let key = sim.media.last_call();
    assert!(body(&got).contains(&format!("m=audio {} ", sim.media.ports(key).a.rtp)));
}

/// The phone's PRACK reaches the PBX inside the PBX's early dialog (its Call-ID, tags and
/// Contact, a higher CSeq) with the RAck unchanged; the PBX's 200 comes back to the phone; then
/// the call is answered and acknowledged as usual.
#[test]
fn prack_is_relayed_in_the_pbx_dialog_and_answered_end_to_end() {
    let mut sim = Sim::new(11);
    let (invite, b_invite, progress) = reliable_183(&mut sim);
    let got = sim.expect(Side::Phone, resp(183, "INVITE"));
    let mut phone = UaDialog::uac(&invite, &got, sim.phone.addr);
    let mut prack = sim.phone.request(&mut phone, "PRACK");
    prack.push_header("RAck", format!("1 {} INVITE", cseq(&invite)));
    sim.send(Side::Phone, &prack);

    let with_rack = req("PRACK").and("with RAck", |m| m.header("RAck").is_some());
    let b_prack = sim.expect(Side::Pbx, with_rack);
    assert_eq!(b_prack.call_id(), b_invite.call_id());
    assert_eq!(b_prack.from_tag(), b_invite.from_tag());
    assert_eq!(b_prack.to_tag(), progress.to_tag());
    assert_eq!(
        b_prack.request_uri(),
        Some(uri_of(&progress, "Contact").as_str())
    );
    assert_eq!(b_prack.header("RAck"), Some("1 1 INVITE"));
    assert!(cseq(&b_prack) > cseq(&b_invite));
    let ok = sim.pbx.response(&b_prack, 200);
    sim.send(Side::Pbx, &ok);
    let prack_ok = sim.expect(Side::Phone, resp(200, "PRACK"));
    assert_eq!(prack_ok.call_id(), invite.call_id());
    assert_eq!(cseq(&prack_ok), cseq(&prack));

    sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    let answer = sim.expect(Side::Phone, resp(200, "INVITE"));
    let ack = sim
        .phone
        .ack(&UaDialog::uac(&invite, &answer, sim.phone.addr), 1);
    sim.send(Side::Phone, &ack);
    let b_ack = sim.expect(Side::Pbx, req("ACK"));
    assert_eq!(
        cseq(&b_ack),
        cseq(&b_invite),
        "the ACK names the INVITE, not the PRACK"
    );
    assert_eq!(sim.event_kinds(), ["call_started", "call_answered"]);
}

/// The PBX retransmits its reliable 183 until the PRACK comes (RFC 3262 §3): every copy reaches
/// the phone (the phone's PRACK logic absorbs duplicates by RSeq), none is dropped or changed.
#[test]
fn a_retransmitted_reliable_183_reaches_the_phone_each_time() {
    let mut sim = Sim::new(12);
    let (_, _, progress) = reliable_183(&mut sim);
    sim.run_for(Duration::from_millis(500));
    sim.send(Side::Pbx, &progress);
    sim.run_for(Duration::from_millis(500));
    let copies: Vec<&SipMessage> = sim
        .phone
        .log
        .iter()
        .map(|(_, m)| m)
        .filter(|m| m.status() == Some(183))
        .collect();
    assert_eq!(copies.len(), 2);
    assert_eq!(copies[0], copies[1], "the same 183 both times");
    assert_eq!(
        sim.take(Side::Phone).len(),
        2,
        "100 Trying and one fresh 183"
    );
}
