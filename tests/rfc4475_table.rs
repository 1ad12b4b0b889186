//! The 49 RFC 4475 torture messages fed, one each, to a fresh call core with a PBX configured
//! upstream. Every message must meet the verdict the RFC gives for an element in the proxy's
//! role: valid requests are processed (forwarded upstream or answered as the core answers
//! them), invalid ones are answered with the RFC's code or dropped, and never forwarded.
//! Run with `--nocapture` to see the table.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use metaflow_proxy::b2bua::{B2bua, CoreConfig, Input, Leg, Output};
use metaflow_proxy::media::{
    CallKey, InspectorConfig, MediaControl, MediaError, PortPair, SdpDirection, StreamPorts,
};
use metaflow_proxy::metrics::Metrics;
use metaflow_proxy::sip::SipMessage;
use metaflow_proxy::sip::transport::{Peer, Transport};
use metaflow_proxy::sip::txn::Timers;

const PROXY: &str = "127.0.0.1:5060";
const PHONE: &str = "127.0.0.1:5061";
const PBX: &str = "127.0.0.1:5070";

/// What the proxy must do with one torture message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Sent on to the PBX (a new call, or a request the proxy relays).
    Forwarded,
    /// Answered to the sender with this final status, nothing sent upstream.
    Answered(u16),
    /// A request dropped without any answer.
    Dropped,
    /// A response that parses but matches no transaction: discarded, not relayed.
    StrayDiscarded,
    /// A response that is invalid: discarded, not relayed.
    InvalidDiscarded,
}

use Outcome::{Answered, Dropped, Forwarded, InvalidDiscarded, StrayDiscarded};

/// (file, RFC section and verdict, outcome this proxy must produce).
const CASES: &[(&str, &str, Outcome)] = &[
    (
        "wsinv",
        "3.1.1.1 valid (in-dialog, unknown dialog)",
        Answered(481),
    ),
    ("intmeth", "3.1.1.2 valid", Forwarded),
    ("esc01", "3.1.1.3 valid", Forwarded),
    ("escnull", "3.1.1.4 valid", Forwarded),
    ("esc02", "3.1.1.5 valid (UAS 501; proxy relays)", Forwarded),
    ("lwsdisp", "3.1.1.6 valid", Forwarded),
    ("longreq", "3.1.1.7 valid", Forwarded),
    ("dblreq", "3.1.1.8 valid, ignore extra bytes", Forwarded),
    ("semiuri", "3.1.1.9 valid", Forwarded),
    ("transports", "3.1.1.10 valid", Forwarded),
    ("mpart01", "3.1.1.11 valid", Forwarded),
    ("unreason", "3.1.1.12 valid response", StrayDiscarded),
    ("noreason", "3.1.1.13 valid response", StrayDiscarded),
    ("badinv01", "3.1.2.1 invalid: 400", Answered(400)),
    ("clerr", "3.1.2.2 invalid: 400 over UDP", Answered(400)),
    ("ncl", "3.1.2.3 invalid: error (400)", Answered(400)),
    ("scalar02", "3.1.2.4 invalid: 400", Answered(400)),
    (
        "scalarlg",
        "3.1.2.5 invalid response: drop",
        InvalidDiscarded,
    ),
    ("quotbal", "3.1.2.6 invalid: 400", Answered(400)),
    ("ltgtruri", "3.1.2.7 invalid: 400", Answered(400)),
    ("lwsruri", "3.1.2.8 invalid: 400", Answered(400)),
    (
        "lwsstart",
        "3.1.2.9 invalid: 400 (or liberal)",
        Answered(400),
    ),
    ("trws", "3.1.2.10 invalid: 400 (or liberal)", Answered(400)),
    ("escruri", "3.1.2.11 invalid: 400", Answered(400)),
    (
        "baddate",
        "3.1.2.12 invalid: 400 (or ignore Date)",
        Answered(400),
    ),
    ("regbadct", "3.1.2.13 invalid: 400", Answered(400)),
    ("badaspec", "3.1.2.14 invalid: 400", Answered(400)),
    ("baddn", "3.1.2.15 invalid: 400", Answered(400)),
    ("badvers", "3.1.2.16 invalid: 505", Answered(505)),
    ("mismatch01", "3.1.2.17 invalid: 400", Answered(400)),
    ("mismatch02", "3.1.2.18 invalid: 501 or 400", Answered(400)),
    (
        "bigcode",
        "3.1.2.19 invalid response: drop",
        InvalidDiscarded,
    ),
    ("badbranch", "3.2.1 400 or RFC 2543 fallback", Answered(400)),
    ("insuf", "3.3.1 400", Answered(400)),
    ("unkscm", "3.3.2 416", Answered(416)),
    ("novelsc", "3.3.3 416 (or process)", Answered(416)),
    ("unksm2", "3.3.4 proxy processes (registrar 400)", Forwarded),
    (
        "bext01",
        "3.3.5 proxy: 420 for Proxy-Require",
        Answered(420),
    ),
    ("invut", "3.3.6 UAS 415 (B2BUA reads body)", Answered(415)),
    ("regaut01", "3.3.7 proxy relays (registrar 401)", Forwarded),
    ("multi01", "3.3.8 400", Answered(400)),
    ("mcl01", "3.3.9 400", Answered(400)),
    (
        "bcast",
        "3.3.10 response, never to broadcast",
        StrayDiscarded,
    ),
    ("zeromf", "3.3.11 proxy 483", Answered(483)),
    ("cparam01", "3.3.12 valid", Forwarded),
    ("cparam02", "3.3.13 valid", Forwarded),
    ("regescrt", "3.3.14 valid", Forwarded),
    ("sdp01", "3.3.15 406 (or 400)", Answered(406)),
    ("inv2543", "3.4.1 valid (RFC 2543)", Forwarded),
];

/// Media backend that hands out port numbers and records nothing else.
#[derive(Default)]
struct CountingMedia {
    next_port: u16,
    streams: usize,
}

impl MediaControl for CountingMedia {
    fn allocate_stream(
        &mut self,
        _call: CallKey,
        _index: usize,
    ) -> Result<StreamPorts, MediaError> {
        let base = 40_000 + self.next_port;
        self.next_port += 4;
        self.streams += 1;
        let pair = |rtp: u16| PortPair { rtp, rtcp: rtp + 1 };
        Ok(StreamPorts {
            a: pair(base),
            b: pair(base + 2),
        })
    }
    fn set_remote(&mut self, _: CallKey, _: usize, _: Leg, _: SocketAddr, _: SocketAddr) {}
    fn configure_inspector(&mut self, _: CallKey, _: usize, _: Leg, _: InspectorConfig) {}
    fn discard_held(&mut self, _: CallKey, _: Leg) {}
    fn leg_replaced(&mut self, _: CallKey, _: Leg) {}
    fn release_held(&mut self, _: CallKey, _: Leg, _: &str) {}
    fn set_direction(&mut self, _: CallKey, _: usize, _: Leg, _: SdpDirection) {}
    fn arm_timeout(&mut self, _: CallKey) {}
    fn set_tap(&mut self, _: CallKey, _: Option<metaflow_proxy::media::SharedTap>) {}
    fn set_audio_stream(&mut self, _: CallKey, _: usize) {}
    fn play(&mut self, _: CallKey, _: Leg, _: metaflow_proxy::media::playout::Playback) -> bool {
        false
    }
    fn stop_playback(&mut self, _: CallKey, _: Leg, _: Option<u64>) {}
    fn set_hold(&mut self, _: CallKey, _: Leg, _: bool) {}
    fn set_gain(
        &mut self,
        _: CallKey,
        _: Leg,
        _: metaflow_proxy::base::Gain,
        _: metaflow_proxy::media::playout::G711Map,
    ) {
    }
    fn open_consult(&mut self, _: CallKey, _: Leg) -> Result<PortPair, MediaError> {
        Err(MediaError::NoStream)
    }
    fn set_consult_remote(&mut self, _: CallKey, _: SocketAddr, _: SocketAddr) {}
    fn close_consult(&mut self, _: CallKey) {}
    fn consult_takes(&mut self, _: CallKey, _: Leg) {}
    fn release_call(&mut self, _: CallKey) {
        self.streams = 0;
    }
    fn ports_in_use(&self) -> usize {
        self.streams * 4
    }
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn fresh_core() -> B2bua {
    let cfg = CoreConfig {
        local: addr(PROXY),
        upstream: Some(addr(PBX)),
        upstream_host: "127.0.0.1".into(),
        media_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        timers: Timers::default(),
        max_calls: 100,
        upstream_transport: Transport::Udp,
        max_transactions: 1000,
        rng_seed: Some(4475),
        timer_c: metaflow_proxy::b2bua::DEFAULT_TIMER_C,
        no_answer_timeout: None,
        scanner_user_agents: metaflow_proxy::sip::validate::default_scanner_user_agents(),
        rate_limit: Some(metaflow_proxy::b2bua::RateLimit::default()),
        pbx_sources: Vec::new(),
        advertise: None,
        max_registrations: 1000,
        placed_call_from: Default::default(),
        rate_limit_exempt: Vec::new(),
    };
    B2bua::new(
        cfg,
        Arc::new(Metrics::new()),
        Box::new(CountingMedia::default()),
    )
}

fn load(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/rfc4475/{name}.dat"));
    std::fs::read(path).unwrap()
}

/// What the core did with one datagram, plus what it sent, for the checks below.
struct Observed {
    outcome: Outcome,
    upstream: Vec<SipMessage>,
    answers: Vec<SipMessage>,
}

fn feed(data: &[u8]) -> Observed {
    let mut core = fresh_core();
    let from = Peer::udp(addr(PHONE));
    core.handle(Instant::now(), Input::Datagram { from, data });
    let mut upstream = Vec::new();
    let mut answers = Vec::new();
    while let Some(output) = core.poll_output() {
        if let Output::Send { to, data, .. } = output {
            let sent = SipMessage::parse(&data).expect("the proxy sends parseable SIP");
            if to.addr == addr(PBX) {
                upstream.push(sent);
            } else {
                assert_eq!(to.addr, addr(PHONE), "sent to an unexpected peer");
                answers.push(sent);
            }
        }
    }
    let final_code = answers
        .iter()
        .filter_map(SipMessage::status)
        .find(|code| *code >= 200);
    let is_response = data.starts_with(b"SIP/");
    let outcome = if !upstream.is_empty() {
        Forwarded
    } else if let Some(code) = final_code {
        Answered(code)
    } else if !is_response {
        Dropped
    } else if SipMessage::parse(data).is_ok_and(|m| m.validate_response().is_ok()) {
        StrayDiscarded
    } else {
        InvalidDiscarded
    };
    Observed {
        outcome,
        upstream,
        answers,
    }
}

fn describe(outcome: Outcome) -> String {
    match outcome {
        Forwarded => "forwarded upstream".into(),
        Answered(code) => format!("answered {code}"),
        Dropped => "dropped".into(),
        StrayDiscarded => "parsed, stray, not relayed".into(),
        InvalidDiscarded => "invalid, dropped".into(),
    }
}

/// Checks that go beyond the outcome for the cases where the RFC says what the answer or the
/// forwarded request must carry.
fn details_mismatch(name: &str, seen: &Observed) -> Option<String> {
    let answer = seen.answers.iter().find(|m| m.status() >= Some(200));
    let upstream = seen.upstream.first();
    let problem = match name {
        "bext01" => answer
            .and_then(|a| a.header("Unsupported"))
            .filter(|u| *u == "noProxiesSupportThis, norDoAnyProxiesSupportThis")
            .is_none()
            .then_some("420 without Unsupported listing the Proxy-Require tags"),
        "invut" => answer
            .and_then(|a| a.header("Accept"))
            .is_none()
            .then_some("415 without Accept"),
        "regaut01" => upstream
            .and_then(|m| m.header("Authorization"))
            .filter(|v| *v == "NoOneKnowsThisScheme opaque-data=here")
            .is_none()
            .then_some("Authorization not relayed unmodified"),
        "esc02" | "intmeth" => upstream
            .filter(|m| m.cseq().map(|(_, method)| method) == m.method().cloned())
            .is_none()
            .then_some("extension method not relayed as such"),
        "dblreq" => upstream
            .and_then(|m| m.method().map(|method| method.as_str().to_string()))
            .filter(|method| method == "REGISTER")
            .is_none()
            .then_some("trailing INVITE was not ignored"),
        _ => None,
    };
    problem.map(|p| format!("{name}: {p}"))
}

#[test]
fn every_rfc4475_message_meets_its_verdict() {
    let mut on_disk: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc4475"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".dat").map(str::to_string))
            .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CASES.iter().map(|(n, _, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "the table must cover every torture file");

    let mut mismatches = Vec::new();
    println!(
        "{:<12} {:<44} {:<28} ok",
        "file", "RFC 4475 verdict", "this proxy"
    );
    for (name, verdict, expected) in CASES {
        let seen = feed(&load(name));
        let ok = seen.outcome == *expected;
        println!(
            "{:<12} {:<44} {:<28} {}",
            name,
            verdict,
            describe(seen.outcome),
            if ok { "yes" } else { "NO" }
        );
        if !ok {
            mismatches.push(format!(
                "{name}: expected {}, got {}",
                describe(*expected),
                describe(seen.outcome)
            ));
        } else if let Some(detail) = details_mismatch(name, &seen) {
            mismatches.push(detail);
        }
        let invalid = !matches!(expected, Forwarded);
        if invalid && !seen.upstream.is_empty() {
            mismatches.push(format!("{name}: an invalid message was forwarded upstream"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "RFC 4475 mismatches:\n{}",
        mismatches.join("\n")
    );
}
