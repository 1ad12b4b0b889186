//! What a reload (SIGHUP) may change while calls run, and what needs a restart: the settings
//! read per new call or per request can change in place; sockets, port ranges, threads, the
//! store and the timer base values are fixed for the process's life.

use super::Config;

/// Keys a reload applies without a restart.
pub const RELOADABLE: [&str; 21] = [
    "log-level",
    "metaflows",
    "digit-timeout-ms",
    "use-fast-rearm",
    "upstream",
    "upstream-transport",
    "pbx-addresses",
    "drop-scanners",
    "scanner-user-agents",
    "rate-limit-requests",
    "rate-limit-window",
    "rate-limit-block",
    "rate-limit-max-sources",
    "rate-limit-exempt",
    "max-calls",
    "max-transactions",
    "max-registrations",
    "timer-c",
    "no-answer-timeout",
    "shutdown-grace",
    "placed-call-from",
];

/// The keys whose values differ between the running configuration and the new one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Changed keys a reload applies now.
    pub applied: Vec<&'static str>,
    /// Changed keys that keep their old value until the next restart.
    pub need_restart: Vec<&'static str>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.applied.is_empty() && self.need_restart.is_empty()
    }
}

/// Compares two configurations key by key.
pub fn changes(old: &Config, new: &Config) -> Changes {
    // Stops compiling when a field is added, so a new key cannot be left out of the comparison.
    let Config {
        sip_listen: _,
        upstream: _,
        upstream_host: _,
        media_ip: _,
        rtp_ports: _,
        rtp_latch: _,
        rtp_learning: _,
        rtp_source_match: _,
        api_listen: _,
        data_dir: _,
        store: _,
        node_id: _,
        api_advertise: _,
        metaflows: _,
        api_auth_tokens: _,
        media_timeout: _,
        media_timeout_hold: _,
        timer_c: _,
        digit_timeout: _,
        fast_rearm: _,
        no_answer_timeout: _,
        upstream_transport: _,
        media_workers: _,
        media_fastpath: _,
        placed_call_from: _,
        max_transactions: _,
        shutdown_grace: _,
        recordings_retention_days: _,
        sip_t1: _,
        sip_t2: _,
        sip_t4: _,
        log_level: _,
        log_format: _,
        max_calls: _,
        tcp_idle_timeout: _,
        tcp_first_byte_timeout: _,
        tcp_header_timeout: _,
        tcp_max_per_source: _,
        api_header_timeout: _,
        api_idle_timeout: _,
        api_max_per_source: _,
        drop_scanners: _,
        scanner_user_agents: _,
        rate_limit_requests: _,
        rate_limit_window: _,
        rate_limit_block: _,
        rate_limit_max_sources: _,
        pbx_addresses: _,
        rate_limit_exempt: _,
        max_registrations: _,
        sip_advertise: _,
        media_advertise: _,
        webhook_urls: _,
        webhook_events: _,
        webhook_secret: _,
    } = old;
    let mut changed: Vec<&'static str> = Vec::new();
    let mut check = |key: &'static str, differs: bool| {
        if differs && !changed.contains(&key) {
            changed.push(key);
        }
    };
    check("sip-listen", old.sip_listen != new.sip_listen);
    check(
        "upstream",
        old.upstream != new.upstream || old.upstream_host != new.upstream_host,
    );
    check(
        "upstream-transport",
        old.upstream_transport != new.upstream_transport,
    );
    check("pbx-addresses", old.pbx_addresses != new.pbx_addresses);
    check(
        "rate-limit-exempt",
        old.rate_limit_exempt != new.rate_limit_exempt,
    );
    check("media-ip", old.media_ip != new.media_ip);
    check("sip-advertise", old.sip_advertise != new.sip_advertise);
    check(
        "media-advertise",
        old.media_advertise != new.media_advertise,
    );
    check("rtp-ports", old.rtp_ports != new.rtp_ports);
    check("rtp-latch", old.rtp_latch != new.rtp_latch);
    check("rtp-learning-ms", old.rtp_learning != new.rtp_learning);
    check(
        "rtp-source-match",
        old.rtp_source_match != new.rtp_source_match,
    );
    check("api-listen", old.api_listen != new.api_listen);
    check("data-dir", old.data_dir != new.data_dir);
    check("store", old.store != new.store);
    check("node-id", old.node_id != new.node_id);
    check("api-advertise", old.api_advertise != new.api_advertise);
    check("metaflows", old.metaflows != new.metaflows);
    check(
        "api-auth-tokens",
        old.api_auth_tokens != new.api_auth_tokens,
    );
    check("media-timeout", old.media_timeout != new.media_timeout);
    check(
        "media-timeout-hold",
        old.media_timeout_hold != new.media_timeout_hold,
    );
    check("timer-c", old.timer_c != new.timer_c);
    check("digit-timeout-ms", old.digit_timeout != new.digit_timeout);
    check("use-fast-rearm", old.fast_rearm != new.fast_rearm);
    check(
        "no-answer-timeout",
        old.no_answer_timeout != new.no_answer_timeout,
    );
    check("media-workers", old.media_workers != new.media_workers);
    check("media-fastpath", old.media_fastpath != new.media_fastpath);
    check(
        "placed-call-from",
        old.placed_call_from != new.placed_call_from,
    );
    check("shutdown-grace", old.shutdown_grace != new.shutdown_grace);
    check(
        "recordings-retention-days",
        old.recordings_retention_days != new.recordings_retention_days,
    );
    check("sip-t1-ms", old.sip_t1 != new.sip_t1);
    check("sip-t2-ms", old.sip_t2 != new.sip_t2);
    check("sip-t4-ms", old.sip_t4 != new.sip_t4);
    check("log-level", old.log_level != new.log_level);
    check("log-format", old.log_format != new.log_format);
    check("max-calls", old.max_calls != new.max_calls);
    check(
        "max-transactions",
        old.max_transactions != new.max_transactions,
    );
    check(
        "max-registrations",
        old.max_registrations != new.max_registrations,
    );
    check(
        "tcp-idle-timeout",
        old.tcp_idle_timeout != new.tcp_idle_timeout,
    );
    check(
        "tcp-first-byte-timeout",
        old.tcp_first_byte_timeout != new.tcp_first_byte_timeout,
    );
    check(
        "tcp-header-timeout",
        old.tcp_header_timeout != new.tcp_header_timeout,
    );
    check(
        "tcp-max-per-source",
        old.tcp_max_per_source != new.tcp_max_per_source,
    );
    check(
        "api-header-timeout",
        old.api_header_timeout != new.api_header_timeout,
    );
    check(
        "api-idle-timeout",
        old.api_idle_timeout != new.api_idle_timeout,
    );
    check(
        "api-max-per-source",
        old.api_max_per_source != new.api_max_per_source,
    );
    check("drop-scanners", old.drop_scanners != new.drop_scanners);
    check(
        "scanner-user-agents",
        old.scanner_user_agents != new.scanner_user_agents,
    );
    check(
        "rate-limit-requests",
        old.rate_limit_requests != new.rate_limit_requests,
    );
    check(
        "rate-limit-window",
        old.rate_limit_window != new.rate_limit_window,
    );
    check(
        "rate-limit-block",
        old.rate_limit_block != new.rate_limit_block,
    );
    check(
        "rate-limit-max-sources",
        old.rate_limit_max_sources != new.rate_limit_max_sources,
    );
    // The webhook senders are started once with the process (restart-only, like the event log).
    check("webhook-urls", old.webhook_urls != new.webhook_urls);
    check("webhook-events", old.webhook_events != new.webhook_events);
    check("webhook-secret", old.webhook_secret != new.webhook_secret);
    let (applied, need_restart) = changed.into_iter().partition(|k| RELOADABLE.contains(k));
    Changes {
        applied,
        need_restart,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_changed_key_is_sorted_into_applied_or_restart() {
        let old = Config::default();
        assert!(changes(&old, &old.clone()).is_empty());
        let new = Config {
            max_calls: 5,
            log_level: "debug".into(),
            rtp_ports: (40000, 40100),
            sip_t1: Duration::from_millis(200),
            scanner_user_agents: vec!["x".into()],
            ..old.clone()
        };
        let found = changes(&old, &new);
        assert_eq!(
            found.applied,
            ["log-level", "max-calls", "scanner-user-agents"]
        );
        assert_eq!(found.need_restart, ["rtp-ports", "sip-t1-ms"]);
    }

    #[test]
    fn webhook_keys_wait_for_a_restart() {
        let old = Config::default();
        let new = Config {
            webhook_events: vec!["digit".into()],
            webhook_urls: vec![crate::webhooks::WebhookUrl::parse("http://127.0.0.1:1/").unwrap()],
            ..old.clone()
        };
        let found = changes(&old, &new);
        assert!(found.applied.is_empty());
        assert_eq!(found.need_restart, ["webhook-urls", "webhook-events"]);
    }

    #[test]
    fn every_reloadable_key_is_a_known_key() {
        for key in RELOADABLE {
            assert!(super::super::KNOWN_KEYS.contains(&key), "{key}");
        }
    }
}
