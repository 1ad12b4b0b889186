//! Runtime configuration: embedded defaults, overridden by a TOML file, overridden by flags.
//!
//! The TOML file uses the long flag names as top-level keys (`sip-listen = "0.0.0.0:5060"`),
//! the way rtpengine's configuration file mirrors its command line. Every key is documented with
//! its default in `config/metaflow-proxy.toml`.

pub mod cli;
pub mod ctl_args;
mod error;
mod file;
mod flags;
pub mod reload;
mod values;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::cli::Cli;
use crate::media::latch::{DEFAULT_LEARNING_WINDOW, LatchMode, LatchPolicy, SourceMatch};

pub use error::ConfigError;
pub use values::{
    MAX_RATE_LIMIT_SECS, MIN_TIMER_C_SECS, StoreLocation, parse_media_fastpath, parse_rtp_latch,
    parse_rtp_ports, parse_rtp_source_match, parse_sip_advertise, parse_upstream, redact_password,
};

/// Every key accepted in the configuration file, in the order the example file documents them.
/// Error messages list them so that a typo is easy to fix.
pub const KNOWN_KEYS: [&str; 54] = [
    "sip-listen",
    "sip-advertise",
    "media-advertise",
    "upstream",
    "upstream-transport",
    "pbx-addresses",
    "media-ip",
    "rtp-ports",
    "rtp-latch",
    "rtp-learning-ms",
    "rtp-source-match",
    "api-listen",
    "data-dir",
    "store",
    "node-id",
    "api-advertise",
    "metaflows",
    "digit-timeout-ms",
    "use-fast-rearm",
    "api-auth-tokens",
    "media-timeout",
    "media-timeout-hold",
    "timer-c",
    "no-answer-timeout",
    "media-workers",
    "media-fastpath",
    "placed-call-from",
    "shutdown-grace",
    "recordings-retention-days",
    "sip-t1-ms",
    "sip-t2-ms",
    "sip-t4-ms",
    "log-level",
    "log-format",
    "max-calls",
    "max-transactions",
    "max-registrations",
    "tcp-idle-timeout",
    "tcp-first-byte-timeout",
    "tcp-header-timeout",
    "tcp-max-per-source",
    "api-header-timeout",
    "api-idle-timeout",
    "api-max-per-source",
    "drop-scanners",
    "scanner-user-agents",
    "rate-limit-requests",
    "rate-limit-window",
    "rate-limit-block",
    "rate-limit-max-sources",
    "rate-limit-exempt",
    "webhook-urls",
    "webhook-events",
    "webhook-secret",
];

/// How log lines are written: human-readable text or one JSON object per line for collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, the default for a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl LogFormat {
    /// The spelling used in the config file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// The validated settings the proxy runs with; every field is already typed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address for SIP over UDP and TCP (key `sip-listen`).
    pub sip_listen: SocketAddr,
    /// The PBX every new call from a phone is sent to, resolved at load (key `upstream`);
    /// without it new calls are answered 503.
    pub upstream: Option<SocketAddr>,
    /// The upstream host exactly as configured (name or literal, without port), used where SIP
    /// wants the PBX's name, e.g. the host part of a REFER's `Refer-To`.
    pub upstream_host: Option<String>,
    /// Address written into SDP and bound for RTP (key `media-ip`); `None` means the SIP listen IP.
    pub media_ip: Option<IpAddr>,
    /// Inclusive UDP port range for RTP/RTCP (key `rtp-ports`, `LOW-HIGH`).
    pub rtp_ports: (u16, u16),
    /// Which sources may latch a leg's media flow: only its SDP address, or after a learning
    /// window also a NATed source, or (lab use) the first one (key `rtp-latch`).
    pub rtp_latch: LatchMode,
    /// How long a leg's SDP address must stay silent before another source may latch, in
    /// `learning` mode (key `rtp-learning-ms`).
    pub rtp_learning: Duration,
    /// How a packet's source is compared with the leg's SDP address: IP only, or IP and port
    /// (key `rtp-source-match`).
    pub rtp_source_match: SourceMatch,
    /// Address of the HTTP API, health checks and metrics (key `api-listen`).
    pub api_listen: SocketAddr,
    /// Directory for the embedded store, recordings and the event log (key `data-dir`).
    pub data_dir: PathBuf,
    /// Where the `/v2` documents live: the embedded file under `data-dir`, or a PostgreSQL
    /// database shared by several proxies (key `store`).
    pub store: StoreLocation,
    /// This proxy's name among the proxies sharing a PostgreSQL store (key `node-id`; default:
    /// the advertised SIP address).
    pub node_id: Option<String>,
    /// The API address the other proxies of a cluster reach this one at (key `api-advertise`;
    /// default: `api-listen`).
    pub api_advertise: Option<SocketAddr>,
    /// Account-level metaflows for the default account, one Kazoo metaflow object (key `metaflows`).
    pub metaflows: Option<PathBuf>,
    /// Tokens accepted in `X-Auth-Token` by the `/v2` API; empty means the token generated into
    /// `DATA_DIR/api-token` (key `api-auth-tokens`, merged with every `--api-auth-token`).
    pub api_auth_tokens: Vec<String>,
    /// Relay worker threads, one epoll loop each (key `media-workers`; default: one per CPU).
    pub media_workers: usize,
    /// Whether latched audio is forwarded in the kernel (key `media-fastpath`).
    pub media_fastpath: crate::media::fastpath::FastPathMode,
    /// Who calls the proxy places say they are from (key `placed-call-from`).
    pub placed_call_from: crate::base::PlacedCallFrom,
    /// Transport towards the upstream PBX (key `upstream-transport`, `udp` or `tcp`).
    pub upstream_transport: crate::sip::transport::Transport,
    /// SIP transactions held at once; requests beyond it get 503 (key `max-transactions`).
    pub max_transactions: usize,
    /// A confirmed call whose legs sent no RTP nor RTCP for this long is torn down (key
    /// `media-timeout`, seconds).
    pub media_timeout: Duration,
    /// The same for a call whose every stream is on hold (`sendonly`, `recvonly`, `inactive`
    /// or `c=0.0.0.0`), where no RTP is expected (key `media-timeout-hold`, seconds; zero:
    /// never).
    pub media_timeout_hold: Duration,
    /// The digit timeout of a metaflow that names none and whose account's metaflows name no
    /// `digit_timeout_ms` (Kazoo's system setting `metaflows.digit_timeout_ms`; key
    /// `digit-timeout-ms`).
    pub digit_timeout: Duration,
    /// Kazoo's `metaflows.use_fast_rearm`: the binding digit pressed in the middle of a code
    /// starts it over (key `use-fast-rearm`).
    pub fast_rearm: bool,
    /// Timer C (RFC 3261 §16.6 step 11): a PBX that leaves our INVITE this long without a
    /// provisional or final response gets a CANCEL and the caller a 408 (key `timer-c`,
    /// seconds, at least 180).
    pub timer_c: Duration,
    /// The most a call may ring before the proxy cancels it and answers the caller 480
    /// (key `no-answer-timeout`, seconds; 0, the default, leaves it to the PBX).
    pub no_answer_timeout: Option<Duration>,
    /// On shutdown, how long calls in progress may continue before they are ended
    /// (key `shutdown-grace`, seconds).
    pub shutdown_grace: Duration,
    /// Recordings older than this many days are deleted by a periodic sweep (key
    /// `recordings-retention-days`; 0, the default, keeps them forever).
    pub recordings_retention_days: u64,
    /// SIP timer T1, the round-trip estimate (key `sip-t1-ms`, RFC 3261 section 17.1.1.1).
    pub sip_t1: Duration,
    /// SIP timer T2, the retransmission cap for non-INVITE requests and responses (key `sip-t2-ms`).
    pub sip_t2: Duration,
    /// SIP timer T4, how long a message may stay in the network (key `sip-t4-ms`).
    pub sip_t4: Duration,
    /// Log filter: a level or `tracing` directives such as `info,metaflow_proxy::sip=debug`
    /// (key `log-level`); the `RUST_LOG` environment variable overrides it.
    pub log_level: String,
    /// Log line format (key `log-format`).
    pub log_format: LogFormat,
    /// Most calls handled at once; INVITEs beyond it are answered 503 (key `max-calls`).
    pub max_calls: usize,
    /// Seconds a SIP over TCP connection may carry no traffic either way before it is closed (key `tcp-idle-timeout`).
    pub tcp_idle_timeout: Duration,
    /// Seconds an accepted SIP over TCP connection may stay silent from the start before it is closed (key `tcp-first-byte-timeout`).
    pub tcp_first_byte_timeout: Duration,
    /// Seconds a SIP over TCP message head may take from its first byte before the connection is closed (key `tcp-header-timeout`).
    pub tcp_header_timeout: Duration,
    /// Most accepted SIP over TCP connections open at once from one source IP; more are closed at once (key `tcp-max-per-source`).
    pub tcp_max_per_source: usize,
    /// Seconds an HTTP API request head may take from its first byte (or from the connection's start) before the connection is closed (key `api-header-timeout`).
    pub api_header_timeout: Duration,
    /// Seconds an HTTP API keep-alive connection may wait for its next request before it is closed (key `api-idle-timeout`).
    pub api_idle_timeout: Duration,
    /// Most HTTP API connections open at once from one source IP; more are closed at once (key `api-max-per-source`).
    pub api_max_per_source: usize,
    /// Drop requests of known SIP scanners without any answer (key `drop-scanners`).
    pub drop_scanners: bool,
    /// `User-Agent` prefixes (case-insensitive) of the scanners dropped (key
    /// `scanner-user-agents`, which replaces the built-in list; `--scanner-user-agent` adds).
    pub scanner_user_agents: Vec<String>,
    /// Datagrams one source IP may send per `rate-limit-window` before it is blocked; 0 turns
    /// the per-source rate limit off (key `rate-limit-requests`).
    pub rate_limit_requests: u32,
    /// Where else the PBX's requests may come from besides `upstream` (key `pbx-addresses`:
    /// addresses, networks, or address:port; `--pbx-address` adds). A new INVITE from one of
    /// them (or from `upstream` itself) is for a registered phone.
    pub pbx_addresses: Vec<crate::base::TrustedSource>,
    /// Sources never rate limited, besides the PBX: a SIP dispatcher in front (key
    /// `rate-limit-exempt`: addresses, networks, or address:port; `--rate-limit-exempt` adds).
    pub rate_limit_exempt: Vec<crate::base::TrustedSource>,
    /// The most phones registered through the proxy at once (key `max-registrations`).
    pub max_registrations: usize,
    /// The address written into Via, Contact and the Contacts of relayed REGISTERs instead of
    /// the bound one, for a host behind 1:1 NAT (key `sip-advertise`: IP, or IP and port; no
    /// port means the bound port). Kamailio's `advertise`.
    pub sip_advertise: Option<(IpAddr, Option<u16>)>,
    /// The address written into SDP instead of `media-ip`, which is still the one bound (key
    /// `media-advertise`). rtpengine's `interface=internal/10.0.0.5!203.0.113.5`.
    pub media_advertise: Option<IpAddr>,
    /// The rate limit's sampling window (key `rate-limit-window`, seconds).
    pub rate_limit_window: Duration,
    /// How long a source over the rate limit is blocked (key `rate-limit-block`, seconds).
    pub rate_limit_block: Duration,
    /// The most source IPs the rate limiter tracks; beyond it the oldest entry is evicted
    /// (key `rate-limit-max-sources`).
    pub rate_limit_max_sources: usize,
    /// Where call events are POSTed (key `webhook-urls`; `--webhook-url` adds); none turns
    /// webhooks off.
    pub webhook_urls: Vec<crate::webhooks::WebhookUrl>,
    /// The event kinds sent to the webhooks, as our event names (Kazoo hook names are mapped
    /// at load); empty sends every kind (key `webhook-events`; `--webhook-event` adds).
    pub webhook_events: Vec<String>,
    /// The HMAC-SHA256 key signing webhook requests (key `webhook-secret`).
    pub webhook_secret: Option<crate::webhooks::WebhookSecret>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sip_listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
            upstream: None,
            upstream_host: None,
            media_ip: None,
            rtp_ports: (30000, 39999),
            rtp_latch: LatchMode::Learning,
            rtp_learning: DEFAULT_LEARNING_WINDOW,
            rtp_source_match: SourceMatch::Ip,
            api_listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            data_dir: PathBuf::from("./data"),
            store: StoreLocation::Redb,
            node_id: None,
            api_advertise: None,
            metaflows: None,
            api_auth_tokens: Vec::new(),
            media_timeout: Duration::from_secs(60),
            media_timeout_hold: Duration::from_secs(3600),
            timer_c: Duration::from_secs(MIN_TIMER_C_SECS),
            // Kazoo's default, as `metaflow::model::DEFAULT_DIGIT_TIMEOUT` (config sits below
            // metaflow, so it is not imported).
            digit_timeout: Duration::from_millis(800),
            fast_rearm: false,
            no_answer_timeout: None,
            upstream_transport: crate::sip::transport::Transport::Udp,
            media_workers: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1),
            media_fastpath: crate::media::fastpath::FastPathMode::Auto,
            placed_call_from: crate::base::PlacedCallFrom::Staying,
            max_transactions: 100_000,
            shutdown_grace: Duration::from_secs(30),
            recordings_retention_days: 0,
            sip_t1: Duration::from_millis(500),
            sip_t2: Duration::from_millis(4000),
            sip_t4: Duration::from_millis(5000),
            log_level: "info".to_owned(),
            log_format: LogFormat::Text,
            max_calls: 10_000,
            tcp_idle_timeout: Duration::from_secs(600),
            tcp_first_byte_timeout: Duration::from_secs(30),
            tcp_header_timeout: Duration::from_secs(10),
            tcp_max_per_source: 32,
            api_header_timeout: Duration::from_secs(10),
            api_idle_timeout: Duration::from_secs(60),
            api_max_per_source: 32,
            drop_scanners: true,
            scanner_user_agents: crate::sip::validate::default_scanner_user_agents(),
            rate_limit_requests: 200,
            pbx_addresses: Vec::new(),
            rate_limit_exempt: Vec::new(),
            max_registrations: 100_000,
            sip_advertise: None,
            media_advertise: None,
            rate_limit_window: Duration::from_secs(2),
            rate_limit_block: Duration::from_secs(60),
            rate_limit_max_sources: 10_000,
            webhook_urls: Vec::new(),
            webhook_events: Vec::new(),
            webhook_secret: None,
        }
    }
}

impl Config {
    /// Builds the configuration the proxy runs with: embedded defaults, then the file named by
    /// `--config` (if any), then the flags given on the command line.
    pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        if let Some(path) = &cli.config {
            config.apply_file(path)?;
        }
        config.apply_flags(cli)?;
        config.validate()?;
        Ok(config)
    }

    /// Loads embedded defaults overridden by one file, without any flags.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        config.apply_file(path)?;
        config.validate()?;
        Ok(config)
    }

    /// The address bound for RTP: `media-ip`, else the SIP listen IP.
    pub fn media_ip_effective(&self) -> IpAddr {
        self.media_ip.unwrap_or_else(|| self.sip_listen.ip())
    }

    /// The address written into SDP: `media-advertise`, else the bound media address.
    pub fn media_ip_advertised(&self) -> IpAddr {
        self.media_advertise
            .unwrap_or_else(|| self.media_ip_effective())
    }

    /// The SIP address written into Via and Contact, given the address the socket is bound to:
    /// `sip-advertise` (with the bound port unless it names one), else the bound address.
    pub fn sip_advertised(&self, bound: std::net::SocketAddr) -> std::net::SocketAddr {
        match self.sip_advertise {
            Some((ip, port)) => std::net::SocketAddr::new(ip, port.unwrap_or(bound.port())),
            None => bound,
        }
    }

    /// The latching policy of every media flow, from `rtp-latch`, `rtp-learning-ms` and
    /// `rtp-source-match`.
    pub fn latch_policy(&self) -> LatchPolicy {
        LatchPolicy {
            mode: self.rtp_latch,
            learning_window: self.rtp_learning,
            source_match: self.rtp_source_match,
        }
    }

    /// What the webhook senders need: receivers, filter and key.
    pub fn webhook_settings(&self) -> crate::webhooks::WebhookSettings {
        crate::webhooks::WebhookSettings {
            urls: self.webhook_urls.clone(),
            filter: crate::webhooks::EventFilter::new(self.webhook_events.clone()),
            secret: self.webhook_secret.clone(),
        }
    }

    /// One-line human summary of the settings that matter most to an operator.
    pub fn summary(&self) -> String {
        let upstream = match (&self.upstream_host, self.upstream) {
            (Some(host), Some(addr)) if host != &addr.ip().to_string() => {
                format!("{host} ({addr})")
            }
            (_, Some(addr)) => addr.to_string(),
            _ => "none (new calls get 503)".to_owned(),
        };
        let metaflows = self
            .metaflows
            .as_ref()
            .map_or_else(|| "none".to_owned(), |path| path.display().to_string());
        let latch = match self.rtp_latch {
            LatchMode::Learning => format!(
                "learning {} ms, source match {}",
                self.rtp_learning.as_millis(),
                self.rtp_source_match
            ),
            mode => format!("{mode}, source match {}", self.rtp_source_match),
        };
        format!(
            "sip-listen {}, upstream {}, media-ip {}, rtp-ports {}-{}, rtp-latch {}, \
             api-listen {}, data-dir {}, metaflows {}, api tokens {}, max-calls {}, \
             media-timeout {}s (on hold {}s)",
            self.sip_listen,
            upstream,
            self.media_ip_effective(),
            self.rtp_ports.0,
            self.rtp_ports.1,
            latch,
            self.api_listen,
            self.data_dir.display(),
            metaflows,
            self.api_auth_tokens.len(),
            self.max_calls,
            self.media_timeout.as_secs(),
            self.media_timeout_hold.as_secs(),
        )
    }

    /// Checks the rules that involve more than one key; single values are checked as they load.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.sip_t2 < self.sip_t1 {
            return Err(ConfigError::Inconsistent(format!(
                "sip-t2-ms ({} ms) must not be below sip-t1-ms ({} ms)",
                self.sip_t2.as_millis(),
                self.sip_t1.as_millis()
            )));
        }
        if self.media_ip_effective().is_unspecified() && self.media_advertise.is_none() {
            return Err(ConfigError::Inconsistent(format!(
                "media-ip (or media-advertise) must be set to a concrete address when the media \
                 address would be the wildcard {}: it is written into SDP for the phones and the \
                 PBX to send RTP to",
                self.sip_listen.ip()
            )));
        }
        Ok(())
    }
}

/// Validates one configuration file and returns the `config OK: ...` line the
/// `check-config` command prints; the error is printed as is and the command exits 1.
pub fn check_config(path: &Path) -> Result<String, ConfigError> {
    let config = Config::from_file(path)?;
    Ok(format!(
        "config OK: {}: {}",
        path.display(),
        config.summary()
    ))
}
