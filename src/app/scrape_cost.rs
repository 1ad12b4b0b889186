//! How much one `/metrics` scrape costs, with the media families, the feature families and the
//! process collector all registered as in the running proxy (here because only the shell sees
//! every part). A measurement, not a check.

use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// Scrape cost, for docs/DECISIONS.md: `cargo test --release --lib scrape_cost -- --ignored
/// --nocapture`. Prints microseconds per rendering of each part.
#[test]
#[ignore = "a measurement, not a check"]
fn scrape_cost() {
    use prometheus_client::encoding::prometheus_text::encode;
    use prometheus_client::registry::Registry;

    let metrics = Metrics::new();
    metrics.add_source(std::sync::Arc::new(crate::media::MediaStats::default()));
    let feature = metrics.feature();
    for route in 0..20 {
        for status in [200, 401, 404] {
            feature.api_request(&format!("/v2/route/{route}"), "GET", status);
        }
    }
    for module in ["hangup", "transfer", "record_call"] {
        feature.module_run(module, "success");
        feature.matched(module, true);
    }
    for method in ["INVITE", "BYE", "REFER", "NOTIFY", "OPTIONS"] {
        metrics.record_sip_transaction(method, Duration::from_millis(20));
    }
    let rounds = 2000u32;
    let process_only = {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(crate::metrics::process::ProcessCollector));
        registry
    };
    let time = |what: &str, f: &dyn Fn() -> usize| {
        let mut bytes = 0;
        let start = Instant::now();
        for _ in 0..rounds {
            bytes = std::hint::black_box(f());
        }
        let each = start.elapsed() / rounds;
        println!("{what}: {:.1} us, {bytes} bytes", each.as_secs_f64() * 1e6);
    };
    time("whole scrape", &|| metrics.render().len());
    time("registry (feature families and process)", &|| {
        let mut out = String::new();
        metrics.render_registry_into(&mut out);
        out.len()
    });
    time("process collector", &|| {
        let mut out = String::new();
        let _ = encode(&mut out, &process_only);
        out.len()
    });
}
