//! Digest challenges from the PBX: the challenge reaches the phone unchanged, and the phone's
//! retry reaches the PBX as the same PBX-side call (Call-ID and From tag), so the nonce the PBX
//! issued for that call still applies.

use std::time::Duration;

use crate::sip::SipMessage;

use super::expect::{req, resp};
use super::harness::{Side, Sim};
use super::sip::{ANSWER, ack_non_2xx, branch, cseq};

/// The PBX challenges with `code` and `header`; the phone ACKs and retries with `credentials`
/// after `wait`. Returns (first INVITE at the PBX, challenge at the phone, retry at the PBX).
fn challenge_and_retry(
    sim: &mut Sim,
    code: u16,
    header: &str,
    credentials: &str,
    wait: Duration,
) -> (SipMessage, SipMessage, SipMessage) {
    let (invite, first) = sim.call_reaches_pbx();
    let mut challenge = sim.pbx.response(&first, code);
    challenge.push_header(
        header,
        "Digest realm=\"pbx.example\", nonce=\"4a7f1c09\", algorithm=MD5",
    );
    sim.send(Side::Pbx, &challenge);
    let got = sim.expect(Side::Phone, resp(code, "INVITE"));
    let ack = sim.expect(Side::Pbx, req("ACK"));
    assert_eq!(
        branch(&ack),
        branch(&first),
        "the proxy ACKs the challenge itself"
    );
    sim.send(Side::Phone, &ack_non_2xx(&invite, &got));
    sim.run_for(wait);
    let mut retry = invite.clone();
    let new_branch = sim.phone.branch();
    let via = format!("SIP/2.0/UDP {};branch={new_branch}", sim.phone.addr);
    retry.set_header("Via", via);
    retry.set_header("CSeq", "2 INVITE");
    let name = if code == 401 {
        "Authorization"
    } else {
        "Proxy-Authorization"
    };
    retry.push_header(name, credentials);
    sim.send(Side::Phone, &retry);
    let again = sim.expect(Side::Pbx, req("INVITE"));
    assert!(
        sim.take(Side::Pbx).is_empty(),
        "the phone's ACK never reaches the PBX"
    );
    (first, got, again)
}

/// A 407 and its Proxy-Authenticate reach the phone unchanged; the retry carries the
/// credentials unchanged in the same PBX-side call (Call-ID, From tag), as a new transaction
/// with a higher CSeq, and the call then completes.
#[test]
fn a_407_retry_stays_in_the_pbx_side_call() {
    let mut sim = Sim::new(20);
    let creds = "Digest username=\"alice\", realm=\"pbx.example\", nonce=\"4a7f1c09\", uri=\"sip:1000@pbx\", response=\"0123456789abcdef0123456789abcdef\"";
    let (first, challenge, retry) =
        challenge_and_retry(&mut sim, 407, "Proxy-Authenticate", creds, Duration::ZERO);
    assert_eq!(
        challenge.header("Proxy-Authenticate"),
        Some("Digest realm=\"pbx.example\", nonce=\"4a7f1c09\", algorithm=MD5")
    );
    assert_eq!(retry.header("Proxy-Authorization"), Some(creds));
    assert_eq!(retry.call_id(), first.call_id());
    assert_eq!(retry.from_tag(), first.from_tag());
    assert_ne!(branch(&retry), branch(&first));
    assert!(cseq(&retry) > cseq(&first));
    sim.pbx_answers(&retry, 200, Some(ANSWER));
    sim.expect(Side::Phone, resp(200, "INVITE"));
    assert_eq!(
        sim.event_kinds(),
        [
            "call_started",
            "call_rejected",
            "call_ended",
            "call_started",
            "call_answered"
        ]
    );
}

/// The same for a 401 and WWW-Authenticate / Authorization.
#[test]
fn a_401_retry_stays_in_the_pbx_side_call() {
    let mut sim = Sim::new(21);
    let creds = "Digest username=\"alice\", realm=\"pbx.example\", nonce=\"4a7f1c09\", uri=\"sip:1000@pbx\", response=\"fedcba9876543210fedcba9876543210\"";
    let (first, challenge, retry) =
        challenge_and_retry(&mut sim, 401, "WWW-Authenticate", creds, Duration::ZERO);
    assert!(challenge.header("WWW-Authenticate").is_some());
    assert_eq!(retry.header("Authorization"), Some(creds));
    assert_eq!(retry.call_id(), first.call_id());
    assert_eq!(retry.from_tag(), first.from_tag());
}

/// The PBX-side identity is kept for 64*T1 only: a retry after that is a new PBX-side call.
#[test]
fn a_retry_after_the_challenge_window_is_a_new_pbx_side_call() {
    let mut sim = Sim::new(22);
    let (first, _, retry) = challenge_and_retry(
        &mut sim,
        407,
        "Proxy-Authenticate",
        "Digest x",
        Duration::from_secs(33),
    );
    assert_ne!(retry.call_id(), first.call_id());
    assert_ne!(retry.from_tag(), first.from_tag());
}
