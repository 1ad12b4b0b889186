//! Who is up: each node upserts its row of `mfp_nodes` at start and then every [`HEARTBEAT`];
//! a node whose heartbeat is younger than [`ALIVE_WITHIN`] is alive. The heartbeat task also
//! keeps the shared tables bounded: the calls of nodes dead for [`DEAD_AFTER`], nodes silent
//! for [`FORGET_AFTER`] (with their recordings' rows) and expired registrations are deleted.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_postgres::Client;

use super::link::{Quiet, timed};
use super::{ClusterError, Shared};

/// How often a node refreshes its row.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A node is alive while its heartbeat is younger than this.
pub const ALIVE_WITHIN: Duration = Duration::from_secs(10);
/// After this long without a heartbeat, a node's calls are taken as gone (it crashed; if it
/// comes back it writes them again).
pub const DEAD_AFTER: Duration = Duration::from_secs(60);
/// After this long without a heartbeat, a node's row is deleted.
pub const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Every how many heartbeats the tables are pruned.
const PRUNE_EVERY: u32 = 15;

/// Whether a node whose heartbeat is `age_secs` old (by the database's clock) is alive.
pub fn is_alive(age_secs: f64) -> bool {
    age_secs.is_finite() && age_secs < ALIVE_WITHIN.as_secs_f64()
}

/// Writes this node's row; `first` (the first beat since start) also resets `started_at`,
/// after a warning if another alive node has the same id.
async fn beat(shared: &Shared, client: &Client, first: bool) -> Result<(), ClusterError> {
    let s = &shared.settings;
    if first {
        let sip_addr = s.sip_addr.to_string();
        let row = timed(client.query_opt(
            "SELECT sip_addr, extract(epoch FROM now() - heartbeat)::float8 FROM mfp_nodes WHERE id = $1",
            &[&s.node_id],
        ))
        .await?;
        if let Some(row) = row {
            let other: String = row.try_get(0)?;
            let age: f64 = row.try_get(1)?;
            if other != sip_addr && is_alive(age) {
                tracing::warn!(node = %s.node_id, other_sip = %other, "another alive proxy has this node-id: give each proxy its own");
            }
        }
    }
    timed(client.execute(
        "INSERT INTO mfp_nodes (id, sip_addr, api_addr, started_at, heartbeat) \
         VALUES ($1, $2, $3, now(), now()) \
         ON CONFLICT (id) DO UPDATE SET sip_addr = excluded.sip_addr, \
           api_addr = excluded.api_addr, heartbeat = now(), \
           started_at = CASE WHEN $4 THEN now() ELSE mfp_nodes.started_at END",
        &[
            &s.node_id,
            &s.sip_addr.to_string(),
            &s.api_addr.to_string(),
            &first,
        ],
    ))
    .await?;
    Ok(())
}

/// Deletes what nobody keeps up to date any more.
async fn prune(client: &Client) -> Result<(), ClusterError> {
    let dead = DEAD_AFTER.as_secs_f64();
    let forget = FORGET_AFTER.as_secs_f64();
    timed(client.execute(
        "DELETE FROM mfp_live_calls l WHERE NOT EXISTS (SELECT 1 FROM mfp_nodes n \
         WHERE n.id = l.node_id AND n.heartbeat > now() - make_interval(secs => $1))",
        &[&dead],
    ))
    .await?;
    timed(client.execute(
        "DELETE FROM mfp_nodes WHERE heartbeat < now() - make_interval(secs => $1)",
        &[&forget],
    ))
    .await?;
    timed(client.execute("DELETE FROM mfp_registrations WHERE expires < now()", &[])).await?;
    timed(client.execute(
        "DELETE FROM mfp_recordings r WHERE NOT EXISTS \
         (SELECT 1 FROM mfp_nodes n WHERE n.id = r.node_id)",
        &[],
    ))
    .await?;
    Ok(())
}

/// The heartbeat task: every [`HEARTBEAT`], this node's row (and the secret until it is known),
/// with pruning every [`PRUNE_EVERY`] beats.
pub(super) async fn run(shared: std::sync::Arc<Shared>) {
    let quiet = Quiet::new("heartbeat");
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first = true;
    let mut beats = 0u32;
    loop {
        tick.tick().await;
        let Ok(client) = shared.link.client() else {
            continue; // the link logs its own state
        };
        let generation = shared.link.generation();
        let outcome = async {
            beat(&shared, &client, first).await?;
            shared.announced_on.store(generation, Ordering::SeqCst);
            shared.secret.load(&client).await?;
            if beats.is_multiple_of(PRUNE_EVERY) {
                prune(&client).await?;
            }
            Ok::<(), ClusterError>(())
        }
        .await;
        match outcome {
            Ok(()) => {
                quiet.ok();
                first = false;
                beats = beats.wrapping_add(1);
            }
            Err(error) => quiet.failed(&crate::base::ErrorChain(&error).to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_alive_for_ten_seconds_after_its_heartbeat() {
        assert!(is_alive(0.0));
        assert!(is_alive(9.9));
        assert!(!is_alive(10.0));
        assert!(!is_alive(3600.0));
        assert!(!is_alive(f64::NAN));
        // A clock a little ahead of the database's still counts as fresh.
        assert!(is_alive(-0.5));
    }
}
