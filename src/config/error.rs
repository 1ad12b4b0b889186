//! Configuration errors; each message names the file and the key or flag at fault.

use std::path::PathBuf;

use super::KNOWN_KEYS;

/// Why a configuration could not be loaded. Every variant names what the operator must fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file given with `--config` could not be read.
    #[error("cannot read config file {}", path.display())]
    ReadFile {
        /// The file that failed.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config file {} is not valid TOML: {message}", path.display())]
    Syntax {
        /// The file that failed.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The file holds a key the proxy does not know (usually a typo).
    #[error("unknown key \"{key}\" in {}; known keys: {}", path.display(), KNOWN_KEYS.join(", "))]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The file that holds it.
        path: PathBuf,
    },
    /// A key or flag has a value of the wrong type or out of range.
    #[error("invalid value for {key} {origin}: {reason}")]
    InvalidValue {
        /// `"key"` for the file, `--flag` for the command line.
        key: String,
        /// Where the value came from: `in FILE` or `on the command line`.
        origin: String,
        /// What was wrong and what is expected.
        reason: String,
    },
    /// Values that are fine alone but contradict each other.
    #[error("inconsistent configuration: {0}")]
    Inconsistent(String),
}
