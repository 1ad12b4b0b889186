//! The cluster's own PostgreSQL connection: opened in a task of the main runtime, watched, and
//! reopened with a growing wait (up to [`MAX_BACKOFF`]) whenever it drops, so that the link
//! outlives a database restart without anyone asking. Users borrow the current client or learn
//! that there is none; nobody ever waits for a connection to be made.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use super::ClusterError;

/// First wait before reconnecting; it doubles with each failure.
pub(super) const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between two connection attempts.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(4);
/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one query may take before its caller goes on without it.
pub(super) const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// The current connection, if any, and how many connections were made so far.
#[derive(Default)]
pub(super) struct Link {
    client: Mutex<Option<Arc<Client>>>,
    /// Grows with every new connection, so that a task can tell it must resynchronise.
    generation: AtomicU64,
}

impl Link {
    /// The connected client, or [`ClusterError::Down`].
    pub(super) fn client(&self) -> Result<Arc<Client>, ClusterError> {
        let slot = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.as_ref() {
            Some(client) if !client.is_closed() => Ok(Arc::clone(client)),
            _ => Err(ClusterError::Down),
        }
    }

    /// Which connection is current (0 before the first one).
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn set(&self, client: Option<Arc<Client>>) {
        let connected = client.is_some();
        *self.client.lock().unwrap_or_else(PoisonError::into_inner) = client;
        if connected {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The wait before reconnection attempt `failures` (0 for the first).
pub(super) fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .checked_mul(2u32.saturating_pow(failures))
        .map_or(MAX_BACKOFF, |wait| wait.min(MAX_BACKOFF))
}

/// Keeps `link` connected to `url` for as long as the process runs.
pub(super) async fn supervise(link: Arc<Link>, url: String) {
    let config = match tokio_postgres::Config::from_str(&url) {
        Ok(mut config) => {
            config
                .connect_timeout(CONNECT_TIMEOUT)
                .keepalives_idle(Duration::from_secs(10))
                .application_name("metaflow-proxy cluster");
            config
        }
        Err(error) => {
            let error = crate::base::ErrorChain(&error);
            tracing::error!(%error, "the store URL is not a usable PostgreSQL URL; the cluster link stays down");
            return;
        }
    };
    let down = Quiet::new("cluster database");
    let mut failures = 0u32;
    loop {
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls)).await;
        match attempt {
            Ok(Ok((client, connection))) => {
                failures = 0;
                link.set(Some(Arc::new(client)));
                down.ok();
                let ended = connection.await;
                link.set(None);
                match ended {
                    Ok(()) => down.failed("connection closed by the server"),
                    Err(error) => down.failed(&crate::base::ErrorChain(&error).to_string()),
                }
            }
            Ok(Err(error)) => down.failed(&crate::base::ErrorChain(&error).to_string()),
            Err(_) => down.failed("connection attempt timed out"),
        }
        tokio::time::sleep(backoff(failures)).await;
        failures = failures.saturating_add(1);
    }
}

/// Logs a failing part of the link once when it starts failing and once when it recovers,
/// rather than at every attempt.
pub(super) struct Quiet {
    what: &'static str,
    failing: AtomicBool,
}

impl Quiet {
    /// A part named `what` in the log, assumed healthy.
    pub(super) fn new(what: &'static str) -> Self {
        Self {
            what,
            failing: AtomicBool::new(false),
        }
    }

    /// Records a failure; logged only if the part was healthy until now.
    pub(super) fn failed(&self, reason: &str) {
        if !self.failing.swap(true, Ordering::SeqCst) {
            tracing::warn!(part = self.what, %reason, "cluster link degraded: this node answers with what it knows locally until it recovers");
        } else {
            tracing::debug!(part = self.what, %reason, "cluster link still degraded");
        }
    }

    /// Records a success; logged only if the part was failing until now.
    pub(super) fn ok(&self) {
        if self.failing.swap(false, Ordering::SeqCst) {
            tracing::info!(part = self.what, "cluster link recovered");
        }
    }
}

/// Runs `query` with [`QUERY_TIMEOUT`].
pub(super) async fn timed<T>(
    query: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, ClusterError> {
    match tokio::time::timeout(QUERY_TIMEOUT, query).await {
        Ok(outcome) => outcome.map_err(ClusterError::Query),
        Err(_) => Err(ClusterError::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnection_waits_grow_to_a_few_seconds() {
        assert_eq!(backoff(0), FIRST_BACKOFF);
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(4), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn without_a_connection_the_link_says_down_at_once() {
        let link = Link::default();
        assert!(matches!(link.client(), Err(ClusterError::Down)));
        assert_eq!(link.generation(), 0);
    }
}
