//! The observer for a proxy on another host: a minimal HTTP receiver for the proxy's webhooks
//! (`--webhook-url http://THIS:PORT/`), whose JSON arrays carry the same events as
//! `events.jsonl`. Each request is answered 200 and its events handed to the replay.

use std::net::SocketAddr;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::ReplayError;

/// Largest webhook request accepted (100 events fit many times over).
const MAX_REQUEST: usize = 4 * 1024 * 1024;

/// Binds `addr` and serves webhook POSTs until the returned receiver is dropped; every event
/// of every request body comes out of the receiver.
pub(super) async fn listen(
    addr: SocketAddr,
) -> Result<mpsc::UnboundedReceiver<Value>, ReplayError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ReplayError::Network {
            what: format!("cannot bind the webhook listener (--webhook-listen) on {addr}"),
            source,
        })?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            if tx.is_closed() {
                break;
            }
            tokio::spawn(serve(stream, tx.clone()));
        }
    });
    Ok(rx)
}

/// Serves the requests of one connection (keep-alive or not).
async fn serve(mut stream: TcpStream, tx: mpsc::UnboundedSender<Value>) {
    let mut buf = Vec::new();
    loop {
        let Some((head_len, body_len)) = request_size(&buf) else {
            if buf.len() > MAX_REQUEST || !read_more(&mut stream, &mut buf).await {
                return;
            }
            continue;
        };
        let total = head_len.saturating_add(body_len);
        if total > MAX_REQUEST {
            return;
        }
        while buf.len() < total {
            if !read_more(&mut stream, &mut buf).await {
                return;
            }
        }
        for event in events_of(buf.get(head_len..total).unwrap_or_default()) {
            let _ = tx.send(event);
        }
        buf.drain(..total);
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        if stream.write_all(reply).await.is_err() {
            return;
        }
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            true
        }
    }
}

/// The length of a complete request head (blank line included) and its Content-Length, once
/// the head has arrived.
pub(super) fn request_size(buf: &[u8]) -> Option<(usize, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(buf.get(..end)?);
    let body = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    Some((end, body))
}

/// The events of a webhook body: a JSON array of objects (a single object is taken too).
pub(super) fn events_of(body: &[u8]) -> Vec<Value> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(events)) => events,
        Ok(event @ Value::Object(_)) => vec![event],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_framed_by_its_content_length() {
        let req = b"POST / HTTP/1.1\r\nHost: x\r\ncontent-length: 12\r\n\r\n[{\"a\":1}]xyz";
        assert_eq!(request_size(req), Some((48, 12)));
        assert_eq!(request_size(b"POST / HTTP/1.1\r\nHost: x\r\n"), None);
    }

    #[test]
    fn bodies_give_their_events_and_garbage_gives_none() {
        assert_eq!(
            events_of(br#"[{"event":"digit"},{"event":"call_ended"}]"#).len(),
            2
        );
        assert_eq!(events_of(br#"{"event":"digit"}"#).len(), 1);
        assert!(events_of(b"not json").is_empty());
    }
}
