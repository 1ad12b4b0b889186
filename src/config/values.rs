//! Parsers for single configuration values, shared by the file loader and the flag parser so
//! that both accept exactly the same spellings.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::media::latch::{LatchMode, SourceMatch};

/// Lowest port accepted for RTP: ports below 1024 are privileged and reserved for services.
const LOWEST_RTP_PORT: u16 = 1024;

/// Parses `LOW-HIGH` into an inclusive UDP port range for RTP/RTCP.
/// Both ends must be at least 1024 and `LOW` must be below `HIGH`.
pub fn parse_rtp_ports(text: &str) -> Result<(u16, u16), String> {
    let (low_text, high_text) = text
        .split_once('-')
        .ok_or_else(|| format!("expected LOW-HIGH such as 30000-39999, got \"{text}\""))?;
    let parse_port = |part: &str| {
        part.trim()
            .parse::<u16>()
            .map_err(|_| format!("\"{}\" is not a port number (1024-65535)", part.trim()))
    };
    let low = parse_port(low_text)?;
    let high = parse_port(high_text)?;
    if low < LOWEST_RTP_PORT || high < LOWEST_RTP_PORT {
        return Err(format!(
            "ports must be at least {LOWEST_RTP_PORT} (got {low}-{high}); lower ports are privileged"
        ));
    }
    if low >= high {
        return Err(format!(
            "low port {low} must be below high port {high} (RTP and RTCP need a pair of ports)"
        ));
    }
    Ok((low, high))
}

/// Longest learning window accepted (`rtp-learning-ms`): a NATed leg's first packets are held
/// back for the whole window, so seconds would cut the start of every such call.
pub(super) const LEARNING_MS_MAX: u64 = 10_000;

/// Parses `rtp-latch`: `strict`, `learning` or `first-packet`.
pub fn parse_rtp_latch(text: &str) -> Result<LatchMode, String> {
    text.trim().parse()
}

/// Parses `media-fastpath`: `auto`, `kernel` or `off`.
pub fn parse_media_fastpath(text: &str) -> Result<crate::media::fastpath::FastPathMode, String> {
    text.trim().parse()
}

/// Parses `rtp-source-match`: `ip` or `ip-port`.
pub fn parse_rtp_source_match(text: &str) -> Result<SourceMatch, String> {
    text.trim().parse()
}

/// Checks an `rtp-learning-ms` value: 1 to [`LEARNING_MS_MAX`] milliseconds.
pub(super) fn check_learning_ms(ms: u64) -> Result<Duration, String> {
    if (1..=LEARNING_MS_MAX).contains(&ms) {
        Ok(Duration::from_millis(ms))
    } else {
        Err(format!(
            "must be 1 to {LEARNING_MS_MAX} milliseconds, got {ms} \
             (rtp-latch = \"strict\" disables learning, \"first-packet\" latches at once)"
        ))
    }
}

/// Resolves `HOST:PORT` (name or IP literal, IPv6 in brackets) to the address calls are sent to,
/// and returns it with the host as written. The first address the resolver returns is used.
pub fn parse_upstream(text: &str) -> Result<(SocketAddr, String), String> {
    let (host, port) = text.rsplit_once(':').ok_or_else(|| {
        format!("expected HOST:PORT such as pbx.example.net:5060, got \"{text}\"")
    })?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!(
            "expected HOST:PORT such as pbx.example.net:5060, got \"{text}\""
        ));
    }
    let mut addresses = text
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve \"{text}\": {err}"))?;
    let address = addresses
        .next()
        .ok_or_else(|| format!("\"{text}\" resolves to no address"))?;
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((address, bare_host.to_owned()))
}

/// Parses a listen address, which must be an IP literal with a port (no name lookup).
/// Parses an advertised SIP address: `IP` (the bound port) or `IP:PORT`.
pub fn parse_sip_advertise(text: &str) -> Result<(std::net::IpAddr, Option<u16>), String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok((addr.ip(), Some(addr.port())));
    }
    text.parse::<std::net::IpAddr>()
        .map(|ip| (ip, None))
        .map_err(|_| {
            format!(
                "expected IP or IP:PORT such as 203.0.113.5 or 203.0.113.5:5060, got \"{text}\""
            )
        })
}

pub(super) fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>().map_err(|_| {
        format!("expected ADDR:PORT such as 127.0.0.1:5060 or [::1]:5060, got \"{text}\"")
    })
}

/// Level names accepted on their own; a single bare word must be one of them, since a typo such as
/// `verbose` would otherwise be read as a module name and silently log nothing useful.
const LEVEL_NAMES: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Checks a log filter the way the logger will read it, so a bad one fails at load.
pub(super) fn check_log_level(text: &str) -> Result<String, String> {
    let is_single_word = !text.contains([',', '=', ':', '[']);
    if is_single_word && !LEVEL_NAMES.contains(&text.trim().to_ascii_lowercase().as_str()) {
        return Err(format!(
            "\"{text}\" is not a log level; use one of {} or directives like info,metaflow_proxy=debug",
            LEVEL_NAMES.join(", ")
        ));
    }
    tracing_subscriber::EnvFilter::try_new(text)
        .map(|_| text.to_owned())
        .map_err(|err| {
            format!(
                "\"{text}\" is not a log level or filter ({err}); \
                 use trace, debug, info, warn, error or directives like info,metaflow_proxy=debug"
            )
        })
}

/// The smallest `timer-c` accepted, in seconds: RFC 3261 §16.6 step 11 wants Timer C above
/// 3 minutes, and 180 s is the value proxies customarily use. Shorter would cancel calls a
/// slow PBX (queues, hunt groups that answer late with no 180 in between) still means to ring.
pub const MIN_TIMER_C_SECS: u64 = 180;

/// Checks a `timer-c` value in seconds.
pub(super) fn check_timer_c(secs: u64) -> Result<Duration, String> {
    if secs < MIN_TIMER_C_SECS {
        return Err(format!(
            "must be at least {MIN_TIMER_C_SECS} seconds (RFC 3261 Timer C), got {secs}"
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// A `no-answer-timeout` value in seconds: 0 turns the limit off.
pub(super) fn no_answer_limit(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// The longest `rate-limit-window` and `rate-limit-block` accepted, in seconds (one day).
pub const MAX_RATE_LIMIT_SECS: u64 = 86_400;

/// Checks a `rate-limit-window` or `rate-limit-block` value: 1 s to one day.
pub(super) fn check_rate_limit_secs(secs: u64) -> Result<Duration, String> {
    if (1..=MAX_RATE_LIMIT_SECS).contains(&secs) {
        Ok(Duration::from_secs(secs))
    } else {
        Err(format!(
            "must be 1 to {MAX_RATE_LIMIT_SECS} seconds, got {secs}"
        ))
    }
}

/// Checks a `rate-limit-requests` value: 0 (off) up to `u32::MAX`.
pub(super) fn check_rate_limit_requests(requests: u64) -> Result<u32, String> {
    u32::try_from(requests).map_err(|_| format!("{requests} is too large (0 turns the limit off)"))
}

/// Checks one scanner `User-Agent` prefix: not blank, since a blank prefix would match (and
/// silently drop) every request.
pub(super) fn check_scanner_user_agent(prefix: &str) -> Result<String, String> {
    if prefix.trim().is_empty() {
        return Err(
            "a User-Agent prefix must not be empty (it would drop every request); \
             use drop-scanners = false to turn the drop off"
                .to_owned(),
        );
    }
    Ok(prefix.trim_start().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_ports_accepts_a_valid_range() {
        assert_eq!(parse_rtp_ports("30000-39999"), Ok((30000, 39999)));
        assert_eq!(parse_rtp_ports(" 1024 - 1025 "), Ok((1024, 1025)));
    }

    #[test]
    fn rtp_ports_rejects_reversed_low_and_malformed_ranges() {
        assert!(
            parse_rtp_ports("40000-30000")
                .unwrap_err()
                .contains("below")
        );
        assert!(
            parse_rtp_ports("30000-30000")
                .unwrap_err()
                .contains("below")
        );
        assert!(parse_rtp_ports("80-2000").unwrap_err().contains("1024"));
        assert!(parse_rtp_ports("30000").unwrap_err().contains("LOW-HIGH"));
        assert!(parse_rtp_ports("a-b").unwrap_err().contains("\"a\""));
        assert!(parse_rtp_ports("30000-70000").is_err());
    }

    #[test]
    fn latch_settings_parse_only_their_spellings() {
        assert_eq!(parse_rtp_latch("strict"), Ok(LatchMode::Strict));
        assert_eq!(parse_rtp_latch(" learning "), Ok(LatchMode::Learning));
        assert_eq!(parse_rtp_latch("first-packet"), Ok(LatchMode::FirstPacket));
        assert!(parse_rtp_latch("off").unwrap_err().contains("\"strict\""));
        assert_eq!(parse_rtp_source_match("ip-port"), Ok(SourceMatch::IpPort));
        assert!(parse_rtp_source_match("port").is_err());
        assert_eq!(check_learning_ms(1), Ok(Duration::from_millis(1)));
        assert_eq!(check_learning_ms(10_000), Ok(Duration::from_secs(10)));
        assert!(check_learning_ms(0).unwrap_err().contains("1 to 10000"));
        assert!(check_learning_ms(10_001).is_err());
    }

    #[test]
    fn upstream_resolves_literals_and_keeps_the_host() {
        let (addr, host) = parse_upstream("192.0.2.10:5080").unwrap();
        assert_eq!(addr, "192.0.2.10:5080".parse().unwrap());
        assert_eq!(host, "192.0.2.10");
        let (addr, host) = parse_upstream("[2001:db8::1]:5060").unwrap();
        assert_eq!(addr, "[2001:db8::1]:5060".parse().unwrap());
        assert_eq!(host, "2001:db8::1");
        let (addr, host) = parse_upstream("localhost:5060").unwrap();
        assert!(addr.ip().is_loopback());
        assert_eq!(host, "localhost");
    }

    #[test]
    fn upstream_rejects_missing_or_bad_port() {
        assert!(parse_upstream("192.0.2.10").is_err());
        assert!(parse_upstream("192.0.2.10:port").is_err());
        assert!(parse_upstream(":5060").is_err());
    }

    #[test]
    fn listen_address_needs_ip_and_port() {
        assert!(parse_listen_addr("0.0.0.0:5060").is_ok());
        assert!(parse_listen_addr("localhost:5060").is_err());
        assert!(parse_listen_addr("127.0.0.1").is_err());
    }

    #[test]
    fn log_level_accepts_levels_and_directives_only() {
        assert!(check_log_level("debug").is_ok());
        assert!(check_log_level("info,metaflow_proxy::sip=trace").is_ok());
        assert!(check_log_level("WARN").is_ok());
        assert!(
            check_log_level("verbose")
                .unwrap_err()
                .contains("not a log level")
        );
        assert!(check_log_level("loud=[[").is_err());
    }
}

/// Where the `/v2` documents are kept (key `store`): `redb`, the embedded file in `data-dir`
/// (one machine), or a PostgreSQL URL (several proxies sharing one database).
#[derive(Clone, PartialEq, Eq, Default)]
pub enum StoreLocation {
    /// The embedded `redb` file `DATA_DIR/store.redb`.
    #[default]
    Redb,
    /// A PostgreSQL connection URL, `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`.
    Postgres(String),
}

impl StoreLocation {
    /// Parses the value of `store`: `redb`, or a `postgres://` / `postgresql://` URL.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "redb" {
            return Ok(Self::Redb);
        }
        let Some(rest) = text
            .strip_prefix("postgres://")
            .or_else(|| text.strip_prefix("postgresql://"))
        else {
            return Err(format!(
                "expected \"redb\" or a URL like \"postgres://user@127.0.0.1:5432/metaflow\", got \"{}\"",
                redact_password(text)
            ));
        };
        if rest.is_empty() || rest.starts_with('/') && rest.len() == 1 {
            return Err("the PostgreSQL URL names no host or database".to_owned());
        }
        Ok(Self::Postgres(text.to_owned()))
    }

    /// The value as an operator may see it in logs: any password replaced by `***`.
    pub fn display(&self) -> String {
        match self {
            Self::Redb => "redb".to_owned(),
            Self::Postgres(url) => redact_password(url),
        }
    }
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// `scheme://user:secret@host/db` → `scheme://user:***@host/db`; anything else unchanged.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Checks `node-id`: a short name other nodes and the channels API show.
pub(super) fn parse_node_id(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() || text.len() > 64 {
        return Err("expected a name of 1 to 64 characters".to_owned());
    }
    if !text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    {
        return Err(format!(
            "\"{text}\" has characters other than letters, digits, '-', '_', '.' and ':'"
        ));
    }
    Ok(text.to_owned())
}
