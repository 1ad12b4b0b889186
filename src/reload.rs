//! SIGHUP (or `POST /v2/system/reload`): reload what can change while calls run, reopen the event log, and say what changed
//! and what waits for a restart. A configuration that does not load changes nothing.

use std::net::SocketAddr;

use tokio::sync::mpsc;

use metaflow_proxy::api::v2::ReloadOutcome;
use metaflow_proxy::api::v2::V2State;
use metaflow_proxy::app::shell::Control;
use metaflow_proxy::app::startup;
use metaflow_proxy::base::ErrorChain;
use metaflow_proxy::config::Config;
use metaflow_proxy::config::cli::Cli;
use metaflow_proxy::config::reload::changes;
use metaflow_proxy::events::EventLog;
use metaflow_proxy::events::logging::LogLevel;

/// What a reload needs from the running proxy.
pub(crate) struct Reloader {
    /// The command line, read again with the file it names.
    pub(crate) cli: Cli,
    /// The configuration in force; reloadable keys are updated in place.
    pub(crate) current: Config,
    /// Changes the log filter.
    pub(crate) log_level: LogLevel,
    /// The store, for the metaflows file.
    pub(crate) v2: V2State,
    /// The SIP task, which hands new settings to the call core.
    pub(crate) control: mpsc::Sender<Control>,
    /// The event log, reopened on every SIGHUP (logrotate's signal).
    pub(crate) events: EventLog,
    /// The bound SIP address, which a reload never changes.
    pub(crate) local: SocketAddr,
}

impl Reloader {
    /// Handles one SIGHUP (or `POST /v2/system/reload`) and returns what it did, as it logs it;
    /// `via` starts every log line (`SIGHUP`, `API reload`). Calls in progress are never touched.
    pub(crate) async fn reload(&mut self, via: &str) -> ReloadOutcome {
        self.events.reopen().await;
        let (new, preflight) = match load(&self.cli) {
            Ok(loaded) => loaded,
            Err(reason) => {
                tracing::error!(error = %reason, "{via}: the configuration does not load; nothing changed");
                return ReloadOutcome::refused(reason);
            }
        };
        let found = changes(&self.current, &new);
        let mut outcome = ReloadOutcome::accepted(&found.applied, &found.need_restart);
        if found.applied.contains(&"log-level") {
            match self.log_level.set(&new.log_level) {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!("{via}: log-level changed but RUST_LOG is set and wins");
                    outcome
                        .problems
                        .push("log-level changed but RUST_LOG is set and wins".into());
                }
                Err(err) => {
                    tracing::error!(error = %err, "{via}: log-level not applied");
                    outcome
                        .problems
                        .push(format!("log-level not applied: {err}"));
                }
            }
        }
        // The file is read again even when its name did not change: its content may have.
        let data_dir = self.current.data_dir.clone();
        let v2 = self.v2.clone();
        let doc = preflight.metaflows;
        let synced = tokio::task::spawn_blocking(move || {
            startup::sync_metaflows_file(&v2, &data_dir, doc.as_ref())
        })
        .await;
        match synced {
            Ok(Ok(outcome)) => tracing::info!(?outcome, "{via}: metaflows file"),
            Ok(Err(err)) => {
                tracing::error!(error = %err, "{via}: metaflows file not applied");
                outcome
                    .problems
                    .push(format!("metaflows file not applied: {err}"));
            }
            Err(err) => {
                tracing::error!(error = %err, "{via}: metaflows file not applied");
                outcome
                    .problems
                    .push(format!("metaflows file not applied: {err}"));
            }
        }
        self.apply(&new);
        self.v2
            .directory()
            .set_system(crate::settings::metaflow_system(&self.current));
        let core = crate::settings::core_config(
            &self.current,
            self.local,
            self.current.media_ip_advertised(),
        );
        if self
            .control
            .send(Control::Reconfigure(Box::new(core)))
            .await
            .is_err()
        {
            tracing::error!("{via}: the SIP task is gone; call settings not applied");
            outcome
                .problems
                .push("the SIP task is gone; call settings not applied".into());
        }
        tracing::info!(
            applied = ?found.applied,
            need_restart = ?found.need_restart,
            "{via}: configuration reloaded{}",
            if found.need_restart.is_empty() { "" } else { "; restart to apply the rest" }
        );
        outcome
    }

    /// Takes the reloadable keys of `new` into the configuration in force.
    fn apply(&mut self, new: &Config) {
        apply_reloadable(&mut self.current, new);
    }
}

/// Copies every reloadable key (`config::reload::RELOADABLE`) of `new` into `cur`.
fn apply_reloadable(cur: &mut Config, new: &Config) {
    cur.log_level = new.log_level.clone();
    cur.metaflows = new.metaflows.clone();
    cur.upstream = new.upstream;
    cur.upstream_host = new.upstream_host.clone();
    cur.upstream_transport = new.upstream_transport;
    cur.pbx_addresses = new.pbx_addresses.clone();
    cur.rate_limit_exempt = new.rate_limit_exempt.clone();
    cur.drop_scanners = new.drop_scanners;
    cur.scanner_user_agents = new.scanner_user_agents.clone();
    cur.rate_limit_requests = new.rate_limit_requests;
    cur.rate_limit_window = new.rate_limit_window;
    cur.rate_limit_block = new.rate_limit_block;
    cur.rate_limit_max_sources = new.rate_limit_max_sources;
    cur.max_calls = new.max_calls;
    cur.max_transactions = new.max_transactions;
    cur.max_registrations = new.max_registrations;
    cur.timer_c = new.timer_c;
    cur.digit_timeout = new.digit_timeout;
    cur.fast_rearm = new.fast_rearm;
    cur.no_answer_timeout = new.no_answer_timeout;
    cur.shutdown_grace = new.shutdown_grace;
    cur.placed_call_from = new.placed_call_from.clone();
}

/// The configuration as start-up would load it, with start-up's own checks, or why not (the
/// whole chain of causes).
fn load(cli: &Cli) -> Result<(Config, startup::Preflight), String> {
    let new = Config::load(cli).map_err(|e| ErrorChain(&e).to_string())?;
    let preflight = startup::preflight(&new).map_err(|e| ErrorChain(&e).to_string())?;
    Ok((new, preflight))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After a reload no reloadable key still differs: each one in `RELOADABLE` is copied.
    #[test]
    fn every_reloadable_key_is_taken() {
        let mut cur = Config::default();
        let new = Config {
            placed_call_from: metaflow_proxy::base::PlacedCallFrom::Replaced,
            max_calls: cur.max_calls + 1,
            shutdown_grace: cur.shutdown_grace + std::time::Duration::from_secs(1),
            timer_c: cur.timer_c + std::time::Duration::from_secs(1),
            ..Config::default()
        };
        assert_eq!(changes(&cur, &new).applied.len(), 4);
        apply_reloadable(&mut cur, &new);
        let left = changes(&cur, &new);
        assert!(left.applied.is_empty(), "not taken: {:?}", left.applied);
    }
}
