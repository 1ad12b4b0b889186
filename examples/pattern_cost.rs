//! Measures what metaflow `patterns` cost to load: parses DOCS metaflow objects of 100 patterns
//! of one shape, as the directory does at start-up, and prints the time taken and the peak
//! resident memory. Used to choose the limits in `metaflow::limits` (docs/DECISIONS.md).
//!
//! `cargo run --release --example pattern_cost -- SHAPE DOCS`, SHAPE one of `small`
//! (`^N(\d{2,4})$`), `wide` (`^N(\d{1,20})#$`) or `issue` (`^(\d{1,9})*N(\w+\d{3}){1,5}$`).

use std::time::Instant;

use metaflow_proxy::metaflow::limits::MAX_PATTERNS_PER_DOCUMENT;
use metaflow_proxy::metaflow::parse_metaflows;
use serde_json::{Map, Value, json};

/// Peak resident set size of this process in KiB (`VmHWM`), 0 when unknown.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let shape = args.get(1).map_or("small", String::as_str);
    let docs: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1);
    let started = Instant::now();
    let (mut loaded, mut refused) = (0usize, 0usize);
    for doc in 0..docs {
        let patterns: Map<String, Value> = (0..MAX_PATTERNS_PER_DOCUMENT)
            .map(|index| {
                let code = doc * MAX_PATTERNS_PER_DOCUMENT + index;
                let pattern = match shape {
                    "wide" => format!("^{code}(\\d{{1,20}})#$"),
                    "issue" => format!("^(\\d{{1,9}})*{code}(\\w+\\d{{3}}){{1,5}}$"),
                    _ => format!("^{code}(\\d{{2,4}})$"),
                };
                (pattern, json!({"module": "hangup"}))
            })
            .collect();
        match parse_metaflows(&json!({ "patterns": patterns })) {
            Ok(flows) => {
                loaded += flows.patterns.len();
                std::mem::forget(flows); // kept, as the directory keeps them
            }
            Err(problems) => refused += problems.len(),
        }
    }
    println!(
        "shape={shape} docs={docs} patterns_loaded={loaded} patterns_refused={refused} \
         time={:.3}s peak_rss={}KiB",
        started.elapsed().as_secs_f64(),
        peak_rss_kib()
    );
}
