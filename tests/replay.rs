//! `metaflow-proxy replay` against the real proxy binary: the corpus in `pcaps/` meets every
//! expectation, a wrong expectation exits 1 naming the field, a capture without SIP, with one
//! direction only or truncated behaves as documented, and speed does not change a code's
//! outcome. Needs SIPp's stock DTMF captures (/usr/share/sip-tester) for the generated ones.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;
#[path = "replay/gen.rs"]
mod generate;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::calls::MetaflowsProxy;

/// The codes the corpus expectations are written for (`pcaps/metaflows.json`): `*0` hangs up,
/// `*9` records, `*5` transfers to 2000, dialed on either leg.
const METAFLOWS: &str = include_str!("../pcaps/metaflows.json");

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps");
const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/pcaps");

/// Runs `metaflow-proxy replay TARGET` against `proxy` with `extra` arguments.
fn replay(proxy: &MetaflowsProxy, target: &Path, extra: &[&str]) -> Output {
    replay_via(proxy, "127.0.0.1", target, extra)
}

/// As [`replay`], with the stand-in PBX bound on `pbx_ip` and the proxy's upstream port.
fn replay_via(proxy: &MetaflowsProxy, pbx_ip: &str, target: &Path, extra: &[&str]) -> Output {
    let events = proxy.data_dir().join("events.jsonl");
    let pbx = format!("{pbx_ip}:{}", proxy.upstream_port());
    Command::new(env!("CARGO_BIN_EXE_metaflow-proxy"))
        .arg("replay")
        .arg(target)
        .args(["--proxy", &proxy.sip_addr(), "--pbx-listen", &pbx])
        .arg("--events")
        .arg(&events)
        .args(["--linger-ms", "500"])
        .args(extra)
        .output()
        .unwrap()
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn corpus(name: &str) -> PathBuf {
    Path::new(CORPUS).join(name)
}

#[test]
fn generated_captures_are_up_to_date() {
    for (name, bytes) in generate::captures() {
        let path = corpus(&format!("{name}.pcap"));
        if std::env::var_os("UPDATE_PCAPS").is_some() {
            std::fs::write(&path, &bytes).unwrap();
        }
        let on_disk = std::fs::read(&path).unwrap_or_default();
        assert!(
            on_disk == bytes,
            "{} differs from its generator; run UPDATE_PCAPS=1 cargo test --test replay",
            path.display()
        );
        assert!(
            corpus(&format!("{name}.expect.toml")).exists(),
            "{name} has no expectation"
        );
    }
}

#[test]
fn the_corpus_meets_every_expectation() {
    let proxy = MetaflowsProxy::start(METAFLOWS);
    let output = replay(&proxy, Path::new(CORPUS), &["--speed", "5"]);
    let (stdout, stderr) = text(&output);
    let expectations = std::fs::read_dir(CORPUS)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".expect.toml")
        })
        .count();
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), expectations, "{stdout}\n{stderr}");
    for row in &rows {
        assert!(row.contains("  ok  "), "failed: {row}\n{stdout}\n{stderr}");
    }
    assert!(output.status.success(), "{stdout}\n{stderr}");
}

#[test]
fn a_capture_without_a_licence_to_copy_is_replayed_from_shared_testdata() {
    // sipp_uac_Media_DTMF_Speex.pcap: SIP over TCP, NAT, the caller dials 9 8 7 6 5 #.
    let capture = Path::new(SHARED).join("sipp_uac_Media_DTMF_Speex.pcap");
    assert!(capture.exists(), "{} is required", capture.display());
    let dir = tempfile::tempdir().unwrap();
    let expect = dir.path().join("speex.expect.json");
    std::fs::write(
        &expect,
        r##"{"digits_a":"98765#","digits_b":"","ended_by":"replay"}"##,
    )
    .unwrap();
    let proxy = MetaflowsProxy::start(METAFLOWS);
    let args = ["--speed", "5", "--expect", expect.to_str().unwrap()];
    let output = replay(&proxy, &capture, &args);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("expectation met"), "{stdout}");
}

#[test]
fn a_wrong_expectation_exits_1_with_a_diff_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let expect = dir.path().join("wrong.expect.toml");
    std::fs::write(&expect, "digits_a = \"999\"\nmodule = \"hangup\"\n").unwrap();
    let proxy = MetaflowsProxy::start(METAFLOWS);
    let capture = corpus("asterisk-dtmf_2833_1_noend.pcap");
    let output = replay(&proxy, &capture, &["--expect", expect.to_str().unwrap()]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("digits_a: expected \"999\", seen \"1\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("module: expected \"hangup\", seen []"),
        "{stdout}"
    );
}

#[test]
fn a_capture_without_sip_gets_the_default_offer_and_one_direction_is_enough() {
    // RTP only, from one side only: the caller is offered G.711 with the events' format.
    let proxy = MetaflowsProxy::start(METAFLOWS);
    let output = replay(&proxy, &corpus("asterisk-broken_dtmf.pcap"), &[]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("digits a: \"1000\"  b: \"\""), "{stdout}");
    assert!(
        stdout.contains("caller received 0 of 0 RTP packets"),
        "{stdout}"
    );
}

#[test]
fn a_truncated_capture_is_a_clear_error() {
    let whole = std::fs::read(corpus("asterisk-broken_dtmf.pcap")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &whole[..whole.len() - 30]).unwrap();
    let proxy = MetaflowsProxy::start(METAFLOWS);
    let output = replay(&proxy, &cut, &[]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("cut.pcap") && stderr.contains("truncated"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// (received, sent by the other side) from the report line `SIDE received X of Y RTP packets`.
fn received_of(stdout: &str, side: &str) -> (u64, u64) {
    let prefix = format!("{side} received ");
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {side} media line in {stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[0].parse().unwrap(), words[2].parse().unwrap())
}

/// The lines of a report that must not depend on timing.
fn decisive_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| {
            ["digits ", "matches:", "modules:", "ended by:"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn speed_10_decides_as_speed_1() {
    let proxy = MetaflowsProxy::start(METAFLOWS);
    let capture = corpus("gen-lost-end-star0.pcap");
    let slow = replay(&proxy, &capture, &["--speed", "1"]);
    let fast = replay(&proxy, &capture, &["--speed", "10"]);
    let (slow_out, slow_err) = text(&slow);
    let (fast_out, fast_err) = text(&fast);
    assert!(
        slow.status.success() && fast.status.success(),
        "{slow_err}\n{fast_err}"
    );
    let decisive = decisive_lines(&slow_out);
    assert_eq!(decisive.len(), 4, "{slow_out}");
    assert!(slow_out.contains("modules: hangup(success)"), "{slow_out}");
    assert_eq!(
        decisive,
        decisive_lines(&fast_out),
        "speed 1:\n{slow_out}\nspeed 10:\n{fast_out}"
    );
}

#[test]
fn a_wildcard_pbx_listen_advertises_the_address_that_reaches_the_proxy() {
    let proxy = MetaflowsProxy::start(METAFLOWS);
    let capture = corpus("gen-info-star0.pcap");
    let output = replay_via(&proxy, "0.0.0.0", &capture, &[]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("modules: hangup(success)"), "{stdout}");
    for side in ["caller", "callee"] {
        let (received, sent) = received_of(&stdout, side);
        assert!(
            received > 0 && received == sent,
            "media must flow both ways: {stdout}"
        );
    }
}

#[test]
fn a_folder_with_a_failing_entry_exits_1_and_says_which_in_its_table() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        corpus("asterisk-dtmf_2833_1_noend.pcap"),
        dir.path().join("one.pcap"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("one.expect.toml"),
        "ended_by = \"callee\"\n",
    )
    .unwrap();
    std::fs::copy(
        corpus("asterisk-dtmf_2833_1_noend.pcap"),
        dir.path().join("two.pcap"),
    )
    .unwrap();
    std::fs::write(dir.path().join("two.expect.json"), r#"{"digits_a":"1"}"#).unwrap();
    let proxy = MetaflowsProxy::start(METAFLOWS);
    let output = replay(&proxy, dir.path(), &[]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row {name}: {stdout}"))
            .to_owned()
    };
    assert!(
        row("one").contains("FAIL")
            && row("one").contains("ended_by: expected \"callee\", seen \"replay\""),
        "{stdout}"
    );
    assert!(row("two").contains("ok"), "{stdout}");

    let empty = tempfile::tempdir().unwrap();
    let output = replay(&proxy, empty.path(), &[]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("no NAME.pcap with a NAME.expect.toml"),
        "{stderr}"
    );
}

#[test]
fn webhooks_observe_a_proxy_whose_event_log_is_out_of_reach() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hooks = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let metaflows = dir.path().join("metaflows.json");
    std::fs::write(&metaflows, METAFLOWS).unwrap();
    let url = format!("http://{hooks}/");
    let proxy = common::proxy::Proxy::start(&[
        "--metaflows",
        metaflows.to_str().unwrap(),
        "--webhook-url",
        &url,
    ]);
    let pbx = format!("127.0.0.1:{}", proxy.upstream_port());
    let output = Command::new(env!("CARGO_BIN_EXE_metaflow-proxy"))
        .arg("replay")
        .arg(corpus("gen-sipp-star5-transfer.pcap"))
        .args(["--proxy", &proxy.sip_addr(), "--pbx-listen", &pbx])
        .args(["--webhook-listen", &hooks, "--linger-ms", "500"])
        .arg("--expect")
        .arg(corpus("gen-sipp-star5-transfer.expect.toml"))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("matches: a:5->transfer"), "{stdout}");
}
