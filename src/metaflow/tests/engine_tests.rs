use serde_json::json;

use super::{Clock, flows, match_parts, press};
use crate::base::Leg;
use crate::metaflow::{Collector, Decision, MetaflowNode, module_run, next_node};

#[test]
fn seed_transfer_example_star_2_1234_transfers_to_1234() {
    let clock = Clock::new();
    let flows = flows(json!({"binding_digit": "*", "patterns": {"2(\\d+)": {
        "data": {"captures": ["no_match"], "takeback_dtmf": "*1", "transfer_type": "blind"},
        "module": "transfer"}}}));
    let mut collector = Collector::new(flows, Leg::A);
    press(&mut collector, &clock, Leg::A, "*21234", 0, 150);
    let decisions = collector.on_timeout(clock.at(2000));
    let run = module_run(&decisions[0], Leg::A).unwrap();
    assert_eq!(run.leg, Leg::A);
    assert_eq!(run.node.module, "transfer");
    assert_eq!(run.data["captures"], json!(["1234"]));
    assert_eq!(run.data["collected"], "21234");
    assert_eq!(run.data["dtmf_side"], "a");
    assert_eq!(run.data["dtmf_party"], "self");
    assert_eq!(run.data["takeback_dtmf"], "*1");
    assert_eq!(run.data["transfer_type"], "blind");
}

#[test]
fn seed_record_example_star_9_on_the_callee_leg() {
    let clock = Clock::new();
    // "a callee could setup a metaflow on their user doc ... press *9 to initiate a recording":
    // the callee's leg is the b-leg and owns the metaflow.
    let flows = flows(json!({"numbers": {"9": {"module": "record_call",
                                               "data": {"action": "start"}}}}));
    let mut collector = Collector::new(flows, Leg::B);
    assert!(press(&mut collector, &clock, Leg::A, "*9", 0, 100).is_empty());
    let decisions = press(&mut collector, &clock, Leg::B, "*9", 200, 100);
    assert_eq!(match_parts(&decisions[1]), (Leg::B, "9", "9", vec![], true));
    let run = module_run(&decisions[1], Leg::B).unwrap();
    assert_eq!(run.node.module, "record_call");
    assert_eq!(run.data["action"], "start");
    assert_eq!(run.data["dtmf_side"], "b");
    assert_eq!(run.data["dtmf_party"], "self");
    assert_eq!(run.data["captures"], json!([]));
}

#[test]
fn a_peer_code_is_reported_as_the_peer_party() {
    let decision = Decision::Match {
        leg: Leg::B,
        collected: "9".into(),
        node: flows(json!({"numbers": {"9": {"module": "hangup"}}})).numbers[0]
            .1
            .clone(),
        captures: vec![],
        matched: "9".into(),
        early: false,
    };
    let run = module_run(&decision, Leg::A).unwrap();
    assert_eq!(
        (
            run.data["dtmf_side"].as_str(),
            run.data["dtmf_party"].as_str()
        ),
        (Some("b"), Some("peer"))
    );
}

#[test]
fn only_matches_run_modules() {
    for decision in [
        Decision::Armed { leg: Leg::A },
        Decision::NoMatch {
            leg: Leg::A,
            collected: "5".into(),
        },
        Decision::Release {
            leg: Leg::A,
            digits: "*5".into(),
        },
    ] {
        assert_eq!(module_run(&decision, Leg::A), None);
    }
}

fn tree() -> MetaflowNode {
    let flows = flows(json!({"numbers": {"1": {"module": "transfer", "children": {
        "failure": {"module": "record_call", "data": {"action": "stop"}},
        "_": {"module": "hangup"}
    }}}}));
    flows.numbers[0].1.clone()
}

#[test]
fn children_are_chosen_by_outcome_then_fallback() {
    let node = tree();
    assert_eq!(next_node(&node, "failure").unwrap().module, "record_call");
    assert_eq!(next_node(&node, "success").unwrap().module, "hangup");
    let leaf = next_node(&node, "success").unwrap();
    assert_eq!(next_node(leaf, "success"), None);
}

#[test]
fn a_child_run_keeps_what_the_code_carried() {
    let decision = Decision::Match {
        leg: Leg::A,
        collected: "1".into(),
        node: tree(),
        captures: vec!["x".into()],
        matched: "1".into(),
        early: true,
    };
    let run = module_run(&decision, Leg::A).unwrap();
    let child = run.next("failure").unwrap();
    assert_eq!(child.node.module, "record_call");
    assert_eq!(child.data["action"], "stop");
    assert_eq!(child.data["captures"], json!(["x"]));
    assert_eq!(child.data["collected"], "1");
    assert_eq!(child.leg, Leg::A);
    assert!(child.next("anything").is_none());
}
