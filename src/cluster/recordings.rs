//! `mfp_recordings`: which node keeps which finished recording. The file stays on the node that
//! made it; a task of that node lists its recordings folder every [`SCAN_INTERVAL`] (directory
//! entries only, reading just the sidecars it has not written yet) and inserts the new ones and
//! deletes the rows of recordings gone (deleted through the API or by retention). Rows thus
//! follow the files, and a node forgotten by the heartbeat's pruning takes its rows along.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use tokio_postgres::Client;

use super::link::{Quiet, timed};
use super::remote::Owner;
use super::{ClusterError, Shared};
use crate::modules::record::library;
use crate::modules::record::sidecar::{RECORDINGS_DIR, TEMP_SUFFIX};

/// How often the recordings folder is compared with the table.
pub const SCAN_INTERVAL: Duration = Duration::from_secs(10);
/// The most rows one node keeps in the table (the oldest beyond are left out).
pub const MAX_ROWS: usize = 100_000;
/// The most rows one listing returns.
const MAX_LISTED: i64 = 10_000;
/// How soon a scan is tried again when the link was not ready.
const NOT_READY_RETRY: Duration = Duration::from_secs(1);
/// Every how many scans the table is compared with the folder from scratch.
const FULL_SYNC_EVERY: u32 = 30;

/// The sidecars in the recordings folder of `data_dir`, by recording id (no file is read).
pub fn sidecars(data_dir: &Path) -> HashMap<String, PathBuf> {
    let mut found = HashMap::new();
    for day in library::day_dirs(&data_dir.join(RECORDINGS_DIR)) {
        let Ok(entries) = std::fs::read_dir(&day) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(id) = path
                .extension()
                .filter(|ext| *ext == "json")
                .and_then(|_| path.file_stem())
                .and_then(|stem| stem.to_str())
            else {
                continue;
            };
            if library::valid_id(id) && !id.ends_with(TEMP_SUFFIX) {
                found.insert(id.to_owned(), path.clone());
            }
        }
    }
    found
}

/// What one scan must write: ids to insert (with their sidecars) and ids to delete.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RecordingsDiff {
    /// New recordings, at most as many as fit under the cap.
    pub inserts: Vec<(String, PathBuf)>,
    /// Recordings no longer on disk.
    pub deletes: Vec<String>,
}

/// Compares the ids `written` with the sidecars `on_disk`, keeping at most `cap` rows.
pub fn diff_recordings(
    written: &HashSet<String>,
    on_disk: &HashMap<String, PathBuf>,
    cap: usize,
) -> RecordingsDiff {
    let mut deletes: Vec<String> = written
        .iter()
        .filter(|id| !on_disk.contains_key(*id))
        .cloned()
        .collect();
    deletes.sort();
    let mut room = cap.saturating_sub(written.len() - deletes.len());
    let mut new: Vec<(String, PathBuf)> = on_disk
        .iter()
        .filter(|(id, _)| !written.contains(*id))
        .map(|(id, path)| (id.clone(), path.clone()))
        .collect();
    new.sort();
    // Newest first when there is not room for all (ids end with their start time).
    new.reverse();
    let mut inserts = Vec::new();
    for item in new {
        if room == 0 {
            break;
        }
        room -= 1;
        inserts.push(item);
    }
    RecordingsDiff { inserts, deletes }
}

/// The row of one recording: its account ("" when the call had none) and its metadata (the
/// sidecar with the API's summary fields).
fn row_of(sidecar: &Path) -> Option<(String, String)> {
    let recording = library::load(sidecar)?;
    let account = recording.sidecar["account_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut meta = recording.sidecar.clone();
    if let (Value::Object(meta), Value::Object(summary)) = (&mut meta, recording.summary()) {
        meta.extend(summary);
    }
    Some((account, meta.to_string()))
}

async fn apply(
    shared: &Shared,
    client: &Client,
    diff: &RecordingsDiff,
) -> Result<Vec<String>, ClusterError> {
    let node = &shared.settings.node_id;
    if !diff.deletes.is_empty() {
        timed(client.execute(
            "DELETE FROM mfp_recordings WHERE node_id = $1 AND id = ANY($2)",
            &[node, &diff.deletes],
        ))
        .await?;
    }
    let paths: Vec<(String, PathBuf)> = diff.inserts.clone();
    let rows = tokio::task::spawn_blocking(move || {
        paths
            .into_iter()
            .filter_map(|(id, path)| row_of(&path).map(|(account, meta)| (id, account, meta)))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    for chunk in rows.chunks(500) {
        let ids: Vec<&str> = chunk.iter().map(|r| r.0.as_str()).collect();
        let accounts: Vec<&str> = chunk.iter().map(|r| r.1.as_str()).collect();
        let metas: Vec<&str> = chunk.iter().map(|r| r.2.as_str()).collect();
        timed(client.execute(
            "INSERT INTO mfp_recordings (id, node_id, account, meta) \
             SELECT i, $1, a, m FROM unnest($2::text[], $3::text[], $4::text[]) AS t(i, a, m) \
             ON CONFLICT (id) DO UPDATE SET node_id = excluded.node_id, \
               account = excluded.account, meta = excluded.meta",
            &[node, &ids, &accounts, &metas],
        ))
        .await?;
    }
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// The ids the table holds for this node.
async fn written_ids(shared: &Shared, client: &Client) -> Result<HashSet<String>, ClusterError> {
    let rows = timed(client.query(
        "SELECT id FROM mfp_recordings WHERE node_id = $1",
        &[&shared.settings.node_id],
    ))
    .await?;
    rows.iter()
        .map(|row| row.try_get::<_, String>(0).map_err(ClusterError::Query))
        .collect()
}

/// The scan task: runs for as long as the process does.
pub(super) async fn run(shared: Arc<Shared>, data_dir: PathBuf) {
    let quiet = Quiet::new("recordings");
    let mut written: HashSet<String> = HashSet::new();
    let mut synced_on: Option<u64> = None;
    let mut rounds = 0u32;
    let mut wait = Duration::ZERO;
    loop {
        tokio::time::sleep(wait).await;
        // Not ready yet (no connection, or this node's row not written): look again soon.
        wait = NOT_READY_RETRY;
        let Ok(client) = shared.link.client() else {
            synced_on = None;
            continue;
        };
        let generation = shared.link.generation();
        if shared.announced_on.load(Ordering::SeqCst) != generation {
            continue;
        }
        wait = SCAN_INTERVAL;
        rounds = rounds.wrapping_add(1);
        if rounds.is_multiple_of(FULL_SYNC_EVERY) {
            synced_on = None;
        }
        let dir = data_dir.clone();
        let on_disk = tokio::task::spawn_blocking(move || sidecars(&dir))
            .await
            .unwrap_or_default();
        let outcome = async {
            if synced_on != Some(generation) {
                written = written_ids(&shared, &client).await?;
            }
            let diff = diff_recordings(&written, &on_disk, MAX_ROWS);
            let inserted = apply(&shared, &client, &diff).await?;
            for id in &diff.deletes {
                written.remove(id);
            }
            written.extend(inserted);
            Ok::<(), ClusterError>(())
        }
        .await;
        match outcome {
            Ok(()) => {
                synced_on = Some(generation);
                quiet.ok();
            }
            Err(error) => {
                synced_on = None;
                quiet.failed(&crate::base::ErrorChain(&error).to_string());
            }
        }
    }
}

/// The other nodes' recordings of `account` (`""` rows count as `default_account`'s), each
/// as its stored metadata with its `node`.
pub(super) async fn list(
    shared: &Shared,
    account: &str,
    default_account: &str,
) -> Result<Vec<Value>, ClusterError> {
    let client = shared.link.client()?;
    let rows = timed(client.query(
        "SELECT node_id, meta FROM mfp_recordings \
         WHERE (account = $1 OR (account = '' AND $1 = $2)) AND node_id <> $3 \
         ORDER BY created DESC, id LIMIT $4",
        &[
            &account,
            &default_account,
            &shared.settings.node_id,
            &MAX_LISTED,
        ],
    ))
    .await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        let node: String = row.try_get(0)?;
        let meta: String = row.try_get(1)?;
        if let Ok(meta) = serde_json::from_str::<Value>(&meta) {
            found.push(super::remote::with_node(meta, &node));
        }
    }
    Ok(found)
}

/// The other node that keeps recording `id` of `account`, with its metadata; the node may be
/// down (see [`Owner`]'s aliveness in the answer).
pub(super) async fn owner(
    shared: &Shared,
    account: &str,
    default_account: &str,
    id: &str,
) -> Result<Option<(Option<Owner>, Value)>, ClusterError> {
    let client = shared.link.client()?;
    let row = timed(client.query_opt(
        "SELECT n.id, n.api_addr, extract(epoch FROM now() - n.heartbeat)::float8, r.meta, r.node_id \
         FROM mfp_recordings r LEFT JOIN mfp_nodes n ON n.id = r.node_id \
         WHERE r.id = $1 AND (r.account = $2 OR (r.account = '' AND $2 = $3)) AND r.node_id <> $4",
        &[&id, &account, &default_account, &shared.settings.node_id],
    ))
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let meta: String = row.try_get(3)?;
    let node: String = row.try_get(4)?;
    let meta = super::remote::with_node(serde_json::from_str(&meta).unwrap_or(Value::Null), &node);
    let age: Option<f64> = row.try_get(2)?;
    let owner = match (
        row.try_get::<_, Option<String>>(0)?,
        row.try_get::<_, Option<String>>(1)?,
    ) {
        (Some(node_id), Some(api_addr)) if age.is_some_and(super::is_alive) => {
            Some(Owner { node_id, api_addr })
        }
        _ => None,
    };
    Ok(Some((owner, meta)))
}

/// Deletes the row of recording `id` of this node at once (the scan would within
/// [`SCAN_INTERVAL`]).
pub(super) async fn forget(shared: &Shared, id: &str) -> Result<(), ClusterError> {
    let client = shared.link.client()?;
    timed(client.execute(
        "DELETE FROM mfp_recordings WHERE id = $1 AND node_id = $2",
        &[&id, &shared.settings.node_id],
    ))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(ids: &[&str]) -> HashMap<String, PathBuf> {
        ids.iter()
            .map(|id| (id.to_string(), PathBuf::from(format!("{id}.json"))))
            .collect()
    }

    #[test]
    fn rows_follow_the_files_up_to_the_cap() {
        let written: HashSet<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let d = diff_recordings(&written, &disk(&["b", "c"]), 10);
        assert_eq!(d.deletes, vec!["a".to_string()]);
        assert_eq!(d.inserts, vec![("c".to_string(), PathBuf::from("c.json"))]);
        let d = diff_recordings(&written, &disk(&["a", "b", "c1", "c2"]), 3);
        assert!(d.deletes.is_empty());
        assert_eq!(d.inserts.len(), 1);
        assert_eq!(d.inserts[0].0, "c2", "newest first");
        assert_eq!(
            diff_recordings(&written, &disk(&["a", "b"]), 10),
            RecordingsDiff::default()
        );
    }

    #[test]
    fn only_finished_sidecars_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let day = dir.path().join(RECORDINGS_DIR).join("2026/12/04");
        std::fs::create_dir_all(&day).unwrap();
        for name in ["r1.json", "r1.wav", "r2.part.json", ".x.json", "notes.txt"] {
            std::fs::write(day.join(name), b"{}").unwrap();
        }
        let found = sidecars(dir.path());
        assert_eq!(found.keys().collect::<Vec<_>>(), ["r1"]);
    }
}
