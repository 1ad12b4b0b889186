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
    /// A global logger was already installed in this process.
    #[error("logging is already initialised: {0}")]
    AlreadyInitialised(String),
}

/// Installs the global logger. `RUST_LOG`, when set and not empty, overrides `level`.
pub fn init_tracing(level: &str, format: LogFormat) -> Result<(), LoggingError> {
    let filter = build_filter(level, std::env::var("RUST_LOG").ok())?;
    // Colours only on a terminal: log files and journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|err| LoggingError::AlreadyInitialised(err.to_string()))
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
