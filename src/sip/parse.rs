//! Wire parsing: start line, header block with folding, and body framing for
//! datagram and stream transports.

use bytes::Bytes;

use super::error::{ParseError, excerpt};
use super::header::{Header, canonical_name, is_named};
use super::message::{SipMessage, StartLine};
use super::method::{Method, is_token};
use super::names::CONTENT_LENGTH;
use super::uri::has_scheme;

/// Largest message accepted, in bytes (head plus body).
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;
/// Largest number of header lines accepted.
pub const MAX_HEADERS: usize = 256;

/// Where the header block ends inside a buffer.
struct HeadSpan {
    /// Offset of the start line.
    start: usize,
    /// Offset one past the last header line (before the blank line).
    end: usize,
    /// Offset of the first body byte.
    body: usize,
}

/// Parses one datagram (UDP framing): the body is Content-Length bytes, or the
/// rest of the datagram when Content-Length is absent; bytes beyond it are ignored.
pub fn parse_datagram(datagram: &[u8]) -> Result<SipMessage, ParseError> {
    if datagram.len() > MAX_MESSAGE_SIZE {
        return Err(too_large(datagram.len()));
    }
    let start = skip_line_breaks(datagram);
    if start >= datagram.len() {
        return Err(ParseError::Empty);
    }
    let span = find_head(datagram, start).unwrap_or(HeadSpan {
        start,
        end: datagram.len(),
        body: datagram.len(),
    });
    let (start_line, headers) = parse_head(datagram.get(span.start..span.end).unwrap_or(&[]))?;
    let available = datagram.len().saturating_sub(span.body);
    let body_len = match content_length(&headers)? {
        Some(declared) if declared > available => {
            return Err(ParseError::BodyTruncated {
                declared,
                available,
            });
        }
        Some(declared) => declared,
        None => available,
    };
    let body = datagram.get(span.body..span.body + body_len).unwrap_or(&[]);
    Ok(SipMessage {
        start: start_line,
        headers,
        body: Bytes::copy_from_slice(body),
    })
}

/// Parses one message from a byte stream (TCP/TLS framing). Returns `Ok(None)`
/// until the head and the Content-Length body are complete; leading CRLF
/// keep-alives are skipped and counted in the consumed length.
pub fn parse_stream(buf: &[u8]) -> Result<Option<(SipMessage, usize)>, ParseError> {
    let start = skip_line_breaks(buf);
    if start >= buf.len() {
        return Ok(None);
    }
    let Some(span) = find_head(buf, start) else {
        let pending = buf.len().saturating_sub(start);
        return if pending > MAX_MESSAGE_SIZE {
            Err(too_large(pending))
        } else {
            Ok(None)
        };
    };
    let (start_line, headers) = parse_head(buf.get(span.start..span.end).unwrap_or(&[]))?;
    let body_len = content_length(&headers)?.ok_or(ParseError::MissingContentLength)?;
    let total = span
        .body
        .checked_add(body_len)
        .ok_or_else(|| too_large(usize::MAX))?;
    if total.saturating_sub(start) > MAX_MESSAGE_SIZE {
        return Err(too_large(total.saturating_sub(start)));
    }
    let Some(body) = buf.get(span.body..total) else {
        return Ok(None);
    };
    let message = SipMessage {
        start: start_line,
        headers,
        body: Bytes::copy_from_slice(body),
    };
    Ok(Some((message, total)))
}

fn too_large(size: usize) -> ParseError {
    ParseError::TooLarge {
        size,
        max: MAX_MESSAGE_SIZE,
    }
}

/// Number of leading CR/LF bytes.
fn skip_line_breaks(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count()
}

/// Finds the blank line (CRLF or bare LF) that ends the head.
fn find_head(buf: &[u8], start: usize) -> Option<HeadSpan> {
    let mut line_start = start;
    for (offset, byte) in buf.get(start..)?.iter().enumerate() {
        if *byte != b'\n' {
            continue;
        }
        let newline = start + offset;
        let line = buf.get(line_start..newline)?;
        if (line.is_empty() || line == b"\r") && line_start > start {
            return Some(HeadSpan {
                start,
                end: line_start,
                body: newline + 1,
            });
        }
        line_start = newline + 1;
    }
    None
}

/// Parses the start line and the header lines of a head block.
fn parse_head(head: &[u8]) -> Result<(StartLine, Vec<Header>), ParseError> {
    let text = std::str::from_utf8(head).map_err(|_| ParseError::NonUtf8)?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().ok_or(ParseError::Empty)?;
    let start = parse_start_line(first)?;
    let mut headers: Vec<Header> = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().ok_or(ParseError::FoldWithoutHeader)?;
            let more = line.trim();
            if !more.is_empty() {
                if !last.value.is_empty() {
                    last.value.push(' ');
                }
                last.value.push_str(more);
            }
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| ParseError::MalformedHeader(excerpt(line)))?;
        let name = name.trim();
        if !is_token(name) {
            return Err(ParseError::MalformedHeader(excerpt(line)));
        }
        if headers.len() >= MAX_HEADERS {
            return Err(ParseError::TooManyHeaders { max: MAX_HEADERS });
        }
        headers.push(Header {
            name: canonical_name(name),
            value: value.trim().to_string(),
        });
    }
    // Serialising always writes a Content-Length; keep room for it so that whatever parses
    // also re-parses after a round trip (found by fuzzing).
    let has_length = headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case(CONTENT_LENGTH));
    if !has_length && headers.len() >= MAX_HEADERS {
        return Err(ParseError::TooManyHeaders { max: MAX_HEADERS });
    }
    Ok((start, headers))
}

/// Parses `METHOD SP URI SP SIP/2.0` or `SIP/2.0 SP code SP reason`.
fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    let bad = || ParseError::BadStartLine(excerpt(line));
    if line.starts_with("SIP/") {
        let (version, rest) = line.split_once(' ').ok_or_else(bad)?;
        check_version(version)?;
        let (code_text, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let code = match code_text.parse::<u16>() {
            Ok(code) if code_text.len() == 3 && (100..=699).contains(&code) => code,
            _ => return Err(ParseError::BadStatusCode(excerpt(code_text))),
        };
        return Ok(StartLine::Response {
            code,
            reason: reason.to_string(),
        });
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !is_token(method) {
        return Err(ParseError::BadMethod(excerpt(method)));
    }
    if !has_scheme(uri) || uri.chars().any(|c| c.is_control() || c == '<' || c == '>') {
        return Err(ParseError::BadRequestUri(excerpt(uri)));
    }
    check_version(version)?;
    Ok(StartLine::Request {
        method: Method::parse(method),
        uri: uri.to_string(),
    })
}

/// Accepts `SIP/2.0`; any other `SIP/x.y` is an unsupported version.
fn check_version(version: &str) -> Result<(), ParseError> {
    if version == "SIP/2.0" {
        return Ok(());
    }
    let numbers = version
        .strip_prefix("SIP/")
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major
                    .bytes()
                    .chain(minor.bytes())
                    .all(|b| b.is_ascii_digit())
        });
    if numbers {
        Err(ParseError::UnsupportedVersion(excerpt(version)))
    } else {
        Err(ParseError::BadStartLine(excerpt(version)))
    }
}

/// The first Content-Length value; every Content-Length header must be a
/// non-negative decimal number.
fn content_length(headers: &[Header]) -> Result<Option<usize>, ParseError> {
    let mut first = None;
    for header in headers.iter().filter(|h| is_named(&h.name, CONTENT_LENGTH)) {
        let value = header.value.as_str();
        let valid = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
        let length = value
            .parse::<usize>()
            .ok()
            .filter(|_| valid)
            .ok_or_else(|| ParseError::InvalidContentLength(excerpt(value)))?;
        first.get_or_insert(length);
    }
    Ok(first)
}
