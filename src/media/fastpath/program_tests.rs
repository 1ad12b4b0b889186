//! The classifier itself, run by the kernel on packets built here (`BPF_PROG_TEST_RUN`): what it
//! writes into a packet it forwards, checked against checksums computed from scratch. Loopback
//! and veth trust a packet's checksum (it is only finished by the "hardware"), so the
//! end-to-end tests cannot see a wrong one. The runs ask the kernel to treat the packet as a
//! network card reporting its full checksum does (`CHECKSUM_COMPLETE`, kernels 6.11 and later)
//! and to check afterwards that the sum it keeps still matches the packet: a program that fixes
//! the UDP checksum but leaves that sum stale makes the stack re-check, and complain about,
//! every packet it forwards.
//!
//! Needs root (or CAP_BPF): as root (CI) a failure to load is a failure; otherwise the tests
//! print why and pass without checking.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};

use aya::Ebpf;
use aya::maps::{Array, MapData};
use aya::programs::SchedClassifier;

use super::route::{FlowAddrs, Route, RouteSpec, RtpRewrite, slot_of};
use super::{MAP, OBJECT, PROGRAM};
use crate::pcap::writer::udp_frame;

/// `TC_ACT_OK`: the program took the packet and lets the stack deliver it.
const TC_ACT_OK: u32 = 0;
/// `TC_ACT_UNSPEC` (-1): not the program's; the packet goes on unchanged.
const PASS: u32 = u32::MAX;
/// `BPF_PROG_TEST_RUN`.
const BPF_PROG_TEST_RUN: libc::c_long = 10;
/// `BPF_F_TEST_SKB_CHECKSUM_COMPLETE`: the packet comes with its full sum in `skb->csum`, which
/// must still match the packet after the run (else the run fails with `EBADMSG`).
const CHECKSUM_COMPLETE: u32 = 1 << 2;

/// The program loaded (not attached anywhere) with its route map, or `None` when this process
/// may not load BPF programs and is not root.
fn program() -> Option<(Ebpf, Array<MapData, Route>)> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let loaded = (|| -> Result<_, Box<dyn std::error::Error>> {
        let mut ebpf = Ebpf::load(OBJECT)?;
        let map = Array::try_from(ebpf.take_map(MAP).ok_or("no route map")?)?;
        let program: &mut SchedClassifier =
            ebpf.program_mut(PROGRAM).ok_or("no program")?.try_into()?;
        program.load()?;
        Ok((ebpf, map))
    })();
    match loaded {
        Ok(loaded) => Some(loaded),
        Err(error) if !root => {
            eprintln!("SKIPPED: loading the classifier needs root or CAP_BPF ({error})");
            None
        }
        Err(error) => panic!("running as root, yet the classifier does not load: {error}"),
    }
}

/// The `test` member of `union bpf_attr` (linux/bpf.h).
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// Runs the program once on `packet` (an Ethernet frame): its verdict and the packet after it.
/// As `CHECKSUM_COMPLETE` where the kernel offers it (a kernel without it is said once).
fn run(ebpf: &Ebpf, packet: &[u8]) -> (u32, Vec<u8>) {
    match test_run(ebpf, packet, CHECKSUM_COMPLETE) {
        Err(error) if error.raw_os_error() == Some(libc::EINVAL) => {
            eprintln!(
                "this kernel cannot test-run CHECKSUM_COMPLETE packets; checking the bytes only"
            );
            test_run(ebpf, packet, 0)
        }
        other => other,
    }
    .unwrap_or_else(|error| panic!("BPF_PROG_TEST_RUN: {error}"))
}

fn test_run(ebpf: &Ebpf, packet: &[u8], flags: u32) -> std::io::Result<(u32, Vec<u8>)> {
    let program: &SchedClassifier = ebpf.program(PROGRAM).unwrap().try_into().unwrap();
    let fd = program.fd().unwrap().as_fd().as_raw_fd();
    let mut out = vec![0u8; packet.len() + 256];
    let mut attr = TestRunAttr {
        prog_fd: u32::try_from(fd).unwrap(),
        data_size_in: u32::try_from(packet.len()).unwrap(),
        data_size_out: u32::try_from(out.len()).unwrap(),
        data_in: packet.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat: 1,
        flags,
        ..TestRunAttr::default()
    };
    // SAFETY: `attr` is a valid `bpf_attr` prefix of the size given; its buffers outlive the call
    // and `data_size_out` bounds what the kernel writes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestRunAttr,
            std::mem::size_of::<TestRunAttr>(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    out.truncate(usize::try_from(attr.data_size_out).unwrap());
    Ok((attr.retval, out))
}

/// An Ethernet frame carrying `payload` from `from` to `to` over UDP, every checksum computed
/// from scratch (the frames the recorder writes to pcap files).
fn frame(from: SocketAddr, to: SocketAddr, payload: &[u8]) -> Vec<u8> {
    udp_frame(from, to, payload).unwrap()
}

/// An RTP packet of payload type 0.
fn rtp(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut packet = vec![0x80, 0];
    packet.extend(seq.to_be_bytes());
    packet.extend(ts.to_be_bytes());
    packet.extend(ssrc.to_be_bytes());
    packet.extend((0..160).map(|i| (i * 7) as u8));
    packet
}

/// One family's flow through the program: forwarded with its addresses, ports and sequence
/// number rewritten and its checksums those of a packet built from scratch; a stranger's packet and a packet of the
/// other family on the same port are left alone.
fn forwards(addrs: FlowAddrs, other_family: FlowAddrs) {
    let Some((ebpf, mut map)) = program() else {
        return;
    };
    let rewrite = RtpRewrite {
        event_pt: Some(101),
        seq_add: 1000,
        shift: None,
    };
    let spec = RouteSpec::new(addrs, true, Some(rewrite)).unwrap();
    map.set(slot_of(addrs.local), spec.to_route(), 0).unwrap();

    let sent = rtp(65000, 160_000, 0x1234_5678);
    let (verdict, out) = run(&ebpf, &frame(addrs.peer, addrs.local, &sent));
    assert_eq!(verdict, TC_ACT_OK, "the flow's packet is the program's");
    let mut expected = sent.clone();
    expected[2..4].copy_from_slice(&65000u16.wrapping_add(1000).to_be_bytes());
    // Byte for byte the packet the proxy would send itself: addresses, ports, the renumbered
    // sequence number, and both checksums as computed from scratch.
    assert_eq!(
        out,
        frame(addrs.out, addrs.dst, &expected),
        "the forwarded packet differs from one built from scratch"
    );
    let udp_check = &out[out.len() - sent.len() - 2..out.len() - sent.len()];
    assert_ne!(udp_check, &[0, 0], "a UDP checksum of 0 means none");
    let counted = map.get(&slot_of(addrs.local), 0).unwrap();
    assert_eq!((counted.packets, counted.bytes), (1, sent.len() as u64));

    let mut event = sent.clone();
    event[1] = 101;
    let (verdict, out) = run(&ebpf, &frame(addrs.peer, addrs.local, &event));
    assert_eq!(
        (verdict, &out),
        (PASS, &frame(addrs.peer, addrs.local, &event))
    );

    let stranger = SocketAddr::new(addrs.peer.ip(), addrs.peer.port() + 1);
    let (verdict, _) = run(&ebpf, &frame(stranger, addrs.local, &sent));
    assert_eq!(verdict, PASS, "a stranger's packet goes to the socket");

    let (verdict, _) = run(&ebpf, &frame(other_family.peer, other_family.local, &sent));
    assert_eq!(verdict, PASS, "the route is one family's");

    if addrs.local.is_ipv6() {
        let mut unchecked = frame(addrs.peer, addrs.local, &sent);
        let at = unchecked.len() - sent.len() - 2;
        unchecked[at..at + 2].copy_from_slice(&[0, 0]);
        let (verdict, _) = run(&ebpf, &unchecked);
        assert_eq!(
            verdict, PASS,
            "IPv6 without a UDP checksum is the stack's to drop"
        );
    }
}

#[test]
fn ipv4_packets_leave_with_valid_checksums() {
    forwards(
        FlowAddrs::parse(
            "192.0.2.1:40000",
            "198.51.100.7:5004",
            "192.0.2.1:40002",
            "203.0.113.9:6000",
        ),
        FlowAddrs::parse(
            "[2001:db8::1]:40000",
            "[2001:db8::7]:5004",
            "[2001:db8::1]:40002",
            "[2001:db8::9]:6000",
        ),
    );
}

#[test]
fn ipv6_packets_leave_with_valid_checksums() {
    forwards(
        FlowAddrs::parse(
            "[2001:db8::1]:40000",
            "[2001:db8::7]:5004",
            "[2001:db8::1]:40002",
            "[2001:db8:9::9]:6000",
        ),
        FlowAddrs::parse(
            "192.0.2.1:40000",
            "198.51.100.7:5004",
            "192.0.2.1:40002",
            "203.0.113.9:6000",
        ),
    );
}
