//! The `metaflow-proxy ctl` command line (a subcommand of [`super::cli::Cli`]): where the API
//! is, which token, and what to do. The client itself is in src/ctl.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// The long help of `metaflow-proxy ctl --help`: where the address and the token come from,
/// and the exit status.
pub const LONG_ABOUT: &str = "Control a running metaflow-proxy over its HTTP API, in the spirit of kamcmd and \
rtpengine-ctl.\n\n\
The API address is --api, else the api-listen of --config FILE, else 127.0.0.1:8000. The token \
is --token, else $METAFLOW_PROXY_TOKEN, else the first api-auth-tokens of --config FILE, else the \
generated token in DATA_DIR/api-token (DATA_DIR: the data-dir of --config FILE, else ./data).\n\n\
Exit status: 0 when the action succeeded, 1 when it did not (the reason on standard error), \
2 for a command line error.";

/// Options of `metaflow-proxy ctl`, valid before or after the action.
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct CtlArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: CtlAction,

    /// The proxy's API address [default: api-listen of --config, else 127.0.0.1:8000].
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub api: Option<String>,

    /// The X-Auth-Token to send [default: $METAFLOW_PROXY_TOKEN, else --config's
    /// api-auth-tokens, else DATA_DIR/api-token].
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,

    /// The proxy's configuration file, read for api-listen, api-auth-tokens and data-dir.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The actions of `metaflow-proxy ctl`.
#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum CtlAction {
    /// List the calls in progress: call id, from, to, state, age and legs.
    Calls,
    /// Hang up a call in progress (BYE on every leg), by the caller's Call-ID as `calls` shows it.
    Hangup {
        /// The call's Call-ID (the a-leg's, as `ctl calls` lists it).
        #[arg(value_name = "CALL_ID")]
        call_id: String,
        /// The call's account [default: found among the listed calls, else "default"].
        #[arg(long, value_name = "ID")]
        account: Option<String>,
    },
    /// Reload the configuration as SIGHUP does; print what was applied and what needs a restart.
    Reload,
    /// A short summary of /metrics: active calls, calls by outcome, digits, module runs, drops.
    Stats,
}
