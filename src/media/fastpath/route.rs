//! The entries of the kernel's `routes` map, laid out exactly as `struct fp_key` and
//! `struct fp_route` in `bpf/fastpath.bpf.c` (the tests below pin sizes and offsets), and the
//! plain description of one forwarded flow the relay builds them from.

use std::net::SocketAddrV4;

/// The flow carries RTCP: the kernel checks no payload type (`FP_RTCP`).
const FLAG_RTCP: u8 = 1;
/// The destination is an address of this host: the stack delivers the rewritten packet
/// (`FP_LOCAL`).
const FLAG_LOCAL: u8 = 2;
/// No payload type is left to userspace (`FP_NO_EVENT_PT`).
const NO_EVENT_PT: u8 = 0xff;

/// Where a packet arrives: one of the proxy's media sockets. Network byte order, as the kernel
/// reads the headers.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Key {
    addr: u32,
    port: u16,
    pad: u16,
}

// SAFETY: `repr(C)`, only integers, no implicit padding (8 bytes, checked below); any bit
// pattern is a valid value.
unsafe impl aya::Pod for Key {}

impl Key {
    /// The key of packets arriving on `local`.
    pub(crate) fn of(local: SocketAddrV4) -> Self {
        Self {
            addr: u32::from_ne_bytes(local.ip().octets()),
            port: local.port().to_be(),
            pad: 0,
        }
    }
}

/// What the kernel does with a packet of the flow, and what it counted. Network byte order for
/// addresses and ports; the counters and `last_*` are the kernel's to write.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Route {
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
    /// Packets forwarded.
    pub packets: u64,
    /// UDP payload bytes forwarded.
    pub bytes: u64,
    /// `CLOCK_MONOTONIC` nanoseconds of the last one (0: none yet).
    pub last_ns: u64,
    /// Packets that matched but were left to the socket: no route to the destination.
    pub declined: u64,
}

// SAFETY: `repr(C)`, only integers, no implicit padding (64 bytes, checked below); any bit
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
    fn layouts_match_the_c_structs() {
        assert_eq!(size_of::<Key>(), 8);
        assert_eq!(size_of::<Route>(), 64);
        assert_eq!(offset_of!(Route, out_addr), 8);
        assert_eq!(offset_of!(Route, dst_port), 16);
        assert_eq!(offset_of!(Route, event_pt), 18);
        assert_eq!(offset_of!(Route, seq_add), 20);
        assert_eq!(offset_of!(Route, last_seq), 22);
        assert_eq!(offset_of!(Route, last_ts), 24);
        assert_eq!(offset_of!(Route, last_ssrc), 28);
        assert_eq!(offset_of!(Route, packets), 32);
        assert_eq!(offset_of!(Route, declined), 56);
    }

    #[test]
    fn addresses_and_ports_are_in_network_order() {
        let key = Key::of("10.1.2.3:4000".parse().unwrap());
        // SAFETY: `Key` is `repr(C)`, 8 bytes of integers without padding.
        let bytes: [u8; 8] = unsafe { std::mem::transmute(key) };
        assert_eq!(&bytes[..6], &[10, 1, 2, 3, 0x0f, 0xa0]);
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
        // SAFETY: `Route` is `repr(C)`, 64 bytes of integers without padding.
        let bytes: [u8; 64] = unsafe { std::mem::transmute(route) };
        assert_eq!(&bytes[..4], &[10, 0, 0, 2]);
        assert_eq!(&bytes[4..6], &5004u16.to_be_bytes());
        assert_eq!(&bytes[12..16], &[10, 0, 0, 3]);
        assert_eq!(bytes[18], 101);
        assert_eq!(bytes[19], FLAG_LOCAL);
        let rtcp = RouteSpec {
            rtcp: true,
            dst_is_local: false,
            ..spec
        }
        .to_route();
        assert_eq!((rtcp.event_pt, rtcp.flags), (NO_EVENT_PT, FLAG_RTCP));
    }
}
