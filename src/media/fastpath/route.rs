//! The entries of the kernel's `routes` map (an array indexed by the port packets arrive on),
//! laid out exactly as `struct fp_route` in `bpf/fastpath.bpf.c` (the tests below pin size and
//! offsets), and the plain description of one forwarded flow the relay builds them from.

use std::net::SocketAddrV4;

use crate::media::playout::continuity::StreamShift;

/// The flow carries RTCP: the kernel checks no payload type (`FP_RTCP`).
const FLAG_RTCP: u8 = 1;
/// The destination is an address of this host: the stack delivers the rewritten packet
/// (`FP_LOCAL`).
const FLAG_LOCAL: u8 = 2;
/// RTP of one SSRC is rewritten to continue the stream a sound played (`FP_SHIFT`): timestamp
/// offset and SSRC; packets of any other SSRC stay in userspace.
const FLAG_SHIFT: u8 = 4;
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
    /// Added to RTP timestamps with `FLAG_SHIFT` (host order).
    ts_add: u32,
    /// Packets forwarded.
    pub packets: u64,
    /// UDP payload bytes forwarded.
    pub bytes: u64,
    /// `CLOCK_MONOTONIC` nanoseconds of the last one (0: none yet).
    pub last_ns: u64,
    /// Packets that matched but were left to the socket: no route to the destination.
    pub declined: u64,
    /// With `FLAG_SHIFT`: the only SSRC rewritten (host order).
    ssrc_in: u32,
    /// With `FLAG_SHIFT`: the SSRC written instead (host order).
    ssrc_out: u32,
}

// SAFETY: `repr(C)`, only integers, no implicit padding (80 bytes, checked below); any bit
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
    /// The renumbering that continues the stream a sound played towards the receiver (its
    /// sequence offset adds to `seq_add`).
    pub shift: Option<StreamShift>,
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
        let shift = self.shift.filter(|_| !self.rtcp);
        if shift.is_some() {
            flags |= FLAG_SHIFT;
        }
        let shift_seq = shift.map_or(0, |s| s.seq);
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
            seq_add: self.seq_add.wrapping_add(shift_seq),
            ts_add: shift.map_or(0, |s| s.ts),
            ssrc_in: shift.map_or(0, |s| s.from_ssrc),
            ssrc_out: shift.map_or(0, |s| s.ssrc),
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
        assert_eq!(size_of::<Route>(), 80);
        assert_eq!(offset_of!(Route, peer_addr), 4);
        assert_eq!(offset_of!(Route, out_addr), 12);
        assert_eq!(offset_of!(Route, dst_port), 20);
        assert_eq!(offset_of!(Route, event_pt), 22);
        assert_eq!(offset_of!(Route, seq_add), 24);
        assert_eq!(offset_of!(Route, last_seq), 26);
        assert_eq!(offset_of!(Route, last_ts), 28);
        assert_eq!(offset_of!(Route, last_ssrc), 32);
        assert_eq!(offset_of!(Route, packets), 40);
        assert_eq!(offset_of!(Route, ts_add), 36);
        assert_eq!(offset_of!(Route, declined), 64);
        assert_eq!(offset_of!(Route, ssrc_in), 72);
        assert_eq!(offset_of!(Route, ssrc_out), 76);
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
            shift: None,
        };
        let route = spec.to_route();
        // SAFETY: `Route` is `repr(C)`, 80 bytes of integers without padding.
        let bytes: [u8; 80] = unsafe { std::mem::transmute(route) };
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
        let spec = RouteSpec {
            local: "10.0.0.1:4000".parse().unwrap(),
            peer: "10.0.0.2:5004".parse().unwrap(),
            out: "10.0.0.1:4002".parse().unwrap(),
            dst: "10.0.0.3:6000".parse().unwrap(),
            event_pt: None,
            rtcp: false,
            dst_is_local: false,
            seq_add: 3,
            shift: Some(shift),
        };
        let route = spec.to_route();
        assert_eq!(route.flags, FLAG_SHIFT);
        assert_eq!(route.seq_add, 1, "3 + 0xfffe wraps");
        assert_eq!(
            (route.ts_add, route.ssrc_in, route.ssrc_out),
            (480, 0x1111, 0x2222)
        );
        let rtcp = RouteSpec { rtcp: true, ..spec }.to_route();
        assert_eq!((rtcp.flags, rtcp.seq_add, rtcp.ssrc_out), (FLAG_RTCP, 3, 0));
    }
}
