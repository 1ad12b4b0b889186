//! Where `metaflow-proxy ctl` connects and which token it sends, each taken from the first
//! place that has it, and remembered so that an error can say which one was used.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::CtlError;
use crate::api::v2::TOKEN_FILE_NAME;
use crate::config::Config;
use crate::config::ctl_args::CtlArgs;

/// The environment variable read for the token when `--token` is not given.
pub const TOKEN_ENV: &str = "METAFLOW_PROXY_TOKEN";

/// The API address used when neither `--api` nor `--config` names one (api-listen's default).
pub const DEFAULT_API: &str = "127.0.0.1:8000";

/// Where the token came from, for the error a refused token gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `--token`.
    Flag,
    /// [`TOKEN_ENV`].
    Env,
    /// The first `api-auth-tokens` of this configuration file.
    ConfigFile(PathBuf),
    /// The generated token's file in the data directory.
    TokenFile(PathBuf),
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag => write!(f, "--token"),
            Self::Env => write!(f, "${TOKEN_ENV}"),
            Self::ConfigFile(path) => write!(f, "api-auth-tokens in {}", path.display()),
            Self::TokenFile(path) => write!(f, "the token file {}", path.display()),
        }
    }
}

/// The proxy one `ctl` run talks to.
#[derive(Debug, Clone)]
pub struct Target {
    /// `HOST:PORT` of the API.
    pub api: String,
    /// The token's source and the token, or why none could be found.
    token: Result<(String, TokenSource), TokenMissing>,
}

/// Why no token could be found: the file that was tried and what reading it said.
#[derive(Debug, Clone)]
pub(super) struct TokenMissing {
    /// The token file tried last.
    pub(super) file: PathBuf,
    /// Why it gave no token.
    pub(super) reason: String,
}

impl Target {
    /// Resolves the address and the token from the flags, the environment and `--config`.
    pub fn resolve(args: &CtlArgs) -> Result<Target, CtlError> {
        let config = match &args.config {
            Some(path) => Some(Config::from_file(path).map_err(|source| CtlError::Config {
                path: path.clone(),
                source,
            })?),
            None => None,
        };
        let api = match (&args.api, &config) {
            (Some(api), _) => api.clone(),
            (None, Some(config)) => connectable(config.api_listen).to_string(),
            (None, None) => DEFAULT_API.to_owned(),
        };
        let env = std::env::var(TOKEN_ENV)
            .ok()
            .filter(|t| !t.trim().is_empty());
        let configured = config
            .as_ref()
            .and_then(|config| config.api_auth_tokens.first().cloned());
        let token = if let Some(token) = &args.token {
            Ok((token.clone(), TokenSource::Flag))
        } else if let Some(token) = env {
            Ok((token.trim().to_owned(), TokenSource::Env))
        } else if let (Some(token), Some(path)) = (configured, &args.config) {
            Ok((token, TokenSource::ConfigFile(path.clone())))
        } else {
            let data_dir = config
                .as_ref()
                .map(|config| config.data_dir.clone())
                .unwrap_or_else(|| PathBuf::from("data"));
            read_token_file(&data_dir.join(TOKEN_FILE_NAME))
        };
        Ok(Target { api, token })
    }

    /// The token to send and where it came from; an error naming the file tried when none.
    pub fn token(&self) -> Result<(&str, &TokenSource), CtlError> {
        match &self.token {
            Ok((token, source)) => Ok((token, source)),
            Err(missing) => Err(CtlError::NoToken {
                file: missing.file.clone(),
                reason: missing.reason.clone(),
            }),
        }
    }
}

/// The address to connect to for a listen address: the wildcard means this host's loopback.
fn connectable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        ip if !ip.is_unspecified() => ip,
        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
    };
    SocketAddr::new(ip, listen.port())
}

/// The token kept in `path` (its one trimmed line).
fn read_token_file(path: &Path) -> Result<(String, TokenSource), TokenMissing> {
    let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let missing = |reason: String| TokenMissing {
        file: shown.clone(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|error| missing(error.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(missing("the file is empty".into()));
    }
    Ok((token.to_owned(), TokenSource::TokenFile(shown.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listen_address_is_reached_on_loopback() {
        let any: SocketAddr = "0.0.0.0:8000"
            .parse()
            .unwrap_or(SocketAddr::from(([0; 4], 0)));
        assert_eq!(connectable(any).to_string(), "127.0.0.1:8000");
        let bound: SocketAddr = "10.1.2.3:9000".parse().unwrap_or(any);
        assert_eq!(connectable(bound), bound);
    }

    #[test]
    fn the_token_file_is_trimmed_and_an_empty_one_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join(TOKEN_FILE_NAME);
        std::fs::write(&file, "abc123\n").unwrap_or_else(|e| panic!("{e}"));
        let (token, source) = read_token_file(&file).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(token, "abc123");
        assert!(matches!(source, TokenSource::TokenFile(_)));
        std::fs::write(&file, "\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(read_token_file(&file).is_err());
        assert!(read_token_file(&dir.path().join("none")).is_err());
    }
}
