//! Deterministic simulation of the call core: a scripted phone and a scripted PBX talk to the
//! core over a simulated network (latency, jitter, loss, targeted faults) on a fake clock, with
//! one seed behind every random choice. Tests drive the core only through its public doors
//! (`handle`, `poll_output`, `poll_timeout`) and assert what can be observed: messages on the
//! wire, events, recording requests, media requests, and when they happen.
//!
//! One concern per file: [`net`] the wire, [`endpoint`] a scripted user agent, [`dialog`] its
//! dialog state, [`sip`] message builders, [`media`] the fake media plane, [`harness`] the
//! clock and the driving loop, [`expect`] waiting for messages, [`call`] common call flows;
//! then the tests by behaviour area (`tests_*`).

mod call;
mod dialog;
mod endpoint;
mod expect;
mod harness;
pub(super) mod media;
mod net;
mod sip;

mod tests_attended;
mod tests_auth;
mod tests_cancel;
mod tests_determinism;
mod tests_dialog;
mod tests_digits;
mod tests_guard;
mod tests_hold;
mod tests_invite;
mod tests_limits;
mod tests_loss;
mod tests_media;
mod tests_originate;
mod tests_originate_races;
mod tests_originate_sdp;
mod tests_owner;
mod tests_prack;
mod tests_record;
mod tests_register;
mod tests_routes;
mod tests_shutdown;
mod tests_swap;
mod tests_teardown;
mod tests_timeouts;
mod tests_timer_c;
mod tests_transfer;
