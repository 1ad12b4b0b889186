//! Corpus tests for the SIP parser: the 49 RFC 4475 torture messages with the
//! RFC's verdict for each, external fuzz seeds, and property tests (no panics,
//! serialise/parse round trip).
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

use std::path::{Path, PathBuf};

use metaflow_proxy::sip::{Rejection, SipMessage};
use proptest::prelude::*;

/// What RFC 4475 expects from an element receiving the message.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Well formed; must parse and pass validation.
    Accept,
    /// Invalid; parsing or validation must fail.
    Reject,
    /// Parses; validation answers with this code (`None` = passes).
    Semantic(Option<u16>),
}

use Expect::{Accept, Reject, Semantic};

const CASES: &[(&str, Expect)] = &[
    ("wsinv", Accept),
    ("intmeth", Accept),
    ("esc01", Accept),
    ("escnull", Accept),
    ("esc02", Accept),
    ("lwsdisp", Accept),
    ("longreq", Accept),
    ("dblreq", Accept),
    ("semiuri", Accept),
    ("transports", Accept),
    ("mpart01", Accept),
    ("unreason", Accept),
    ("noreason", Accept),
    ("badinv01", Reject),
    ("clerr", Reject),
    ("ncl", Reject),
    ("scalar02", Reject),
    ("scalarlg", Reject),
    ("quotbal", Reject),
    ("ltgtruri", Reject),
    ("lwsruri", Reject),
    ("lwsstart", Reject),
    ("trws", Reject),
    ("escruri", Reject),
    ("baddate", Reject),
    ("regbadct", Reject),
    ("badaspec", Reject),
    ("baddn", Reject),
    ("badvers", Reject),
    ("mismatch01", Reject),
    ("mismatch02", Reject),
    ("bigcode", Reject),
    ("badbranch", Semantic(None)),
    ("insuf", Semantic(Some(400))),
    ("unkscm", Semantic(Some(416))),
    ("novelsc", Semantic(Some(416))),
    ("unksm2", Semantic(None)),
    ("bext01", Semantic(None)),
    ("invut", Semantic(None)),
    ("regaut01", Semantic(None)),
    ("multi01", Semantic(Some(400))),
    ("mcl01", Semantic(Some(400))),
    ("bcast", Semantic(None)),
    ("zeromf", Semantic(None)),
    ("cparam01", Semantic(None)),
    ("cparam02", Semantic(None)),
    ("regescrt", Semantic(None)),
    ("sdp01", Semantic(None)),
    ("inv2543", Accept),
];

/// Invalid RFC 4475 messages that neither parsing nor validation catches.
const KNOWN_UNDETECTED: &[&str] = &[];

fn rfc4475_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc4475")
}

fn load(name: &str) -> Vec<u8> {
    std::fs::read(rfc4475_dir().join(format!("{name}.dat"))).unwrap()
}

fn validate(m: &SipMessage) -> Result<(), Rejection> {
    if m.is_request() {
        m.validate_request()
    } else {
        m.validate_response()
    }
}

/// Same message apart from Content-Length headers (serialisation rewrites them).
fn assert_equivalent(a: &SipMessage, b: &SipMessage) {
    assert_eq!(a.start, b.start);
    assert_eq!(a.body, b.body);
    let strip = |m: &SipMessage| {
        m.headers
            .iter()
            .filter(|h| h.name != "Content-Length")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(a), strip(b));
}

#[test]
fn rfc4475_case_table_covers_every_file() {
    let mut on_disk: Vec<String> = std::fs::read_dir(rfc4475_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".dat").map(str::to_string))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CASES.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk.len(), 49);
    assert_eq!(on_disk, listed);
}

#[test]
fn rfc4475_verdicts() {
    let mut undetected = Vec::new();
    for (name, expect) in CASES {
        let parsed = SipMessage::parse(&load(name));
        match expect {
            Accept => {
                let m = parsed.unwrap_or_else(|e| panic!("{name} must parse: {e}"));
                validate(&m).unwrap_or_else(|r| panic!("{name} must validate: {r}"));
            }
            Semantic(code) => {
                let m = parsed.unwrap_or_else(|e| panic!("{name} must parse: {e}"));
                assert_eq!(validate(&m).err().map(|r| r.code), *code, "{name}");
            }
            Reject => {
                let caught = match &parsed {
                    Err(_) => true,
                    Ok(m) => validate(m).is_err(),
                };
                if !caught {
                    undetected.push(*name);
                }
            }
        }
    }
    assert_eq!(undetected, KNOWN_UNDETECTED);
}

#[test]
fn rfc4475_specific_outcomes() {
    let version = SipMessage::parse(&load("badvers")).unwrap_err();
    assert_eq!(version.rejection().code, 505);
    let mismatch = SipMessage::parse(&load("mismatch01")).unwrap();
    assert_eq!(
        mismatch.validate_request().unwrap_err().reason,
        "CSeq method mismatch"
    );
    let insuf = SipMessage::parse(&load("insuf")).unwrap();
    assert_eq!(
        insuf.validate_request().unwrap_err().reason,
        "Missing Call-ID"
    );
    let dbl = SipMessage::parse(&load("dblreq")).unwrap();
    assert!(dbl.body.is_empty());
    let wsinv = SipMessage::parse(&load("wsinv")).unwrap();
    assert_eq!(wsinv.max_forwards(), Some(68));
    assert_eq!(wsinv.cseq().map(|(n, _)| n), Some(9));
    assert_eq!(wsinv.to_tag().as_deref(), Some("1918181833n"));
    assert_eq!(wsinv.from_tag().as_deref(), Some("98asjd8"));
    assert_eq!(wsinv.vias().len(), 3);
    assert_eq!(
        wsinv.header("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(wsinv.body.len(), 150);
    let mpart = SipMessage::parse(&load("mpart01")).unwrap();
    assert!(mpart.content_type().unwrap().starts_with("multipart/mixed"));
    let esc = SipMessage::parse(&load("esc02")).unwrap();
    assert_eq!(esc.header_values("Contact").len(), 2);
}

#[test]
fn rfc4475_valid_messages_round_trip() {
    for (name, expect) in CASES {
        let Ok(first) = SipMessage::parse(&load(name)) else {
            assert_eq!(*expect, Reject, "{name}");
            continue;
        };
        let wire = first.to_bytes();
        let second = SipMessage::parse(&wire).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_equivalent(&first, &second);
        assert_eq!(second.to_bytes(), wire, "{name}");
        let (streamed, used) = SipMessage::parse_stream(&wire).unwrap().unwrap();
        assert_eq!(used, wire.len());
        assert_equivalent(&first, &streamed);
    }
}

/// Fuzz seed corpora live outside the crate; the directory can be overridden.
fn fuzz_root() -> PathBuf {
    std::env::var_os("METAFLOW_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/testdata"))
        .join("fuzz")
}

#[test]
fn fuzz_seed_corpora_never_panic() {
    let root = fuzz_root();
    if !root.is_dir() {
        eprintln!("skipping: {} not present", root.display());
        return;
    }
    let mut fed = 0usize;
    let mut parsed = 0usize;
    for dir in [
        "pjproject/sip",
        "pjproject/sip-dialog",
        "sipgo",
        "protos-c07-sip-r2-sample/payloads",
    ] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            if let Ok(m) = SipMessage::parse(&bytes) {
                parsed += 1;
                let _ = validate(&m);
                assert!(SipMessage::parse(&m.to_bytes()).is_ok());
            }
            let _ = SipMessage::parse_stream(&bytes);
            fed += 1;
        }
    }
    assert!(fed >= 50, "only {fed} seeds found");
    // Several pjproject seeds and the PROTOS base case are valid SIP.
    assert!(parsed >= 10, "only {parsed} of {fed} seeds parsed");
}

fn corpus() -> Vec<Vec<u8>> {
    CASES.iter().map(|(name, _)| load(name)).collect()
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let _ = SipMessage::parse(&bytes);
        let _ = SipMessage::parse_stream(&bytes);
    }

    #[test]
    fn mutated_rfc4475_messages_never_panic_and_round_trip(
        index in 0usize..49,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let messages = corpus();
        let mut bytes = messages.get(index).cloned().unwrap_or_default();
        for (at, byte, kind) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => { bytes.remove(i); }
            }
        }
        let truncated = bytes.get(..cut.index(bytes.len() + 1)).unwrap_or(&bytes).to_vec();
        for input in [&bytes, &truncated] {
            let _ = SipMessage::parse_stream(input);
            if let Ok(m) = SipMessage::parse(input) {
                let _ = validate(&m);
                let wire = m.to_bytes();
                let again = SipMessage::parse(&wire).unwrap();
                assert_equivalent(&m, &again);
            }
        }
    }
}

/// Inputs the fuzzers found (tests/data/fuzz-regressions/sip_parse-*): whatever parses must
/// serialise into a message that parses again, identically.
#[test]
fn fuzz_regressions_round_trip() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fuzz-regressions");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("regression inputs") {
        let path = entry.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("sip_parse-")
        {
            continue;
        }
        seen += 1;
        let data = std::fs::read(&path).unwrap();
        if let Ok(msg) = metaflow_proxy::sip::SipMessage::parse(&data) {
            let bytes = msg.to_bytes();
            let again = metaflow_proxy::sip::SipMessage::parse(&bytes)
                .unwrap_or_else(|e| panic!("{}: re-parse failed: {e}", path.display()));
            assert_eq!(again.to_bytes(), bytes, "{}", path.display());
        }
    }
    assert!(seen > 0);
}
