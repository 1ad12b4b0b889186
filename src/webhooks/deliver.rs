//! Sends a receiver's batches: one POST per batch with a timeout, retried with exponential
//! backoff on an error or a non-2xx status up to [`MAX_RETRIES`] times, then dropped and
//! counted. A receiver's retries delay only its own queue, never a call or another receiver.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::Request;
use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::config::WebhookUrl;
use super::queue::{FLUSH_INTERVAL, MAX_BATCH, next_batch};
use super::sign::{SIGNATURE_HEADER, TIMESTAMP_HEADER, signature};
use crate::metrics::FeatureMetrics;

/// How long one request may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Retries of a batch after its first attempt before it is dropped.
pub const MAX_RETRIES: u32 = 5;
/// Wait before the first retry; each further retry waits twice as long.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The receiver's name did not resolve or the connection was refused.
    #[error("cannot connect to {authority}")]
    Connect {
        /// `host:port`.
        authority: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The request could not be built (a URL the configuration accepted should always build).
    #[error("cannot build the request")]
    Build(#[source] hyper::http::Error),
    /// The HTTP exchange failed.
    #[error("HTTP exchange failed")]
    Http(#[source] hyper::Error),
    /// No answer within [`REQUEST_TIMEOUT`].
    #[error("no answer within {REQUEST_TIMEOUT:?}")]
    Timeout,
}

/// The wait before retry number `retry` (0 for the first retry).
pub fn backoff(retry: u32) -> Duration {
    FIRST_BACKOFF
        .checked_mul(2u32.saturating_pow(retry))
        .map_or(MAX_BACKOFF, |wait| wait.min(MAX_BACKOFF))
}

/// Unix time in seconds (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One receiver's task: batches its queue and delivers until the queue is closed and empty.
pub async fn run(
    url: WebhookUrl,
    secret: Option<Arc<[u8]>>,
    mut queue: mpsc::Receiver<Value>,
    metrics: Option<Arc<FeatureMetrics>>,
) {
    while let Some(batch) = next_batch(&mut queue, MAX_BATCH, FLUSH_INTERVAL).await {
        let count = batch.len() as u64;
        let body = match serde_json::to_string(&batch) {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!(%error, "webhook batch cannot be encoded; dropped");
                count_events(metrics.as_deref(), "dropped_failed", count);
                continue;
            }
        };
        let delivered = deliver(&url, secret.as_deref(), body, metrics.as_deref()).await;
        let result = if delivered { "sent" } else { "dropped_failed" };
        count_events(metrics.as_deref(), result, count);
    }
}

fn count_events(metrics: Option<&FeatureMetrics>, result: &'static str, count: u64) {
    if let Some(metrics) = metrics {
        metrics.webhook_events(result, count);
    }
}

/// Posts `body` until a 2xx or the retries run out; whether it was delivered.
async fn deliver(
    url: &WebhookUrl,
    secret: Option<&[u8]>,
    body: String,
    metrics: Option<&FeatureMetrics>,
) -> bool {
    for attempt in 0..=MAX_RETRIES {
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, post(url, secret, body.clone()))
            .await
            .unwrap_or(Err(DeliveryError::Timeout));
        let status = match &outcome {
            Ok(code) => code.to_string(),
            Err(_) => "error".to_owned(),
        };
        if let Some(metrics) = metrics {
            metrics.webhook_request(status);
        }
        match outcome {
            Ok(code) if (200..300).contains(&code) => return true,
            Ok(code) => tracing::debug!(%url, code, attempt, "webhook receiver refused a batch"),
            Err(error) => {
                tracing::debug!(%url, error = %crate::base::ErrorChain(&error), attempt, "webhook request failed")
            }
        }
        if attempt < MAX_RETRIES {
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
    tracing::warn!(%url, retries = MAX_RETRIES, "webhook batch dropped after its retries");
    false
}

/// One POST of `body`, signed when a secret is set; the response's status.
async fn post(url: &WebhookUrl, secret: Option<&[u8]>, body: String) -> Result<u16, DeliveryError> {
    let authority = url.authority();
    let stream = TcpStream::connect(&authority)
        .await
        .map_err(|source| DeliveryError::Connect {
            authority: authority.clone(),
            source,
        })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(DeliveryError::Http)?;
    tokio::spawn(async move {
        // The connection ends with the request; its error is the request's error.
        let _ = connection.await;
    });
    let host = url
        .uri()
        .authority()
        .map_or(authority.as_str(), |a| a.as_str());
    let mut request = Request::post(url.path_and_query())
        .header(HOST, host)
        .header(CONTENT_TYPE, "application/json")
        .header(
            USER_AGENT,
            concat!("metaflow-proxy/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(secret) = secret {
        let timestamp = unix_now();
        request = request
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(
                SIGNATURE_HEADER,
                signature(secret, timestamp, body.as_bytes()),
            );
    }
    let request = request.body(body).map_err(DeliveryError::Build)?;
    let response = sender
        .send_request(request)
        .await
        .map_err(DeliveryError::Http)?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_its_first_wait_up_to_its_cap() {
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(6), Duration::from_secs(30));
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
