//! `;name=value` parameter lists shared by URIs, Via and address headers.

use super::error::{ParseError, excerpt};

/// A parameter list: names with optional values, in wire order.
pub type Params = Vec<(String, Option<String>)>;

/// Splits `s` at `sep` bytes that are outside double-quoted strings.
pub fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut start = 0usize;
    for (i, c) in s.char_indices() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quotes = false;
            }
        } else if c == '"' {
            in_quotes = true;
        } else if c == sep {
            parts.push(s.get(start..i).unwrap_or(""));
            start = i + c.len_utf8();
        }
    }
    parts.push(s.get(start..).unwrap_or(""));
    parts
}

/// Parses parameters written as `;a=1;b` (the text starts at the first `;`,
/// or is empty). Whitespace around names, `;` and `=` is tolerated; empty
/// names, empty values and unquoted values with inner whitespace are errors.
pub fn parse_params(s: &str) -> Result<Params, ParseError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let rest = s
        .strip_prefix(';')
        .ok_or_else(|| ParseError::BadParam(excerpt(s)))?;
    let mut params = Vec::new();
    for item in split_outside_quotes(rest, ';') {
        params.push(parse_one(item)?);
    }
    Ok(params)
}

fn parse_one(item: &str) -> Result<(String, Option<String>), ParseError> {
    let (name, value) = match item.split_once('=') {
        Some((n, v)) => (n.trim(), Some(v.trim())),
        None => (item.trim(), None),
    };
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '"') {
        return Err(ParseError::BadParam(excerpt(item)));
    }
    let value = match value {
        None => None,
        Some("") => return Err(ParseError::BadParam(excerpt(item))),
        Some(v) if v.starts_with('"') => {
            if v.len() < 2 || !v.ends_with('"') || (v.ends_with("\\\"") && !v.ends_with("\\\\\"")) {
                return Err(ParseError::BadParam(excerpt(item)));
            }
            Some(v.to_string())
        }
        Some(v) if v.chars().any(char::is_whitespace) || v.contains('"') => {
            return Err(ParseError::BadParam(excerpt(item)));
        }
        Some(v) => Some(v.to_string()),
    };
    Ok((name.to_string(), value))
}

/// Writes parameters back as `;a=1;b`.
pub fn write_params(f: &mut std::fmt::Formatter<'_>, params: &Params) -> std::fmt::Result {
    for (name, value) in params {
        match value {
            Some(v) => write!(f, ";{name}={v}")?,
            None => write!(f, ";{name}")?,
        }
    }
    Ok(())
}

/// Looks up a parameter by case-insensitive name. `Some(None)` means the
/// parameter is present without a value.
pub fn find_param<'a>(params: &'a Params, name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_flags_and_whitespace() {
        let p = parse_params(";  tag    = 1918181833n ; lr;q=0.33").unwrap();
        assert_eq!(
            p,
            vec![
                ("tag".to_string(), Some("1918181833n".to_string())),
                ("lr".to_string(), None),
                ("q".to_string(), Some("0.33".to_string())),
            ]
        );
        assert_eq!(find_param(&p, "LR"), Some(None));
        assert_eq!(find_param(&p, "Tag"), Some(Some("1918181833n")));
        assert_eq!(find_param(&p, "x"), None);
    }

    #[test]
    fn quoted_values_may_hold_semicolons() {
        let p = parse_params(r#";a="x;y";b"#).unwrap();
        assert_eq!(p.first().unwrap().1.as_deref(), Some(r#""x;y""#));
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn rejects_empty_names_and_values() {
        assert!(parse_params(";;").is_err());
        assert!(parse_params(";a=").is_err());
        assert!(parse_params(";=b").is_err());
        assert!(parse_params(";a=b c").is_err());
        assert!(parse_params("a=b").is_err());
        assert!(parse_params(r#";a="unterminated"#).is_err());
        assert_eq!(parse_params("").unwrap(), Vec::new());
    }
}
