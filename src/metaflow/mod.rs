//! Kazoo-compatible metaflows (Konami codes): the codes a party dials with DTMF during a live call
//! to run a module (transfer, record, hang up) on that call.
//!
//! Everything here is sans-IO. [`validate`] turns the Kazoo JSON object into a checked
//! [`Metaflows`]; a [`Collector`] per call takes digits and `now` and answers with relay verdicts,
//! timer deadlines and [`Decision`]s; [`engine`] turns a decision into the [`ModuleRun`] to execute
//! and walks the node's children by outcome.

pub mod collector;
pub mod engine;
pub mod limits;
mod liveness;
pub mod merge;
pub mod model;
pub mod pattern;
pub mod validate;

#[cfg(test)]
mod tests;

pub use collector::{Collector, Decision, DigitOutcome, RelayVerdict};
pub use engine::{ModuleRun, module_run, next_node};
pub use model::{InbandMode, ListenOn, MetaflowNode, MetaflowSystem, Metaflows, to_json};
pub use pattern::Pattern;
pub use validate::{load_metaflows_document, load_metaflows_file, parse_metaflows};
