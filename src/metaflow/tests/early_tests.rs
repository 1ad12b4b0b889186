use serde_json::json;

use super::{Clock, flows, match_parts, press};
use crate::base::Leg;
use crate::metaflow::{Collector, Decision, RelayVerdict};

fn collector(document: serde_json::Value) -> Collector {
    Collector::new(flows(document), Leg::A)
}

#[test]
fn a_complete_number_acts_at_its_last_digit() {
    let clock = Clock::new();
    let mut collector = collector(json!({"numbers": {"9": {"module": "record_call"},
                                                     "2": {"module": "hangup"}}}));
    let decisions = press(&mut collector, &clock, Leg::A, "*9", 0, 100);
    assert_eq!(decisions[0], Decision::Armed { leg: Leg::A });
    assert_eq!(match_parts(&decisions[1]), (Leg::A, "9", "9", vec![], true));
    assert_eq!(collector.poll_timeout(), None);
}

#[test]
fn a_number_that_prefixes_a_longer_one_waits() {
    let clock = Clock::new();
    let document = json!({"numbers": {"1": {"module": "hangup"}, "12": {"module": "transfer"}}});
    let mut waiting = collector(document.clone());
    assert_eq!(press(&mut waiting, &clock, Leg::A, "*1", 0, 100).len(), 1);
    let decisions = waiting.on_timeout(clock.at(900));
    assert_eq!(
        match_parts(&decisions[0]),
        (Leg::A, "1", "1", vec![], false)
    );

    let mut longer = collector(document);
    let decisions = press(&mut longer, &clock, Leg::A, "*12", 0, 100);
    assert_eq!(
        match_parts(&decisions[1]),
        (Leg::A, "12", "12", vec![], true)
    );
}

#[test]
fn an_anchored_pattern_acts_at_its_last_digit() {
    let clock = Clock::new();
    let mut collector = collector(json!({"patterns": {"^2(\\d{4})$": {"module": "transfer"}}}));
    let decisions = press(&mut collector, &clock, Leg::A, "*2123", 0, 100);
    assert_eq!(decisions, vec![Decision::Armed { leg: Leg::A }]);
    let outcome = collector.on_digit(Leg::A, '4', clock.at(500));
    let (_, collected, _, captures, early) = match_parts(&outcome.decisions[0]);
    assert_eq!((collected, captures, early), ("21234", vec!["1234"], true));
}

#[test]
fn an_unanchored_pattern_waits_for_the_timeout() {
    let clock = Clock::new();
    let mut collector = collector(json!({"patterns": {"^2(\\d{4})": {"module": "transfer"}}}));
    let decisions = press(&mut collector, &clock, Leg::A, "*21234", 0, 100);
    assert_eq!(decisions.len(), 1);
    let decisions = collector.on_timeout(clock.at(1300));
    assert!(!match_parts(&decisions[0]).4);
}

#[test]
fn a_pattern_that_could_still_match_holds_back_a_number() {
    let clock = Clock::new();
    let mut collector = collector(json!({"numbers": {"9": {"module": "record_call"}},
                                         "patterns": {"2(\\d+)": {"module": "transfer"}}}));
    assert_eq!(press(&mut collector, &clock, Leg::A, "*9", 0, 100).len(), 1);
    assert_eq!(match_parts(&collector.on_timeout(clock.at(900))[0]).2, "9");
}

#[test]
fn a_dead_prefix_is_a_no_match_at_once_and_can_be_redialed() {
    let clock = Clock::new();
    let mut collector = collector(json!({"numbers": {"9": {"module": "record_call"}},
                                         "patterns": {"^2(\\d{2})$": {"module": "transfer"}}}));
    let decisions = press(&mut collector, &clock, Leg::A, "*5", 0, 100);
    assert_eq!(
        decisions[1],
        Decision::NoMatch {
            leg: Leg::A,
            collected: "5".into()
        }
    );
    let decisions = press(&mut collector, &clock, Leg::A, "*9", 200, 100);
    assert_eq!(match_parts(&decisions[1]), (Leg::A, "9", "9", vec![], true));
}

#[test]
fn a_pattern_the_prefix_check_cannot_analyse_means_waiting() {
    let clock = Clock::new();
    // A Unicode class has no DFA in the check's ASCII syntax: it must answer "could still match".
    let mut collector = collector(json!({"numbers": {"9": {"module": "record_call"}},
                                         "patterns": {"^7\\p{Greek}": {"module": "hangup"}}}));
    assert_eq!(press(&mut collector, &clock, Leg::A, "*9", 0, 100).len(), 1);
    assert!(!match_parts(&collector.on_timeout(clock.at(900))[0]).4);
}

#[test]
fn a_pcre_pattern_matches_at_the_timeout_with_its_captures() {
    let clock = Clock::new();
    // Look-ahead (Kazoo's patterns are PCRE): anything of three digits but 911, decided at the
    // timeout since the prefix check cannot reason about it.
    let mut collector = collector(json!({"patterns": {"^(?!911)(\\d{3})$": {"module": "hangup"}}}));
    assert_eq!(
        press(&mut collector, &clock, Leg::A, "*912", 0, 100).len(),
        1
    );
    let decisions = collector.on_timeout(clock.at(1200));
    assert_eq!(
        match_parts(&decisions[0]),
        (Leg::A, "912", "^(?!911)(\\d{3})$", vec!["912"], false)
    );
    assert_eq!(
        press(&mut collector, &clock, Leg::A, "*911", 2000, 100).len(),
        1
    );
    assert!(matches!(
        collector.on_timeout(clock.at(3200)).as_slice(),
        [Decision::NoMatch { .. }]
    ));
}

#[test]
fn suppression_holds_and_drops_a_matched_code() {
    let clock = Clock::new();
    let mut collector = collector(json!({"suppress_dtmf": true,
                                         "patterns": {"2(\\d+)": {"module": "transfer"}}}));
    assert_eq!(
        collector.on_digit(Leg::A, '1', clock.at(0)).relay,
        RelayVerdict::Relay
    );
    for (index, digit) in "*21234".chars().enumerate() {
        let outcome = collector.on_digit(Leg::A, digit, clock.at(100 + 100 * index as u64));
        assert_eq!(outcome.relay, RelayVerdict::Hold);
    }
    let decisions = collector.on_timeout(clock.at(2000));
    assert_eq!(decisions.len(), 1);
    assert_eq!(match_parts(&decisions[0]).3, vec!["1234"]);
}

#[test]
fn suppression_releases_digits_that_were_no_code() {
    let clock = Clock::new();
    let mut collector = collector(json!({"suppress_dtmf": true,
                                         "patterns": {"2(\\d+)": {"module": "transfer"}}}));
    press(&mut collector, &clock, Leg::A, "*55", 0, 100);
    let decisions = collector.on_timeout(clock.at(1000));
    assert_eq!(
        decisions,
        vec![
            Decision::NoMatch {
                leg: Leg::A,
                collected: "55".into()
            },
            Decision::Release {
                leg: Leg::A,
                digits: "*55".into()
            },
        ]
    );
    assert_eq!(
        collector.on_digit(Leg::A, '5', clock.at(2000)).relay,
        RelayVerdict::Relay
    );
}

#[test]
fn suppression_releases_an_early_no_match_at_the_digit() {
    let clock = Clock::new();
    let mut collector = collector(json!({"suppress_dtmf": true,
                                         "numbers": {"9": {"module": "record_call"}}}));
    collector.on_digit(Leg::A, '*', clock.at(0));
    let outcome = collector.on_digit(Leg::A, '4', clock.at(100));
    assert_eq!(outcome.relay, RelayVerdict::Hold);
    assert_eq!(
        outcome.decisions[1],
        Decision::Release {
            leg: Leg::A,
            digits: "*4".into()
        }
    );
}

#[test]
fn without_suppression_armed_digits_are_relayed() {
    let clock = Clock::new();
    let mut collector = collector(json!({"patterns": {"2(\\d+)": {"module": "transfer"}}}));
    for (index, digit) in "*21".chars().enumerate() {
        let outcome = collector.on_digit(Leg::A, digit, clock.at(100 * index as u64));
        assert_eq!(outcome.relay, RelayVerdict::Relay);
    }
    let decisions = collector.on_timeout(clock.at(1000));
    assert!(
        !decisions
            .iter()
            .any(|d| matches!(d, Decision::Release { .. }))
    );
}

#[test]
fn fast_rearm_restarts_a_code_at_the_binding_digit() {
    let clock = Clock::new();
    let document = json!({"numbers": {"9": {"module": "record_call"},
                                       "129": {"module": "hangup"}}});
    // Off (Kazoo's default): `*12*9` collects `12*9`, a dead prefix decided at once as no match.
    let mut plain = collector(document.clone());
    let decisions = press(&mut plain, &clock, Leg::A, "*12*9", 0, 100);
    assert!(
        matches!(decisions.last(), Some(Decision::NoMatch { collected, .. }) if collected == "12*")
    );
    // On: the second `*` starts over and `9` matches; right after arming `*` is collected as
    // without it (`**` collects `*`, here a dead prefix).
    let mut rearming = collector(document).with_fast_rearm(true);
    let decisions = press(&mut rearming, &clock, Leg::A, "*12*9", 0, 100);
    assert_eq!(
        match_parts(decisions.last().unwrap()),
        (Leg::A, "9", "9", vec![], true)
    );
    let decisions = press(&mut rearming, &clock, Leg::A, "**9", 2000, 100);
    assert!(
        matches!(decisions.last(), Some(Decision::NoMatch { collected, .. }) if collected == "*")
    );
}
