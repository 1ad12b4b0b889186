//! Forwarding an API request to the node that holds the call or the recording: one HTTP/1.1
//! request to the node's API address, carrying the cluster secret in
//! [`NODE_TOKEN_HEADER`](super::NODE_TOKEN_HEADER). The answer comes back as it is (the body
//! streams, so a recording is never held in memory).

use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::ClusterError;
use super::remote::Owner;
use super::secret::NODE_TOKEN_HEADER;

/// How long the other node may take to answer (connection and response head).
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// `text` as one path segment: everything but unreserved characters percent-encoded.
pub fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Sends `method path` with `body` (JSON, or empty) to `owner`, authenticated with `secret`.
pub(super) async fn send(
    owner: &Owner,
    method: Method,
    path: &str,
    secret: &str,
    accept: Option<&str>,
    body: String,
) -> Result<Response<Incoming>, ClusterError> {
    let exchange = exchange(owner, method, path, secret, accept, body);
    match tokio::time::timeout(FORWARD_TIMEOUT, exchange).await {
        Ok(outcome) => outcome,
        Err(_) => Err(ClusterError::Timeout),
    }
}

async fn exchange(
    owner: &Owner,
    method: Method,
    path: &str,
    secret: &str,
    accept: Option<&str>,
    body: String,
) -> Result<Response<Incoming>, ClusterError> {
    let stream = TcpStream::connect(&owner.api_addr)
        .await
        .map_err(|source| ClusterError::Connect {
            node: owner.node_id.clone(),
            addr: owner.api_addr.clone(),
            source,
        })?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // The connection ends with the exchange; its error is the exchange's error.
        let _ = connection.await;
    });
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, owner.api_addr.as_str())
        .header(NODE_TOKEN_HEADER, secret)
        .header(
            USER_AGENT,
            concat!("metaflow-proxy/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    if !body.is_empty() {
        request = request.header(CONTENT_TYPE, "application/json");
    }
    Ok(sender.send_request(request.body(body)?).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_single_path_segments() {
        assert_eq!(encode_segment("abc-123@host"), "abc-123@host");
        assert_eq!(encode_segment("a/b c%"), "a%2Fb%20c%25");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }
}
