//! Registration bindings in `mfp_registrations`, so that they survive a restart of the node
//! they were relayed through. The core reports each change to a [`RegistrationWriter`], which
//! only queues it (bounded, never waiting); a task writes the queue to the database, keeping
//! the latest change per binding while the database is away. At start the node reads its
//! unexpired bindings back ([`load`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::link::{Quiet, timed};
use super::{ClusterError, Shared};
use crate::b2bua::{BindingChange, BindingSink, StoredBinding};
use crate::sip::transport::{Peer, Transport};

/// Changes queued between the SIP task and the writer task.
pub const QUEUE: usize = 1024;
/// Bindings whose latest change waits for the database at most (one per phone contact).
pub const MAX_PENDING: usize = 10_000;
/// The most bindings read back at start.
const MAX_LOADED: i64 = 100_000;
/// How often pending changes are retried while the database is away.
const RETRY: Duration = Duration::from_secs(1);

/// The core's [`BindingSink`]: queues each change for the writer task; when the queue is full
/// the change is dropped (the phone's next refresh writes it again).
pub struct RegistrationWriter {
    queue: mpsc::Sender<BindingChange>,
}

impl BindingSink for RegistrationWriter {
    fn changed(&mut self, change: BindingChange) {
        if self.queue.try_send(change).is_err() {
            tracing::debug!("registration change not queued for the cluster database (queue full)");
        }
    }
}

impl RegistrationWriter {
    /// A writer feeding `queue`.
    pub(super) fn new(queue: mpsc::Sender<BindingChange>) -> Self {
        Self { queue }
    }
}

/// The `binding` column: where calls to the phone go.
pub fn encode(source: Peer) -> String {
    let transport = match source.transport {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
    };
    json!({"transport": transport, "source": source.addr.to_string()}).to_string()
}

/// A binding back from its row, `remaining_secs` before it expires, counted from `now`; `None`
/// when the row is unusable or expired.
pub fn decode(
    aor: String,
    contact: String,
    binding: &str,
    remaining_secs: f64,
    now: Instant,
) -> Option<StoredBinding> {
    if !remaining_secs.is_finite() || remaining_secs <= 0.0 {
        return None;
    }
    let value: Value = serde_json::from_str(binding).ok()?;
    let addr: SocketAddr = value.get("source")?.as_str()?.parse().ok()?;
    let transport = match value.get("transport")?.as_str()? {
        "udp" => Transport::Udp,
        "tcp" => Transport::Tcp,
        _ => return None,
    };
    let remaining = Duration::try_from_secs_f64(remaining_secs).ok()?;
    Some(StoredBinding {
        aor,
        contact,
        source: Peer { transport, addr },
        expires_at: now.checked_add(remaining)?,
    })
}

fn key_of(change: &BindingChange) -> (String, String) {
    match change {
        BindingChange::Bound(b) => (b.aor.clone(), b.contact.clone()),
        BindingChange::Removed { aor, contact } => (aor.clone(), contact.clone()),
    }
}

/// Writes one change for this node.
async fn write(
    shared: &Shared,
    client: &Client,
    change: &BindingChange,
) -> Result<(), ClusterError> {
    let node = &shared.settings.node_id;
    let remaining = match change {
        BindingChange::Bound(b) => b.expires_at.saturating_duration_since(Instant::now()),
        BindingChange::Removed { .. } => Duration::ZERO,
    };
    match change {
        BindingChange::Bound(b) if !remaining.is_zero() => {
            timed(client.execute(
                "INSERT INTO mfp_registrations (node_id, aor, contact, binding, expires) \
                 VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) \
                 ON CONFLICT (node_id, aor, contact) DO UPDATE SET \
                   binding = excluded.binding, expires = excluded.expires",
                &[
                    node,
                    &b.aor,
                    &b.contact,
                    &encode(b.source),
                    &remaining.as_secs_f64(),
                ],
            ))
            .await?;
        }
        _ => {
            let (aor, contact) = key_of(change);
            timed(client.execute(
                "DELETE FROM mfp_registrations WHERE node_id = $1 AND aor = $2 AND contact = $3",
                &[node, &aor, &contact],
            ))
            .await?;
        }
    }
    Ok(())
}

/// The writer task: runs until every [`RegistrationWriter`] is gone.
pub(super) async fn run(shared: Arc<Shared>, mut queue: mpsc::Receiver<BindingChange>) {
    let quiet = Quiet::new("registrations");
    let mut pending: HashMap<(String, String), BindingChange> = HashMap::new();
    let mut open = true;
    loop {
        let next = if !open {
            tokio::time::sleep(RETRY).await;
            None
        } else if pending.is_empty() {
            queue.recv().await
        } else {
            tokio::time::timeout(RETRY, queue.recv())
                .await
                .ok()
                .flatten()
        };
        if next.is_none() && queue.is_closed() && queue.is_empty() {
            open = false;
        }
        for change in next
            .into_iter()
            .chain(std::iter::from_fn(|| queue.try_recv().ok()))
        {
            let key = key_of(&change);
            if pending.len() < MAX_PENDING || pending.contains_key(&key) {
                pending.insert(key, change);
            }
        }
        if !open && pending.is_empty() {
            return;
        }
        let Ok(client) = shared.link.client() else {
            continue;
        };
        let keys: Vec<(String, String)> = pending.keys().cloned().collect();
        for key in keys {
            let Some(change) = pending.get(&key) else {
                continue;
            };
            match write(&shared, &client, change).await {
                Ok(()) => {
                    pending.remove(&key);
                    quiet.ok();
                }
                Err(error) => {
                    quiet.failed(&crate::base::ErrorChain(&error).to_string());
                    break;
                }
            }
        }
    }
}

/// This node's unexpired bindings, waiting at most `wait` for the database.
pub(super) async fn load(
    shared: &Shared,
    wait: Duration,
) -> Result<Vec<StoredBinding>, ClusterError> {
    let deadline = Instant::now() + wait;
    let client = loop {
        match shared.link.client() {
            Ok(client) => break client,
            Err(error) if Instant::now() >= deadline => return Err(error),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let rows = timed(client.query(
        "SELECT aor, contact, binding, extract(epoch FROM expires - now())::float8 \
         FROM mfp_registrations WHERE node_id = $1 AND expires > now() LIMIT $2",
        &[&shared.settings.node_id, &MAX_LOADED],
    ))
    .await?;
    let now = Instant::now();
    let mut bindings = Vec::with_capacity(rows.len());
    for row in rows {
        let binding: String = row.try_get(2)?;
        if let Some(b) = decode(
            row.try_get(0)?,
            row.try_get(1)?,
            &binding,
            row.try_get(3)?,
            now,
        ) {
            bindings.push(b);
        }
    }
    Ok(bindings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_comes_back_as_it_was_kept() {
        let now = Instant::now();
        let source = Peer {
            transport: Transport::Tcp,
            addr: "198.51.100.7:40123".parse().unwrap(),
        };
        let text = encode(source);
        let back = decode(
            "sip:a@pbx".into(),
            "sip:a@10.0.0.5".into(),
            &text,
            30.0,
            now,
        )
        .unwrap();
        assert_eq!(back.source, source);
        assert_eq!(back.expires_at, now + Duration::from_secs(30));
        assert!(
            decode("a".into(), "c".into(), &text, 0.0, now).is_none(),
            "expired"
        );
        assert!(decode("a".into(), "c".into(), &text, f64::NAN, now).is_none());
        assert!(decode("a".into(), "c".into(), "{}", 30.0, now).is_none());
        assert!(
            decode(
                "a".into(),
                "c".into(),
                r#"{"transport":"sctp","source":"1.2.3.4:5"}"#,
                30.0,
                now
            )
            .is_none()
        );
    }
}
