//! The kernel fast path across real interfaces: three network namespaces joined by veth pairs,
//! a phone host (SIPp caller), a proxy host (the release binary, `--media-fastpath kernel`) and
//! a PBX host (SIPp callee). Both sides stream g711a.pcap for 7 s; the proxy's counters must show
//! both directions relayed, nearly all of it by the kernel (redirected from one veth to the
//! other with neighbour resolution), none declined.
//!
//! The same with the veth pairs made after the proxy started: the program reaches interfaces
//! that appear later.
//!
//! Needs root (namespaces, BPF): as root (CI) it runs and fails loudly on any missing piece;
//! otherwise it prints why and skips.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PROXY_BIN: &str = env!("CARGO_BIN_EXE_metaflow-proxy");

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// Runs `program args`, panicking with its output when it fails.
fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {program}: {err}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Three namespaces and their veth pairs, removed on drop.
struct Hosts {
    phone: String,
    proxy: String,
    pbx: String,
    /// Tells this test's namespaces, interfaces and subnet (10.8N.x.x) from another's.
    id: u8,
}

impl Hosts {
    /// The namespaces, with the proxy's service address `net(9, 1)` on its loopback; the
    /// links come with [`Hosts::link`].
    fn create(id: u8) -> Self {
        let tag = std::process::id() % 10_000;
        let hosts = Hosts {
            phone: format!("mfp-ph{id}-{tag}"),
            proxy: format!("mfp-px{id}-{tag}"),
            pbx: format!("mfp-pb{id}-{tag}"),
            id,
        };
        for ns in [&hosts.phone, &hosts.proxy, &hosts.pbx] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            run("ip", &["netns", "add", ns]);
            hosts.exec_ok(ns, &["ip", "link", "set", "lo", "up"]);
        }
        let service = format!("{}/32", hosts.net(9, 1));
        hosts.exec_ok(&hosts.proxy, &["ip", "addr", "add", &service, "dev", "lo"]);
        // The kernel path's FIB lookup, like any router, needs forwarding on the proxy host.
        hosts.exec_ok(
            &hosts.proxy,
            &["sysctl", "-qw", "net.ipv4.conf.all.forwarding=1"],
        );
        hosts
    }

    /// An address of this test's subnet: 10.8{id}.{net}.{host}.
    fn net(&self, net: u8, host: u8) -> String {
        format!("10.8{}.{net}.{host}", self.id)
    }

    /// phone net(1,2) <-> net(1,1) proxy net(2,1) <-> net(2,2) pbx, with the phone's and the
    /// PBX's default routes through the proxy.
    fn link(&self) {
        let cidr = |net, host| format!("{}/24", self.net(net, host));
        self.pair(&self.phone, &cidr(1, 2), &self.proxy, &cidr(1, 1), "a");
        self.pair(&self.pbx, &cidr(2, 2), &self.proxy, &cidr(2, 1), "b");
        let (to_a, to_b) = (self.net(1, 1), self.net(2, 1));
        self.exec_ok(
            &self.phone,
            &["ip", "route", "add", "default", "via", &to_a],
        );
        self.exec_ok(&self.pbx, &["ip", "route", "add", "default", "via", &to_b]);
    }

    fn pair(&self, left: &str, left_ip: &str, right: &str, right_ip: &str, name: &str) {
        let tag = std::process::id() % 10_000;
        let id = self.id;
        let (l, r) = (format!("v{name}l{id}-{tag}"), format!("v{name}r{id}-{tag}"));
        run(
            "ip",
            &["link", "add", &l, "type", "veth", "peer", "name", &r],
        );
        run("ip", &["link", "set", &l, "netns", left]);
        run("ip", &["link", "set", &r, "netns", right]);
        self.exec_ok(left, &["ip", "addr", "add", left_ip, "dev", &l]);
        self.exec_ok(right, &["ip", "addr", "add", right_ip, "dev", &r]);
        self.exec_ok(left, &["ip", "link", "set", &l, "up"]);
        self.exec_ok(right, &["ip", "link", "set", &r, "up"]);
    }

    fn command(ns: &str, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns]).args(args);
        command
    }

    fn exec_ok(&self, ns: &str, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", ns];
        all.extend_from_slice(args);
        run("ip", &all)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in [&self.phone, &self.proxy, &self.pbx] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Kills the child on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn metric(text: &str, line_start: &str) -> u64 {
    text.lines()
        .find(|line| line.starts_with(line_start))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in /metrics:\n{text}"))
}

#[test]
fn audio_crosses_the_proxy_host_in_the_kernel_both_ways() {
    crossing(1, false);
}

/// The links come up after the proxy started: the program reaches them within its scan
/// interval (5 s) and the audio still crosses in the kernel.
#[test]
fn interfaces_that_appear_after_start_carry_audio_in_the_kernel() {
    crossing(2, true);
}

/// One call across the three hosts of `Hosts::create(id)`, the links made before the proxy
/// starts or, with `late_links`, after.
fn crossing(id: u8, late_links: bool) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc_geteuid() } != 0 {
        eprintln!("SKIPPED: network namespaces and BPF need root");
        return;
    }
    common::require_tool("sipp");
    common::require_tool("ip");
    common::require_tool("curl");
    let hosts = Hosts::create(id);
    if !late_links {
        hosts.link();
    }
    let (service, pbx_ip, phone_ip) = (hosts.net(9, 1), hosts.net(2, 2), hosts.net(1, 2));
    let (sip, api, upstream) = (
        format!("{service}:5060"),
        format!("{service}:8000"),
        format!("{pbx_ip}:5070"),
    );
    let metrics_url = format!("http://{api}/metrics");
    let data = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(data.path().join("proxy.log")).unwrap();
    let proxy = Killed(
        Hosts::command(
            &hosts.proxy,
            &[
                PROXY_BIN,
                "--sip-listen",
                &sip,
                "--media-ip",
                &service,
                "--upstream",
                &upstream,
                "--api-listen",
                &api,
                "--rtp-ports",
                "30000-30999",
                "--media-fastpath",
                "kernel",
                "--data-dir",
                data.path().to_str().unwrap(),
            ],
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap(),
    );
    let metrics = || {
        let out = Hosts::command(&hosts.proxy, &["curl", "-sf", &metrics_url])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while metrics().is_none() {
        assert!(
            Instant::now() < deadline,
            "the proxy never answered /metrics: {}",
            std::fs::read_to_string(data.path().join("proxy.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    if late_links {
        hosts.link();
        // The proxy looks for new interfaces every 5 s.
        std::thread::sleep(Duration::from_secs(6));
    }
    let sipp = |ns: &str, args: &[&str]| {
        let mut all = vec!["sipp"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error"]);
        Hosts::command(ns, &all)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let uas = Killed(sipp(
        &hosts.pbx,
        &[
            "-sf",
            "tests/sipp/uas_pcap.xml",
            "-i",
            &pbx_ip,
            "-p",
            "5070",
            "-mp",
            "16000",
        ],
    ));
    std::thread::sleep(Duration::from_millis(300));
    let uac = sipp(
        &hosts.phone,
        &[
            "-sf",
            "tests/sipp/uac_pcap.xml",
            &sip,
            "-i",
            &phone_ip,
            "-p",
            "5061",
            "-mp",
            "18000",
        ],
    );
    let out = uac.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the call did not complete: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(uas);
    // Counters reach /metrics on the relay's next tick.
    std::thread::sleep(Duration::from_secs(1));
    let text = metrics().expect("metrics after the call");
    let a_to_b = metric(
        &text,
        "metaflow_proxy_rtp_packets_total{direction=\"a_to_b\",kind=\"rtp\"}",
    );
    let b_to_a = metric(
        &text,
        "metaflow_proxy_rtp_packets_total{direction=\"b_to_a\",kind=\"rtp\"}",
    );
    let kernel = metric(&text, "metaflow_proxy_rtp_kernel_packets_total");
    let declined = metric(&text, "metaflow_proxy_rtp_kernel_declined_total");
    eprintln!("a_to_b {a_to_b}, b_to_a {b_to_a}, by the kernel {kernel}, declined {declined}");
    // g711a.pcap is 236 packets each way.
    assert!(
        a_to_b >= 230 && b_to_a >= 230,
        "audio missing: {a_to_b} / {b_to_a}"
    );
    assert_eq!(declined, 0, "the kernel had no route");
    assert!(
        kernel >= a_to_b + b_to_a - 10,
        "only {kernel} of {} packets went through the kernel",
        a_to_b + b_to_a
    );
    drop(proxy);
}
