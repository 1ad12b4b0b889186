//! The media modules (`hold`, `resume`, `play`, `tts`, `say`, `break`, `audio_level`) as the
//! core runs them: which sounds it asks the shell for, what it tells the relay, and which
//! outcome each module reaches when its sounds end, fail or are interrupted.

use serde_json::json;

use crate::audio::SoundRef;
use crate::base::{CallEvent, Gain, Leg, PlaybackEnd};

use super::super::Input;
use super::harness::{Sim, SimConfig};

/// A simulation whose calls carry one code per media module.
fn media_sim(seed: u64) -> Sim {
    Sim::with(SimConfig {
        seed,
        metaflows: Some(json!({
            "numbers": {
                "1": {"module": "hold", "data": {"moh_bleg": "tone_stream://%(1000,0,440)"}},
                "2": {"module": "resume"},
                "3": {"module": "break"},
                "4": {"module": "play", "data": {"id": "greeting", "leg": "peer"}},
                "5": {"module": "tts", "data": {"text": "hello there"}},
                "6": {"module": "audio_level", "data": {"mode": "read", "level": -2}},
                "7": {"module": "audio_level", "data": {"action": "stop", "mode": "read"}},
                "8": {"module": "say", "data": {"text": "1234", "type": "number"},
                      "children": {"failure": {"module": "hangup"}}}
            }
        })),
        ..SimConfig::default()
    })
}

/// The outcomes of every finished module, in order.
fn outcomes(sim: &Sim) -> Vec<(String, String)> {
    sim.events
        .iter()
        .filter_map(|(_, e)| match e {
            CallEvent::ModuleOutcome { module, outcome } => Some((module.clone(), outcome.clone())),
            _ => None,
        })
        .collect()
}

/// Hands the core the clip of every sound it asked for and not yet got.
fn deliver_sounds(sim: &mut Sim, from: usize) {
    let asked: Vec<_> = sim.sounds[from..].to_vec();
    for (call, id, _) in asked {
        let clip = crate::audio::Clip::new(vec![0; 160]);
        sim.input(Input::SoundReady {
            call,
            id,
            result: Ok(clip),
        });
    }
}

#[test]
fn hold_plays_music_to_both_parties_and_the_unhold_key_reconnects_them() {
    let mut sim = media_sim(1);
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*1");
    assert_eq!(
        sim.media.log().holds,
        [(call.key, Leg::B, true), (call.key, Leg::A, true)]
    );
    let asked: Vec<_> = sim.sounds.iter().map(|(_, _, s)| s.clone()).collect();
    assert_eq!(
        asked,
        [
            SoundRef::Tone("tone_stream://%(1000,0,440)".into()),
            SoundRef::DefaultMoh
        ],
        "the held party hears moh_bleg, the holder the built-in music"
    );
    assert!(
        sim.media.log().plays.is_empty(),
        "nothing plays before its clip exists"
    );
    deliver_sounds(&mut sim, 0);
    let plays = sim.media.log().plays.clone();
    assert_eq!(plays.len(), 2);
    assert!(plays.iter().all(|(_, _, _, looped)| *looped), "music loops");
    assert!(outcomes(&sim).is_empty(), "hold waits for its unhold key");
    // Another key changes nothing; the unhold key from the holder reconnects.
    sim.dial(call.key, Leg::B, "1");
    assert!(outcomes(&sim).is_empty(), "only the holder unholds");
    sim.dial(call.key, Leg::A, "1");
    let log = sim.media.log();
    assert!(
        log.holds
            .ends_with(&[(call.key, Leg::A, false), (call.key, Leg::B, false)])
    );
    assert_eq!(log.stops.len(), 2, "both musics stop");
    drop(log);
    assert_eq!(
        outcomes(&sim),
        [("hold".to_string(), "success".to_string())]
    );
}

#[test]
fn resume_ends_a_hold_from_another_code() {
    let mut sim = media_sim(2);
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*1");
    deliver_sounds(&mut sim, 0);
    sim.dial(call.key, Leg::A, "*2");
    let log = sim.media.log();
    assert!(log.holds.contains(&(call.key, Leg::A, false)));
    assert!(log.holds.contains(&(call.key, Leg::B, false)));
    drop(log);
    let got = outcomes(&sim);
    assert!(
        got.contains(&("resume".into(), "success".into())),
        "{got:?}"
    );
    assert!(got.contains(&("hold".into(), "success".into())), "{got:?}");
}

#[test]
fn play_finishes_when_its_sound_ends_and_fails_when_there_is_none() {
    let mut sim = media_sim(3);
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*4");
    let (key, id, sound) = sim.sounds[0].clone();
    assert_eq!(key, call.key);
    assert!(matches!(sound, SoundRef::Media { ref id, .. } if id == "greeting"));
    deliver_sounds(&mut sim, 0);
    assert_eq!(sim.media.log().plays[0].1, Leg::B, "leg peer of the a-leg");
    let format = sim.media.log().play_formats[0];
    assert_eq!(
        (format.preferred, format.ptime_ms, format.map.pcma),
        (Some(8), 20, Some(8)),
        "the PBX's answer: PCMA, no a=ptime"
    );
    sim.input(Input::PlaybackEnded {
        call: call.key,
        id,
        end: PlaybackEnd::Finished,
    });
    assert_eq!(
        outcomes(&sim),
        [("play".to_string(), "success".to_string())]
    );
    // Again, but the media does not exist: failure, and the event says why.
    sim.dial(call.key, Leg::A, "*4");
    let (_, id, _) = sim.sounds[1].clone();
    sim.input(Input::SoundReady {
        call: call.key,
        id,
        result: Err("no media greeting".into()),
    });
    assert_eq!(
        outcomes(&sim)[1],
        ("play".to_string(), "failure".to_string())
    );
    let failed = sim.events.iter().any(|(_, e)| {
        matches!(e, CallEvent::Playback { state: "failed", reason: Some(r), .. } if r.contains("greeting"))
    });
    assert!(failed, "{:?}", sim.events);
}

#[test]
fn a_terminator_key_stops_tts_and_break_stops_what_the_dialing_leg_hears() {
    let mut sim = media_sim(4);
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*5");
    assert!(
        matches!(&sim.sounds[0].2, SoundRef::Tts(t) if t.engine == "flite" && t.voice == "female")
    );
    deliver_sounds(&mut sim, 0);
    assert_eq!(
        sim.media.log().plays[0].1,
        Leg::A,
        "tts speaks to its own leg by default"
    );
    sim.dial(call.key, Leg::A, "#");
    assert_eq!(outcomes(&sim), [("tts".to_string(), "success".to_string())]);
    assert_eq!(sim.media.log().stops, [(call.key, Leg::A, None)]);
    // tts again, then `break`: the sound stops, both modules succeed.
    sim.dial(call.key, Leg::A, "*5");
    deliver_sounds(&mut sim, 1);
    sim.dial(call.key, Leg::A, "*3");
    let got = outcomes(&sim);
    assert!(got.contains(&("break".into(), "success".into())), "{got:?}");
    assert_eq!(got.iter().filter(|(m, _)| m == "tts").count(), 2, "{got:?}");
}

#[test]
fn audio_level_changes_one_direction_and_stop_restores_it() {
    let mut sim = media_sim(5);
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*6");
    sim.dial(call.key, Leg::A, "*7");
    assert_eq!(
        sim.media.log().gains,
        [
            (call.key, Leg::B, Gain::Factor(0.6)),
            (call.key, Leg::B, Gain::Unity)
        ],
        "`read` is what the dialing party says, as the other hears it"
    );
}

#[test]
fn a_say_that_cannot_play_follows_its_failure_child() {
    let mut sim = media_sim(6);
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*8");
    assert!(
        matches!(&sim.sounds[0].2, SoundRef::Say(s) if s.kind == "number" && s.method == "pronounced")
    );
    let (_, id, _) = sim.sounds[0].clone();
    sim.input(Input::SoundReady {
        call: call.key,
        id,
        result: Err("speech engine missing".into()),
    });
    let got = outcomes(&sim);
    assert_eq!(got[0], ("say".to_string(), "failure".to_string()));
    let terminated = sim
        .events
        .iter()
        .any(|(_, e)| matches!(e, CallEvent::CallTerminated { .. }));
    assert!(terminated, "the failure child hung up: {:?}", sim.events);
}

#[test]
fn a_sound_starts_at_the_packet_time_the_leg_asked_for() {
    let mut sim = media_sim(7);
    let answer = super::sip::ANSWER.replace("a=rtpmap:96", "a=ptime:30\r\na=rtpmap:96");
    let key = sim.answered_with(super::sip::OFFER, &answer);
    sim.dial(key, Leg::A, "*4");
    deliver_sounds(&mut sim, 0);
    assert_eq!(sim.media.log().play_formats[0].ptime_ms, 30);
    assert!(
        sim.media.log().audio_streams.contains(&(key, 0)),
        "the relay is told which stream is the audio one"
    );
}

/// A sound played over the held party's music, or a second hold, does not end the first hold:
/// the call stays held until the unhold key, which still works.
#[test]
fn a_sound_over_the_music_does_not_end_the_hold() {
    let mut sim = media_sim(8);
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*1");
    deliver_sounds(&mut sim, 0);
    sim.dial(call.key, Leg::A, "*4");
    deliver_sounds(&mut sim, 2);
    assert!(
        outcomes(&sim).iter().all(|(m, _)| m != "hold"),
        "{:?}",
        outcomes(&sim)
    );
    let (_, play_id, _) = sim.sounds[2].clone();
    sim.input(Input::PlaybackEnded {
        call: call.key,
        id: play_id,
        end: PlaybackEnd::Finished,
    });
    assert_eq!(
        outcomes(&sim),
        [("play".to_string(), "success".to_string())]
    );
    assert_eq!(
        sim.media.log().holds.last(),
        Some(&(call.key, Leg::A, true))
    );
    sim.dial(call.key, Leg::A, "1");
    assert_eq!(
        outcomes(&sim)[1],
        ("hold".to_string(), "success".to_string())
    );
    assert!(
        sim.media
            .log()
            .holds
            .ends_with(&[(call.key, Leg::A, false), (call.key, Leg::B, false)])
    );
}

/// `silence` as the music still gives the held party a stream (of silence), so `resume` ends
/// the hold through it.
#[test]
fn silence_is_a_stream_of_silence_that_resume_stops() {
    let mut sim = Sim::with(SimConfig {
        seed: 9,
        metaflows: Some(json!({"numbers": {
            "1": {"module": "hold", "data": {"moh_aleg": "silence"}},
            "2": {"module": "resume"}
        }})),
        ..SimConfig::default()
    });
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*1");
    let asked: Vec<_> = sim.sounds.iter().map(|(_, _, s)| s.clone()).collect();
    assert_eq!(asked, [SoundRef::Silence, SoundRef::Silence]);
    deliver_sounds(&mut sim, 0);
    sim.dial(call.key, Leg::A, "*2");
    let got = outcomes(&sim);
    assert!(got.contains(&("hold".into(), "success".into())), "{got:?}");
}

/// A metaflow cannot play another account's upload.
#[test]
fn another_accounts_media_is_refused() {
    let mut sim = Sim::with(SimConfig {
        seed: 10,
        metaflows: Some(json!({"numbers": {
            "4": {"module": "play", "data": {"id": "/someone-else/greeting"}}
        }})),
        ..SimConfig::default()
    });
    let call = sim.answered_call();
    sim.dial(call.key, Leg::A, "*4");
    assert!(sim.sounds.is_empty(), "nothing is made for it");
    assert_eq!(
        outcomes(&sim),
        [("play".to_string(), "failure".to_string())]
    );
}
