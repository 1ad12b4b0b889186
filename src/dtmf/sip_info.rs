//! DTMF carried in SIP INFO bodies instead of RTP: `application/dtmf-relay` (`Signal=5`
//! lines, as Cisco and most PBXs send) and `application/dtmf` (the bare digit).

/// The digit in an INFO request body of the given Content-Type, if it carries one.
pub fn digit_from_info(content_type: &str, body: &[u8]) -> Option<char> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    match mime.as_str() {
        "application/dtmf-relay" => text.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("signal")
                .then(|| signal_digit(value.trim()))
                .flatten()
        }),
        "application/dtmf" => signal_digit(text.trim()),
        _ => None,
    }
}

/// A signal value: a digit character, or the RFC 4733 event number 10/11 for `*`/`#`.
fn signal_digit(value: &str) -> Option<char> {
    match value {
        "10" => Some('*'),
        "11" => Some('#'),
        _ => {
            let mut chars = value.chars();
            let c = chars.next()?.to_ascii_uppercase();
            (chars.next().is_none() && matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')).then_some(c)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_relay_bodies() {
        assert_eq!(
            digit_from_info("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            Some('5')
        );
        assert_eq!(
            digit_from_info("Application/DTMF-Relay", b"Signal= *\r\nDuration=250"),
            Some('*')
        );
        assert_eq!(
            digit_from_info("application/dtmf-relay", b"Signal=11\r\n"),
            Some('#')
        );
        assert_eq!(
            digit_from_info("application/dtmf-relay", b"Duration=160\r\n"),
            None
        );
        assert_eq!(
            digit_from_info("application/dtmf-relay", b"Signal=55\r\n"),
            None
        );
    }

    #[test]
    fn dtmf_bodies() {
        assert_eq!(digit_from_info("application/dtmf", b"7"), Some('7'));
        assert_eq!(digit_from_info("application/dtmf", b"#\r\n"), Some('#'));
        assert_eq!(digit_from_info("application/sdp", b"7"), None);
        assert_eq!(digit_from_info("application/dtmf", &[0xff]), None);
    }
}
