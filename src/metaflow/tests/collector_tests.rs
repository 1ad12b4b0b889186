use serde_json::json;

use super::{Clock, flows, match_parts, press};
use crate::base::Leg;
use crate::metaflow::{Collector, Decision, RelayVerdict};

/// Kazoo's seed example plus a record code: the unanchored pattern keeps every code waiting.
fn seed_flows() -> Collector {
    let flows = flows(json!({
        "numbers": {"9": {"module": "record_call"}, "21": {"module": "hangup"}},
        "patterns": {"2(\\d+)": {"module": "transfer", "data": {"takeback_dtmf": "*1"}}}
    }));
    Collector::new(flows, Leg::A)
}

#[test]
fn idle_digits_pass_untouched() {
    let clock = Clock::new();
    let mut collector = seed_flows();
    let outcome = collector.on_digit(Leg::A, '9', clock.at(0));
    assert_eq!(outcome.relay, RelayVerdict::Relay);
    assert!(outcome.decisions.is_empty());
    assert_eq!(collector.poll_timeout(), None);
    assert!(collector.on_timeout(clock.at(10_000)).is_empty());
}

#[test]
fn binding_digit_arms_and_starts_the_timer() {
    let clock = Clock::new();
    let mut collector = seed_flows();
    let outcome = collector.on_digit(Leg::A, '*', clock.at(100));
    assert_eq!(outcome.relay, RelayVerdict::Relay);
    assert_eq!(outcome.decisions, vec![Decision::Armed { leg: Leg::A }]);
    assert_eq!(collector.poll_timeout(), Some(clock.at(900)));
}

#[test]
fn each_digit_restarts_the_timer() {
    let clock = Clock::new();
    let mut collector = seed_flows();
    press(&mut collector, &clock, Leg::A, "*9", 0, 500);
    assert_eq!(collector.poll_timeout(), Some(clock.at(1300)));
    assert!(collector.on_timeout(clock.at(1299)).is_empty());
    let decisions = collector.on_timeout(clock.at(1300));
    assert_eq!(decisions.len(), 1);
    assert_eq!(
        match_parts(&decisions[0]),
        (Leg::A, "9", "9", vec![], false)
    );
    assert_eq!(collector.poll_timeout(), None);
}

#[test]
fn numbers_win_over_patterns() {
    let clock = Clock::new();
    let mut collector = seed_flows();
    press(&mut collector, &clock, Leg::A, "*21", 0, 100);
    let decisions = collector.on_timeout(clock.at(1000));
    let (_, collected, matched, captures, _) = match_parts(&decisions[0]);
    assert_eq!((collected, matched), ("21", "21"));
    assert!(captures.is_empty());
}

#[test]
fn patterns_are_tried_in_json_order() {
    let clock = Clock::new();
    for (first, second) in [("^2(\\d+)$", "2(\\d)(\\d)"), ("2(\\d)(\\d)", "^2(\\d+)$")] {
        let mut patterns = serde_json::Map::new();
        patterns.insert(first.into(), json!({"module": "transfer"}));
        patterns.insert(second.into(), json!({"module": "hangup"}));
        let mut collector = Collector::new(flows(json!({"patterns": patterns})), Leg::A);
        press(&mut collector, &clock, Leg::A, "*21234", 0, 100);
        let decisions = collector.on_timeout(clock.at(5000));
        let (_, _, matched, captures, _) = match_parts(&decisions[0]);
        assert_eq!(matched, first);
        let expected = if first.starts_with('^') {
            vec!["1234"]
        } else {
            vec!["1", "2"]
        };
        assert_eq!(captures, expected);
    }
}

#[test]
fn unset_groups_capture_as_empty_strings() {
    let clock = Clock::new();
    let flows = flows(json!({"patterns": {"3(\\d)?(#)?": {"module": "hangup"}}}));
    let mut collector = Collector::new(flows, Leg::A);
    press(&mut collector, &clock, Leg::A, "*3#", 0, 100);
    let decisions = collector.on_timeout(clock.at(5000));
    assert_eq!(match_parts(&decisions[0]).3, vec!["", "#"]);
}

#[test]
fn binding_digit_and_repeats_are_collected_while_armed() {
    let clock = Clock::new();
    let flows = flows(json!({"numbers": {"99": {"module": "hangup"}},
                             "patterns": {"\\*(\\d+)": {"module": "transfer"}}}));
    let mut collector = Collector::new(flows, Leg::A);
    press(&mut collector, &clock, Leg::A, "**7", 0, 100);
    let decisions = collector.on_timeout(clock.at(5000));
    assert_eq!(match_parts(&decisions[0]).1, "*7");
    let decisions = press(&mut collector, &clock, Leg::A, "*99", 6000, 100);
    let decisions = [decisions, collector.on_timeout(clock.at(9000))].concat();
    let matched: Vec<_> = decisions
        .iter()
        .filter(|d| matches!(d, Decision::Match { .. }))
        .collect();
    assert_eq!(match_parts(matched[0]).1, "99");
}

#[test]
fn no_match_disarms_the_leg() {
    let clock = Clock::new();
    let mut collector = seed_flows();
    press(&mut collector, &clock, Leg::A, "*55", 0, 100);
    let decisions = collector.on_timeout(clock.at(2000));
    assert_eq!(
        decisions,
        vec![Decision::NoMatch {
            leg: Leg::A,
            collected: "55".into()
        }]
    );
    let outcome = collector.on_digit(Leg::A, '9', clock.at(3000));
    assert!(outcome.decisions.is_empty());
    assert_eq!(collector.poll_timeout(), None);
}

fn armed_legs(listen_on: &str, owner: Leg) -> Vec<Leg> {
    let clock = Clock::new();
    let flows = flows(json!({"listen_on": listen_on,
                             "patterns": {"2(\\d+)": {"module": "transfer"}}}));
    let mut collector = Collector::new(flows, owner);
    let mut armed = Vec::new();
    for leg in [Leg::A, Leg::B] {
        for decision in collector.on_digit(leg, '*', clock.at(0)).decisions {
            if let Decision::Armed { leg } = decision {
                armed.push(leg);
            }
        }
    }
    armed
}

#[test]
fn listen_on_is_relative_to_the_owner_leg() {
    assert_eq!(armed_legs("self", Leg::A), vec![Leg::A]);
    assert_eq!(armed_legs("self", Leg::B), vec![Leg::B]);
    assert_eq!(armed_legs("peer", Leg::A), vec![Leg::B]);
    assert_eq!(armed_legs("peer", Leg::B), vec![Leg::A]);
    assert_eq!(armed_legs("both", Leg::A), vec![Leg::A, Leg::B]);
}

#[test]
fn legs_collect_independently() {
    let clock = Clock::new();
    let flows = flows(json!({"listen_on": "both",
                             "patterns": {"2(\\d+)": {"module": "transfer"}}}));
    let mut collector = Collector::new(flows, Leg::A);
    collector.on_digit(Leg::A, '*', clock.at(0));
    collector.on_digit(Leg::B, '*', clock.at(100));
    collector.on_digit(Leg::A, '2', clock.at(200));
    collector.on_digit(Leg::B, '2', clock.at(300));
    collector.on_digit(Leg::A, '5', clock.at(400));
    collector.on_digit(Leg::B, '7', clock.at(500));
    assert_eq!(collector.poll_timeout(), Some(clock.at(1200)));
    let first = collector.on_timeout(clock.at(1200));
    assert_eq!(
        match_parts(&first[0]),
        (Leg::A, "25", "2(\\d+)", vec!["5"], false)
    );
    assert_eq!(collector.poll_timeout(), Some(clock.at(1300)));
    let second = collector.on_timeout(clock.at(1300));
    assert_eq!(
        match_parts(&second[0]),
        (Leg::B, "27", "2(\\d+)", vec!["7"], false)
    );
}

#[test]
fn an_unlistened_leg_never_arms_or_holds() {
    let clock = Clock::new();
    let flows = flows(json!({"suppress_dtmf": true,
                             "patterns": {"2(\\d+)": {"module": "transfer"}}}));
    let mut collector = Collector::new(flows, Leg::A);
    let outcome = collector.on_digit(Leg::B, '*', clock.at(0));
    assert_eq!(outcome.relay, RelayVerdict::Relay);
    assert!(outcome.decisions.is_empty());
}

#[test]
fn a_missed_timer_is_handled_before_the_next_digit() {
    let clock = Clock::new();
    let mut collector = seed_flows();
    press(&mut collector, &clock, Leg::A, "*9", 0, 100);
    let outcome = collector.on_digit(Leg::A, '*', clock.at(5000));
    assert_eq!(match_parts(&outcome.decisions[0]).1, "9");
    assert_eq!(outcome.decisions[1], Decision::Armed { leg: Leg::A });
}

#[test]
fn an_endless_code_is_decided_at_the_length_cap() {
    let clock = Clock::new();
    let mut collector = seed_flows();
    let digits = format!(
        "*2{}",
        "1".repeat(super::super::collector::MAX_COLLECTED_DIGITS)
    );
    let decisions = press(&mut collector, &clock, Leg::A, &digits, 0, 10);
    let matches: Vec<_> = decisions
        .iter()
        .filter(|d| matches!(d, Decision::Match { .. }))
        .collect();
    assert_eq!(matches.len(), 1);
    let (_, collected, _, _, early) = match_parts(matches[0]);
    assert_eq!(
        collected.len(),
        super::super::collector::MAX_COLLECTED_DIGITS
    );
    assert!(early);
}
