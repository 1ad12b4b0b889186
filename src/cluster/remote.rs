//! What this node reads about the other nodes' calls: the channels of alive nodes for an
//! account, and which node holds a call. Every read is bounded in rows and in time.

use serde_json::Value;

use super::link::timed;
use super::nodes::is_alive;
use super::{ClusterError, Shared};

/// The most remote channels one listing returns.
pub const MAX_REMOTE_CHANNELS: i64 = 10_000;

/// Another node, as a forwarded request reaches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The node's id.
    pub node_id: String,
    /// Its API address (`host:port`).
    pub api_addr: String,
}

/// Adds `"node": node_id` to a channel object (left alone if it is not an object).
pub fn with_node(mut channel: Value, node_id: &str) -> Value {
    if let Value::Object(fields) = &mut channel {
        fields.insert("node".into(), Value::String(node_id.to_owned()));
    }
    channel
}

/// The channels of `account` held by the other alive nodes, each naming its node.
pub(super) async fn channels(shared: &Shared, account: &str) -> Result<Vec<Value>, ClusterError> {
    let client = shared.link.client()?;
    let rows = timed(client.query(
        "SELECT l.node_id, l.channel, extract(epoch FROM now() - n.heartbeat)::float8 \
         FROM mfp_live_calls l JOIN mfp_nodes n ON n.id = l.node_id \
         WHERE l.account = $1 AND l.node_id <> $2 ORDER BY l.node_id, l.call_id LIMIT $3",
        &[&account, &shared.settings.node_id, &MAX_REMOTE_CHANNELS],
    ))
    .await?;
    let mut channels = Vec::with_capacity(rows.len());
    for row in rows {
        let node: String = row.try_get(0)?;
        let channel: String = row.try_get(1)?;
        let age: f64 = row.try_get(2)?;
        if !is_alive(age) {
            continue;
        }
        match serde_json::from_str::<Value>(&channel) {
            Ok(channel) => channels.push(with_node(channel, &node)),
            Err(error) => tracing::debug!(%node, %error, "unreadable channel row skipped"),
        }
    }
    Ok(channels)
}

/// The alive node other than this one that holds call `call_id` of `account`, if any.
pub(super) async fn call_owner(
    shared: &Shared,
    account: &str,
    call_id: &str,
) -> Result<Option<Owner>, ClusterError> {
    let client = shared.link.client()?;
    let row = timed(client.query_opt(
        "SELECT n.id, n.api_addr, extract(epoch FROM now() - n.heartbeat)::float8 \
         FROM mfp_live_calls l JOIN mfp_nodes n ON n.id = l.node_id \
         WHERE l.call_id = $1 AND l.account = $2 AND l.node_id <> $3",
        &[&call_id, &account, &shared.settings.node_id],
    ))
    .await?;
    owner_of(row)
}

/// The alive node a row of (id, api_addr, heartbeat age) names.
pub(super) fn owner_of(row: Option<tokio_postgres::Row>) -> Result<Option<Owner>, ClusterError> {
    let Some(row) = row else {
        return Ok(None);
    };
    let age: f64 = row.try_get(2)?;
    if !is_alive(age) {
        return Ok(None);
    }
    Ok(Some(Owner {
        node_id: row.try_get(0)?,
        api_addr: row.try_get(1)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_names_its_node() {
        let channel = with_node(serde_json::json!({"call_id": "c1"}), "proxy-b");
        assert_eq!(channel["node"], "proxy-b");
        assert_eq!(with_node(Value::Null, "x"), Value::Null);
    }
}
