//! The relay's side of the kernel fast path: which of the stream's flows the kernel may
//! forward, keeping the map in step with the relay's state, and folding what the kernel counted
//! into the relay's counters and timeouts.
//!
//! A flow qualifies while the relay would pass its packets on unchanged: its source latched for
//! good (the socket is connected to it), the other leg's address known, the stream not
//! recorded; for RTP also no tone detection on the sender's audio and nothing of the proxy's
//! own towards the receiver (no sound playing or played, not held, volume unchanged). The DTMF
//! suppression's renumbering is the one change the kernel applies itself. Telephone-events are
//! never forwarded by the kernel: they reach the inspector, which first learns from the kernel
//! the last header it sent so that what it withholds or sends continues the same stream.

use std::net::IpAddr;

use tracing::debug;

use super::{Relay, leg_slot, micros_since};
use crate::base::Leg;
use crate::media::fastpath::{self, Counted, FlowAddrs, LastSent, RouteSpec, RtpRewrite};
use crate::media::sockets::{Port, RelaySockets};
use crate::media::stats::{Direction, PacketKind};

impl Relay {
    /// Whether the kernel currently forwards the flow arriving on `port`.
    pub(super) fn kernel_forwards(&self, port: Port) -> bool {
        self.kernel
            .as_ref()
            .is_some_and(|kernel| kernel.is_installed(port.index()))
    }

    /// Brings the map in line with what each flow qualifies for. Costs nothing when nothing
    /// changed (no syscall), so it runs after every burst and every instruction.
    pub(super) fn sync_kernel(&mut self, sockets: &RelaySockets) {
        if self.kernel.is_none() {
            return;
        }
        for port in Port::ALL {
            let wanted = self.wanted(sockets, port);
            let Some(kernel) = self.kernel.as_mut() else {
                return;
            };
            let (counted, last) = kernel.set(port.index(), wanted);
            self.fold(port, counted);
            if let Some(last) = last {
                self.hand_back(port, last);
            }
        }
    }

    /// Every tick: what the kernel forwarded counts as relayed (and as media for the timeout);
    /// a flow the kernel cannot route is taken back for good.
    pub(super) fn kernel_tick(&mut self, sockets: &RelaySockets) {
        let Some(kernel) = self.kernel.as_mut() else {
            return;
        };
        let mut refused = false;
        let mut polled = [Counted::default(); 4];
        for port in Port::ALL {
            polled[port.index()] = kernel.poll(port.index());
        }
        for port in Port::ALL {
            let counted = polled[port.index()];
            if counted.declined > 0 && counted.packets == 0 {
                debug!(
                    call = self.ctx.call,
                    stream = self.ctx.stream,
                    ?port,
                    "the kernel has no route for this flow; it stays in userspace"
                );
                self.kernel_refused[port.index()] = true;
                refused = true;
            }
            self.fold(port, counted);
        }
        if refused {
            self.sync_kernel(sockets);
        }
    }

    /// Tells the inspector, and the numbering of the direction the flow goes to, the last
    /// header the kernel sent on `port`'s flow (read from memory), before the relay looks at a
    /// packet of that flow or sends in its name: a packet the kernel left here (a
    /// telephone-event, a new SSRC) continues what the kernel sent.
    pub(super) fn kernel_catch_up(&mut self, port: Port) {
        let Some(kernel) = self.kernel.as_mut() else {
            return;
        };
        let Some(last) = kernel.last_sent(port.index()) else {
            return;
        };
        let at_us = self.engine_us(last.at_ns);
        if let Some(inspector) = self.inspector.as_mut() {
            inspector.forwarded_elsewhere(port.sender(), last.as_relayed(), at_us);
        }
        self.outbound_mut(port.sender().other())
            .relayed_elsewhere((last.ssrc, last.seq, last.ts), at_us);
    }

    /// What the kernel should do with the flow arriving on `port`, if it may forward it.
    fn wanted(&mut self, sockets: &RelaySockets, port: Port) -> Option<RouteSpec> {
        if self.tap.is_some() || self.consult.is_some() || self.kernel_refused[port.index()] {
            return None;
        }
        let from = port.sender();
        let to = from.other();
        let kind = port.kind();
        if !self.latches.get_mut(from, kind).is_latched() {
            return None;
        }
        let peer = self.connected[port.index()]?;
        let dst = self.latches.get_mut(to, kind).destination()?;
        let rtp = match kind {
            PacketKind::Rtcp => None,
            PacketKind::Rtp => {
                if self.inband[leg_slot(from)] {
                    return None;
                }
                let shift = self.outbound_mut(to).kernel_shift()?;
                let seq_add = self
                    .inspector
                    .as_ref()
                    .map_or(0, |inspector| inspector.seq_offset(from));
                Some(RtpRewrite {
                    event_pt: self.event_pt[leg_slot(from)],
                    seq_add,
                    shift,
                })
            }
        };
        let addrs = FlowAddrs {
            local: sockets.local_addr(port),
            peer,
            out: sockets.local_addr(port.peer()),
            dst,
        };
        // As the packet carries it: a dual-stack socket's IPv4-mapped view read as IPv4.
        let dst_is_local = self.is_local(to, fastpath::plain(dst).ip());
        RouteSpec::new(addrs, dst_is_local, rtp)
    }

    /// Whether `ip`, where leg `to` receives, is this host's (cached per leg).
    fn is_local(&mut self, to: Leg, ip: IpAddr) -> bool {
        let slot = &mut self.dst_local[leg_slot(to)];
        match *slot {
            Some((known, local)) if known == ip => local,
            _ => {
                let local = fastpath::is_local(ip);
                *slot = Some((ip, local));
                local
            }
        }
    }

    /// Adds what the kernel did on `port`'s flow to the relay's tallies.
    fn fold(&mut self, port: Port, counted: Counted) {
        if counted.packets == 0 && counted.declined == 0 {
            return;
        }
        let direction = match port.sender() {
            Leg::A => Direction::AToB,
            Leg::B => Direction::BToA,
        };
        self.counters
            .relayed_many(direction, port.kind(), counted.packets, counted.bytes);
        self.ctx
            .stats
            .kernel_counted(counted.packets, counted.declined);
        if counted.packets > 0 {
            self.saw_media = true;
        }
    }

    /// The flow on `port` left the kernel, which last sent `last`: the relay's own packets
    /// towards the receiver, and the inspector's, continue from it.
    fn hand_back(&mut self, port: Port, last: LastSent) {
        if port.kind() != PacketKind::Rtp {
            return;
        }
        let at_us = self.engine_us(last.at_ns);
        let from = port.sender();
        self.outbound_mut(from.other())
            .relayed_elsewhere((last.ssrc, last.seq, last.ts), at_us);
        if let Some(inspector) = self.inspector.as_mut() {
            inspector.forwarded_elsewhere(from, last.as_relayed(), at_us);
        }
    }

    /// The engine-clock time (µs) of a kernel timestamp (`CLOCK_MONOTONIC` ns).
    fn engine_us(&self, at_ns: u64) -> u64 {
        let now_us = micros_since(self.ctx.clock);
        let ago_us = fastpath::monotonic_ns().saturating_sub(at_ns) / 1000;
        now_us.saturating_sub(ago_us)
    }
}
