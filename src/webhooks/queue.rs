//! Batching: a receiver's events are gathered into one request of up to [`MAX_BATCH`] events or
//! whatever arrived within [`FLUSH_INTERVAL`] of the first, so a busy proxy sends few requests
//! and a quiet one still delivers within a fraction of a second.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

/// Events per request at most.
pub const MAX_BATCH: usize = 100;
/// How long the first event of a batch waits for others.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(250);
/// Events that may wait per receiver before new ones are dropped (and counted): a receiver that
/// is down for a while loses the newest events rather than growing the proxy's memory.
pub const QUEUE_CAPACITY: usize = 4096;

/// Waits for the next batch: `None` once the queue is closed and empty.
pub async fn next_batch(
    receiver: &mut mpsc::Receiver<Value>,
    max: usize,
    window: Duration,
) -> Option<Vec<Value>> {
    let first = receiver.recv().await?;
    let mut batch = vec![first];
    let deadline = tokio::time::Instant::now() + window;
    while batch.len() < max.max(1) {
        match tokio::time::timeout_at(deadline, receiver.recv()).await {
            Ok(Some(event)) => batch.push(event),
            Ok(None) | Err(_) => break,
        }
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn a_batch_ends_at_its_size_or_its_window() {
        let window = Duration::from_millis(200);
        let (tx, mut rx) = mpsc::channel(16);
        for i in 0..5 {
            tx.try_send(json!(i)).unwrap();
        }
        let batch = next_batch(&mut rx, 3, window).await.unwrap();
        assert_eq!(batch, [json!(0), json!(1), json!(2)]);
        let batch = next_batch(&mut rx, 3, window).await.unwrap();
        assert_eq!(batch, [json!(3), json!(4)]);
        let sender = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            sender.send(json!("a")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(600)).await;
            sender.send(json!("late")).await.unwrap();
        });
        let started = tokio::time::Instant::now();
        let batch = next_batch(&mut rx, 3, window).await.unwrap();
        assert_eq!(
            batch,
            [json!("a")],
            "the late event waits for the next batch"
        );
        assert!(started.elapsed() >= window);
        drop(tx);
        assert_eq!(
            next_batch(&mut rx, 3, window).await,
            Some(vec![json!("late")])
        );
        assert_eq!(next_batch(&mut rx, 3, window).await, None);
    }
}
