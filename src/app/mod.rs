//! The application shell: the tokio tasks around the sans-IO call core (moving datagrams, time,
//! media and recorder events in, performing the core's output), the API's live-call adapter and
//! the store adapter that resolves a call's metaflows. It holds no call logic of its own; it is the
//! only place that knows both the call core and the API or the store.

pub mod directory;
pub mod fdlimit;
pub mod icmp;
pub mod notify;
pub mod registry;
pub mod shell;
pub mod sounds;
pub mod startup;

#[cfg(test)]
mod scrape_cost;
