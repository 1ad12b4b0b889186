//! Known SIP scanners by their `User-Agent`: sipvicious (`svmap`, `svwar`, `svcrack` say
//! `friendly-scanner`), sipcli, sip-scan, VaxSIPUserAgent, iWar, sundayddr, pplsip — the list
//! Kamailio's and OpenSIPS' example configurations drop. The call core drops such requests
//! without any answer, so a scanner learns nothing, not even that a SIP service listens.
//!
//! Matching is a case-insensitive *prefix* of the header value (leading blanks ignored), not a
//! substring: the scanners put their name first, and a substring test would take
//! `MySIPClient/2.0` for `sipcli` or `Kiwari` for `iwar`.

use crate::sip::SipMessage;
use crate::sip::names::USER_AGENT;

/// The built-in list of scanner `User-Agent` prefixes (key `scanner-user-agents` replaces it).
pub const DEFAULT_SCANNER_USER_AGENTS: [&str; 9] = [
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "VaxSIPUserAgent",
    "iWar",
    "SIPVicious",
    "sundayddr",
    "pplsip",
];

/// The built-in list as owned strings.
pub fn default_scanner_user_agents() -> Vec<String> {
    DEFAULT_SCANNER_USER_AGENTS
        .iter()
        .map(|ua| (*ua).to_owned())
        .collect()
}

/// Whether `user_agent` starts, ignoring case and leading blanks, with one of `prefixes`.
/// Empty prefixes never match (they would match everything).
pub fn is_scanner_user_agent(user_agent: &str, prefixes: &[String]) -> bool {
    let value = user_agent.trim_start().as_bytes();
    prefixes.iter().any(|prefix| {
        let prefix = prefix.as_bytes();
        !prefix.is_empty()
            && value
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    })
}

/// Whether any `User-Agent` header of `msg` names a known scanner (see
/// [`is_scanner_user_agent`]); every header line is looked at, so a second, innocent one put
/// first does not hide the scanner.
pub fn is_scanner(msg: &SipMessage, prefixes: &[String]) -> bool {
    !prefixes.is_empty()
        && msg
            .header_values(USER_AGENT)
            .iter()
            .any(|ua| is_scanner_user_agent(ua, prefixes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Vec<String> {
        default_scanner_user_agents()
    }

    #[test]
    fn the_known_scanners_match_whatever_their_case() {
        for ua in [
            "friendly-scanner",
            "Friendly-Scanner",
            "sipvicious 0.3.4",
            "SIPVicious/0.3",
            "sipcli/v1.8",
            "sip-scan",
            "VaxSIPUserAgent/3.1",
            "iWar",
            "sundayddr",
            "pplsip",
            "  friendly-scanner",
        ] {
            assert!(is_scanner_user_agent(ua, &defaults()), "{ua}");
        }
    }

    #[test]
    fn real_phones_and_pbxs_do_not_match() {
        for ua in [
            "Cisco-SIPGateway/IOS-12.x",
            "Cisco/SPA504G-7.6.2",
            "MySIPClient/2.0",
            "Kiwari 1.0",
            "Linphone/5.2",
            "Asterisk PBX 20.1",
            "FreeSWITCH-mod_sofia/1.10",
            "Yealink SIP-T46S",
            "",
            "sip",
        ] {
            assert!(!is_scanner_user_agent(ua, &defaults()), "{ua}");
        }
    }

    #[test]
    fn an_empty_prefix_never_matches() {
        assert!(!is_scanner_user_agent("anything", &[String::new()]));
        assert!(!is_scanner_user_agent("anything", &[]));
    }

    #[test]
    fn a_message_without_user_agent_is_no_scanner() {
        let mut msg = SipMessage::request(crate::sip::Method::Options, "sip:100@192.0.2.1");
        assert!(!is_scanner(&msg, &defaults()));
        msg.push_header("User-Agent", "friendly-scanner");
        assert!(is_scanner(&msg, &defaults()));
        assert!(!is_scanner(&msg, &[]));
        let mut two = SipMessage::request(crate::sip::Method::Options, "sip:100@192.0.2.1");
        two.push_header("User-Agent", "Linphone/5.2");
        two.push_header("user-agent", "sipvicious");
        assert!(
            is_scanner(&two, &defaults()),
            "a second header line counts too"
        );
    }
}
