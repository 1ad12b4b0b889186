//! The client side of SIP digest authentication (RFC 3261 §22, RFC 2617 with MD5): answering a
//! PBX's 401/407 to a call the proxy places itself. Phones' own challenges are relayed, never
//! answered here; this is only for the proxy's own requests, with the account's credentials.

use md5::{Digest, Md5};

/// What a `WWW-Authenticate` or `Proxy-Authenticate` challenge asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The protection realm.
    pub realm: String,
    /// The server's nonce.
    pub nonce: String,
    /// Echoed back unchanged when present.
    pub opaque: Option<String>,
    /// Whether `qop=auth` was offered (then `cnonce` and `nc` go into the answer).
    pub qop_auth: bool,
}

/// Parses a `Digest ...` challenge; `None` for another scheme, a missing realm or nonce, or an
/// algorithm other than MD5 (the only one this answers).
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let (scheme, rest) = value.trim().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut realm = None;
    let mut nonce = None;
    let mut opaque = None;
    let mut qop_auth = false;
    for (name, value) in params(rest) {
        match name.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value),
            "nonce" => nonce = Some(value),
            "opaque" => opaque = Some(value),
            "qop" => {
                qop_auth = value
                    .split(',')
                    .any(|q| q.trim().eq_ignore_ascii_case("auth"))
            }
            "algorithm" if !value.eq_ignore_ascii_case("md5") => return None,
            _ => {}
        }
    }
    Some(Challenge {
        realm: realm?,
        nonce: nonce?,
        opaque,
        qop_auth,
    })
}

/// `name=value` pairs of a challenge, values unquoted; commas inside quotes are kept.
fn params(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let name = name.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (quoted[..end].to_string(), &quoted[end + 1..]),
                None => (quoted.to_string(), ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (after[..end].trim().to_string(), &after[end..]),
                None => (after.trim().to_string(), ""),
            }
        };
        pairs.push((name, value));
        rest = remainder.trim_start().trim_start_matches(',').trim_start();
    }
    pairs
}

fn md5_hex(text: &str) -> String {
    let digest = Md5::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Authorization` / `Proxy-Authorization` value answering `challenge` for a request of
/// `method` to `uri`; `cnonce` is used (with `nc=00000001`) when the challenge offered
/// `qop=auth`.
pub fn authorization(
    challenge: &Challenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> String {
    let ha1 = md5_hex(&format!("{username}:{}:{password}", challenge.realm));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let nc = "00000001";
    let response = if challenge.qop_auth {
        md5_hex(&format!(
            "{ha1}:{}:{nc}:{cnonce}:auth:{ha2}",
            challenge.nonce
        ))
    } else {
        md5_hex(&format!("{ha1}:{}:{ha2}", challenge.nonce))
    };
    let mut value = format!(
        "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5",
        challenge.realm, challenge.nonce
    );
    if challenge.qop_auth {
        value.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
    }
    if let Some(opaque) = &challenge.opaque {
        value.push_str(&format!(", opaque=\"{opaque}\""));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5's example, with SIP's method and URI in place of HTTP's.
    #[test]
    fn the_rfc_2617_example_gives_its_response() {
        let challenge = parse_challenge(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert!(challenge.qop_auth);
        let value = authorization(
            &challenge,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "0a4f113b",
        );
        assert!(
            value.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{value}"
        );
        assert!(value.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
        assert!(value.contains("nc=00000001, cnonce=\"0a4f113b\""));
    }

    #[test]
    fn without_qop_the_response_is_rfc_2069s() {
        let challenge =
            parse_challenge("Digest realm=\"pbx\", nonce=\"abc\", algorithm=MD5").unwrap();
        assert!(!challenge.qop_auth);
        let value = authorization(&challenge, "u", "p", "INVITE", "sip:2000@pbx", "x");
        let ha1 = md5_hex("u:pbx:p");
        let ha2 = md5_hex("INVITE:sip:2000@pbx");
        let expected = md5_hex(&format!("{ha1}:abc:{ha2}"));
        assert!(
            value.contains(&format!("response=\"{expected}\"")),
            "{value}"
        );
        assert!(!value.contains("qop"));
    }

    #[test]
    fn other_schemes_and_algorithms_are_not_answered() {
        assert_eq!(parse_challenge("Basic realm=\"x\""), None);
        assert_eq!(
            parse_challenge("Digest realm=\"x\", nonce=\"n\", algorithm=SHA-256"),
            None
        );
        assert_eq!(parse_challenge("Digest realm=\"x\""), None);
    }
}
