//! The entries of the kernel's `routes` map (an array indexed by the port packets arrive on),
//! laid out exactly as `struct fp_route` in `bpf/fastpath.bpf.c` (the tests below pin size and
//! offsets), and the plain description of one forwarded flow the relay builds them from.

use std::net::SocketAddrV4;

/// The flow carries RTCP: the kernel checks no payload type (`FP_RTCP`).
const FLAG_RTCP: u8 = 1;
/// The destination is an address of this host: the stack delivers the rewritten packet
/// (`FP_LOCAL`).
const FLAG_LOCAL: u8 = 2;
/// No payload type is left to userspace (`FP_NO_EVENT_PT`).
const NO_EVENT_PT: u8 = 0xff;

/// The map slot of packets arriving on `local`: the array is indexed by port.
pub(crate) fn slot_of(local: SocketAddrV4) -> u32 {
    u32::from(local.port())
}

/// What the kernel does with a packet of the flow, and what it counted. Network byte order for
/// addresses and ports; the counters and `last_*` are the kernel's to write.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Route {
    /// The proxy's address the flow arrives on; 0 marks an unused slot.
    local_addr: u32,
    peer_addr: u32,
    peer_port: u16,
    out_port: u16,
    out_addr: u32,
    dst_addr: u32,
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
    pad: u32,
    /// Packets forwarded.
    pub packets: u64,
    /// UDP payload bytes forwarded.
    pub bytes: u64,
    /// `CLOCK_MONOTONIC` nanoseconds of the last one (0: none yet).
    pub last_ns: u64,
    /// Packets that matched but were left to the socket: no route to the destination.
    pub declined: u64,
}

// SAFETY: `repr(C)`, only integers, no implicit padding (72 bytes, checked below); any bit
// pattern is a valid value.
unsafe impl aya::Pod for Route {}

/// One flow the kernel may forward: packets from `peer` arriving on the proxy's `local` socket
/// go to `dst`, sent from the proxy's `out` socket, the way the userspace relay sends them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RouteSpec {
    /// The proxy's socket the packets arrive on.
    pub local: SocketAddrV4,
    /// The only source taken (the leg's latched address).
    pub peer: SocketAddrV4,
    /// The proxy's socket for the other leg, the packets' new source.
    pub out: SocketAddrV4,
    /// The other leg, where they go.
    pub dst: SocketAddrV4,
    /// RTP payload type left to userspace (telephone-events); `None` for RTCP or none known.
    pub event_pt: Option<u8>,
    /// RTCP: no RTP header checks.
    pub rtcp: bool,
    /// `dst` is an address of this host.
    pub dst_is_local: bool,
    /// Added to every forwarded RTP sequence number (the DTMF suppression's renumbering).
    pub seq_add: u16,
}

impl RouteSpec {
    /// The map value for this flow, counters zero.
    pub(crate) fn to_route(self) -> Route {
        let addr = |a: SocketAddrV4| u32::from_ne_bytes(a.ip().octets());
        let mut flags = 0;
        if self.rtcp {
            flags |= FLAG_RTCP;
        }
        if self.dst_is_local {
            flags |= FLAG_LOCAL;
        }
        Route {
            local_addr: addr(self.local),
            peer_addr: addr(self.peer),
            peer_port: self.peer.port().to_be(),
            out_port: self.out.port().to_be(),
            out_addr: addr(self.out),
            dst_addr: addr(self.dst),
            dst_port: self.dst.port().to_be(),
            event_pt: if self.rtcp {
                NO_EVENT_PT
            } else {
                self.event_pt.map_or(NO_EVENT_PT, |pt| pt & 0x7f)
            },
            flags,
            seq_add: self.seq_add,
            ..Route::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn the_layout_matches_the_c_struct() {
        assert_eq!(size_of::<Route>(), 72);
        assert_eq!(offset_of!(Route, peer_addr), 4);
        assert_eq!(offset_of!(Route, out_addr), 12);
        assert_eq!(offset_of!(Route, dst_port), 20);
        assert_eq!(offset_of!(Route, event_pt), 22);
        assert_eq!(offset_of!(Route, seq_add), 24);
        assert_eq!(offset_of!(Route, last_seq), 26);
        assert_eq!(offset_of!(Route, last_ts), 28);
        assert_eq!(offset_of!(Route, last_ssrc), 32);
        assert_eq!(offset_of!(Route, packets), 40);
        assert_eq!(offset_of!(Route, declined), 64);
    }

    #[test]
    fn addresses_and_ports_are_in_network_order() {
        assert_eq!(slot_of("10.1.2.3:4000".parse().unwrap()), 4000);
        let spec = RouteSpec {
            local: "10.0.0.1:4000".parse().unwrap(),
            peer: "10.0.0.2:5004".parse().unwrap(),
            out: "10.0.0.1:4002".parse().unwrap(),
            dst: "10.0.0.3:6000".parse().unwrap(),
            event_pt: Some(101),
            rtcp: false,
            dst_is_local: true,
            seq_add: 3,
        };
        let route = spec.to_route();
        // SAFETY: `Route` is `repr(C)`, 72 bytes of integers without padding.
        let bytes: [u8; 72] = unsafe { std::mem::transmute(route) };
        assert_eq!(&bytes[..4], &[10, 0, 0, 1]);
        assert_eq!(&bytes[4..8], &[10, 0, 0, 2]);
        assert_eq!(&bytes[8..10], &5004u16.to_be_bytes());
        assert_eq!(&bytes[16..20], &[10, 0, 0, 3]);
        assert_eq!(bytes[22], 101);
        assert_eq!(bytes[23], FLAG_LOCAL);
        let rtcp = RouteSpec {
            rtcp: true,
            dst_is_local: false,
            ..spec
        }
        .to_route();
        assert_eq!((rtcp.event_pt, rtcp.flags), (NO_EVENT_PT, FLAG_RTCP));
    }
}
