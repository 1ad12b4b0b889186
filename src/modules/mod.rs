//! Metaflow modules: what runs on a live call when a code matches.
//!
//! One folder per module (`hangup`, `transfer`, `record`, `hold`, `resume`, `play`, `tts`,
//! `say`, `interrupt` for `break`, `audio_level`), each a [`catalog::ModuleKind`]: it
//! checks its node's `data` into typed parameters and starts a [`context::Module`] that acts on
//! the call only through the [`context::CallContext`] the call core offers. [`catalog`] lists
//! them; adding a module is one folder plus one line there. Nothing here depends on the call
//! core or the metaflow engine: the engine parses nodes through the catalog, and the core runs
//! what it parsed.

pub mod audio_level;
pub mod callflow;
pub mod catalog;
pub mod context;
pub mod data;
pub mod hangup;
pub mod hold;
pub mod intercept;
pub mod interrupt;
pub mod move_to;
pub mod play;
pub mod record;
pub mod resume;
pub mod say;
pub mod speaker;
pub mod transfer;
pub mod tts;

pub use catalog::{ModuleKind, ModuleSpec};
pub use context::{CallContext, Module, PlayOptions, Progress, RunInfo};

/// Names of the modules a metaflow node may use.
pub const KNOWN: &[&str] = ModuleSpec::NAMES;

/// Module-specific checks of a node's `data`: every problem, with its path below the node
/// (`data.FIELD`). Unknown modules have no checks here (the metaflow schema refuses them).
pub fn validate_node_data(
    module: &str,
    data: &serde_json::Map<String, serde_json::Value>,
) -> Vec<crate::base::Problem> {
    match ModuleSpec::parse(module, data) {
        Some(Err(problems)) => problems,
        _ => Vec::new(),
    }
}

/// Fills in the defaults a stored node gets (Kazoo's normalised form, e.g. a transfer node's
/// `transfer_type` and `captures`).
pub fn normalise_node_data(module: &str, data: &mut serde_json::Map<String, serde_json::Value>) {
    ModuleSpec::normalise(module, data);
}
