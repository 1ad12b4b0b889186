//! The kernel fast path across real interfaces: three network namespaces joined by veth pairs,
//! a phone host (SIPp caller), a proxy host (the release binary, `--media-fastpath kernel`) and
//! a PBX host (SIPp callee). Both sides stream g711a.pcap for 7 s; the proxy's counters must show
//! both directions relayed, nearly all of it by the kernel (redirected from one veth to the
//! other with neighbour resolution), none declined.
//!
//! The same with the veth pairs made after the proxy started: the program reaches interfaces
//! that appear later; and the same over IPv6 (SIP, SDP and media), where the program parses the
//! IPv6 header and the FIB lookup is IPv6's.
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
    /// Tells this test's namespaces, interfaces and subnet (10.8N.x.x or fd8N:x::x) from
    /// another's.
    id: u8,
    /// Addresses are IPv6.
    v6: bool,
}

impl Hosts {
    /// The namespaces, with the proxy's service address `net(9, 1)` on its loopback; the
    /// links come with [`Hosts::link`].
    fn create(id: u8, v6: bool) -> Self {
        let tag = std::process::id() % 10_000;
        let hosts = Hosts {
            phone: format!("mfp-ph{id}-{tag}"),
            proxy: format!("mfp-px{id}-{tag}"),
            pbx: format!("mfp-pb{id}-{tag}"),
            id,
            v6,
        };
        for ns in [&hosts.phone, &hosts.proxy, &hosts.pbx] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            run("ip", &["netns", "add", ns]);
            hosts.exec_ok(ns, &["ip", "link", "set", "lo", "up"]);
        }
        let service = format!("{}/{}", hosts.net(9, 1), if v6 { 128 } else { 32 });
        hosts.add_addr(&hosts.proxy, &service, "lo");
        // The kernel path's FIB lookup, like any router, needs forwarding on the proxy host.
        let forwarding = if v6 {
            "net.ipv6.conf.all.forwarding=1"
        } else {
            "net.ipv4.conf.all.forwarding=1"
        };
        hosts.exec_ok(&hosts.proxy, &["sysctl", "-qw", forwarding]);
        hosts
    }

    /// An address of this test's subnet: 10.8{id}.{net}.{host}, or fd8{id}:{net}::{host}.
    fn net(&self, net: u8, host: u8) -> String {
        if self.v6 {
            format!("fd8{}:{net}::{host}", self.id)
        } else {
            format!("10.8{}.{net}.{host}", self.id)
        }
    }

    /// `ip:port` as SIP, SIPp and URLs spell it (brackets around IPv6).
    fn at(&self, ip: &str, port: u16) -> String {
        if self.v6 {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    }

    /// Adds `cidr` to `dev` in `ns`; IPv6 without duplicate address detection, which would keep
    /// the address unusable ("tentative") for a second or two.
    fn add_addr(&self, ns: &str, cidr: &str, dev: &str) {
        let mut args = vec!["ip", "addr", "add", cidr, "dev", dev];
        if self.v6 {
            args.push("nodad");
        }
        self.exec_ok(ns, &args);
    }

    /// phone net(1,2) <-> net(1,1) proxy net(2,1) <-> net(2,2) pbx, with the phone's and the
    /// PBX's default routes through the proxy.
    fn link(&self) {
        let prefix = if self.v6 { 64 } else { 24 };
        let cidr = |net, host| format!("{}/{prefix}", self.net(net, host));
        self.pair(&self.phone, &cidr(1, 2), &self.proxy, &cidr(1, 1), "a");
        self.pair(&self.pbx, &cidr(2, 2), &self.proxy, &cidr(2, 1), "b");
        let (to_a, to_b) = (self.net(1, 1), self.net(2, 1));
        let family = if self.v6 { "-6" } else { "-4" };
        for (ns, to) in [(&self.phone, &to_a), (&self.pbx, &to_b)] {
            self.exec_ok(ns, &["ip", family, "route", "add", "default", "via", to]);
        }
        if self.v6 {
            self.wait_for_link_local();
        }
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
        self.add_addr(left, left_ip, &l);
        self.add_addr(right, right_ip, &r);
        self.exec_ok(left, &["ip", "link", "set", &l, "up"]);
        self.exec_ok(right, &["ip", "link", "set", &r, "up"]);
    }

    /// Waits until no address is tentative in any of the namespaces: a veth's link-local IPv6
    /// address goes through duplicate address detection for a second or two after the link
    /// comes up, and neighbour discovery meanwhile loses the first packets (a call started then
    /// saw its 180 and 200 lost and the INVITE retransmitted, which SIPp takes as a new call).
    fn wait_for_link_local(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for ns in [&self.phone, &self.proxy, &self.pbx] {
            loop {
                let out = self.exec_ok(ns, &["ip", "-6", "addr", "show", "tentative"]);
                if out.stdout.is_empty() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "addresses still tentative in {ns} after 10 s: {}",
                    String::from_utf8_lossy(&out.stdout)
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// The UDP counters of `ns` and its non-zero IPv6, ICMPv6 and UDP-over-IPv6 counters, for a
    /// failure message (/proc/net/snmp puts all of a protocol's values on one line).
    fn counters(&self, ns: &str) -> String {
        let script = "grep -h '^Udp:' /proc/net/snmp; \
                      grep -h -e '^Udp6' -e '^Ip6' -e '^Icmp6' /proc/net/snmp6 \
                      | grep -v '[[:space:]]0$'; true";
        String::from_utf8_lossy(&self.exec_ok(ns, &["sh", "-c", script]).stdout).into_owned()
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
    crossing(1, false, false);
}

/// The links come up after the proxy started: the program reaches them within its scan
/// interval (5 s) and the audio still crosses in the kernel.
#[test]
fn interfaces_that_appear_after_start_carry_audio_in_the_kernel() {
    crossing(2, true, false);
}

/// Phone, proxy and PBX on IPv6 only.
#[test]
fn ipv6_audio_crosses_the_proxy_host_in_the_kernel_both_ways() {
    crossing(3, false, true);
}

/// One call across the three hosts of `Hosts::create(id, v6)`, the links made before the proxy
/// starts or, with `late_links`, after.
fn crossing(id: u8, late_links: bool, v6: bool) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc_geteuid() } != 0 {
        eprintln!("SKIPPED: network namespaces and BPF need root");
        return;
    }
    common::require_tool("sipp");
    common::require_tool("ip");
    common::require_tool("curl");
    let hosts = Hosts::create(id, v6);
    if !late_links {
        hosts.link();
    }
    let (service, pbx_ip, phone_ip) = (hosts.net(9, 1), hosts.net(2, 2), hosts.net(1, 2));
    let (sip, api, upstream) = (
        hosts.at(&service, 5060),
        hosts.at(&service, 8000),
        hosts.at(&pbx_ip, 5070),
    );
    let metrics_url = format!("http://{api}/metrics");
    let data = tempfile::tempdir().unwrap();
    let uas_errors = data.path().join("uas_errors.log");
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
        let out = Hosts::command(&hosts.proxy, &["curl", "-sfg", &metrics_url])
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
            "-trace_err",
            "-error_file",
            &uas_errors.to_string_lossy(),
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
    let media_lines: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("metaflow_proxy_rtp_"))
        .collect();
    // On failure (the message is only built then): the hosts' UDP, IPv6 and ICMPv6 counters
    // tell a packet refused below the proxy from one never sent.
    assert!(
        a_to_b >= 230 && b_to_a >= 230,
        "audio missing: {a_to_b} / {b_to_a}\n{}\nPBX's SIPp errors:\n{}\nproxy host:\n{}\nPBX host:\n{}\nproxy log:\n{}",
        media_lines.join("\n"),
        std::fs::read_to_string(&uas_errors).unwrap_or_default(),
        hosts.counters(&hosts.proxy),
        hosts.counters(&hosts.pbx),
        std::fs::read_to_string(data.path().join("proxy.log")).unwrap_or_default()
    );
    assert_eq!(declined, 0, "the kernel had no route");
    assert!(
        kernel >= a_to_b + b_to_a - 10,
        "only {kernel} of {} packets went through the kernel",
        a_to_b + b_to_a
    );
    drop(proxy);
}
