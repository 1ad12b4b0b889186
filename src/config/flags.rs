//! Applying command-line flags on top of the defaults and the file: a flag always wins.

use std::time::Duration;

use super::values::{
    StoreLocation, check_learning_ms, check_log_level, check_rate_limit_requests,
    check_rate_limit_secs, check_scanner_user_agent, check_timer_c, no_answer_limit, parse_node_id,
    parse_upstream,
};
use super::{Config, ConfigError};
use crate::config::cli::Cli;

/// Builds the error for a bad flag value, naming the flag.
fn invalid_flag(flag: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: format!("--{flag}"),
        origin: "on the command line".to_owned(),
        reason: reason.into(),
    }
}

impl Config {
    /// Overrides the current values with every flag given. `--api-auth-token` adds to the tokens
    /// from the file instead of replacing them.
    pub(super) fn apply_flags(&mut self, cli: &Cli) -> Result<(), ConfigError> {
        if let Some(address) = cli.sip_listen {
            self.sip_listen = address;
        }
        if let Some(upstream) = &cli.upstream {
            let (address, host) =
                parse_upstream(upstream).map_err(|e| invalid_flag("upstream", e))?;
            self.upstream = Some(address);
            self.upstream_host = Some(host);
        }
        if let Some(advertise) = cli.sip_advertise {
            self.sip_advertise = Some(advertise);
        }
        if let Some(ip) = cli.media_advertise {
            self.media_advertise = Some(ip);
        }
        if let Some(ip) = cli.media_ip {
            self.media_ip = Some(ip);
        }
        if let Some(range) = cli.rtp_ports {
            self.rtp_ports = range;
        }
        if let Some(mode) = cli.rtp_latch {
            self.rtp_latch = mode;
        }
        if let Some(ms) = cli.rtp_learning_ms {
            self.rtp_learning =
                check_learning_ms(ms).map_err(|e| invalid_flag("rtp-learning-ms", e))?;
        }
        if let Some(rule) = cli.rtp_source_match {
            self.rtp_source_match = rule;
        }
        if let Some(address) = cli.api_listen {
            self.api_listen = address;
        }
        if let Some(dir) = &cli.data_dir {
            self.data_dir = dir.clone();
        }
        if let Some(text) = &cli.store {
            self.store = StoreLocation::parse(text).map_err(|e| invalid_flag("store", e))?;
        }
        if let Some(text) = &cli.node_id {
            self.node_id = Some(parse_node_id(text).map_err(|e| invalid_flag("node-id", e))?);
        }
        if let Some(address) = cli.api_advertise {
            self.api_advertise = Some(address);
        }
        if let Some(path) = &cli.metaflows {
            self.metaflows = Some(path.clone());
        }
        for token in &cli.api_auth_tokens {
            if token.trim().is_empty() {
                return Err(invalid_flag("api-auth-token", "tokens must not be empty"));
            }
            if !self.api_auth_tokens.contains(token) {
                self.api_auth_tokens.push(token.clone());
            }
        }
        if let Some(seconds) = cli.media_timeout {
            if seconds == 0 {
                return Err(invalid_flag("media-timeout", "must be at least 1 second"));
            }
            self.media_timeout = Duration::from_secs(seconds);
        }
        if let Some(seconds) = cli.media_timeout_hold {
            self.media_timeout_hold = Duration::from_secs(seconds);
        }
        if let Some(seconds) = cli.timer_c {
            self.timer_c = check_timer_c(seconds).map_err(|e| invalid_flag("timer-c", e))?;
        }
        if let Some(ms) = cli.digit_timeout_ms {
            self.digit_timeout = Duration::from_millis(ms);
        }
        if let Some(on) = cli.use_fast_rearm {
            self.fast_rearm = on;
        }
        if let Some(seconds) = cli.no_answer_timeout {
            self.no_answer_timeout = no_answer_limit(seconds);
        }
        if let Some(level) = &cli.log_level {
            self.log_level = check_log_level(level).map_err(|e| invalid_flag("log-level", e))?;
        }
        if let Some(format) = cli.log_format {
            self.log_format = format;
        }
        if let Some(seconds) = cli.tcp_idle_timeout {
            self.tcp_idle_timeout = Duration::from_secs(at_least_one("tcp-idle-timeout", seconds)?);
        }
        if let Some(seconds) = cli.tcp_first_byte_timeout {
            self.tcp_first_byte_timeout =
                Duration::from_secs(at_least_one("tcp-first-byte-timeout", seconds)?);
        }
        if let Some(seconds) = cli.tcp_header_timeout {
            self.tcp_header_timeout =
                Duration::from_secs(at_least_one("tcp-header-timeout", seconds)?);
        }
        if let Some(limit) = cli.tcp_max_per_source {
            self.tcp_max_per_source = count("tcp-max-per-source", limit)?;
        }
        if let Some(seconds) = cli.api_header_timeout {
            self.api_header_timeout =
                Duration::from_secs(at_least_one("api-header-timeout", seconds)?);
        }
        if let Some(seconds) = cli.api_idle_timeout {
            self.api_idle_timeout = Duration::from_secs(at_least_one("api-idle-timeout", seconds)?);
        }
        if let Some(limit) = cli.api_max_per_source {
            self.api_max_per_source = count("api-max-per-source", limit)?;
        }
        if let Some(transport) = &cli.upstream_transport {
            self.upstream_transport = match transport.to_ascii_lowercase().as_str() {
                "tcp" => crate::sip::transport::Transport::Tcp,
                _ => crate::sip::transport::Transport::Udp,
            };
        }
        if let Some(mode) = cli.media_fastpath {
            self.media_fastpath = mode;
        }
        if let Some(from) = &cli.placed_call_from {
            self.placed_call_from = from.clone();
        }
        if let Some(workers) = cli.media_workers {
            self.media_workers = count("media-workers", workers)?;
        }
        if let Some(secs) = cli.shutdown_grace {
            self.shutdown_grace = Duration::from_secs(secs);
        }
        if let Some(days) = cli.recordings_retention_days {
            self.recordings_retention_days = days;
        }
        if let Some(ms) = cli.sip_t1_ms {
            self.sip_t1 = Duration::from_millis(at_least_one("sip-t1-ms", ms)?);
        }
        if let Some(ms) = cli.sip_t2_ms {
            self.sip_t2 = Duration::from_millis(at_least_one("sip-t2-ms", ms)?);
        }
        if let Some(ms) = cli.sip_t4_ms {
            self.sip_t4 = Duration::from_millis(at_least_one("sip-t4-ms", ms)?);
        }
        if let Some(limit) = cli.max_calls {
            self.max_calls = count("max-calls", limit)?;
        }
        if let Some(limit) = cli.max_transactions {
            self.max_transactions = count("max-transactions", limit)?;
        }
        if let Some(limit) = cli.max_registrations {
            self.max_registrations = count("max-registrations", limit)?;
        }
        if let Some(on) = cli.drop_scanners {
            self.drop_scanners = on;
        }
        for entry in &cli.pbx_addresses {
            let source = entry
                .parse()
                .map_err(|e| invalid_flag("pbx-address", format!("{e}")))?;
            if !self.pbx_addresses.contains(&source) {
                self.pbx_addresses.push(source);
            }
        }
        for entry in &cli.rate_limit_exempt {
            let source = entry
                .parse()
                .map_err(|e| invalid_flag("rate-limit-exempt", format!("{e}")))?;
            if !self.rate_limit_exempt.contains(&source) {
                self.rate_limit_exempt.push(source);
            }
        }
        for prefix in &cli.scanner_user_agents {
            let prefix = check_scanner_user_agent(prefix)
                .map_err(|e| invalid_flag("scanner-user-agent", e))?;
            if !self.scanner_user_agents.contains(&prefix) {
                self.scanner_user_agents.push(prefix);
            }
        }
        for text in &cli.webhook_urls {
            let url = crate::webhooks::WebhookUrl::parse(text)
                .map_err(|e| invalid_flag("webhook-url", e))?;
            if !self.webhook_urls.contains(&url) {
                self.webhook_urls.push(url);
            }
        }
        for text in &cli.webhook_events {
            let kind = crate::webhooks::config::parse_event_kind(text)
                .map_err(|e| invalid_flag("webhook-event", e))?;
            if !self.webhook_events.contains(&kind) {
                self.webhook_events.push(kind);
            }
        }
        if let Some(text) = &cli.webhook_secret {
            self.webhook_secret = Some(
                crate::webhooks::WebhookSecret::parse(text)
                    .map_err(|e| invalid_flag("webhook-secret", e))?,
            );
        }
        if let Some(requests) = cli.rate_limit_requests {
            self.rate_limit_requests = check_rate_limit_requests(requests)
                .map_err(|e| invalid_flag("rate-limit-requests", e))?;
        }
        if let Some(secs) = cli.rate_limit_window {
            self.rate_limit_window =
                check_rate_limit_secs(secs).map_err(|e| invalid_flag("rate-limit-window", e))?;
        }
        if let Some(secs) = cli.rate_limit_block {
            self.rate_limit_block =
                check_rate_limit_secs(secs).map_err(|e| invalid_flag("rate-limit-block", e))?;
        }
        if let Some(limit) = cli.rate_limit_max_sources {
            if limit == 0 {
                return Err(invalid_flag("rate-limit-max-sources", "must be at least 1"));
            }
            self.rate_limit_max_sources = limit;
        }
        Ok(())
    }
}

/// A count of at least 1 that fits in memory sizes.
fn count(flag: &str, value: u64) -> Result<usize, ConfigError> {
    let value = at_least_one(flag, value)?;
    usize::try_from(value).map_err(|_| invalid_flag(flag, format!("{value} is too large")))
}

/// Refuses 0 for a flag whose value must be at least 1.
fn at_least_one(flag: &str, value: u64) -> Result<u64, ConfigError> {
    if value == 0 {
        return Err(invalid_flag(flag, "must be at least 1, got 0"));
    }
    Ok(value)
}
