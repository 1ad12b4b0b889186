//! `replay`: plays both ends of a captured call through a live proxy and reports what the proxy
//! did. The caller and the PBX are stood in for from the capture's SIP and RTP; the proxy's
//! event log tells which digits it saw and which metaflow modules it ran. `capture::replay`
//! answers the offline question (what would the engine decide); this answers the live one.

mod agent;
mod corpus;
mod expect;
mod media;
mod observe;
mod offer;
mod plan;
mod run;
mod session;
mod webhook;

use std::path::PathBuf;

use thiserror::Error;

pub use corpus::{CorpusRow, render_table, run_corpus};
pub use expect::{Expectation, Mismatch, Outcome, diff, load_expectation};
pub use observe::{EventSummary, summarize_events};
pub use offer::{Format, Offer};
pub use plan::{Payload, Plan, Side, Step, plan_capture};
pub use run::{ReplayOptions, replay_file};

/// Why a replay could not run or could not be judged.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// The capture could not be decoded.
    #[error("not a usable capture")]
    Capture(#[from] crate::capture::CaptureError),
    /// A capture file could not be decoded.
    #[error("{path} is not a usable capture")]
    BadCapture {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: crate::capture::CaptureError,
    },
    /// A file could not be read.
    #[error("cannot read {path}")]
    File {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// An expectation file is not valid TOML or JSON of the expected shape.
    #[error("{path}: {message}")]
    Expectation {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field when known.
        message: String,
    },
    /// A socket could not be bound or used.
    #[error("{what}")]
    Network {
        /// Which socket and address.
        what: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The proxy did not set the call up.
    #[error("call setup failed: {0}")]
    Setup(String),
}
