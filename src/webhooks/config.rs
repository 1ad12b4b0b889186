//! The webhook settings as the configuration checks them: receiver URLs (plain `http://`, as no
//! TLS client is built in) and the filter of event kinds, which accepts our event names and the
//! Kazoo hook names a Kazoo user already knows.

use hyper::Uri;

use crate::base::CALL_EVENT_KINDS;

/// Kazoo hook names accepted in `webhook-events`, with the event kind each stands for.
pub const KAZOO_HOOK_ALIASES: [(&str, &str); 3] = [
    ("channel_create", "call_started"),
    ("channel_answer", "call_answered"),
    ("channel_destroy", "call_ended"),
];

/// A receiver of webhook batches: an absolute `http://` URL with a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    uri: Uri,
}

impl WebhookUrl {
    /// Checks a configured URL. `https://` is refused with its reason: the proxy carries no TLS
    /// client, and sending events in clear while the operator believes them encrypted is worse
    /// than refusing to start.
    pub fn parse(text: &str) -> Result<WebhookUrl, String> {
        let uri: Uri = text
            .trim()
            .parse()
            .map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(format!(
                    "{text:?}: https is not supported (no TLS client is built in); use an \
                     http:// receiver, e.g. a local TLS-terminating relay"
                ));
            }
            _ => return Err(format!("{text:?} must start with http://")),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(format!("{text:?} has no host"));
        }
        Ok(WebhookUrl { uri })
    }

    /// The parsed URL.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// `host:port` to connect to (port 80 when the URL names none).
    pub fn authority(&self) -> String {
        let host = self.uri.host().unwrap_or_default();
        let port = self.uri.port_u16().unwrap_or(80);
        format!("{host}:{port}")
    }

    /// The request target: the path and query, `/` when the URL has none.
    pub fn path_and_query(&self) -> &str {
        self.uri.path_and_query().map_or("/", |p| p.as_str())
    }
}

impl std::fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.uri)
    }
}

/// Checks one entry of `webhook-events` and returns the event kind it selects: one of our
/// event names, or a Kazoo hook name (`channel_create`...) standing for ours.
pub fn parse_event_kind(text: &str) -> Result<String, String> {
    let text = text.trim();
    if let Some((_, kind)) = KAZOO_HOOK_ALIASES.iter().find(|(hook, _)| *hook == text) {
        return Ok((*kind).to_owned());
    }
    if CALL_EVENT_KINDS.contains(&text) {
        return Ok(text.to_owned());
    }
    Err(format!(
        "unknown event {text:?}; known: {}, {}",
        KAZOO_HOOK_ALIASES.map(|(hook, _)| hook).join(", "),
        CALL_EVENT_KINDS.join(", ")
    ))
}

/// The HMAC key of `webhook-secret`; its `Debug` shows no key, so a logged configuration does
/// not leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// Checks a configured key: it must not be empty (an empty key signs nothing worth
    /// checking).
    pub fn parse(text: &str) -> Result<WebhookSecret, String> {
        if text.is_empty() {
            return Err("must not be empty".to_owned());
        }
        Ok(WebhookSecret(text.to_owned()))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Which event kinds are sent: every kind when the configured list is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    kinds: Vec<String>,
}

impl EventFilter {
    /// A filter passing `kinds` (already checked by [`parse_event_kind`]); empty passes all.
    pub fn new(kinds: Vec<String>) -> EventFilter {
        EventFilter { kinds }
    }

    /// Whether an event of `kind` is sent.
    pub fn passes(&self, kind: &str) -> bool {
        self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_are_accepted_and_https_refused_with_the_reason() {
        let url = WebhookUrl::parse("http://127.0.0.1:9000/hooks?x=1").unwrap();
        assert_eq!(url.authority(), "127.0.0.1:9000");
        assert_eq!(url.path_and_query(), "/hooks?x=1");
        let bare = WebhookUrl::parse("http://hooks.example").unwrap();
        assert_eq!(bare.authority(), "hooks.example:80");
        assert_eq!(bare.path_and_query(), "/");
        let err = WebhookUrl::parse("https://hooks.example/").unwrap_err();
        assert!(err.contains("no TLS client"), "{err}");
        assert!(WebhookUrl::parse("ftp://x/").is_err());
        assert!(WebhookUrl::parse("/relative").is_err());
        assert!(WebhookUrl::parse("not a url").is_err());
    }

    #[test]
    fn the_filter_takes_our_names_and_kazoo_hook_names() {
        assert_eq!(parse_event_kind("channel_destroy").unwrap(), "call_ended");
        assert_eq!(
            parse_event_kind("metaflow_match").unwrap(),
            "metaflow_match"
        );
        assert!(parse_event_kind("channel_bridge").is_err());
        let filter = EventFilter::new(vec!["call_ended".into(), "digit".into()]);
        assert!(filter.passes("call_ended"));
        assert!(filter.passes("digit"));
        assert!(!filter.passes("call_started"));
        assert!(EventFilter::default().passes("recording_stopped"));
    }
}
