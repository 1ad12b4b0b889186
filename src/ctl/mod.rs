//! `metaflow-proxy ctl`: a control CLI over the running proxy's HTTP API, in the spirit of
//! `kamcmd` and `rtpengine-ctl`: list calls, hang one up, reload the configuration, summarise
//! the metrics. Everything goes through the API the proxy already serves, so it works wherever
//! the API is reachable and needs no other access to the process.

mod calls;
mod http;
mod stats;
mod target;

use std::io::Write;
use std::path::PathBuf;

use serde_json::Value;

pub use crate::config::ctl_args::{CtlAction, CtlArgs, LONG_ABOUT};
pub use target::{DEFAULT_API, TOKEN_ENV, Target, TokenSource};

use crate::config::ConfigError;
use http::Answer;
pub use http::HttpError;

/// Why a `ctl` action failed; each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// `--config` does not load.
    #[error("cannot use --config {}: {source}", path.display())]
    Config {
        /// The file given.
        path: PathBuf,
        /// Why it does not load.
        source: ConfigError,
    },
    /// Nothing listens on the API address.
    #[error(
        "cannot connect to {addr} (connection refused): is metaflow-proxy running on {addr}? \
         (--api HOST:PORT or --config FILE name another address)"
    )]
    NotRunning {
        /// The address tried.
        addr: String,
    },
    /// The request got no HTTP answer.
    #[error(transparent)]
    Http(HttpError),
    /// No token was given and the data directory's token file gives none.
    #[error(
        "no API token: {} gives none ({reason}); pass --token, set ${}, or give --config FILE \
         so that its api-auth-tokens or data-dir is used (the file is readable by the user that \
         runs metaflow-proxy)",
        file.display(), TOKEN_ENV
    )]
    NoToken {
        /// The token file tried.
        file: PathBuf,
        /// Why it gave none.
        reason: String,
    },
    /// The API refused the token.
    #[error("the API at {addr} refused the token from {used} (401): {hint}")]
    Unauthorized {
        /// The API address.
        addr: String,
        /// Where the token came from.
        used: TokenSource,
        /// What the proxy said about how to get in.
        hint: String,
    },
    /// The API answered with an error.
    #[error("the API answered {status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error's message.
        message: String,
    },
    /// No such call is in progress.
    #[error("no call {0} in progress (see metaflow-proxy ctl calls)")]
    NoSuchCall(String),
    /// The answer is not what the API documents.
    #[error("unexpected answer from the API: {0}")]
    BadAnswer(String),
    /// Standard output could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs one `ctl` action, writing its result to `out`.
pub fn run(args: &CtlArgs, out: &mut dyn Write) -> Result<(), CtlError> {
    let target = Target::resolve(args)?;
    let api = Api { target: &target };
    match &args.action {
        CtlAction::Calls => calls::list(&api, args.json, out),
        CtlAction::Hangup { call_id, account } => {
            calls::hangup(&api, call_id, account.as_deref(), args.json, out)
        }
        CtlAction::Reload => reload(&api, args.json, out),
        CtlAction::Stats => stats::show(&api, args.json, out),
    }
}

/// Requests to one proxy's API, with its errors turned into [`CtlError`]s.
struct Api<'a> {
    target: &'a Target,
}

impl Api<'_> {
    /// Sends a request without a token (health and metrics routes); any status is returned.
    fn public(&self, path: &str) -> Result<Answer, CtlError> {
        http::request(&self.target.api, "GET", path, None, None).map_err(|error| self.down(error))
    }

    /// Sends an authenticated `/v2` request; returns the envelope of a 2xx answer.
    fn v2(&self, method: &str, path: &str, body: Option<&str>) -> Result<Value, CtlError> {
        let (token, source) = self.target.token()?;
        let answer = http::request(&self.target.api, method, path, Some(token), body)
            .map_err(|error| self.down(error))?;
        let envelope: Value = serde_json::from_str(&answer.body).map_err(|_| {
            CtlError::BadAnswer(format!("{} with a body that is not JSON", answer.status))
        })?;
        let message = || {
            envelope["data"]["message"]
                .as_str()
                .or(envelope["message"].as_str())
                .unwrap_or("no message")
                .to_owned()
        };
        match answer.status {
            200..=299 => Ok(envelope),
            401 => Err(CtlError::Unauthorized {
                addr: self.target.api.clone(),
                used: source.clone(),
                hint: message(),
            }),
            status => Err(CtlError::Api {
                status,
                message: message(),
            }),
        }
    }

    fn down(&self, error: HttpError) -> CtlError {
        if error.refused() {
            CtlError::NotRunning {
                addr: self.target.api.clone(),
            }
        } else {
            CtlError::Http(error)
        }
    }
}

/// `ctl reload`: `POST /v2/system/reload`, then what was applied and what needs a restart.
fn reload(api: &Api<'_>, json: bool, out: &mut dyn Write) -> Result<(), CtlError> {
    let envelope = api.v2("POST", "/v2/system/reload", Some("{}"))?;
    let data = &envelope["data"];
    if json {
        writeln!(out, "{data}")?;
        return Ok(());
    }
    let list = |key: &str| -> Vec<String> {
        data[key]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (applied, restart, problems) = (list("applied"), list("need_restart"), list("problems"));
    if applied.is_empty() && restart.is_empty() {
        writeln!(out, "configuration reloaded: nothing changed")?;
    } else {
        writeln!(out, "configuration reloaded")?;
    }
    if !applied.is_empty() {
        writeln!(out, "  applied:       {}", applied.join(", "))?;
    }
    if !restart.is_empty() {
        writeln!(out, "  needs restart: {}", restart.join(", "))?;
    }
    for problem in problems {
        writeln!(out, "  problem:       {problem}")?;
    }
    Ok(())
}
