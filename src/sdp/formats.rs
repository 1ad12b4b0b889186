//! Narrowing an SDP's payload formats: a call the proxy places offers the staying party's SDP,
//! and that party sends only what it negotiated, so the offer must not let the new party pick
//! a codec the stayer is not sending.

use super::error::SdpError;
use super::lines::split_lines;

/// Keeps, in every `m=` section of `body`, only the payload formats `keep` accepts (and their
/// `a=rtpmap`/`a=fmtp` lines); a section where none would be left is kept whole. Other lines
/// stay byte-for-byte.
pub fn keep_formats(body: &[u8], keep: impl Fn(u8) -> bool) -> Result<Vec<u8>, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NonUtf8)?;
    let mut out = String::with_capacity(text.len());
    let mut dropped: Vec<String> = Vec::new();
    for line in split_lines(text) {
        if let Some(rest) = line.text.strip_prefix("m=") {
            dropped.clear();
            let mut fields: Vec<&str> = rest.split(' ').collect();
            let formats = fields.split_off(fields.len().min(3));
            let (kept, gone): (Vec<&str>, Vec<&str>) = formats
                .iter()
                .partition(|f| f.parse::<u8>().map_or(true, &keep));
            if !kept.is_empty() {
                dropped = gone.iter().map(|f| (*f).to_string()).collect();
                fields.extend(kept);
                out.push_str("m=");
                out.push_str(&fields.join(" "));
                out.push_str(line.ending);
                continue;
            }
        } else if let Some(attr) = line
            .text
            .strip_prefix("a=rtpmap:")
            .or_else(|| line.text.strip_prefix("a=fmtp:"))
        {
            let pt = attr.split([' ', '\t']).next().unwrap_or_default();
            if dropped.iter().any(|d| d == pt) {
                continue;
            }
        }
        out.push_str(line.text);
        out.push_str(line.ending);
    }
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n\
        m=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n";

    #[test]
    fn formats_not_kept_leave_the_m_line_and_their_attributes() {
        let narrowed = keep_formats(OFFER.as_bytes(), |pt| pt != 0).unwrap();
        let text = String::from_utf8(narrowed).unwrap();
        assert!(text.contains("m=audio 6000 RTP/AVP 8 101\r\n"), "{text}");
        assert!(!text.contains("PCMU"));
        assert!(text.contains("a=rtpmap:8 PCMA/8000\r\na=rtpmap:101"));
        assert!(text.contains("a=fmtp:101 0-16\r\na=ptime:20\r\n"));
    }

    #[test]
    fn a_section_that_would_lose_every_format_is_kept_whole() {
        let same = keep_formats(OFFER.as_bytes(), |_| false).unwrap();
        assert_eq!(same, OFFER.as_bytes());
    }
}
