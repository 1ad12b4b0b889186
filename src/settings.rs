//! The call core's settings, derived from the configuration in one place for start-up and for
//! every reload.

use std::net::{IpAddr, SocketAddr};

use metaflow_proxy::b2bua::{CoreConfig, RateLimit};
use metaflow_proxy::config::Config;
use metaflow_proxy::sip::txn::Timers;

/// The call core's settings from the configuration; also what a reload hands the running core
/// (which keeps `local`, `media_ip`, the timers and the seed as they were).
pub(crate) fn core_config(cfg: &Config, local: SocketAddr, media_ip: IpAddr) -> CoreConfig {
    CoreConfig {
        local,
        advertise: cfg.sip_advertise.map(|_| cfg.sip_advertised(local)),
        upstream: cfg.upstream,
        upstream_host: cfg
            .upstream_host
            .clone()
            .unwrap_or_else(|| local.ip().to_string()),
        media_ip,
        timers: Timers {
            t1: cfg.sip_t1,
            t2: cfg.sip_t2,
            t4: cfg.sip_t4,
        },
        max_calls: cfg.max_calls,
        upstream_transport: cfg.upstream_transport,
        max_transactions: cfg.max_transactions,
        rng_seed: None,
        timer_c: cfg.timer_c,
        no_answer_timeout: cfg.no_answer_timeout,
        scanner_user_agents: if cfg.drop_scanners {
            cfg.scanner_user_agents.clone()
        } else {
            Vec::new()
        },
        pbx_sources: cfg.pbx_addresses.clone(),
        rate_limit_exempt: cfg.rate_limit_exempt.clone(),
        max_registrations: cfg.max_registrations,
        placed_call_from: cfg.placed_call_from.clone(),
        rate_limit: (cfg.rate_limit_requests > 0).then_some(RateLimit {
            requests: cfg.rate_limit_requests,
            window: cfg.rate_limit_window,
            block: cfg.rate_limit_block,
            max_sources: cfg.rate_limit_max_sources,
        }),
    }
}

/// The operator's metaflow settings (Kazoo's `system_config/metaflows`) from the configuration.
pub(crate) fn metaflow_system(cfg: &Config) -> metaflow_proxy::metaflow::MetaflowSystem {
    metaflow_proxy::metaflow::MetaflowSystem {
        digit_timeout: cfg.digit_timeout,
        fast_rearm: cfg.fast_rearm,
    }
}
