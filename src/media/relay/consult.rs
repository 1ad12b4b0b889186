//! A third party on a stream: the target an attended transfer consults.
//!
//! While a consultation runs, the stream has three sides in one relay: the talker (the
//! transferor) and the consulted party hear each other through the consultation's own socket
//! pair, and the parked leg (the transferee) hears only what the proxy plays to it (music on
//! hold); its packets are counted and dropped. The consultation ends one of two ways: closed
//! (the target is gone; talker and parked leg hear each other again) or taking a leg's place
//! (the transfer completes: the consultation's sockets and latches become that leg's and the
//! leg's own sockets close). Everything stays in the stream's one relay, so no packet crosses
//! workers; the kernel fast path is left out while a consultation runs.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use tracing::{debug, trace};

use crate::base::Leg;
use crate::media::latch::{Latch, LatchDecision};
use crate::media::sockets::{ConsultSockets, Port, RelaySockets, recv_from, send_to};
use crate::media::stats::{Direction, DropReason, PacketKind};

use super::worker::Registrar;
use super::{Relay, micros_since};

/// The consultation of one stream.
pub(super) struct Consult {
    /// The leg that talks with the consulted party.
    talker: Leg,
    /// The consulted party's sockets.
    sockets: ConsultSockets,
    /// Which sources the consulted party's RTP and RTCP are accepted from (RTP first).
    latches: [Latch; 2],
    /// The timestamp of the talker's key press under way when the consultation opened (the
    /// code that started the transfer): the rest of it stays here.
    opening_press: Option<u32>,
}

/// Index of `kind` in the consultation's per-flow arrays.
fn kind_slot(kind: PacketKind) -> usize {
    match kind {
        PacketKind::Rtp => 0,
        PacketKind::Rtcp => 1,
    }
}

impl Relay {
    /// Starts consulting: `talker` now hears the party on `rtp`/`rtcp` (bound sockets) and the
    /// other leg is parked.
    pub(super) fn open_consult(
        &mut self,
        talker: Leg,
        rtp: UdpSocket,
        rtcp: UdpSocket,
        registrar: &Registrar<'_>,
    ) {
        let registered = ConsultSockets::new(rtp, rtcp).and_then(|sockets| {
            registrar.add_consult(&sockets.rtp, &sockets.rtcp)?;
            Ok(sockets)
        });
        match registered {
            Ok(sockets) => {
                let latch = Latch::new(self.ctx.latch);
                let opening_press = self.last_event_ts[super::leg_slot(talker)];
                self.consult = Some(Box::new(Consult {
                    talker,
                    sockets,
                    latches: [latch, latch],
                    opening_press,
                }));
                debug!(
                    call = self.ctx.call,
                    stream = self.ctx.stream,
                    ?talker,
                    "consultation started"
                );
            }
            Err(err) => {
                debug!(call = self.ctx.call, %err, "consultation sockets not registered");
            }
        }
    }

    /// The consulted party's SDP said where it receives.
    pub(super) fn consult_remote(&mut self, rtp: SocketAddr, rtcp: SocketAddr) {
        if let Some(consult) = self.consult.as_mut() {
            let [rtp_latch, rtcp_latch] = &mut consult.latches;
            rtp_latch.set_signalled(rtp);
            rtcp_latch.set_signalled(rtcp);
        }
    }

    /// The consultation ends without the consulted party staying: its sockets close.
    pub(super) fn close_consult(&mut self) {
        if self.consult.take().is_some() {
            debug!(
                call = self.ctx.call,
                stream = self.ctx.stream,
                "consultation closed"
            );
        }
    }

    /// The consulted party takes `leg`'s place: its sockets and latches become that leg's
    /// (the leg's own sockets close), and the stream is two parties again.
    pub(super) fn consult_takes(
        &mut self,
        sockets: &mut RelaySockets,
        leg: Leg,
        registrar: &Registrar<'_>,
    ) {
        let Some(consult) = self.consult.take() else {
            return;
        };
        let consult = *consult;
        for kind in [PacketKind::Rtp, PacketKind::Rtcp] {
            let port = Port::of(leg, kind);
            self.connected[port.index()] = None;
            self.refusal_logged[port.index()] = false;
            self.kernel_refused[port.index()] = false;
        }
        self.dst_local[super::leg_slot(leg)] = None;
        sockets.replace(leg, consult.sockets);
        for kind in [PacketKind::Rtp, PacketKind::Rtcp] {
            let port = Port::of(leg, kind);
            if let Err(err) = registrar.rebind(sockets.get(port), port) {
                // Not seen in practice (the socket is registered already); the leg would go
                // unheard, so say so loudly.
                tracing::warn!(call = self.ctx.call, %err, "consulted party's socket not re-registered");
            }
        }
        self.latches.replace(leg, consult.latches);
        for kind in [PacketKind::Rtp, PacketKind::Rtcp] {
            let latch = self.latches.get_mut(leg, kind);
            if latch.is_latched()
                && let Some(source) = latch.destination()
            {
                self.connect(sockets, Port::of(leg, kind), source);
            }
        }
        debug!(
            call = self.ctx.call,
            stream = self.ctx.stream,
            ?leg,
            "the consulted party takes the leg"
        );
    }

    /// Whether packets from `from` are parked (dropped) by a running consultation.
    pub(super) fn parked(&self, from: Leg) -> bool {
        self.consult.as_ref().is_some_and(|c| c.talker != from)
    }

    /// Whether packets from `from` go to the consulted party.
    pub(super) fn talks_to_consult(&self, from: Leg) -> bool {
        self.consult.as_ref().is_some_and(|c| c.talker == from)
    }

    /// Whether `packet` from the talker continues the key press under way when the consultation
    /// opened (the transfer code's last digit): the consulted party must not hear it.
    pub(super) fn is_consult_opening_press(&self, from: Leg, packet: &[u8]) -> bool {
        let Some(opening) = self.consult.as_ref().and_then(|c| c.opening_press) else {
            return false;
        };
        self.event_timestamp(from, packet) == Some(opening)
    }

    /// Sends the talker's `packet` to the consulted party.
    pub(super) fn send_to_consult(&mut self, kind: PacketKind, packet: &[u8]) {
        let Some(consult) = self.consult.as_mut() else {
            return;
        };
        let direction = match consult.talker {
            Leg::A => Direction::AToB,
            Leg::B => Direction::BToA,
        };
        let Some(destination) = consult.latches[kind_slot(kind)].destination() else {
            self.counters.dropped(DropReason::NoDestination);
            return;
        };
        match send_to(consult.sockets.get(kind), packet, destination) {
            Ok(_) => self.counters.relayed(direction, kind, packet.len()),
            Err(err) => {
                trace!(%destination, %err, "media send failed");
                self.counters.dropped(DropReason::SendError);
            }
        }
    }

    /// Relays one datagram waiting on the consultation's `kind` socket to the talker.
    pub(super) fn relay_consult_one(
        &mut self,
        sockets: &RelaySockets,
        kind: PacketKind,
        buf: &mut [u8],
    ) {
        let Some(consult) = self.consult.as_mut() else {
            return;
        };
        let (len, source) = match recv_from(consult.sockets.get(kind), buf) {
            Ok(received) => received,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
            Err(err) => {
                trace!(%err, "media receive failed");
                return;
            }
        };
        let now_us = micros_since(self.ctx.clock);
        let talker = consult.talker;
        match consult.latches[kind_slot(kind)].on_packet(source, now_us) {
            LatchDecision::Accept | LatchDecision::Latched => {}
            LatchDecision::Refuse(refusal) => {
                self.counters.dropped(DropReason::from(refusal));
                return;
            }
        }
        self.saw_media = true;
        let Some(packet) = buf.get_mut(..len) else {
            return;
        };
        if kind == PacketKind::Rtp {
            let verdict = self.outbound_mut(talker).on_relayed(packet, now_us);
            self.report_ended(talker);
            if verdict == crate::media::Verdict::Drop {
                self.counters.dropped(DropReason::Replaced);
                return;
            }
        }
        self.send_towards(sockets, Port::of(talker, kind), talker, kind, packet);
    }
}
