//! Sans-IO latching of one leg's RTP or RTCP flow: which sources the relay accepts packets of
//! that leg from, and where it sends the packets destined to the leg.
//!
//! The address the leg announced in its SDP (the *signalled* address) comes first. A packet
//! whose source matches it ([`SourceMatch`]: by IP, or by IP and port) latches the flow at once
//! and for good. What happens to a packet from any other source depends on the [`LatchMode`]:
//!
//! - [`LatchMode::Strict`]: it is refused, always. Only the signalled address can latch.
//! - [`LatchMode::Learning`] (the default): a leg behind NAT sends from an address its SDP does
//!   not know, so such a source may take the flow over, but only once the signalled address
//!   has stayed silent for a whole learning window. The first foreign packet opens the window
//!   and becomes the candidate; the candidate latches if it is heard again once the window has
//!   run out and nothing came from the signalled address in between. A different source heard
//!   after the window becomes the new candidate and opens a new window, so a one-off datagram
//!   from a stranger never takes a flow that someone else keeps sending on. Every packet
//!   refused while learning is held back (never relayed).
//! - [`LatchMode::FirstPacket`]: the first packet from anywhere latches (the behaviour before
//!   this policy existed; lab use only, it lets a stranger hijack a call).
//!
//! Once latched, only the latched source (IP and port) is accepted and media towards the leg
//! goes there; before that it goes to the signalled address. Without a signalled address
//! nothing is accepted (except in [`LatchMode::FirstPacket`]). A new signalled address
//! (re-INVITE) forgets the latch and starts over; the same address again keeps it.
//!
//! This is rtpengine's endpoint learning with `strict-source` always on: its `off` mode is our
//! `Strict`, its `heuristic`/`delayed` modes inspired `Learning` (where rtpengine keeps
//! forwarding during the window, we hold back), its `immediate` mode is `FirstPacket`.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// The learning window used unless configured otherwise (`rtp-learning-ms`).
pub const DEFAULT_LEARNING_WINDOW: Duration = Duration::from_millis(500);

/// How a leg's flow chooses the source it accepts (key `rtp-latch`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LatchMode {
    /// Only a source matching the signalled address latches; every other one is refused.
    Strict,
    /// The signalled address first; another source (NAT) may latch once the signalled address
    /// stayed silent for the learning window.
    #[default]
    Learning,
    /// The first packet from anywhere latches. Lab use: a stranger can hijack the call.
    FirstPacket,
}

impl LatchMode {
    /// The spelling used in the config file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            LatchMode::Strict => "strict",
            LatchMode::Learning => "learning",
            LatchMode::FirstPacket => "first-packet",
        }
    }
}

impl fmt::Display for LatchMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LatchMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "strict" => Ok(LatchMode::Strict),
            "learning" => Ok(LatchMode::Learning),
            "first-packet" => Ok(LatchMode::FirstPacket),
            other => Err(format!(
                "expected \"strict\", \"learning\" or \"first-packet\", got \"{other}\""
            )),
        }
    }
}

/// Which part of a packet's source must equal the signalled address (key `rtp-source-match`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SourceMatch {
    /// The IP address only: endpoints that send from another port than the one they receive
    /// on (not symmetric, RFC 4961) still latch.
    #[default]
    Ip,
    /// IP address and port.
    IpPort,
}

impl SourceMatch {
    /// The spelling used in the config file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceMatch::Ip => "ip",
            SourceMatch::IpPort => "ip-port",
        }
    }

    /// Whether `source` counts as the signalled address `signalled`. IPv4-mapped IPv6 sources
    /// (`::ffff:192.0.2.1`) match their IPv4 address.
    pub fn matches(self, signalled: SocketAddr, source: SocketAddr) -> bool {
        let same_ip = signalled.ip().to_canonical() == source.ip().to_canonical();
        match self {
            SourceMatch::Ip => same_ip,
            SourceMatch::IpPort => same_ip && signalled.port() == source.port(),
        }
    }
}

impl fmt::Display for SourceMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SourceMatch {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "ip" => Ok(SourceMatch::Ip),
            "ip-port" => Ok(SourceMatch::IpPort),
            other => Err(format!("expected \"ip\" or \"ip-port\", got \"{other}\"")),
        }
    }
}

/// The latching policy every flow of the engine follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatchPolicy {
    /// Who may latch a flow.
    pub mode: LatchMode,
    /// How long the signalled address must stay silent before another source may latch
    /// (used by [`LatchMode::Learning`] only).
    pub learning_window: Duration,
    /// How a source is compared with the signalled address.
    pub source_match: SourceMatch,
}

impl Default for LatchPolicy {
    fn default() -> Self {
        LatchPolicy {
            mode: LatchMode::default(),
            learning_window: DEFAULT_LEARNING_WINDOW,
            source_match: SourceMatch::default(),
        }
    }
}

/// Why a flow refused a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The flow's source is settled (latched, or in strict mode the signalled address) and the
    /// packet comes from elsewhere.
    ForeignSource,
    /// The packet comes from a source other than the signalled address while the flow is
    /// still learning: it is held back until that source may latch.
    Learning,
    /// The leg has announced no address yet, so no source can be checked.
    Unsignalled,
}

/// What to do with a packet received from a leg, as decided by that leg's latch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatchDecision {
    /// The packet comes from the latched source: relay it.
    Accept,
    /// The packet latched the flow for good on its source: relay it (and from now on the
    /// socket may be connected to that source).
    Latched,
    /// Drop the packet.
    Refuse(Refusal),
}

/// Where the flow stands since its signalled address was last set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// Nothing heard yet that could latch.
    #[default]
    Open,
    /// `candidate`, not the signalled address, was heard; it latches if heard again at
    /// `until_us` or later while the signalled address stays silent.
    Learning {
        candidate: SocketAddr,
        until_us: u64,
    },
    /// Final: only this source is accepted.
    Latched(SocketAddr),
}

/// Where one leg's flow (RTP or RTCP) is sent and which source it is accepted from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latch {
    policy: LatchPolicy,
    /// Address announced in the leg's SDP, if any yet.
    signalled: Option<SocketAddr>,
    state: State,
    /// The source of a party that left the leg (a call the proxy placed took its place): its
    /// parting packets (a last RTCP report) must not latch the flow while the new party is
    /// still silent.
    departed: Option<SocketAddr>,
}

impl Latch {
    /// A latch following `policy`, with neither an SDP address nor a latched source.
    pub fn new(policy: LatchPolicy) -> Self {
        Latch {
            policy,
            signalled: None,
            state: State::Open,
            departed: None,
        }
    }

    /// Another party takes the leg (the SDP address that follows is its): the source heard so
    /// far is refused from now on, and the flow starts over.
    pub fn depart(&mut self) {
        self.departed = match self.state {
            State::Latched(source)
            | State::Learning {
                candidate: source, ..
            } => Some(source),
            State::Open => self.signalled,
        };
        self.state = State::Open;
    }

    /// Records the SDP address of the leg. A different address than before re-points the flow
    /// and forgets the latched source (learning starts over); the same address keeps the latch.
    pub fn set_signalled(&mut self, addr: SocketAddr) {
        if self.signalled != Some(addr) {
            self.signalled = Some(addr);
            self.state = State::Open;
        }
    }

    /// Decides on a packet received from the leg at `now_us` (any monotonic clock in
    /// microseconds, the same for every call of one latch).
    pub fn on_packet(&mut self, source: SocketAddr, now_us: u64) -> LatchDecision {
        if self
            .departed
            .is_some_and(|gone| same_endpoint(gone, source))
        {
            return LatchDecision::Refuse(Refusal::ForeignSource);
        }
        if let State::Latched(latched) = self.state {
            return if same_endpoint(latched, source) {
                LatchDecision::Accept
            } else {
                LatchDecision::Refuse(Refusal::ForeignSource)
            };
        }
        let window_us = match self.policy.mode {
            LatchMode::FirstPacket => return self.latch(source),
            LatchMode::Strict => None,
            LatchMode::Learning => {
                Some(u64::try_from(self.policy.learning_window.as_micros()).unwrap_or(u64::MAX))
            }
        };
        let Some(signalled) = self.signalled else {
            return LatchDecision::Refuse(Refusal::Unsignalled);
        };
        if self.policy.source_match.matches(signalled, source) {
            return self.latch(source);
        }
        let Some(window_us) = window_us else {
            return LatchDecision::Refuse(Refusal::ForeignSource);
        };
        let open_window = match self.state {
            State::Learning {
                candidate,
                until_us,
            } if now_us >= until_us => {
                if same_endpoint(candidate, source) {
                    return self.latch(source);
                }
                // The candidate fell silent (or was a one-off): this source gets its own window.
                true
            }
            State::Learning { .. } => false,
            State::Open | State::Latched(_) => true,
        };
        if open_window {
            self.state = State::Learning {
                candidate: source,
                until_us: now_us.saturating_add(window_us),
            };
        }
        LatchDecision::Refuse(Refusal::Learning)
    }

    /// Where packets destined to the leg go now: the latched source, else the SDP address.
    pub fn destination(&self) -> Option<SocketAddr> {
        match self.state {
            State::Latched(source) => Some(source),
            State::Open | State::Learning { .. } => self.signalled,
        }
    }

    /// Whether the flow is latched for good on a source.
    pub fn is_latched(&self) -> bool {
        matches!(self.state, State::Latched(_))
    }

    fn latch(&mut self, source: SocketAddr) -> LatchDecision {
        self.state = State::Latched(source);
        LatchDecision::Latched
    }
}

/// Same IP (IPv4-mapped IPv6 and IPv4 alike) and port; IPv6 flow labels and scope ids aside.
fn same_endpoint(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
}

#[cfg(test)]
mod depart_tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    /// The party that left may not latch the leg again, even with the IP-only match and the
    /// learning window that would otherwise take it; the new party latches.
    #[test]
    fn a_departed_source_never_latches_again() {
        let mut latch = Latch::new(LatchPolicy::default());
        latch.set_signalled(addr("10.0.0.1:4000"));
        assert_eq!(
            latch.on_packet(addr("10.0.0.1:4000"), 0),
            LatchDecision::Latched
        );
        latch.depart();
        latch.set_signalled(addr("10.0.0.2:6000"));
        for at in [0, 1_000_000, 5_000_000] {
            assert_eq!(
                latch.on_packet(addr("10.0.0.1:4000"), at),
                LatchDecision::Refuse(Refusal::ForeignSource)
            );
        }
        assert_eq!(
            latch.on_packet(addr("10.0.0.2:6000"), 6_000_000),
            LatchDecision::Latched
        );
        assert_eq!(latch.destination(), Some(addr("10.0.0.2:6000")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LatchDecision::{Accept, Latched, Refuse};
    use Refusal::{ForeignSource, Learning, Unsignalled};
    use Step::{Destination, Packet, Sdp};

    const WINDOW_MS: u64 = 500;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn policy(mode: LatchMode, source_match: SourceMatch) -> LatchPolicy {
        LatchPolicy {
            mode,
            learning_window: Duration::from_millis(WINDOW_MS),
            source_match,
        }
    }

    /// One thing that happens to a latch in a scenario.
    enum Step {
        /// The leg's SDP announces this address.
        Sdp(&'static str),
        /// A packet from this source at this time (ms) gets this decision.
        Packet(&'static str, u64, LatchDecision),
        /// Media towards the leg goes here now.
        Destination(Option<&'static str>),
    }

    struct Case {
        name: &'static str,
        policy: LatchPolicy,
        steps: Vec<Step>,
    }

    fn learning() -> LatchPolicy {
        policy(LatchMode::Learning, SourceMatch::Ip)
    }

    fn cases() -> Vec<Case> {
        vec![
            Case {
                name: "signalled address (same IP, other port) latches at once",
                policy: learning(),
                steps: vec![
                    Sdp("192.0.2.10:4000"),
                    Destination(Some("192.0.2.10:4000")),
                    Packet("192.0.2.10:4002", 0, Latched),
                    Destination(Some("192.0.2.10:4002")),
                    Packet("192.0.2.10:4002", 20, Accept),
                    // Once latched, even the signalled IP on another port is foreign.
                    Packet("192.0.2.10:4000", 40, Refuse(ForeignSource)),
                ],
            },
            Case {
                name: "NAT re-latch when the signalled address stays silent for the window",
                policy: learning(),
                steps: vec![
                    Sdp("10.0.0.5:4000"),
                    Packet("198.51.100.7:61000", 0, Refuse(Learning)),
                    Packet("198.51.100.7:61000", 20, Refuse(Learning)),
                    Packet("198.51.100.7:61000", WINDOW_MS - 1, Refuse(Learning)),
                    Destination(Some("10.0.0.5:4000")),
                    Packet("198.51.100.7:61000", WINDOW_MS, Latched),
                    Destination(Some("198.51.100.7:61000")),
                    Packet("198.51.100.7:61000", WINDOW_MS + 20, Accept),
                    Packet("10.0.0.5:4000", WINDOW_MS + 40, Refuse(ForeignSource)),
                ],
            },
            Case {
                name: "a stranger during learning loses to the real caller who speaks",
                policy: learning(),
                steps: vec![
                    Sdp("192.0.2.10:4000"),
                    Packet("203.0.113.9:5000", 0, Refuse(Learning)),
                    Packet("203.0.113.9:5001", 10, Refuse(Learning)),
                    Packet("192.0.2.10:4000", 20, Latched),
                    Destination(Some("192.0.2.10:4000")),
                    Packet("203.0.113.9:5000", WINDOW_MS + 100, Refuse(ForeignSource)),
                    Packet("192.0.2.10:4000", WINDOW_MS + 120, Accept),
                ],
            },
            Case {
                name: "a one-off stranger cannot take the window from the NATed phone",
                policy: learning(),
                steps: vec![
                    Sdp("10.0.0.5:4000"),
                    Packet("203.0.113.9:5000", 0, Refuse(Learning)),
                    Packet("198.51.100.7:61000", 5, Refuse(Learning)),
                    // The window ran out, but the stranger is silent: the phone opens its own.
                    Packet("198.51.100.7:61000", WINDOW_MS + 5, Refuse(Learning)),
                    Packet("203.0.113.9:5000", WINDOW_MS + 10, Refuse(Learning)),
                    Packet("198.51.100.7:61000", 2 * WINDOW_MS + 5, Latched),
                    Packet(
                        "203.0.113.9:5000",
                        2 * WINDOW_MS + 10,
                        Refuse(ForeignSource),
                    ),
                ],
            },
            Case {
                name: "a stranger after the latch is refused, however long it keeps sending",
                policy: learning(),
                steps: vec![
                    Sdp("192.0.2.10:4000"),
                    Packet("192.0.2.10:4000", 0, Latched),
                    Packet("203.0.113.9:4000", 10_000, Refuse(ForeignSource)),
                    Packet("203.0.113.9:4000", 20_000, Refuse(ForeignSource)),
                    Destination(Some("192.0.2.10:4000")),
                ],
            },
            Case {
                name: "re-INVITE: a new address re-arms learning, the same one keeps the latch",
                policy: learning(),
                steps: vec![
                    Sdp("10.0.0.5:4000"),
                    Packet("198.51.100.7:61000", 0, Refuse(Learning)),
                    Packet("198.51.100.7:61000", WINDOW_MS, Latched),
                    Sdp("10.0.0.5:4000"),
                    Packet("198.51.100.7:61000", WINDOW_MS + 20, Accept),
                    Sdp("192.0.2.20:6000"),
                    Destination(Some("192.0.2.20:6000")),
                    // The old NAT source must learn again; the new address latches at once.
                    Packet("198.51.100.7:61000", WINDOW_MS + 40, Refuse(Learning)),
                    Packet("192.0.2.20:6002", WINDOW_MS + 60, Latched),
                    Destination(Some("192.0.2.20:6002")),
                ],
            },
            Case {
                name: "IPv6: the same address on another port matches by IP",
                policy: learning(),
                steps: vec![
                    Sdp("[2001:db8::10]:4000"),
                    Packet("[2001:db8::99]:4000", 0, Refuse(Learning)),
                    Packet("[2001:db8::10]:5000", 10, Latched),
                    Packet("[2001:db8::10%3]:5000", 20, Accept),
                    Packet("[2001:db8::99]:4000", WINDOW_MS + 20, Refuse(ForeignSource)),
                ],
            },
            Case {
                name: "IPv6 with ip-port: another port of the same address is foreign",
                policy: policy(LatchMode::Strict, SourceMatch::IpPort),
                steps: vec![
                    Sdp("[2001:db8::10]:4000"),
                    Packet("[2001:db8::10]:5000", 0, Refuse(ForeignSource)),
                    Packet("[2001:db8::10]:4000", 10, Latched),
                ],
            },
            Case {
                name: "an IPv4-mapped IPv6 source matches its IPv4 signalled address",
                policy: policy(LatchMode::Strict, SourceMatch::IpPort),
                steps: vec![
                    Sdp("192.0.2.10:4000"),
                    Packet("[::ffff:192.0.2.10]:4000", 0, Latched),
                    Packet("192.0.2.10:4000", 20, Accept),
                ],
            },
            Case {
                name: "ip-port: the same IP on another port waits in learning",
                policy: policy(LatchMode::Learning, SourceMatch::IpPort),
                steps: vec![
                    Sdp("192.0.2.10:4000"),
                    Packet("192.0.2.10:4444", 0, Refuse(Learning)),
                    Packet("192.0.2.10:4000", 20, Latched),
                    Packet("192.0.2.10:4444", WINDOW_MS + 20, Refuse(ForeignSource)),
                ],
            },
            Case {
                name: "strict: a silent signalled address never hands the flow to another",
                policy: policy(LatchMode::Strict, SourceMatch::Ip),
                steps: vec![
                    Sdp("10.0.0.5:4000"),
                    Packet("198.51.100.7:61000", 0, Refuse(ForeignSource)),
                    Packet("198.51.100.7:61000", 60_000, Refuse(ForeignSource)),
                    Destination(Some("10.0.0.5:4000")),
                    Packet("10.0.0.5:4000", 60_020, Latched),
                ],
            },
            Case {
                name: "without an SDP address nothing latches (strict and learning)",
                policy: learning(),
                steps: vec![
                    Packet("192.0.2.30:7000", 0, Refuse(Unsignalled)),
                    Packet("192.0.2.30:7000", 10 * WINDOW_MS, Refuse(Unsignalled)),
                    Destination(None),
                    Sdp("192.0.2.30:7000"),
                    Packet("192.0.2.30:7000", 10 * WINDOW_MS + 20, Latched),
                ],
            },
            Case {
                name: "first-packet: anyone latches first, before or without SDP",
                policy: policy(LatchMode::FirstPacket, SourceMatch::Ip),
                steps: vec![
                    Packet("192.0.2.30:7000", 0, Latched),
                    Destination(Some("192.0.2.30:7000")),
                    Sdp("10.0.0.5:4000"),
                    Packet("203.0.113.9:5000", 20, Latched),
                    Packet("10.0.0.5:4000", 40, Refuse(ForeignSource)),
                ],
            },
        ]
    }

    #[test]
    fn latch_policy_table() {
        for case in cases() {
            let mut latch = Latch::new(case.policy);
            for (index, step) in case.steps.iter().enumerate() {
                match step {
                    Sdp(text) => latch.set_signalled(addr(text)),
                    Packet(source, at_ms, expected) => {
                        let got = latch.on_packet(addr(source), at_ms * 1000);
                        assert_eq!(
                            got, *expected,
                            "{}: step {index}, packet from {source} at {at_ms} ms",
                            case.name
                        );
                        let latched = matches!(expected, Accept | Latched);
                        assert!(
                            !latched || latch.is_latched(),
                            "{}: step {index}",
                            case.name
                        );
                    }
                    Destination(expected) => assert_eq!(
                        latch.destination(),
                        expected.map(addr),
                        "{}: step {index}",
                        case.name
                    ),
                }
            }
        }
    }

    #[test]
    fn modes_and_matches_parse_and_print_their_config_spelling() {
        for mode in [
            LatchMode::Strict,
            LatchMode::Learning,
            LatchMode::FirstPacket,
        ] {
            assert_eq!(mode.as_str().parse::<LatchMode>(), Ok(mode));
        }
        for rule in [SourceMatch::Ip, SourceMatch::IpPort] {
            assert_eq!(rule.to_string().parse::<SourceMatch>(), Ok(rule));
        }
        assert!(
            "Strict"
                .parse::<LatchMode>()
                .unwrap_err()
                .contains("\"Strict\"")
        );
        assert!("port".parse::<SourceMatch>().is_err());
        let default = LatchPolicy::default();
        assert_eq!(
            (default.mode, default.source_match, default.learning_window),
            (
                LatchMode::Learning,
                SourceMatch::Ip,
                DEFAULT_LEARNING_WINDOW
            )
        );
    }
}
