//! Reading the TOML configuration file: top-level keys named after the long flags.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Value;

use super::values::{
    StoreLocation, check_learning_ms, check_log_level, check_rate_limit_requests,
    check_rate_limit_secs, check_scanner_user_agent, check_timer_c, no_answer_limit,
    parse_listen_addr, parse_media_fastpath, parse_node_id, parse_rtp_latch, parse_rtp_ports,
    parse_rtp_source_match, parse_sip_advertise, parse_upstream,
};
use super::{Config, ConfigError, LogFormat};

/// Names the file being read so that every error can say where the bad value is.
struct FileSource<'a> {
    path: &'a Path,
}

impl FileSource<'_> {
    fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::InvalidValue {
            key: format!("\"{key}\""),
            origin: format!("in {}", self.path.display()),
            reason: reason.into(),
        }
    }

    fn string<'v>(&self, key: &str, value: &'v Value) -> Result<&'v str, ConfigError> {
        value
            .as_str()
            .ok_or_else(|| self.invalid(key, format!("expected a string, got {}", kind(value))))
    }

    /// A path from the file; a relative one is taken relative to the file's own directory,
    /// not to the working directory (under systemd that is `/`, and `./data` would be `/data`).
    fn non_empty_path(&self, key: &str, value: &Value) -> Result<PathBuf, ConfigError> {
        let text = self.string(key, value)?;
        if text.trim().is_empty() {
            return Err(self.invalid(key, "the path is empty"));
        }
        let path = PathBuf::from(text);
        if path.is_absolute() {
            return Ok(path);
        }
        let dir = self.path.parent().unwrap_or_else(|| Path::new(""));
        Ok(dir.join(path))
    }

    /// An integer of at least `min`, as `u64`.
    fn integer(&self, key: &str, value: &Value, min: u64) -> Result<u64, ConfigError> {
        let number = value.as_integer().ok_or_else(|| {
            self.invalid(key, format!("expected an integer, got {}", kind(value)))
        })?;
        u64::try_from(number)
            .ok()
            .filter(|number| *number >= min)
            .ok_or_else(|| self.invalid(key, format!("must be at least {min}, got {number}")))
    }

    /// A count of at least 1 that fits in memory sizes (limits, table sizes, threads).
    fn count(&self, key: &str, value: &Value) -> Result<usize, ConfigError> {
        let number = self.integer(key, value, 1)?;
        usize::try_from(number).map_err(|_| self.invalid(key, format!("{number} is too large")))
    }

    /// A list of strings, each as written.
    fn strings<'v>(&self, key: &str, value: &'v Value) -> Result<Vec<&'v str>, ConfigError> {
        let items = value.as_array().ok_or_else(|| {
            self.invalid(
                key,
                format!("expected a list of strings, got {}", kind(value)),
            )
        })?;
        items
            .iter()
            .map(|item| {
                item.as_str().ok_or_else(|| {
                    self.invalid(key, format!("expected strings, got {}", kind(item)))
                })
            })
            .collect()
    }

    fn tokens(&self, key: &str, value: &Value) -> Result<Vec<String>, ConfigError> {
        self.strings(key, value)?
            .into_iter()
            .map(|token| {
                if token.trim().is_empty() {
                    Err(self.invalid(key, "tokens must not be empty"))
                } else {
                    Ok(token.to_owned())
                }
            })
            .collect()
    }
}

/// A short name for a TOML value's type, for error messages.
fn kind(value: &Value) -> &'static str {
    value.type_str()
}

impl Config {
    /// Overrides the current values with every key set in the TOML file at `path`.
    pub(super) fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        self.apply_toml(path, &text)
    }

    /// Overrides the current values with every key set in `text`, a TOML document read from `path`.
    pub(super) fn apply_toml(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let table: toml::Table =
            text.parse()
                .map_err(|err: toml::de::Error| ConfigError::Syntax {
                    path: path.to_owned(),
                    message: err.message().to_owned() + &line_hint(text, err.span()),
                })?;
        let file = FileSource { path };
        for (key, value) in &table {
            self.apply_key(&file, key, value)?;
        }
        Ok(())
    }

    fn apply_key(
        &mut self,
        file: &FileSource,
        key: &str,
        value: &Value,
    ) -> Result<(), ConfigError> {
        let text = || file.string(key, value);
        match key {
            "sip-listen" => {
                self.sip_listen = parse_listen_addr(text()?).map_err(|e| file.invalid(key, e))?;
            }
            "upstream" => {
                let (address, host) = parse_upstream(text()?).map_err(|e| file.invalid(key, e))?;
                self.upstream = Some(address);
                self.upstream_host = Some(host);
            }
            "sip-advertise" => {
                self.sip_advertise =
                    Some(parse_sip_advertise(text()?).map_err(|e| file.invalid(key, e))?);
            }
            "media-advertise" => {
                let ip = text()?;
                let parsed = ip.parse().map_err(|_| {
                    file.invalid(key, format!("expected an IP address, got \"{ip}\""))
                })?;
                self.media_advertise = Some(parsed);
            }
            "media-ip" => {
                let ip = text()?;
                let parsed = ip.parse().map_err(|_| {
                    file.invalid(key, format!("expected an IP address, got \"{ip}\""))
                })?;
                self.media_ip = Some(parsed);
            }
            "rtp-ports" => {
                self.rtp_ports = parse_rtp_ports(text()?).map_err(|e| file.invalid(key, e))?;
            }
            "rtp-latch" => {
                self.rtp_latch = parse_rtp_latch(text()?).map_err(|e| file.invalid(key, e))?;
            }
            "rtp-learning-ms" => {
                let ms = file.integer(key, value, 1)?;
                self.rtp_learning = check_learning_ms(ms).map_err(|e| file.invalid(key, e))?;
            }
            "rtp-source-match" => {
                self.rtp_source_match =
                    parse_rtp_source_match(text()?).map_err(|e| file.invalid(key, e))?;
            }
            "api-listen" => {
                self.api_listen = parse_listen_addr(text()?).map_err(|e| file.invalid(key, e))?;
            }
            "data-dir" => self.data_dir = file.non_empty_path(key, value)?,
            "store" => {
                self.store = StoreLocation::parse(text()?).map_err(|e| file.invalid(key, e))?;
            }
            "node-id" => {
                self.node_id = Some(parse_node_id(text()?).map_err(|e| file.invalid(key, e))?);
            }
            "api-advertise" => {
                self.api_advertise =
                    Some(parse_listen_addr(text()?).map_err(|e| file.invalid(key, e))?);
            }
            "metaflows" => self.metaflows = Some(file.non_empty_path(key, value)?),
            "api-auth-tokens" => self.api_auth_tokens = file.tokens(key, value)?,
            "upstream-transport" => {
                self.upstream_transport = match text()? {
                    "udp" | "UDP" => crate::sip::transport::Transport::Udp,
                    "tcp" | "TCP" => crate::sip::transport::Transport::Tcp,
                    other => {
                        return Err(file.invalid(
                            key,
                            format!("expected \"udp\" or \"tcp\", got \"{other}\""),
                        ));
                    }
                };
            }
            "media-fastpath" => {
                self.media_fastpath =
                    parse_media_fastpath(text()?).map_err(|e| file.invalid(key, e))?;
            }
            "placed-call-from" => {
                self.placed_call_from = text()?.parse().map_err(|e| file.invalid(key, e))?;
            }
            "media-workers" => {
                self.media_workers = file.count(key, value)?;
            }
            "max-transactions" => {
                self.max_transactions = file.count(key, value)?;
            }
            "max-registrations" => {
                self.max_registrations = file.count(key, value)?;
            }
            "media-timeout" => {
                self.media_timeout = Duration::from_secs(file.integer(key, value, 1)?);
            }
            "media-timeout-hold" => {
                self.media_timeout_hold = Duration::from_secs(file.integer(key, value, 0)?);
            }
            "timer-c" => {
                let secs = file.integer(key, value, 1)?;
                self.timer_c = check_timer_c(secs).map_err(|e| file.invalid(key, e))?;
            }
            "digit-timeout-ms" => {
                self.digit_timeout = Duration::from_millis(file.integer(key, value, 0)?);
            }
            "use-fast-rearm" => {
                self.fast_rearm = value.as_bool().ok_or_else(|| {
                    file.invalid(key, format!("expected true or false, got {}", kind(value)))
                })?;
            }
            "no-answer-timeout" => {
                self.no_answer_timeout = no_answer_limit(file.integer(key, value, 0)?);
            }
            "shutdown-grace" => {
                self.shutdown_grace = Duration::from_secs(file.integer(key, value, 0)?);
            }
            "recordings-retention-days" => {
                self.recordings_retention_days = file.integer(key, value, 0)?;
            }
            "sip-t1-ms" => self.sip_t1 = Duration::from_millis(file.integer(key, value, 1)?),
            "sip-t2-ms" => self.sip_t2 = Duration::from_millis(file.integer(key, value, 1)?),
            "sip-t4-ms" => self.sip_t4 = Duration::from_millis(file.integer(key, value, 1)?),
            "log-level" => {
                self.log_level = check_log_level(text()?).map_err(|e| file.invalid(key, e))?;
            }
            "log-format" => {
                self.log_format = match text()? {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    other => {
                        return Err(file.invalid(
                            key,
                            format!("expected \"text\" or \"json\", got \"{other}\""),
                        ));
                    }
                };
            }
            "max-calls" => {
                self.max_calls = file.count(key, value)?;
            }
            "tcp-idle-timeout" => {
                self.tcp_idle_timeout = Duration::from_secs(file.integer(key, value, 1)?)
            }
            "tcp-first-byte-timeout" => {
                self.tcp_first_byte_timeout = Duration::from_secs(file.integer(key, value, 1)?)
            }
            "tcp-header-timeout" => {
                self.tcp_header_timeout = Duration::from_secs(file.integer(key, value, 1)?)
            }
            "tcp-max-per-source" => {
                self.tcp_max_per_source = file.count(key, value)?;
            }
            "api-header-timeout" => {
                self.api_header_timeout = Duration::from_secs(file.integer(key, value, 1)?)
            }
            "api-idle-timeout" => {
                self.api_idle_timeout = Duration::from_secs(file.integer(key, value, 1)?)
            }
            "api-max-per-source" => {
                self.api_max_per_source = file.count(key, value)?;
            }
            "drop-scanners" => {
                self.drop_scanners = value.as_bool().ok_or_else(|| {
                    file.invalid(key, format!("expected true or false, got {}", kind(value)))
                })?;
            }
            "pbx-addresses" => {
                self.pbx_addresses = file
                    .strings(key, value)?
                    .into_iter()
                    .map(|text| text.parse().map_err(|e| file.invalid(key, format!("{e}"))))
                    .collect::<Result<_, _>>()?;
            }
            "rate-limit-exempt" => {
                self.rate_limit_exempt = file
                    .strings(key, value)?
                    .into_iter()
                    .map(|text| text.parse().map_err(|e| file.invalid(key, format!("{e}"))))
                    .collect::<Result<_, _>>()?;
            }
            "scanner-user-agents" => {
                self.scanner_user_agents = file
                    .strings(key, value)?
                    .into_iter()
                    .map(|text| check_scanner_user_agent(text).map_err(|e| file.invalid(key, e)))
                    .collect::<Result<_, _>>()?;
            }
            "rate-limit-requests" => {
                let requests = file.integer(key, value, 0)?;
                self.rate_limit_requests =
                    check_rate_limit_requests(requests).map_err(|e| file.invalid(key, e))?;
            }
            "rate-limit-window" => {
                let secs = file.integer(key, value, 1)?;
                self.rate_limit_window =
                    check_rate_limit_secs(secs).map_err(|e| file.invalid(key, e))?;
            }
            "rate-limit-block" => {
                let secs = file.integer(key, value, 1)?;
                self.rate_limit_block =
                    check_rate_limit_secs(secs).map_err(|e| file.invalid(key, e))?;
            }
            "rate-limit-max-sources" => {
                self.rate_limit_max_sources = file.count(key, value)?;
            }
            "webhook-urls" => {
                self.webhook_urls = file
                    .strings(key, value)?
                    .into_iter()
                    .map(|text| {
                        crate::webhooks::WebhookUrl::parse(text).map_err(|e| file.invalid(key, e))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "webhook-events" => {
                let mut kinds: Vec<String> = Vec::new();
                for text in file.strings(key, value)? {
                    let kind = crate::webhooks::config::parse_event_kind(text)
                        .map_err(|e| file.invalid(key, e))?;
                    if !kinds.contains(&kind) {
                        kinds.push(kind);
                    }
                }
                self.webhook_events = kinds;
            }
            "webhook-secret" => {
                let text = text()?;
                self.webhook_secret = Some(
                    crate::webhooks::WebhookSecret::parse(text)
                        .map_err(|e| file.invalid(key, e))?,
                );
            }
            unknown => {
                return Err(ConfigError::UnknownKey {
                    key: unknown.to_owned(),
                    path: file.path.to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// ` (line N)` for the start of `span` in `text`, or nothing when the parser gave no position.
fn line_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    span.and_then(|span| text.get(..span.start))
        .map(|before| format!(" (line {})", before.lines().count().max(1)))
        .unwrap_or_default()
}
