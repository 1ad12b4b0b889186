//! SIP request methods.

/// A SIP request method; unknown methods are kept verbatim in `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// Session setup (RFC 3261).
    Invite,
    /// Final-response acknowledgement for INVITE.
    Ack,
    /// Session teardown.
    Bye,
    /// Cancels a pending request.
    Cancel,
    /// Capability query, also used as keep-alive ping.
    Options,
    /// Binds a contact to an address of record.
    Register,
    /// Mid-dialog application data (RFC 6086), e.g. SIP INFO DTMF.
    Info,
    /// Mid-dialog session update (RFC 3311).
    Update,
    /// Reliable provisional response acknowledgement (RFC 3262).
    Prack,
    /// Event subscription (RFC 6665).
    Subscribe,
    /// Event notification (RFC 6665).
    Notify,
    /// Call transfer request (RFC 3515).
    Refer,
    /// Instant message (RFC 3428).
    Message,
    /// Event state publication (RFC 3903).
    Publish,
    /// Any extension method, spelled as received.
    Other(String),
}

impl Method {
    /// The method name as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(name) => name,
        }
    }

    /// Maps a method name to a `Method`. Method names are case-sensitive
    /// (RFC 3261 §7.1), so `invite` is an extension method.
    pub fn parse(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// True for a non-empty RFC 3261 `token` (method names, header names, params).
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// True for a byte allowed in an RFC 3261 `token`.
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_methods_round_trip() {
        for name in [
            "INVITE",
            "ACK",
            "BYE",
            "CANCEL",
            "OPTIONS",
            "REGISTER",
            "INFO",
            "UPDATE",
            "PRACK",
            "SUBSCRIBE",
            "NOTIFY",
            "REFER",
            "MESSAGE",
            "PUBLISH",
        ] {
            let m = Method::parse(name);
            assert!(!matches!(m, Method::Other(_)), "{name}");
            assert_eq!(m.as_str(), name);
        }
    }

    #[test]
    fn unknown_and_lowercase_methods_are_other() {
        assert_eq!(Method::parse("invite"), Method::Other("invite".into()));
        assert_eq!(Method::parse("FOO").as_str(), "FOO");
    }

    #[test]
    fn token_rules() {
        assert!(is_token("!interesting-Method0123456789_*+`.%indeed'~"));
        assert!(!is_token(""));
        assert!(!is_token("IN VITE"));
        assert!(!is_token("A:B"));
    }
}
