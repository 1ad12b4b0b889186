//! Cost of recognising a code: six `on_digit` calls for `*21234` plus the timeout match, against
//! a metaflow of 10 numbers and 5 patterns (the transfer pattern last but one).
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)] // bench code: criterion macros, panics are failed runs

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use metaflow_proxy::base::Leg;
use metaflow_proxy::metaflow::{Collector, Decision, Metaflows, parse_metaflows};
use serde_json::json;

fn metaflows() -> Arc<Metaflows> {
    let document = json!({
        "numbers": {
            "1": {"module": "hangup"}, "9": {"module": "record_call"},
            "31": {"module": "transfer", "data": {"target": "100"}},
            "32": {"module": "transfer", "data": {"target": "101"}},
            "33": {"module": "transfer", "data": {"target": "102"}},
            "41": {"module": "record_call", "data": {"action": "start"}},
            "42": {"module": "record_call", "data": {"action": "stop"}},
            "50": {"module": "hangup"}, "51": {"module": "hangup"}, "52": {"module": "hangup"}
        },
        "patterns": {
            "^6(\\d{3})$": {"module": "transfer"},
            "^7(\\d+)#$": {"module": "transfer"},
            "^8([0-9]{2})$": {"module": "record_call"},
            "2(\\d+)": {"module": "transfer", "data": {"takeback_dtmf": "*1"}},
            "^0(\\d)$": {"module": "hangup"}
        }
    });
    let flows = match parse_metaflows(&document) {
        Ok(flows) => flows,
        Err(problems) => panic!("bench metaflows invalid: {problems:?}"),
    };
    Arc::new(flows)
}

fn dial(flows: &Arc<Metaflows>, start: Instant) -> usize {
    let mut collector = Collector::new(Arc::clone(flows), Leg::A);
    let mut decisions = 0;
    for (index, digit) in "*21234".chars().enumerate() {
        let now = start + Duration::from_millis(100 * index as u64);
        decisions += collector.on_digit(Leg::A, digit, now).decisions.len();
    }
    let deadline = collector.poll_timeout().unwrap_or(start);
    let decided = collector.on_timeout(deadline);
    assert!(matches!(decided.first(), Some(Decision::Match { .. })));
    decisions + decided.len()
}

fn bench_match(criterion: &mut Criterion) {
    let flows = metaflows();
    let start = Instant::now();
    criterion.bench_function("metaflow_star_21234_digits_and_timeout", |bencher| {
        bencher.iter(|| dial(black_box(&flows), start))
    });
}

criterion_group!(benches, bench_match);
criterion_main!(benches);
