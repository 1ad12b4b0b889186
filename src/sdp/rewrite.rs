//! Media anchoring: rewrite an SDP so that media flows through our relay ports.

use std::net::IpAddr;

use super::error::{SdpError, excerpt};
use super::lines::{Line, attribute, line_ending, split_lines, type_and_value};

/// Where the relay receives one media stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// Relay address advertised in `c=`.
    pub addr: IpAddr,
    /// Relay RTP port advertised in `m=`.
    pub rtp_port: u16,
    /// Relay RTCP port advertised in `a=rtcp:`.
    pub rtcp_port: u16,
}

/// ICE attributes that stop making sense once media is relayed.
const ICE_MEDIA_ATTRIBUTES: &[&str] = &[
    "candidate",
    "remote-candidates",
    "end-of-candidates",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
];
/// Session-level ICE attributes removed when every stream is anchored.
const ICE_SESSION_ATTRIBUTES: &[&str] = &["ice-ufrag", "ice-pwd", "ice-options", "ice-lite"];

/// Facts about one `m=` section gathered before rewriting.
struct Section {
    port: u16,
    has_connection: bool,
}

/// Rewrites `body` so that each `m=` section `i` with `anchors[i] = Some(a)`
/// and a non-zero port advertises the relay: m= port, media-level c= (added
/// when missing), a=rtcp port (and address if it had one); ICE lines of that
/// section are removed. When every active section is anchored, the
/// session-level c= and the o= address are rewritten to the first anchor and
/// session-level ICE lines are dropped. Missing anchors count as `None`;
/// port-0 sections and all other lines are kept byte-for-byte.
pub fn rewrite(body: &[u8], anchors: &[Option<Anchor>]) -> Result<Vec<u8>, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NonUtf8)?;
    let eol = line_ending(text);
    let lines = split_lines(text);
    let sections = scan_sections(&lines)?;
    let active_anchor = |i: usize| -> Option<Anchor> {
        let section = sections.get(i)?;
        (section.port != 0)
            .then(|| anchors.get(i).copied().flatten())
            .flatten()
    };
    let active: Vec<usize> = (0..sections.len())
        .filter(|&i| sections.get(i).is_some_and(|s| s.port != 0))
        .collect();
    let session_anchor = if !active.is_empty() && active.iter().all(|&i| active_anchor(i).is_some())
    {
        active.first().and_then(|&i| active_anchor(i))
    } else {
        None
    };

    let mut out = String::with_capacity(text.len() + 64);
    let mut section_index: Option<usize> = None;
    let mut anchor: Option<Anchor> = None;
    let mut pending_connection = false;
    for line in &lines {
        let kind = type_and_value(line.text).map(|(k, _)| k);
        if kind == Some(b'm') {
            flush_connection(&mut out, &mut pending_connection, anchor, eol);
            let index = section_index.map_or(0, |i| i + 1);
            section_index = Some(index);
            anchor = active_anchor(index);
            match anchor {
                Some(a) => {
                    push_line(
                        &mut out,
                        &replace_media_port(line.text, a.rtp_port),
                        line.ending,
                    );
                    pending_connection = !sections.get(index).is_some_and(|s| s.has_connection);
                }
                None => push_line(&mut out, line.text, line.ending),
            }
            continue;
        }
        if pending_connection && kind != Some(b'i') {
            flush_connection(&mut out, &mut pending_connection, anchor, eol);
        }
        match (section_index, anchor, session_anchor) {
            (Some(_), Some(a), _) => rewrite_media_line(&mut out, line, a),
            (None, _, Some(a)) => rewrite_session_line(&mut out, line, a),
            _ => push_line(&mut out, line.text, line.ending),
        }
    }
    flush_connection(&mut out, &mut pending_connection, anchor, eol);
    Ok(out.into_bytes())
}

fn scan_sections(lines: &[Line<'_>]) -> Result<Vec<Section>, SdpError> {
    let mut sections: Vec<Section> = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        match type_and_value(line.text) {
            Some((b'm', value)) => {
                let port = media_port(value).ok_or_else(|| SdpError::BadMediaLine {
                    line: index + 1,
                    text: excerpt(line.text),
                })?;
                sections.push(Section {
                    port,
                    has_connection: false,
                });
            }
            Some((b'c', _)) => {
                if let Some(section) = sections.last_mut() {
                    section.has_connection = true;
                }
            }
            _ => {}
        }
    }
    Ok(sections)
}

/// The port of an `m=` value `audio 49170[/2] RTP/AVP ...`.
fn media_port(value: &str) -> Option<u16> {
    let mut fields = value.split_whitespace();
    fields.next()?;
    let port = fields.next()?;
    fields.next()?;
    port.split('/').next()?.parse().ok()
}

fn replace_media_port(line: &str, port: u16) -> String {
    let mut fields: Vec<String> = line.split(' ').map(str::to_string).collect();
    if let Some(field) = fields.get_mut(1) {
        *field = match field.split_once('/') {
            Some((_, count)) => format!("{port}/{count}"),
            None => port.to_string(),
        };
    }
    fields.join(" ")
}

fn rewrite_media_line(out: &mut String, line: &Line<'_>, anchor: Anchor) {
    if line.text.starts_with("c=") {
        push_line(out, &connection_line(anchor.addr), line.ending);
        return;
    }
    match attribute(line.text) {
        Some((name, _)) if ICE_MEDIA_ATTRIBUTES.contains(&name) => {}
        Some(("rtcp", Some(value))) => {
            let had_address = value.split_whitespace().count() >= 4;
            let mut text = format!("a=rtcp:{}", anchor.rtcp_port);
            if had_address {
                text.push_str(&format!(" IN {} {}", addr_type(anchor.addr), anchor.addr));
            }
            push_line(out, &text, line.ending);
        }
        _ => push_line(out, line.text, line.ending),
    }
}

fn rewrite_session_line(out: &mut String, line: &Line<'_>, anchor: Anchor) {
    if line.text.starts_with("c=") {
        push_line(out, &connection_line(anchor.addr), line.ending);
        return;
    }
    if let Some(origin) = line.text.strip_prefix("o=") {
        let addr = anchor.addr.to_string();
        let mut fields: Vec<&str> = origin.split(' ').collect();
        if fields.len() == 6 {
            if let Some(addr_type_field) = fields.get_mut(4) {
                *addr_type_field = addr_type(anchor.addr);
            }
            if let Some(addr_field) = fields.get_mut(5) {
                *addr_field = &addr;
            }
            push_line(out, &format!("o={}", fields.join(" ")), line.ending);
            return;
        }
    }
    match attribute(line.text) {
        Some((name, _)) if ICE_SESSION_ATTRIBUTES.contains(&name) => {}
        _ => push_line(out, line.text, line.ending),
    }
}

fn flush_connection(out: &mut String, pending: &mut bool, anchor: Option<Anchor>, eol: &str) {
    if !*pending {
        return;
    }
    *pending = false;
    if let Some(a) = anchor {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(eol);
        }
        push_line(out, &connection_line(a.addr), eol);
    }
}

fn push_line(out: &mut String, text: &str, ending: &str) {
    out.push_str(text);
    out.push_str(ending);
}

fn connection_line(addr: IpAddr) -> String {
    format!("c=IN {} {addr}", addr_type(addr))
}

fn addr_type(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}
