//! The entries of the kernel's `routes` map (an array indexed by the port packets arrive on),
//! laid out exactly as `struct fp_route` in `bpf/fastpath.bpf.c` (the tests below pin size and
//! offsets), and the plain description of one forwarded flow the relay builds them from.

use std::net::{IpAddr, SocketAddr};

use crate::media::playout::continuity::StreamShift;

/// The flow carries RTCP: the kernel checks no payload type (`FP_RTCP`).
const FLAG_RTCP: u8 = 1;
/// The destination is an address of this host: the stack delivers the rewritten packet
/// (`FP_LOCAL`).
const FLAG_LOCAL: u8 = 2;
/// RTP of one SSRC is rewritten to continue the stream a sound played (`FP_SHIFT`): timestamp
/// offset and SSRC; packets of any other SSRC stay in userspace.
const FLAG_SHIFT: u8 = 4;
/// The addresses are IPv6 (`FP_V6`).
const FLAG_V6: u8 = 8;
/// No payload type is left to userspace (`FP_NO_EVENT_PT`).
const NO_EVENT_PT: u8 = 0xff;

/// The map slot of packets arriving on `local`: the array is indexed by port.
pub(crate) fn slot_of(local: SocketAddr) -> u32 {
    u32::from(local.port())
}

/// What the kernel does with a packet of the flow, and what it counted. Network byte order for
/// addresses and ports; the counters and `last_*` are the kernel's to write. IPv4 addresses fill
/// the first word of each address (`FLAG_V6` clear).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Route {
    /// The proxy's address the flow arrives on; all zero marks an unused slot.
    local_addr: [u32; 4],
    peer_addr: [u32; 4],
    peer_port: u16,
    out_port: u16,
    dst_port: u16,
    event_pt: u8,
    flags: u8,
    seq_add: u16,
    /// Sequence number of the last RTP packet forwarded, after `seq_add` (host order).
    pub last_seq: u16,
    /// Its timestamp (host order).
    pub last_ts: u32,
    /// Its SSRC (host order).
    pub last_ssrc: u32,
    /// Added to RTP timestamps with `FLAG_SHIFT` (host order).
    ts_add: u32,
    /// With `FLAG_SHIFT`: the only SSRC rewritten (host order).
    ssrc_in: u32,
    /// With `FLAG_SHIFT`: the SSRC written instead (host order).
    ssrc_out: u32,
    out_addr: [u32; 4],
    dst_addr: [u32; 4],
    /// Packets forwarded.
    pub packets: u64,
    /// UDP payload bytes forwarded.
    pub bytes: u64,
    /// `CLOCK_MONOTONIC` nanoseconds of the last one (0: none yet).
    pub last_ns: u64,
    /// Packets that matched but were left to the socket: no route to the destination.
    pub declined: u64,
}

// SAFETY: `repr(C)`, only integers, no implicit padding (128 bytes, checked below); any bit
// pattern is a valid value.
unsafe impl aya::Pod for Route {}

/// One flow the kernel may forward: packets from `addrs.peer` arriving on the proxy's
/// `addrs.local` socket go to `addrs.dst`, sent from the proxy's `addrs.out` socket, the way the
/// userspace relay sends them. The four addresses are of one family ([`RouteSpec::new`] checks
/// it), IPv4-mapped ones read as IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RouteSpec {
    /// Where the packets arrive, who sends them, where they leave and who gets them.
    pub(super) addrs: FlowAddrs,
    /// What the kernel does to the flow's RTP; `None` for RTCP (no RTP header checks).
    pub(super) rtp: Option<RtpRewrite>,
    /// `addrs.dst` is an address of this host.
    pub(super) dst_is_local: bool,
}

/// The four sockets of a flow: where it arrives, who sends it, where it leaves, who gets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FlowAddrs {
    /// The proxy's socket the packets arrive on.
    pub local: SocketAddr,
    /// The leg's latched address.
    pub peer: SocketAddr,
    /// The proxy's socket for the other leg.
    pub out: SocketAddr,
    /// The other leg.
    pub dst: SocketAddr,
}

/// What the kernel does to the RTP of a flow besides addressing it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RtpRewrite {
    /// RTP payload type left to userspace (telephone-events); `None` when none is known.
    pub event_pt: Option<u8>,
    /// Added to every forwarded RTP sequence number (the DTMF suppression's renumbering).
    pub seq_add: u16,
    /// The renumbering that continues the stream a sound played towards the receiver.
    pub shift: Option<StreamShift>,
}

#[cfg(test)]
impl FlowAddrs {
    /// The flow of four written addresses (test shorthand).
    pub(crate) fn parse(local: &str, peer: &str, out: &str, dst: &str) -> Self {
        let addr = |text: &str| {
            text.parse()
                .unwrap_or_else(|_| panic!("not an address: {text}"))
        };
        FlowAddrs {
            local: addr(local),
            peer: addr(peer),
            out: addr(out),
            dst: addr(dst),
        }
    }
}

impl RouteSpec {
    /// The flow between `addrs`: RTP rewritten as `rtp` says, or RTCP (`None`: no payload type
    /// checked, nothing renumbered). `None` when the addresses are not all of one family once
    /// IPv4-mapped IPv6 addresses are read as IPv4: the kernel rewrites addresses, it does not
    /// translate between families.
    pub(crate) fn new(
        addrs: FlowAddrs,
        dst_is_local: bool,
        rtp: Option<RtpRewrite>,
    ) -> Option<Self> {
        let [local, peer, out, dst] = [addrs.local, addrs.peer, addrs.out, addrs.dst].map(plain);
        let v4 = local.is_ipv4();
        if [peer, out, dst].iter().any(|a| a.is_ipv4() != v4) {
            return None;
        }
        Some(RouteSpec {
            addrs: FlowAddrs {
                local,
                peer,
                out,
                dst,
            },
            rtp,
            dst_is_local,
        })
    }

    /// The stream shift the kernel applies to the flow's RTP, if any.
    pub(super) fn shift(&self) -> Option<StreamShift> {
        self.rtp.and_then(|rtp| rtp.shift)
    }

    /// The map value for this flow, counters zero.
    pub(crate) fn to_route(self) -> Route {
        let FlowAddrs {
            local,
            peer,
            out,
            dst,
        } = self.addrs;
        let rewrite = self.rtp.unwrap_or_default();
        let shift = self.shift();
        let mut flags = 0;
        if self.rtp.is_none() {
            flags |= FLAG_RTCP;
        }
        if self.dst_is_local {
            flags |= FLAG_LOCAL;
        }
        if local.is_ipv6() {
            flags |= FLAG_V6;
        }
        if shift.is_some() {
            flags |= FLAG_SHIFT;
        }
        Route {
            local_addr: words(local.ip()),
            peer_addr: words(peer.ip()),
            peer_port: peer.port().to_be(),
            out_port: out.port().to_be(),
            out_addr: words(out.ip()),
            dst_addr: words(dst.ip()),
            dst_port: dst.port().to_be(),
            event_pt: rewrite.event_pt.map_or(NO_EVENT_PT, |pt| pt & 0x7f),
            flags,
            seq_add: rewrite.seq_add.wrapping_add(shift.map_or(0, |s| s.seq)),
            ts_add: shift.map_or(0, |s| s.ts),
            ssrc_in: shift.map_or(0, |s| s.from_ssrc),
            ssrc_out: shift.map_or(0, |s| s.ssrc),
            ..Route::default()
        }
    }
}

/// `addr` with an IPv4-mapped IPv6 address read as the IPv4 address it carries (what a packet
/// to or from it holds on the wire).
pub(crate) fn plain(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(ip) => SocketAddr::new(IpAddr::V4(ip), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// An address as the program's four words in network order (IPv4 in the first).
fn words(ip: IpAddr) -> [u32; 4] {
    match ip {
        IpAddr::V4(v4) => [u32::from_ne_bytes(v4.octets()), 0, 0, 0],
        IpAddr::V6(v6) => {
            let o = v6.octets();
            let word = |i: usize| u32::from_ne_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            [word(0), word(4), word(8), word(12)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    fn addrs(local: &str, peer: &str, out: &str, dst: &str) -> FlowAddrs {
        FlowAddrs::parse(local, peer, out, dst)
    }

    fn v4_flow() -> FlowAddrs {
        addrs(
            "10.0.0.1:4000",
            "10.0.0.2:5004",
            "10.0.0.1:4002",
            "10.0.0.3:6000",
        )
    }

    fn bytes(route: Route) -> [u8; 128] {
        // SAFETY: `Route` is `repr(C)`, 128 bytes of integers without padding.
        unsafe { std::mem::transmute(route) }
    }

    #[test]
    fn the_layout_matches_the_c_struct() {
        assert_eq!(size_of::<Route>(), 128);
        assert_eq!(offset_of!(Route, peer_addr), 16);
        assert_eq!(offset_of!(Route, peer_port), 32);
        assert_eq!(offset_of!(Route, out_port), 34);
        assert_eq!(offset_of!(Route, dst_port), 36);
        assert_eq!(offset_of!(Route, event_pt), 38);
        assert_eq!(offset_of!(Route, flags), 39);
        assert_eq!(offset_of!(Route, seq_add), 40);
        assert_eq!(offset_of!(Route, last_seq), 42);
        assert_eq!(offset_of!(Route, last_ts), 44);
        assert_eq!(offset_of!(Route, last_ssrc), 48);
        assert_eq!(offset_of!(Route, ts_add), 52);
        assert_eq!(offset_of!(Route, ssrc_in), 56);
        assert_eq!(offset_of!(Route, ssrc_out), 60);
        assert_eq!(offset_of!(Route, out_addr), 64);
        assert_eq!(offset_of!(Route, dst_addr), 80);
        assert_eq!(offset_of!(Route, packets), 96);
        assert_eq!(offset_of!(Route, declined), 120);
    }

    #[test]
    fn addresses_and_ports_are_in_network_order() {
        assert_eq!(slot_of("10.1.2.3:4000".parse().unwrap()), 4000);
        let rtp = RtpRewrite {
            event_pt: Some(101),
            seq_add: 3,
            shift: None,
        };
        let spec = RouteSpec::new(v4_flow(), true, Some(rtp)).unwrap();
        let b = bytes(spec.to_route());
        assert_eq!(&b[..16], &[10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[16..20], &[10, 0, 0, 2]);
        assert_eq!(&b[32..34], &5004u16.to_be_bytes());
        assert_eq!(&b[34..36], &4002u16.to_be_bytes());
        assert_eq!(&b[36..38], &6000u16.to_be_bytes());
        assert_eq!(b[38], 101);
        assert_eq!(b[39], FLAG_LOCAL);
        assert_eq!(&b[64..68], &[10, 0, 0, 1]);
        assert_eq!(&b[80..84], &[10, 0, 0, 3]);
        let rtcp = RouteSpec::new(v4_flow(), false, None).unwrap().to_route();
        assert_eq!(
            (rtcp.event_pt, rtcp.flags, rtcp.seq_add),
            (NO_EVENT_PT, FLAG_RTCP, 0)
        );
    }

    /// IPv6 routes carry the four words of each address and the family flag; IPv4-mapped
    /// addresses (a dual-stack socket's view of an IPv4 peer) count as IPv4, and a flow mixing
    /// the families is not the kernel's.
    #[test]
    fn ipv6_routes_and_mixed_families() {
        let v6 = addrs(
            "[2001:db8::1]:4000",
            "[2001:db8::2]:5004",
            "[2001:db8::1]:4002",
            "[2001:db8:1::3]:6000",
        );
        let route = RouteSpec::new(v6, false, Some(RtpRewrite::default()))
            .unwrap()
            .to_route();
        let b = bytes(route);
        let ip = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
        assert_eq!(&b[..16], &ip("2001:db8::1"));
        assert_eq!(&b[16..32], &ip("2001:db8::2"));
        assert_eq!(&b[64..80], &ip("2001:db8::1"));
        assert_eq!(&b[80..96], &ip("2001:db8:1::3"));
        assert_eq!(route.flags, FLAG_V6);

        let mapped = addrs(
            "[::ffff:10.0.0.1]:4000",
            "10.0.0.2:5004",
            "10.0.0.1:4002",
            "[::ffff:10.0.0.3]:6000",
        );
        let route = RouteSpec::new(mapped, false, None).unwrap().to_route();
        assert_eq!(
            route,
            RouteSpec::new(v4_flow(), false, None).unwrap().to_route()
        );

        let mixed = FlowAddrs {
            dst: "[2001:db8::3]:6000".parse().unwrap(),
            ..v4_flow()
        };
        assert_eq!(RouteSpec::new(mixed, false, None), None);
    }

    /// A stream shift adds to the suppression's renumbering and names the SSRC it rewrites;
    /// RTCP never gets one.
    #[test]
    fn a_shift_is_folded_into_the_route() {
        let shift = StreamShift {
            from_ssrc: 0x1111,
            ssrc: 0x2222,
            seq: 0xfffe,
            ts: 480,
        };
        let rtp = RtpRewrite {
            event_pt: None,
            seq_add: 3,
            shift: Some(shift),
        };
        let route = RouteSpec::new(v4_flow(), false, Some(rtp))
            .unwrap()
            .to_route();
        assert_eq!(route.flags, FLAG_SHIFT);
        assert_eq!(route.seq_add, 1, "3 + 0xfffe wraps");
        assert_eq!(
            (route.ts_add, route.ssrc_in, route.ssrc_out),
            (480, 0x1111, 0x2222)
        );
        let rtcp = RouteSpec::new(v4_flow(), false, None).unwrap().to_route();
        assert_eq!((rtcp.flags, rtcp.seq_add, rtcp.ssrc_out), (FLAG_RTCP, 0, 0));
    }
}
