//! The connection to PostgreSQL: a thread of its own with a small runtime connects, migrates,
//! listens for change notifications, loads every document, drives the connection, and
//! reconnects with a growing pause (up to [`MAX_BACKOFF`]) whenever it is lost. A second thread
//! catches up with the changes the notifications announce (and every [`CATCH_UP_EVERY`] in
//! case one was missed); it is a thread because catching up waits on the connection that the
//! first one drives.

use std::future::poll_fn;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::Duration;

use tokio_postgres::{AsyncMessage, Client, NoTls};

use super::{CHANNEL, FirstConnection, Shared, migrate};
use crate::base::ErrorChain;

/// The longest pause between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// The first pause after a failed attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// How often the catch-up thread looks for changes without being told of any.
const CATCH_UP_EVERY: Duration = Duration::from_secs(5);

/// Starts the connection and catch-up threads.
pub(super) fn start(shared: Arc<Shared>, wake: Receiver<()>) -> std::io::Result<()> {
    let catching_up = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("store-catch-up".into())
        .spawn(move || catch_up_loop(&catching_up, &wake))?;
    std::thread::Builder::new()
        .name("store-postgres".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    shared.first_connection(FirstConnection::Fatal(format!(
                        "cannot start the connection runtime: {error}"
                    )));
                    return;
                }
            };
            runtime.block_on(supervise(shared));
        })?;
    Ok(())
}

/// Waits for wake-ups and catches up, until the store is dropped.
fn catch_up_loop(shared: &Shared, wake: &Receiver<()>) {
    loop {
        match wake.recv_timeout(CATCH_UP_EVERY) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        while wake.try_recv().is_ok() {}
        if shared.stopping.load(Ordering::Acquire) {
            return;
        }
        shared.catch_up();
    }
}

/// Connects, serves, and reconnects, until the store is dropped.
async fn supervise(shared: Arc<Shared>) {
    let mut backoff = FIRST_BACKOFF;
    let mut connected_before = false;
    while !shared.stopping.load(Ordering::Acquire) {
        match serve_one_connection(&shared, connected_before).await {
            Ok(lost) => {
                connected_before = true;
                backoff = FIRST_BACKOFF;
                if shared.stopping.load(Ordering::Acquire) {
                    return;
                }
                let reason = format!("PostgreSQL connection lost: {lost}");
                tracing::error!(url = %shared.shown_url, %reason, "store reconnecting; writes are refused meanwhile");
                shared.health.degraded(reason);
            }
            Err(Attempt::Fatal(reason)) => {
                tracing::error!(url = %shared.shown_url, %reason, "store cannot use this database");
                shared.health.degraded(reason.clone());
                shared.first_connection(FirstConnection::Fatal(reason));
            }
            Err(Attempt::Failed(reason)) => {
                let reason = format!("PostgreSQL not usable yet: {reason}");
                if shared.health.problem().as_deref() != Some(reason.as_str()) {
                    tracing::warn!(url = %shared.shown_url, %reason, "store not connected; retrying");
                    shared.health.degraded(reason);
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Why a connection attempt did not get to serving.
enum Attempt {
    /// Worth retrying (unreachable, refused, interrupted).
    Failed(String),
    /// Retrying cannot help (the schema is newer than this program).
    Fatal(String),
}

/// One connection from connect to loss: returns why it was lost once it had served.
async fn serve_one_connection(shared: &Arc<Shared>, reconnecting: bool) -> Result<String, Attempt> {
    let failed = |error: tokio_postgres::Error| Attempt::Failed(ErrorChain(&error).to_string());
    let (mut client, mut connection) = shared.config.connect(NoTls).await.map_err(failed)?;
    // Drive the connection from the start (every statement needs it), forwarding notifications.
    let notified = Arc::clone(shared);
    let driver = tokio::spawn(async move {
        loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => notified.wake_catch_up(),
                Some(Ok(AsyncMessage::Notice(notice))) => {
                    tracing::debug!(notice = %notice.message(), "PostgreSQL notice");
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return ErrorChain(&error).to_string(),
                None => return "the server closed the connection".to_owned(),
            }
        }
    });
    if let Err(error) = prepare(shared, &mut client).await {
        driver.abort();
        return Err(error);
    }
    *lock_slot(shared).await = Some(client);
    if shared.health.problem().is_some() {
        shared.health.recovered();
        tracing::info!(url = %shared.shown_url, "store connected to PostgreSQL again; writes are accepted");
    } else {
        tracing::info!(url = %shared.shown_url, "store connected to PostgreSQL");
    }
    shared.first_connection(FirstConnection::Ready);
    if reconnecting {
        shared.tell_listeners();
    }
    let lost = driver
        .await
        .unwrap_or_else(|error| format!("connection task ended: {error}"));
    lock_slot(shared).await.take();
    Ok(lost)
}

/// Migrates, listens, and loads every document.
async fn prepare(shared: &Shared, client: &mut Client) -> Result<(), Attempt> {
    match migrate::apply(client).await {
        Ok(_) => {}
        Err(migrate::MigrationError::Postgres(error)) => {
            let reason = ErrorChain(&error).to_string();
            return Err(Attempt::Failed(format!("schema migration: {reason}")));
        }
        Err(fatal) => return Err(Attempt::Fatal(fatal.to_string())),
    }
    let failed = |error: tokio_postgres::Error| Attempt::Failed(ErrorChain(&error).to_string());
    // Listen before loading: a change committed in between is then both loaded and announced
    // (applied once: by change number), never missed.
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(failed)?;
    let rows = client
        .query(
            "SELECT collection, account, id, rev, doc, seq FROM mfp_documents ORDER BY seq",
            &[],
        )
        .await
        .map_err(failed)?;
    shared.replace_all(&rows);
    Ok(())
}

/// Locks the client slot without blocking this thread's runtime (a writer may hold it while it
/// waits for a statement this runtime's connection task must carry).
async fn lock_slot(shared: &Shared) -> MutexGuard<'_, Option<Client>> {
    loop {
        match shared.client.try_lock() {
            Ok(guard) => return guard,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => {
                return PoisonError::into_inner(poisoned);
            }
            Err(std::sync::TryLockError::WouldBlock) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}
