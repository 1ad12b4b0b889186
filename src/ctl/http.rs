//! A blocking HTTP/1.1 client for one request at a time to the proxy's own API on loopback:
//! plain HTTP, no TLS, no async runtime, nothing beyond the standard library (see
//! docs/DECISIONS.md on the control CLI).

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long connecting to the API may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long an answer may take (a reload rereads the configuration and the metaflows file).
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read; the API's answers are far smaller.
const MAX_ANSWER: u64 = 16 * 1024 * 1024;

/// Why a request got no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Nothing listens there (connection refused) or the host is unreachable.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address tried.
        addr: String,
        /// The OS error.
        source: io::Error,
    },
    /// The address does not resolve.
    #[error("{addr} is not an address (HOST:PORT): {source}")]
    Address {
        /// The address given.
        addr: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// The connection failed or timed out during the exchange.
    #[error("the API at {addr} did not answer: {source}")]
    Exchange {
        /// The address.
        addr: String,
        /// The OS error.
        source: io::Error,
    },
    /// What came back is not HTTP.
    #[error("the API at {addr} sent something that is not HTTP")]
    NotHttp {
        /// The address.
        addr: String,
    },
}

impl HttpError {
    /// Whether nothing listens at the address (connection refused).
    pub fn refused(&self) -> bool {
        matches!(self, Self::Connect { source, .. } if source.kind() == io::ErrorKind::ConnectionRefused)
    }
}

/// One answer: the status and the body.
#[derive(Debug)]
pub(super) struct Answer {
    /// HTTP status code.
    pub(super) status: u16,
    /// The body, decoded from chunked transfer coding when it was chunked.
    pub(super) body: String,
}

/// Sends `method path` to `addr` with an optional `X-Auth-Token` and JSON body, and reads the
/// whole answer (`Connection: close`).
pub(super) fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<Answer, HttpError> {
    let targets: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|source| HttpError::Address {
            addr: addr.to_owned(),
            source,
        })?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    let mut connected = None;
    for target in targets {
        match TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) {
            Ok(stream) => {
                connected = Some(stream);
                break;
            }
            Err(error) => last = error,
        }
    }
    let Some(mut stream) = connected else {
        return Err(HttpError::Connect {
            addr: addr.to_owned(),
            source: last,
        });
    };
    let exchange = |source| HttpError::Exchange {
        addr: addr.to_owned(),
        source,
    };
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .map_err(exchange)?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: */*\r\n\
         User-Agent: metaflow-proxy-ctl/{}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(token) = token {
        head.push_str(&format!("X-Auth-Token: {token}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || matches!(method, "PUT" | "POST" | "PATCH") {
        head.push_str("Content-Type: application/json\r\n");
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    head.push_str(body);
    stream.write_all(head.as_bytes()).map_err(exchange)?;
    let mut raw = Vec::new();
    stream
        .take(MAX_ANSWER)
        .read_to_end(&mut raw)
        .map_err(exchange)?;
    parse_answer(&raw).ok_or_else(|| HttpError::NotHttp {
        addr: addr.to_owned(),
    })
}

/// Splits a whole HTTP/1.1 answer into status and body.
fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let split = raw.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = std::str::from_utf8(raw.get(..split)?).ok()?;
    let rest = raw.get(split + 4..)?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    if !status_line.starts_with("HTTP/") {
        return None;
    }
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else {
        let end = length.unwrap_or(rest.len()).min(rest.len());
        rest.get(..end)?.to_vec()
    };
    Some(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Decodes a chunked body (RFC 9112 section 7.1); trailers are ignored.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|window| window == b"\r\n")?;
        let size_text = std::str::from_utf8(rest.get(..line_end)?).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        rest = rest.get(line_end + 2..)?;
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sized_answer_is_split_into_status_and_body() {
        let raw = b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 4\r\n\r\n{}\r\nextra";
        let answer = parse_answer(raw).unwrap();
        assert_eq!(answer.status, 401);
        assert_eq!(answer.body, "{}\r\n");
    }

    #[test]
    fn a_chunked_answer_is_decoded() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_answer(raw).unwrap().body, "abcde");
    }

    #[test]
    fn what_is_not_http_is_refused() {
        assert!(parse_answer(b"SSH-2.0-OpenSSH\r\n\r\n").is_none());
        assert!(
            parse_answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_none()
        );
    }
}
