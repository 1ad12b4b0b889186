//! Who a call the proxy places says it is from (key `placed-call-from`).

use std::fmt;
use std::str::FromStr;

/// The From of a call the proxy places to take a leg's place (a transfer the far end would not
/// take as a REFER, an attended transfer's call to the target, `callflow`, `intercept`, `move`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PlacedCallFrom {
    /// The party that stays (the transferee): the target sees who it will talk to, as after a
    /// REFER.
    #[default]
    Staying,
    /// The party whose place is taken (the transferor, who dialed the transfer): Kazoo's
    /// choice, the caller ID the target sees during an attended transfer's consultation.
    Replaced,
    /// A fixed SIP URI (a main number of the PBX).
    Uri(String),
}

impl FromStr for PlacedCallFrom {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        match text {
            "staying" => Ok(PlacedCallFrom::Staying),
            "replaced" => Ok(PlacedCallFrom::Replaced),
            uri if is_plain_sip_uri(uri) => Ok(PlacedCallFrom::Uri(uri.to_owned())),
            other => Err(format!(
                "`{other}` is not who a placed call is from: expected staying, replaced or a \
                 sip:user@host URI"
            )),
        }
    }
}

/// `sip:user@host` or `sips:user@host` (parameters allowed, no headers), printable ASCII
/// without the characters that would end the From header's `<...>`: it goes into every placed
/// call's From as is.
fn is_plain_sip_uri(uri: &str) -> bool {
    let Some(rest) = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
    else {
        return false;
    };
    let printable = uri
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'?'));
    let Some((user, host)) = rest.split_once('@') else {
        return false;
    };
    let host = host.split(';').next().unwrap_or_default();
    printable && !user.is_empty() && !host.is_empty()
}

impl fmt::Display for PlacedCallFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlacedCallFrom::Staying => f.write_str("staying"),
            PlacedCallFrom::Replaced => f.write_str("replaced"),
            PlacedCallFrom::Uri(uri) => f.write_str(uri),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_and_print_back() {
        for text in ["staying", "replaced", "sip:main@pbx.example.com"] {
            let value: PlacedCallFrom = text.parse().unwrap();
            assert_eq!(value.to_string(), text);
        }
        assert!("sip:nohost".parse::<PlacedCallFrom>().is_err());
        assert!("<sip:a@b>".parse::<PlacedCallFrom>().is_err());
        for bad in [
            "sip:@host",
            "sip:user@",
            "sip:a@b?x=y",
            "sip:a\tb@c",
            "sip:a@b\u{0}",
        ] {
            assert!(bad.parse::<PlacedCallFrom>().is_err(), "{bad:?} accepted");
        }
        assert!(
            "sip:main@pbx.example.com;user=phone"
                .parse::<PlacedCallFrom>()
                .is_ok()
        );
        assert!("transferor".parse::<PlacedCallFrom>().is_err());
    }
}
