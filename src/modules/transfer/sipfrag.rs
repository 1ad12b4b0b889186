//! Reading the `message/sipfrag` body (RFC 3420) of a NOTIFY sent for a REFER subscription
//! (RFC 3515 §2.4.5): its status line says how the transferee's call to the target is doing.

/// Lowest and highest SIP status codes (RFC 3261 §7.2: 1xx to 6xx).
const STATUS_RANGE: std::ops::RangeInclusive<u16> = 100..=699;

/// The status code and reason phrase of a sipfrag body's first line, e.g. `(100, "Trying")` for
/// `SIP/2.0 100 Trying`. Leading whitespace and blank lines are skipped, the version is matched
/// case-insensitively, the reason may be empty. `None` when the body starts with anything but a
/// SIP/2.0 status line with a code in 100..=699 (a request line, garbage, an empty body).
pub fn parse_sipfrag(body: &[u8]) -> Option<(u16, String)> {
    let start = body.iter().position(|byte| !byte.is_ascii_whitespace())?;
    let rest = body.get(start..)?;
    let end = rest
        .iter()
        .position(|&byte| byte == b'\r' || byte == b'\n')
        .unwrap_or(rest.len());
    let line = String::from_utf8_lossy(rest.get(..end)?);
    let mut parts = line.splitn(3, [' ', '\t']);
    let version = parts.next()?;
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    let code_text = parts.next()?;
    if code_text.len() != 3 || !code_text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let code: u16 = code_text.parse().ok()?;
    if !STATUS_RANGE.contains(&code) {
        return None;
    }
    let reason = parts.next().unwrap_or("").trim().to_owned();
    Some((code, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_trying_and_ok() {
        let trying = parse_sipfrag(b"SIP/2.0 100 Trying\r\n");
        assert_eq!(trying, Some((100, "Trying".to_owned())));
        let ok = parse_sipfrag(b"SIP/2.0 200 OK");
        assert_eq!(ok, Some((200, "OK".to_owned())));
    }

    #[test]
    fn tolerates_leading_blank_lines_and_headers_after() {
        let body = b"\r\n  \r\nSIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse_sipfrag(body), Some((486, "Busy Here".to_owned())));
        let lower = parse_sipfrag(b"sip/2.0 180 Ringing\n");
        assert_eq!(lower, Some((180, "Ringing".to_owned())));
    }

    #[test]
    fn empty_reason_is_accepted() {
        assert_eq!(parse_sipfrag(b"SIP/2.0 603"), Some((603, String::new())));
        assert_eq!(
            parse_sipfrag(b"SIP/2.0 603 \r\n"),
            Some((603, String::new()))
        );
    }

    #[test]
    fn rejects_what_is_not_a_status_line() {
        for body in [
            &b""[..],
            b"\r\n\r\n",
            b"INVITE sip:1234@pbx SIP/2.0\r\n",
            b"SIP/2.0 99 Low\r\n",
            b"SIP/2.0 700 High\r\n",
            b"SIP/2.0 2000 Long\r\n",
            b"SIP/2.0 2x0 Letters\r\n",
            b"SIP/3.0 200 OK\r\n",
            b"\xff\xfe\x00garbage",
        ] {
            assert_eq!(parse_sipfrag(body), None, "{body:?}");
        }
    }

    #[test]
    fn invalid_utf8_in_reason_does_not_fail() {
        let parsed = parse_sipfrag(b"SIP/2.0 200 O\xffK\r\n");
        assert_eq!(parsed.map(|(code, _)| code), Some(200));
    }
}
