//! Process logging: `tracing` to standard error, as text or JSON, filtered by level.
//!
//! Standard output stays free for command output such as `analyze`.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The level from the configuration or from `RUST_LOG` is not a valid filter.
    #[error("invalid log filter \"{filter}\": {reason}")]
    InvalidFilter {
        /// The filter text as given.
        filter: String,
        /// The parser's reason.
        reason: String,
    },
    /// A global logger was already installed in this process, or the installed one could not
    /// take a new filter.
    #[error("logging is already initialised: {0}")]
    AlreadyInitialised(String),
}

/// Changes the level of the installed logger while the proxy runs (SIGHUP).
pub struct LogLevel {
    /// Swaps the filter in place; the two output formats have different handle types.
    set: Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>,
}

impl std::fmt::Debug for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogLevel")
    }
}

impl LogLevel {
    /// Applies `level` as the new filter. `RUST_LOG`, when set and not empty, still wins (as at
    /// start-up): the returned flag says whether `level` took effect.
    pub fn set(&self, level: &str) -> Result<bool, LoggingError> {
        let rust_log = std::env::var("RUST_LOG").ok();
        let overridden = rust_log.as_deref().is_some_and(|v| !v.trim().is_empty());
        let filter = build_filter(level, rust_log)?;
        (self.set)(filter).map_err(LoggingError::AlreadyInitialised)?;
        Ok(!overridden)
    }
}

/// Installs the global logger and returns the handle that changes its level later.
/// `RUST_LOG`, when set and not empty, overrides `level`.
pub fn init_tracing(level: &str, format: LogFormat) -> Result<LogLevel, LoggingError> {
    let filter = build_filter(level, std::env::var("RUST_LOG").ok())?;
    // Colours only on a terminal: log files and journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let (installed, level) = match format {
        LogFormat::Text => {
            let builder = builder.with_filter_reloading();
            let handle = builder.reload_handle();
            let set = move |filter| handle.reload(filter).map_err(|e| e.to_string());
            (builder.try_init(), LogLevel { set: Box::new(set) })
        }
        LogFormat::Json => {
            let builder = builder.json().with_filter_reloading();
            let handle = builder.reload_handle();
            let set = move |filter| handle.reload(filter).map_err(|e| e.to_string());
            (builder.try_init(), LogLevel { set: Box::new(set) })
        }
    };
    installed.map_err(|err| LoggingError::AlreadyInitialised(err.to_string()))?;
    Ok(level)
}

/// The filter in force: `rust_log` when set and not empty, else `level`.
fn build_filter(level: &str, rust_log: Option<String>) -> Result<EnvFilter, LoggingError> {
    let filter_text = rust_log
        .filter(|from_env| !from_env.trim().is_empty())
        .unwrap_or_else(|| level.to_owned());
    EnvFilter::try_new(&filter_text).map_err(|err| LoggingError::InvalidFilter {
        filter: filter_text.clone(),
        reason: err.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_overrides_the_configured_level() {
        let filter = build_filter("info", Some("metaflow_proxy=trace".to_owned())).unwrap();
        assert_eq!(filter.to_string(), "metaflow_proxy=trace");
        let filter = build_filter("warn", Some("  ".to_owned())).unwrap();
        assert_eq!(filter.to_string(), "warn");
        let filter = build_filter("debug", None).unwrap();
        assert_eq!(filter.to_string(), "debug");
    }

    #[test]
    fn a_bad_filter_is_reported_with_its_text() {
        let err = build_filter("info", Some("x=[[".to_owned())).unwrap_err();
        assert!(err.to_string().contains("\"x=[[\""), "{err}");
    }
}
