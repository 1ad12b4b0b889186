//! The `record_call` module: the core asks for a recording (start, stop, toggle), attaches the
//! recorder's tap when it is ready, and stops it when the call ends.

use std::time::Duration;

use serde_json::json;

use crate::base::{CallEvent, Leg};
use crate::modules::record::{RecordFormat, StopReason};

use super::super::{Input, Output};
use super::expect::resp;
use super::harness::{Side, Sim, SimConfig};
use super::media::null_tap;

/// A simulation whose calls carry `*9` toggle, `*8` start, `*7` stop.
fn record_sim(seed: u64) -> Sim {
    Sim::with(SimConfig {
        seed,
        metaflows: Some(json!({
            "numbers": {
                "9": {"module": "record_call", "data": {"action": "toggle"}},
                "8": {"module": "record_call", "data": {"action": "start", "format": "pcap", "label": "sales"}},
                "7": {"module": "record_call", "data": {"action": "stop"}}
            }
        })),
        ..SimConfig::default()
    })
}

/// `*9` starts a recording: one StartRecording describing the call, and no tap until the
/// recorder says it is ready; then the tap is attached. A second `*9` detaches it and stops the
/// recording, naming the code.
#[test]
fn toggle_starts_then_stops_a_recording() {
    let mut sim = record_sim(50);
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*9");
    match sim.recordings.as_slice() {
        [
            Output::StartRecording {
                call: key,
                info,
                time_limit,
            },
        ] => {
            assert_eq!(*key, call.key);
            assert_eq!(Some(info.call_id.as_str()), call.a_invite.call_id());
            assert_eq!(
                info.a_uri,
                format!("\"Alice\" <sip:alice@{}>", sim.phone.addr)
            );
            assert_eq!(info.started_by, "code \"9\" by a-leg");
            assert_eq!(info.format, RecordFormat::Wav);
            assert_eq!(*time_limit, Duration::from_secs(3600));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        sim.media.log().taps.is_empty(),
        "no tap before the recorder is ready"
    );
    sim.input(Input::RecordingReady {
        call: call.key,
        tap: null_tap(),
    });
    assert_eq!(sim.media.log().taps, [(call.key, true)]);
    sim.dial(call.key, Leg::A, "*9");
    assert_eq!(sim.media.log().taps, [(call.key, true), (call.key, false)]);
    match sim.recordings.as_slice() {
        [_, Output::StopRecording { call: key, reason }] => {
            assert_eq!(*key, call.key);
            assert_eq!(
                *reason,
                StopReason::Stopped {
                    by: "code \"9\" by a-leg".into()
                }
            );
        }
        other => panic!("{other:?}"),
    }
}

/// `start` while recording and `stop` while idle change nothing and say so.
#[test]
fn start_while_recording_and_stop_while_idle_change_nothing() {
    let mut sim = record_sim(51);
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*7");
    sim.dial(call.key, Leg::A, "*8");
    sim.dial(call.key, Leg::A, "*8");
    assert_eq!(sim.recordings.len(), 1, "one start only");
    match &sim.recordings[0] {
        Output::StartRecording { info, .. } => {
            assert_eq!(info.format, RecordFormat::Pcap);
            assert_eq!(info.label.as_deref(), Some("sales"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        sim.events_of("recording_unchanged"),
        [
            CallEvent::RecordingUnchanged {
                action: "Stop".into()
            },
            CallEvent::RecordingUnchanged {
                action: "Start".into()
            }
        ]
    );
}

/// The end of the call stops a running recording (reason `call ended`).
#[test]
fn the_end_of_the_call_stops_its_recording() {
    let mut sim = record_sim(52);
    let mut call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*8");
    sim.input(Input::RecordingReady {
        call: call.key,
        tap: null_tap(),
    });
    sim.hang_up(Side::Pbx, &mut call);
    match sim.recordings.last() {
        Some(Output::StopRecording { call: key, reason }) => {
            assert_eq!(*key, call.key);
            assert_eq!(*reason, StopReason::CallEnded);
        }
        other => panic!("{other:?}"),
    }
}

/// A recorder that becomes ready after the recording was stopped, or after the call ended,
/// gets no tap attached.
#[test]
fn a_late_ready_recorder_gets_no_tap() {
    let mut sim = record_sim(53);
    let mut call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*8");
    sim.dial(call.key, Leg::A, "*7");
    sim.input(Input::RecordingReady {
        call: call.key,
        tap: null_tap(),
    });
    sim.hang_up(Side::Phone, &mut call);
    sim.input(Input::RecordingReady {
        call: call.key,
        tap: null_tap(),
    });
    assert!(
        sim.media.log().taps.iter().all(|(_, attached)| !attached),
        "{:?}",
        sim.media.log().taps
    );
}

/// A recording that ended on its own (time limit, write error) lets the next toggle start a
/// new one.
#[test]
fn after_a_recording_ends_by_itself_toggle_starts_a_new_one() {
    let mut sim = record_sim(54);
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*9");
    sim.input(Input::RecordingEnded { call: call.key });
    sim.dial(call.key, Leg::A, "*9");
    let starts = sim
        .recordings
        .iter()
        .filter(|o| matches!(o, Output::StartRecording { .. }))
        .count();
    assert_eq!(starts, 2);
}

/// The API's channel action runs a `record_call` node without any digit.
#[test]
fn run_node_starts_a_recording_without_digits() {
    let mut sim = Sim::new(55);
    let call = sim.answered_call();
    let call_id = call.a_invite.call_id().unwrap().to_string();
    sim.input(Input::RunNode {
        call_id,
        node: json!({"module": "record_call", "data": {"action": "start"}}),
    });
    match sim.recordings.as_slice() {
        [Output::StartRecording { info, .. }] => {
            assert_eq!((info.started_by.as_str(), info.leg), ("api", None))
        }
        other => panic!("{other:?}"),
    }
}

/// `record_on_answer` on a ringing call (a channel action before the answer): nothing starts
/// until the PBX answers, then one StartRecording with the answer's codecs. Without the flag
/// the recording starts at once.
#[test]
fn record_on_answer_waits_for_the_answer() {
    use super::sip::ANSWER;
    let mut sim = Sim::new(56);
    let (a_invite, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 180, None);
    sim.expect(Side::Phone, resp(180, "INVITE"));
    let call_id = a_invite.call_id().unwrap().to_string();
    sim.input(Input::RunNode {
        call_id,
        node: json!({"module": "record_call",
                     "data": {"action": "start", "record_on_answer": true, "record_sample_rate": 16000}}),
    });
    assert!(sim.recordings.is_empty(), "nothing before the answer");
    assert_eq!(
        sim.events_of("recording_deferred"),
        [CallEvent::RecordingDeferred]
    );
    sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    sim.expect(Side::Phone, resp(200, "INVITE"));
    match sim.recordings.as_slice() {
        [Output::StartRecording { info, .. }] => {
            assert_eq!(info.sample_rate, 16000);
            assert!(info.codecs.audio_codec(Leg::B).is_some(), "{info:?}");
        }
        other => panic!("{other:?}"),
    }
    // A second 2xx (a retransmission) starts nothing more.
    sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    sim.run_for(Duration::from_millis(200));
    assert_eq!(sim.recordings.len(), 1);
}

/// A deferred recording that is stopped before the answer never starts.
#[test]
fn a_deferred_recording_stopped_before_the_answer_never_starts() {
    use super::sip::ANSWER;
    let mut sim = Sim::new(57);
    let (a_invite, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 180, None);
    sim.expect(Side::Phone, resp(180, "INVITE"));
    let call_id = a_invite.call_id().unwrap().to_string();
    for action in ["start", "stop"] {
        sim.input(Input::RunNode {
            call_id: call_id.clone(),
            node: json!({"module": "record_call",
                         "data": {"action": action, "record_on_answer": true}}),
        });
    }
    sim.pbx_answers(&b_invite, 200, Some(ANSWER));
    sim.expect(Side::Phone, resp(200, "INVITE"));
    assert!(sim.recordings.is_empty(), "{:?}", sim.recordings);
}

/// A deferred recording on a call cancelled before the answer asks for nothing at the end.
#[test]
fn a_deferred_recording_of_a_call_never_answered_asks_for_nothing() {
    let mut sim = Sim::new(60);
    let (a_invite, b_invite) = sim.call_reaches_pbx();
    sim.pbx_answers(&b_invite, 180, None);
    sim.expect(Side::Phone, resp(180, "INVITE"));
    let call_id = a_invite.call_id().unwrap().to_string();
    sim.input(Input::RunNode {
        call_id,
        node: json!({"module": "record_call", "data": {"action": "start", "record_on_answer": true}}),
    });
    sim.pbx_answers(&b_invite, 486, None);
    sim.run_for(Duration::from_secs(1));
    assert!(sim.recordings.is_empty(), "{:?}", sim.recordings);
    assert_eq!(sim.events_of("recording_deferred").len(), 1);
    assert_eq!(sim.events_of("call_rejected").len(), 1);
}

/// `record_on_answer` on an answered call starts at once.
#[test]
fn record_on_answer_on_an_answered_call_starts_at_once() {
    let mut sim = Sim::new(58);
    let call = sim.answered_call();
    let call_id = call.a_invite.call_id().unwrap().to_string();
    sim.input(Input::RunNode {
        call_id,
        node: json!({"module": "record_call", "data": {"action": "start", "record_on_answer": true}}),
    });
    assert!(matches!(
        sim.recordings.as_slice(),
        [Output::StartRecording { .. }]
    ));
    assert!(sim.events_of("recording_deferred").is_empty());
}

/// `mask` and `unmask` mask the dialing leg (Kazoo's dtmf_leg) of the running recording; with
/// no recording they go on with `success` and say so in their event.
#[test]
fn mask_and_unmask_reach_the_recorder_of_the_dialing_leg() {
    let mut sim = Sim::with(SimConfig {
        seed: 59,
        metaflows: Some(json!({
            "numbers": {
                "8": {"module": "record_call", "data": {"action": "start"}},
                "5": {"module": "record_call", "data": {"action": "mask"}},
                "6": {"module": "record_call", "data": {"action": "unmask"}}
            }
        })),
        ..SimConfig::default()
    });
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*5");
    assert!(sim.recordings.is_empty(), "nothing to mask");
    sim.dial(call.key, Leg::A, "*8");
    sim.input(Input::RecordingReady {
        call: call.key,
        tap: null_tap(),
    });
    sim.dial(call.key, Leg::A, "*5");
    sim.dial(call.key, Leg::A, "*6");
    match sim.recordings.as_slice() {
        [
            Output::StartRecording { .. },
            Output::MaskRecording {
                call: k1,
                leg: Leg::A,
                masked: true,
            },
            Output::MaskRecording {
                call: k2,
                leg: Leg::A,
                masked: false,
            },
        ] => assert_eq!((*k1, *k2), (call.key, call.key)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        sim.events_of("recording_masked"),
        [
            CallEvent::RecordingMasked {
                leg: Leg::A,
                recording: false
            },
            CallEvent::RecordingMasked {
                leg: Leg::A,
                recording: true
            }
        ]
    );
    assert_eq!(
        sim.events_of("recording_unmasked"),
        [CallEvent::RecordingUnmasked {
            leg: Leg::A,
            recording: true
        }]
    );
    let outcomes: Vec<CallEvent> = sim.events_of("module_outcome");
    assert!(
        outcomes
            .iter()
            .all(|e| matches!(e, CallEvent::ModuleOutcome { outcome, .. } if outcome == "success")),
        "{outcomes:?}"
    );
}
