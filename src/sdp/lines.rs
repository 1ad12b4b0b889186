//! Line splitting that remembers each line's terminator, so rewrites can keep
//! untouched lines byte-for-byte.

/// One SDP line: its text without terminator and the terminator itself
/// (`"\r\n"`, `"\n"` or `""` for a final unterminated line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// Line text without the line ending.
    pub text: &'a str,
    /// The line ending as found in the input.
    pub ending: &'a str,
}

/// Splits text into lines, keeping CRLF or LF endings apart from the text.
pub fn split_lines(text: &str) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (line, after) = match rest.find('\n') {
            Some(i) => (
                rest.get(..=i).unwrap_or(rest),
                rest.get(i + 1..).unwrap_or(""),
            ),
            None => (rest, ""),
        };
        let text_len = line
            .strip_suffix("\r\n")
            .or_else(|| line.strip_suffix('\n'))
            .map_or(line.len(), str::len);
        let (text, ending) = line.split_at(text_len);
        lines.push(Line { text, ending });
        rest = after;
    }
    lines
}

/// The dominant line ending of a body: CRLF if any line uses it, else LF.
pub fn line_ending(text: &str) -> &'static str {
    if text.contains("\r\n") { "\r\n" } else { "\n" }
}

/// Splits `x=value` into its type letter and value.
pub fn type_and_value(line: &str) -> Option<(u8, &str)> {
    let mut bytes = line.bytes();
    let kind = bytes.next().filter(u8::is_ascii_alphabetic)?;
    (bytes.next() == Some(b'=')).then(|| (kind, line.get(2..).unwrap_or("")))
}

/// For an `a=` line, the attribute name and optional value (`a=rtcp:5005`).
pub fn attribute(line: &str) -> Option<(&str, Option<&str>)> {
    let value = line.strip_prefix("a=")?;
    Some(match value.split_once(':') {
        Some((name, v)) => (name.trim(), Some(v)),
        None => (value.trim(), None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_mixed_endings() {
        let lines = split_lines("v=0\r\no=x\nlast");
        assert_eq!(
            lines,
            vec![
                Line {
                    text: "v=0",
                    ending: "\r\n"
                },
                Line {
                    text: "o=x",
                    ending: "\n"
                },
                Line {
                    text: "last",
                    ending: ""
                },
            ]
        );
        assert_eq!(line_ending("a\nb\r\n"), "\r\n");
        assert_eq!(line_ending("a\nb\n"), "\n");
    }

    #[test]
    fn splits_types_and_attributes() {
        assert_eq!(
            type_and_value("m=audio 1 RTP/AVP 0"),
            Some((b'm', "audio 1 RTP/AVP 0"))
        );
        assert_eq!(type_and_value("=x"), None);
        assert_eq!(type_and_value("mx"), None);
        assert_eq!(
            attribute("a=rtcp:5005 IN IP4 1.2.3.4"),
            Some(("rtcp", Some("5005 IN IP4 1.2.3.4")))
        );
        assert_eq!(attribute("a=sendonly"), Some(("sendonly", None)));
        assert_eq!(attribute("c=IN IP4 1.2.3.4"), None);
    }
}
