//! `mfp_live_calls` kept in step with this node's calls, off the call path: every
//! [`SYNC_INTERVAL`] a task takes a snapshot of the local calls, compares it with what it last
//! wrote, and writes only the difference. After start, a reconnection and every
//! [`FULL_SYNC_EVERY`] rounds it first deletes every row of this node that is not a current
//! call (the rows a crash left behind) and writes every call again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_postgres::Client;

use super::link::{Quiet, timed};
use super::{ClusterError, Shared};

/// How often the local calls are compared with the table.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Every how many rounds the table is rewritten from scratch, which repairs rows someone else
/// deleted (a prune that took this node for dead while it was stalled).
const FULL_SYNC_EVERY: u32 = 30;

/// One call in progress on this node, as the channels API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveCall {
    /// The caller's Call-ID.
    pub call_id: String,
    /// The account the call belongs to.
    pub account: String,
    /// The Kazoo channel object, as JSON text.
    pub channel: String,
}

/// Where the cluster link reads this node's calls from (the process's live-call registry).
pub trait CallSource: Send + Sync {
    /// Every call in progress now.
    fn snapshot(&self) -> Vec<LiveCall>;
}

/// What the sync task must write to bring the table to the snapshot.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// New calls and calls whose channel changed.
    pub upserts: Vec<LiveCall>,
    /// Calls that ended.
    pub deletes: Vec<String>,
}

/// The difference between `written` (call id → channel text as last written) and `current`,
/// keeping at most `cap` calls in the table: calls already written keep their place, and new
/// ones are added while there is room.
pub fn diff(written: &HashMap<String, String>, current: Vec<LiveCall>, cap: usize) -> Diff {
    let current_ids: HashSet<&str> = current.iter().map(|c| c.call_id.as_str()).collect();
    let deletes: Vec<String> = written
        .keys()
        .filter(|id| !current_ids.contains(id.as_str()))
        .cloned()
        .collect();
    let mut room = cap.saturating_sub(written.len() - deletes.len());
    let mut upserts = Vec::new();
    for call in current {
        match written.get(&call.call_id) {
            Some(channel) if *channel == call.channel => {}
            Some(_) => upserts.push(call),
            None if room > 0 => {
                room -= 1;
                upserts.push(call);
            }
            None => {}
        }
    }
    Diff { upserts, deletes }
}

/// Deletes this node's rows other than `keep` (after start or a reconnection).
async fn delete_others(
    shared: &Shared,
    client: &Client,
    keep: &[String],
) -> Result<(), ClusterError> {
    timed(client.execute(
        "DELETE FROM mfp_live_calls WHERE node_id = $1 AND NOT (call_id = ANY($2))",
        &[&shared.settings.node_id, &keep],
    ))
    .await?;
    Ok(())
}

/// Writes `diff` for this node.
async fn apply(shared: &Shared, client: &Client, diff: &Diff) -> Result<(), ClusterError> {
    let node = &shared.settings.node_id;
    if !diff.deletes.is_empty() {
        timed(client.execute(
            "DELETE FROM mfp_live_calls WHERE node_id = $1 AND call_id = ANY($2)",
            &[node, &diff.deletes],
        ))
        .await?;
    }
    if !diff.upserts.is_empty() {
        let ids: Vec<&str> = diff.upserts.iter().map(|c| c.call_id.as_str()).collect();
        let accounts: Vec<&str> = diff.upserts.iter().map(|c| c.account.as_str()).collect();
        let channels: Vec<&str> = diff.upserts.iter().map(|c| c.channel.as_str()).collect();
        timed(client.execute(
            "INSERT INTO mfp_live_calls (call_id, node_id, account, channel, updated) \
             SELECT c, $1, a, ch, now() FROM unnest($2::text[], $3::text[], $4::text[]) AS t(c, a, ch) \
             ON CONFLICT (call_id) DO UPDATE SET node_id = excluded.node_id, \
               account = excluded.account, channel = excluded.channel, updated = now()",
            &[node, &ids, &accounts, &channels],
        ))
        .await?;
    }
    Ok(())
}

/// The sync task: runs for as long as the process does.
pub(super) async fn run(shared: Arc<Shared>, calls: Arc<dyn CallSource>) {
    let quiet = Quiet::new("live calls");
    let mut tick = tokio::time::interval(SYNC_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // What the table holds for this node, valid for connection `synced_on` only.
    let mut written: HashMap<String, String> = HashMap::new();
    let mut synced_on: Option<u64> = None;
    let mut rounds = 0u32;
    loop {
        tick.tick().await;
        let Ok(client) = shared.link.client() else {
            synced_on = None;
            continue;
        };
        let generation = shared.link.generation();
        if shared.announced_on.load(Ordering::SeqCst) != generation {
            continue; // the heartbeat writes this node's row first
        }
        rounds = rounds.wrapping_add(1);
        if rounds.is_multiple_of(FULL_SYNC_EVERY) {
            synced_on = None;
        }
        let current = calls.snapshot();
        let outcome = async {
            if synced_on != Some(generation) {
                let keep: Vec<String> = current.iter().map(|c| c.call_id.clone()).collect();
                delete_others(&shared, &client, &keep).await?;
                written.clear();
            }
            let diff = diff(&written, current, shared.settings.max_calls);
            apply(&shared, &client, &diff).await?;
            for id in &diff.deletes {
                written.remove(id);
            }
            for call in diff.upserts {
                written.insert(call.call_id, call.channel);
            }
            Ok::<(), ClusterError>(())
        }
        .await;
        match outcome {
            Ok(()) => {
                synced_on = Some(generation);
                quiet.ok();
            }
            Err(error) => {
                // Rewrite from scratch next time: what the table holds is unknown now.
                synced_on = None;
                quiet.failed(&crate::base::ErrorChain(&error).to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str, channel: &str) -> LiveCall {
        LiveCall {
            call_id: id.into(),
            account: "acc".into(),
            channel: channel.into(),
        }
    }

    fn written(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn new_changed_and_ended_calls_are_the_only_writes() {
        let before = written(&[("a", "{1}"), ("b", "{2}"), ("c", "{3}")]);
        let now = vec![
            call("a", "{1}"),
            call("b", "{2 answered}"),
            call("d", "{4}"),
        ];
        let mut d = diff(&before, now, 100);
        d.deletes.sort();
        assert_eq!(d.deletes, vec!["c".to_string()]);
        assert_eq!(d.upserts, vec![call("b", "{2 answered}"), call("d", "{4}")]);
        assert_eq!(
            diff(
                &before,
                vec![call("a", "{1}"), call("b", "{2}"), call("c", "{3}")],
                100
            ),
            Diff::default()
        );
    }

    #[test]
    fn the_table_never_holds_more_than_the_cap_and_written_calls_keep_their_place() {
        let before = written(&[("a", "{1}"), ("b", "{2}")]);
        let now = vec![
            call("0", "{0}"),
            call("a", "{1*}"),
            call("b", "{2}"),
            call("z", "{9}"),
        ];
        let d = diff(&before, now.clone(), 3);
        assert_eq!(d.upserts, vec![call("0", "{0}"), call("a", "{1*}")]);
        let d = diff(&before, now, 2);
        assert_eq!(d.upserts, vec![call("a", "{1*}")], "no room for new calls");
        // An ended call makes room in the same round.
        let d = diff(&before, vec![call("a", "{1}"), call("n", "{n}")], 2);
        assert_eq!(d.deletes, vec!["b".to_string()]);
        assert_eq!(d.upserts, vec![call("n", "{n}")]);
        assert_eq!(
            diff(&HashMap::new(), vec![call("x", "{}")], 0),
            Diff::default()
        );
    }
}
