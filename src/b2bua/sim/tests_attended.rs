//! Attended transfer (`transfer_type: attended`), every branch of Kazoo's flow: the transferee
//! hears music while the transferor consults the target on a port pair of its own, and the
//! transferor hanging up bridges transferee and target, with nobody re-INVITEd.

use serde_json::json;

use crate::audio::SoundRef;
use crate::base::{CallEvent, Leg};
use crate::media::PortPair;
use crate::sip::SipMessage;

use super::call::Call;
use super::dialog::UaDialog;
use super::expect::{req, resp};
use super::harness::{Side, Sim, SimConfig, addr};
use super::media::ConsultOp;
use super::sip::body;
use super::tests_originate::target_answers;

/// Calls whose `*5` runs an attended transfer to 1234 (takeback `*1`, 20 s target timeout).
fn attended_sim(seed: u64) -> Sim {
    attended_sim_from(seed, crate::base::PlacedCallFrom::Staying)
}

/// [`attended_sim`] with the core's `placed-call-from`.
fn attended_sim_from(seed: u64, placed_call_from: crate::base::PlacedCallFrom) -> Sim {
    Sim::with(SimConfig {
        seed,
        placed_call_from,
        metaflows: Some(json!({
            "numbers": {"5": {"module": "transfer", "data": {
                "target": "1234", "transfer_type": "attended", "takeback_dtmf": "*1",
                "moh": "silence"
            }}}
        })),
        ..SimConfig::default()
    })
}

/// An answered call whose phone (the transferor) dialed `*5`: returns the call, the INVITE the
/// PBX got for the target (no REFER: the proxy calls the target itself) and the consultation's
/// port pair.
fn consult_placed(sim: &mut Sim) -> (Call, SipMessage, PortPair) {
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*5");
    let invite = sim.expect(Side::Pbx, req("INVITE"));
    let opened = sim.media.log().consults.first().copied();
    let Some(ConsultOp::Open(key, Leg::A, pair)) = opened else {
        panic!("a consultation opened for the transferor: {opened:?}");
    };
    assert_eq!(key, call.key);
    (call, invite, pair)
}

/// The consultation requests the core made, after the opening.
fn consult_ops(sim: &Sim) -> Vec<ConsultOp> {
    sim.media.log().consults.iter().skip(1).copied().collect()
}

/// Every sound the core asked to be produced, in order.
fn sounds_asked(sim: &Sim) -> Vec<SoundRef> {
    sim.sounds.iter().map(|(_, _, s)| s.clone()).collect()
}

/// Kazoo's default ringback, as the transfer plays it.
fn ringback() -> SoundRef {
    SoundRef::Tone("tone_stream://%(2000,4000,440,480)".into())
}

/// Whether a BYE went to `side` once everything in flight arrived (taken from its inbox).
fn bye_to(sim: &mut Sim, side: Side) -> Option<SipMessage> {
    sim.settle();
    sim.take(side)
        .into_iter()
        .find(|m| m.method().is_some_and(|m| m.as_str() == "BYE"))
}

/// The phone (transferor) hangs up and the proxy answers it.
fn transferor_hangs_up(sim: &mut Sim, call: &mut Call) {
    let bye = sim.phone.request(&mut call.phone, "BYE");
    sim.send(Side::Phone, &bye);
    sim.expect(Side::Phone, resp(200, "BYE"));
}

/// The target's media, as `TARGET_SDP` says.
fn target_media() -> std::net::SocketAddr {
    addr("10.0.0.77:7700")
}

/// Start: the target's INVITE offers the transferee's codecs on the consultation's own ports,
/// the transferee hears music and the transferor ringback; nothing goes to either party.
#[test]
fn the_target_is_called_on_a_port_pair_of_its_own_while_the_transferee_hears_music() {
    let mut sim = attended_sim(90);
    let (call, invite, pair) = consult_placed(&mut sim);
    let offer = body(&invite);
    assert!(
        offer.contains(&format!("m=audio {} RTP/AVP", pair.rtp)),
        "{offer}"
    );
    let ports = sim.media.ports(call.key);
    assert!(!offer.contains(&format!("m=audio {} ", ports.a.rtp)));
    assert_eq!(
        sounds_asked(&sim),
        [SoundRef::Silence, ringback()],
        "`moh` to the transferee, ringback to the transferor"
    );
    assert!(sim.take(Side::Phone).is_empty());
    assert_eq!(sim.events_of("leg_originated").len(), 1);
    assert!(sim.events_of("transfer_refer_sent").is_empty());
}

/// The full flow: the target answers and talks with the transferor (the transferee still on
/// hold); the transferor hangs up and the target takes its place on the a-leg; the call goes
/// on until the target hangs up, which hangs up the transferee.
#[test]
fn answered_then_transferor_hangs_up_bridges_transferee_and_target() {
    let mut sim = attended_sim(91);
    let (mut call, invite, pair) = consult_placed(&mut sim);
    let mut target = target_answers(&mut sim, &invite);
    sim.settle();
    assert_eq!(
        consult_ops(&sim),
        [ConsultOp::Remote(call.key, target_media())]
    );
    assert_eq!(
        sim.events_of("leg_consulted"),
        [CallEvent::LegConsulted {
            leg: Leg::A,
            call_id: invite.call_id().unwrap().to_string()
        }]
    );
    assert!(
        sim.media.log().stops.iter().any(|s| s.1 == Leg::A),
        "ringback stops"
    );
    assert!(
        bye_to(&mut sim, Side::Phone).is_none(),
        "the transferor stays"
    );
    assert!(
        sim.events_of("leg_replaced").is_empty(),
        "consulting, not yet transferred"
    );
    transferor_hangs_up(&mut sim, &mut call);
    sim.settle();
    assert_eq!(consult_ops(&sim)[1..], [ConsultOp::Takes(call.key, Leg::A)]);
    assert_eq!(
        sim.media.ports(call.key).a,
        pair,
        "the target's ports are the a-leg's"
    );
    assert!(
        bye_to(&mut sim, Side::Pbx).is_none(),
        "no BYE to the transferee"
    );
    assert_eq!(
        sim.events_of("leg_replaced"),
        [CallEvent::LegReplaced {
            leg: Leg::A,
            call_id: invite.call_id().unwrap().to_string()
        }]
    );
    assert_eq!(
        sim.events_of("transfer_succeeded"),
        [CallEvent::TransferSucceeded { status: None }]
    );
    assert!(sim.events_of("call_ended").is_empty());
    let target_bye = sim.pbx.request(&mut target, "BYE");
    sim.send(Side::Pbx, &target_bye);
    sim.expect(Side::Pbx, resp(200, "BYE"));
    let transferee_bye = sim.expect(Side::Pbx, req("BYE"));
    assert_eq!(transferee_bye.call_id(), call.b_invite.call_id());
    let ok = sim.pbx.response(&transferee_bye, 200);
    sim.send(Side::Pbx, &ok);
    sim.settle();
    assert_eq!(sim.events_of("call_ended").len(), 1);
}

/// The target is busy: the consultation closes, both hear each other again, outcome failure.
#[test]
fn a_busy_target_reconnects_transferor_and_transferee() {
    let mut sim = attended_sim(92);
    let (mut call, invite, _) = consult_placed(&mut sim);
    let busy = sim.pbx.response(&invite, 486);
    sim.send(Side::Pbx, &busy);
    sim.expect(Side::Pbx, req("ACK"));
    sim.settle();
    assert_eq!(consult_ops(&sim), [ConsultOp::Close(call.key)]);
    let stops: Vec<Leg> = sim.media.log().stops.iter().map(|s| s.1).collect();
    assert!(
        stops.contains(&Leg::A) && stops.contains(&Leg::B),
        "{stops:?}"
    );
    assert_eq!(
        sim.events_of("transfer_failed"),
        [CallEvent::TransferFailed {
            status: Some(486),
            reason: Some("the target did not answer".into())
        }]
    );
    assert!(sim.events_of("call_ended").is_empty());
    sim.hang_up(Side::Phone, &mut call);
}

/// Nobody answers within `timeout`: the target is cancelled, the failure reads 408.
#[test]
fn no_answer_within_the_timeout_cancels_and_reconnects() {
    let mut sim = attended_sim(93);
    let (call, invite, _) = consult_placed(&mut sim);
    let ringing = sim.pbx.response(&invite, 180);
    sim.send(Side::Pbx, &ringing);
    sim.run_for(std::time::Duration::from_secs(21));
    let cancel = sim.expect(Side::Pbx, req("CANCEL"));
    // Reconnected at the timeout, not when the CANCEL is answered.
    assert_eq!(consult_ops(&sim), [ConsultOp::Close(call.key)]);
    assert_eq!(sim.events_of("transfer_failed").len(), 1);
    let ok = sim.pbx.response(&cancel, 200);
    sim.send(Side::Pbx, &ok);
    let terminated = sim.pbx.response(&invite, 487);
    sim.send(Side::Pbx, &terminated);
    sim.settle();
    let failed = sim.events_of("transfer_failed");
    assert!(
        matches!(
            failed.as_slice(),
            [CallEvent::TransferFailed {
                status: Some(408),
                ..
            }]
        ),
        "{failed:?}"
    );
}

/// Partial transfer: the transferor hangs up while the target rings; the transferee hears
/// ringback, and the target takes the transferor's place when it answers.
#[test]
fn transferor_hanging_up_while_the_target_rings_completes_when_it_answers() {
    let mut sim = attended_sim(94);
    let (mut call, invite, pair) = consult_placed(&mut sim);
    let ringing = sim.pbx.response(&invite, 180);
    sim.send(Side::Pbx, &ringing);
    transferor_hangs_up(&mut sim, &mut call);
    sim.settle();
    assert_eq!(
        sounds_asked(&sim),
        [SoundRef::Silence, ringback(), ringback()],
        "ringback to the transferee"
    );
    let stops: Vec<Leg> = sim.media.log().stops.iter().map(|s| s.1).collect();
    assert_eq!(
        stops,
        [Leg::A, Leg::B],
        "the leg the target takes stops hearing ringback, the transferee its music"
    );
    assert!(
        sim.events_of("call_ended").is_empty(),
        "the transferee waits"
    );
    target_answers(&mut sim, &invite);
    sim.settle();
    assert_eq!(consult_ops(&sim), [ConsultOp::Takes(call.key, Leg::A)]);
    assert_eq!(sim.media.ports(call.key).a, pair);
    assert!(
        bye_to(&mut sim, Side::Phone).is_none(),
        "the transferor already left"
    );
    assert_eq!(sim.events_of("leg_replaced").len(), 1);
    assert_eq!(
        sim.events_of("transfer_succeeded"),
        [CallEvent::TransferSucceeded { status: Some(200) }]
    );
    assert!(sim.events_of("call_ended").is_empty());
}

/// Partial transfer whose target fails: nobody is left for the transferee; the call ends.
#[test]
fn a_partial_transfer_whose_target_fails_ends_the_call() {
    let mut sim = attended_sim(95);
    let (mut call, invite, _) = consult_placed(&mut sim);
    let ringing = sim.pbx.response(&invite, 180);
    sim.send(Side::Pbx, &ringing);
    transferor_hangs_up(&mut sim, &mut call);
    let busy = sim.pbx.response(&invite, 486);
    sim.send(Side::Pbx, &busy);
    sim.settle();
    let bye = bye_to(&mut sim, Side::Pbx).expect("the transferee is hung up");
    assert_eq!(bye.call_id(), call.b_invite.call_id());
    assert_eq!(sim.events_of("transfer_failed").len(), 1);
    assert_eq!(sim.events_of("call_ended").len(), 1);
}

/// Takeback while the target rings: CANCEL, the legs reconnected at once, outcome withdrawn.
#[test]
fn takeback_while_the_target_rings_cancels_and_reconnects_at_once() {
    let mut sim = attended_sim(96);
    let (call, invite, _) = consult_placed(&mut sim);
    let ringing = sim.pbx.response(&invite, 180);
    sim.send(Side::Pbx, &ringing);
    sim.dial(call.key, Leg::A, "*1");
    let cancel = sim.expect(Side::Pbx, req("CANCEL"));
    assert_eq!(cancel.call_id(), invite.call_id());
    assert_eq!(
        consult_ops(&sim),
        [ConsultOp::Close(call.key)],
        "before the 487"
    );
    assert_eq!(
        sim.events_of("transfer_withdrawn"),
        [CallEvent::TransferWithdrawn { status: None }]
    );
    let ok = sim.pbx.response(&cancel, 200);
    sim.send(Side::Pbx, &ok);
    let terminated = sim.pbx.response(&invite, 487);
    sim.send(Side::Pbx, &terminated);
    sim.settle();
    assert!(sim.events_of("transfer_failed").is_empty());
    assert!(sim.events_of("call_ended").is_empty());
}

/// Takeback while consulting: the target is hung up, the legs reconnected, outcome withdrawn.
#[test]
fn takeback_while_consulting_hangs_up_the_target_and_reconnects() {
    let mut sim = attended_sim(97);
    let (call, invite, _) = consult_placed(&mut sim);
    target_answers(&mut sim, &invite);
    sim.dial(call.key, Leg::A, "*1");
    let bye = bye_to(&mut sim, Side::Pbx).expect("the target is hung up");
    assert_eq!(bye.call_id(), invite.call_id());
    assert_eq!(
        consult_ops(&sim),
        [
            ConsultOp::Remote(call.key, target_media()),
            ConsultOp::Close(call.key)
        ]
    );
    assert_eq!(
        sim.events_of("transfer_withdrawn"),
        [CallEvent::TransferWithdrawn { status: None }]
    );
    assert!(sim.events_of("leg_replaced").is_empty());
    assert_eq!(
        sim.events_of("leg_consult_ended"),
        [CallEvent::LegConsultEnded {
            leg: Leg::A,
            call_id: invite.call_id().unwrap().to_string()
        }]
    );
    // A later BYE from the target's side is refused: its dialog is gone.
}

/// The target hangs up while consulting: the legs are reconnected, outcome failure.
#[test]
fn the_target_hanging_up_while_consulting_reconnects() {
    let mut sim = attended_sim(98);
    let (mut call, invite, _) = consult_placed(&mut sim);
    let mut target: UaDialog = target_answers(&mut sim, &invite);
    let bye = sim.pbx.request(&mut target, "BYE");
    sim.send(Side::Pbx, &bye);
    let ok = sim.expect(Side::Pbx, resp(200, "BYE"));
    assert_eq!(ok.call_id(), invite.call_id());
    sim.settle();
    assert_eq!(consult_ops(&sim)[1..], [ConsultOp::Close(call.key)]);
    assert_eq!(
        sim.events_of("transfer_failed"),
        [CallEvent::TransferFailed {
            status: None,
            reason: Some("the target hung up".into())
        }]
    );
    assert_eq!(sim.events_of("leg_consult_ended").len(), 1);
    assert!(sim.events_of("call_ended").is_empty());
    sim.hang_up(Side::Phone, &mut call);
    assert_eq!(sim.events_of("call_ended").len(), 1);
}

/// The transferee hangs up while consulting: the target takes its place and the transferor
/// talks with it; the transferor hanging up later hangs up the target.
#[test]
fn the_transferee_hanging_up_while_consulting_leaves_transferor_and_target() {
    let mut sim = attended_sim(99);
    let (mut call, invite, pair) = consult_placed(&mut sim);
    target_answers(&mut sim, &invite);
    let bye = sim.pbx.request(&mut call.pbx, "BYE");
    sim.send(Side::Pbx, &bye);
    sim.settle();
    assert_eq!(consult_ops(&sim)[1..], [ConsultOp::Takes(call.key, Leg::B)]);
    assert_eq!(sim.media.ports(call.key).b, pair);
    assert!(
        bye_to(&mut sim, Side::Phone).is_none(),
        "the transferor stays"
    );
    assert_eq!(sim.events_of("transfer_failed").len(), 1);
    assert!(sim.events_of("call_ended").is_empty());
    let phone_bye = sim.phone.request(&mut call.phone, "BYE");
    sim.send(Side::Phone, &phone_bye);
    let target_bye = sim.expect(Side::Pbx, req("BYE"));
    assert_eq!(target_bye.call_id(), invite.call_id());
    sim.settle();
    assert_eq!(sim.events_of("call_ended").len(), 1);
}

/// The transferee hangs up while the target rings: when the target answers it talks with the
/// transferor alone (it took the transferee's place).
#[test]
fn the_transferee_hanging_up_while_the_target_rings_leaves_transferor_and_target() {
    let mut sim = attended_sim(100);
    let (mut call, invite, pair) = consult_placed(&mut sim);
    let ringing = sim.pbx.response(&invite, 180);
    sim.send(Side::Pbx, &ringing);
    let bye = sim.pbx.request(&mut call.pbx, "BYE");
    sim.send(Side::Pbx, &bye);
    sim.settle();
    assert!(
        sim.events_of("call_ended").is_empty(),
        "the transferor waits"
    );
    let stops: Vec<Leg> = sim.media.log().stops.iter().map(|s| s.1).collect();
    assert_eq!(
        stops,
        [Leg::B],
        "the leg the target takes stops hearing music"
    );
    target_answers(&mut sim, &invite);
    sim.settle();
    assert_eq!(consult_ops(&sim), [ConsultOp::Takes(call.key, Leg::B)]);
    assert_eq!(sim.media.ports(call.key).b, pair);
    assert!(bye_to(&mut sim, Side::Phone).is_none());
    assert_eq!(sim.events_of("transfer_failed").len(), 1);
    assert!(sim.events_of("call_ended").is_empty());
}

/// An attended transfer forwards both directions again (it ends a `hold` running on the
/// call), so the transferor hears the target and later the transferee hears it.
#[test]
fn an_attended_transfer_ends_a_hold() {
    let mut sim = attended_sim(101);
    let (call, _, _) = consult_placed(&mut sim);
    let holds = sim.media.log().holds.clone();
    assert_eq!(
        holds,
        [(call.key, Leg::A, false), (call.key, Leg::B, false)],
        "both directions forwarded again"
    );
}

/// While consulting, the transferor's INFO is answered by the proxy (its digit counts: here
/// the takeback) and never reaches the parked transferee; a re-INVITE gets 491.
#[test]
fn requests_of_a_consulting_party_stay_at_the_proxy() {
    let mut sim = attended_sim(102);
    let (mut call, invite, _) = consult_placed(&mut sim);
    target_answers(&mut sim, &invite);
    sim.settle();
    sim.take(Side::Pbx);
    let reinvite = sim.phone.request(&mut call.phone, "INVITE");
    sim.send(Side::Phone, &reinvite);
    sim.expect(Side::Phone, resp(491, "INVITE"));
    for digit in ["*", "1"] {
        let info = sim.phone.request(&mut call.phone, "INFO");
        let info = super::sip::with_body(
            info,
            "application/dtmf-relay",
            &format!("Signal={digit}\r\nDuration=160\r\n"),
        );
        sim.send(Side::Phone, &info);
        sim.expect(Side::Phone, resp(200, "INFO"));
    }
    sim.settle();
    let at_pbx = sim.take(Side::Pbx);
    assert!(
        !at_pbx.iter().any(|m| m
            .method()
            .is_some_and(|m| m.as_str() == "INFO" || m.as_str() == "INVITE")),
        "nothing relayed to the transferee"
    );
    assert_eq!(
        sim.events_of("transfer_withdrawn"),
        [CallEvent::TransferWithdrawn { status: None }],
        "the INFO digits took the transfer back"
    );
}

/// The consulted party may not REFER or SUBSCRIBE (nothing would follow up): 403.
#[test]
fn a_refer_from_the_consulted_party_is_refused() {
    let mut sim = attended_sim(103);
    let (_, invite, _) = consult_placed(&mut sim);
    let mut target = target_answers(&mut sim, &invite);
    let refer = sim.pbx.request(&mut target, "REFER");
    sim.send(Side::Pbx, &refer);
    sim.expect(Side::Pbx, resp(403, "REFER"));
}

/// With the transferee gone while the target rings there is nothing to take back: the
/// takeback digits change nothing and the transferor keeps waiting for the target.
#[test]
fn takeback_after_the_transferee_left_is_ignored() {
    let mut sim = attended_sim(104);
    let (mut call, invite, _) = consult_placed(&mut sim);
    let ringing = sim.pbx.response(&invite, 180);
    sim.send(Side::Pbx, &ringing);
    let bye = sim.pbx.request(&mut call.pbx, "BYE");
    sim.send(Side::Pbx, &bye);
    sim.settle();
    sim.dial(call.key, Leg::A, "*1");
    sim.settle();
    assert!(sim.events_of("transfer_withdrawn").is_empty());
    assert!(
        !sim.take(Side::Pbx)
            .iter()
            .any(|m| m.method().is_some_and(|m| m.as_str() == "CANCEL")),
        "the target still rings"
    );
    assert!(sim.events_of("call_ended").is_empty());
}

/// `placed-call-from`: by default the target's INVITE is from the transferee (the party that
/// stays); `replaced` makes it the transferor's, as Kazoo; a URI is used as given.
#[test]
fn the_placed_call_is_from_whom_the_configuration_says() {
    use crate::b2bua::dialog::without_tag;
    use crate::base::PlacedCallFrom;
    let cases = [
        (PlacedCallFrom::Staying, None),
        (PlacedCallFrom::Replaced, None),
        (
            PlacedCallFrom::Uri("sip:main@pbx.example.com".into()),
            Some("<sip:main@pbx.example.com>"),
        ),
    ];
    for (seed, (from, fixed)) in (110..).zip(cases) {
        let mut sim = attended_sim_from(seed, from.clone());
        let (call, invite, _) = consult_placed(&mut sim);
        let sent = without_tag(invite.header("From").unwrap_or_default());
        let expected = match (&from, fixed) {
            (_, Some(fixed)) => fixed.to_string(),
            (PlacedCallFrom::Replaced, _) => {
                without_tag(call.a_invite.header("From").unwrap_or_default())
            }
            _ => without_tag(call.b_invite.header("To").unwrap_or_default()),
        };
        assert_eq!(sent, expected, "placed-call-from = {from}");
    }
}

/// Early media from the target (a 183 with SDP: the PBX's ringback or an announcement): the
/// transferor hears it through the consultation's ports instead of the proxy's ringback.
#[test]
fn the_targets_early_media_reaches_the_transferor() {
    let mut sim = attended_sim(120);
    let (call, invite, _) = consult_placed(&mut sim);
    let progress = super::sip::with_body(
        sim.pbx.response(&invite, 183),
        "application/sdp",
        super::tests_originate::TARGET_SDP,
    );
    sim.send(Side::Pbx, &progress);
    sim.settle();
    assert_eq!(
        consult_ops(&sim),
        [ConsultOp::Remote(call.key, target_media())]
    );
    let stops: Vec<Leg> = sim.media.log().stops.iter().map(|s| s.1).collect();
    assert_eq!(
        stops,
        [Leg::A],
        "the proxy's ringback stops; the music to the transferee plays on"
    );
    assert!(
        sim.events_of("leg_consulted").is_empty(),
        "not answered yet"
    );
}

/// The target's 183 with SDP, as the PBX sends it.
fn early_media(sim: &mut Sim, invite: &SipMessage) {
    let progress = super::sip::with_body(
        sim.pbx.response(invite, 183),
        "application/sdp",
        super::tests_originate::TARGET_SDP,
    );
    sim.send(Side::Pbx, &progress);
    sim.settle();
}

/// Partial transfer with early media: once the transferor left, the target's media takes its
/// leg at the 183, so the transferee hears the target's progress instead of the proxy's
/// ringback; the answer then changes no media.
#[test]
fn a_partial_transfer_lets_the_transferee_hear_the_targets_early_media() {
    let mut sim = attended_sim(121);
    let (mut call, invite, pair) = consult_placed(&mut sim);
    let ringing = sim.pbx.response(&invite, 180);
    sim.send(Side::Pbx, &ringing);
    transferor_hangs_up(&mut sim, &mut call);
    sim.settle();
    early_media(&mut sim, &invite);
    assert_eq!(consult_ops(&sim), [ConsultOp::Takes(call.key, Leg::A)]);
    assert_eq!(sim.media.ports(call.key).a, pair);
    assert!(
        sim.media
            .log()
            .remotes
            .iter()
            .any(|&(k, _, leg, rtp)| k == call.key && leg == Leg::A && rtp == target_media()),
        "the transferee's audio goes to the target"
    );
    let stops: Vec<Leg> = sim.media.log().stops.iter().map(|s| s.1).collect();
    assert_eq!(
        stops,
        [Leg::A, Leg::B, Leg::B],
        "then the transferee's ringback stops too"
    );
    target_answers(&mut sim, &invite);
    sim.settle();
    assert_eq!(
        consult_ops(&sim),
        [ConsultOp::Takes(call.key, Leg::A)],
        "taken once"
    );
    assert_eq!(
        sim.events_of("transfer_succeeded"),
        [CallEvent::TransferSucceeded { status: Some(200) }]
    );
}

/// Early media heard by the transferor first; when it then hangs up, the transferee hears it
/// at once.
#[test]
fn early_media_follows_the_transferee_when_the_transferor_leaves() {
    let mut sim = attended_sim(122);
    let (mut call, invite, _) = consult_placed(&mut sim);
    early_media(&mut sim, &invite);
    assert_eq!(
        consult_ops(&sim),
        [ConsultOp::Remote(call.key, target_media())]
    );
    transferor_hangs_up(&mut sim, &mut call);
    sim.settle();
    assert_eq!(
        consult_ops(&sim),
        [
            ConsultOp::Remote(call.key, target_media()),
            ConsultOp::Takes(call.key, Leg::A)
        ]
    );
    let stops: Vec<Leg> = sim.media.log().stops.iter().map(|s| s.1).collect();
    assert_eq!(
        stops.last(),
        Some(&Leg::B),
        "no ringback over the target's progress"
    );
}
