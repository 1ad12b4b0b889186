//! Sans-IO symmetric latching of one leg's RTP or RTCP flow.
//!
//! Before a leg has sent anything, packets towards it go to the address its SDP announced. Its
//! first packet fixes ("latches") the source it really uses, which behind NAT differs from the SDP
//! address; from then on packets towards the leg go to that source and packets from any other
//! source are refused. A new SDP address (re-INVITE) forgets the latch.

use std::net::SocketAddr;

/// What to do with a packet received from a leg, as decided by that leg's latch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatchDecision {
    /// The packet comes from the latched source (or just latched it): relay it.
    Accept,
    /// The packet comes from a source other than the latched one: drop it.
    Reject,
}

/// Where one leg's flow (RTP or RTCP) is sent and which source it is accepted from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latch {
    /// Address announced in the leg's SDP, if any yet.
    signalled: Option<SocketAddr>,
    /// Source of the leg's packets once the first one arrived.
    latched: Option<SocketAddr>,
}

impl Latch {
    /// A latch with neither an SDP address nor a latched source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the SDP address of the leg. A different address than before re-points the flow
    /// and forgets the latched source; repeating the same address keeps the latch.
    pub fn set_signalled(&mut self, addr: SocketAddr) {
        if self.signalled != Some(addr) {
            self.signalled = Some(addr);
            self.latched = None;
        }
    }

    /// Decides on a packet received from the leg; the first packet latches its source.
    pub fn on_packet(&mut self, source: SocketAddr) -> LatchDecision {
        match self.latched {
            Some(latched) if latched == source => LatchDecision::Accept,
            Some(_) => LatchDecision::Reject,
            None => {
                self.latched = Some(source);
                LatchDecision::Accept
            }
        }
    }

    /// Where packets destined to the leg go now: the latched source, else the SDP address.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.latched.or(self.signalled)
    }

    /// Whether the leg's source has been learnt from its packets.
    pub fn is_latched(&self) -> bool {
        self.latched.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn sends_to_sdp_address_until_the_first_packet() {
        let mut latch = Latch::new();
        assert_eq!(latch.destination(), None);
        latch.set_signalled(addr("192.0.2.10:4000"));
        assert_eq!(latch.destination(), Some(addr("192.0.2.10:4000")));
        assert!(!latch.is_latched());
    }

    #[test]
    fn first_packet_latches_a_nat_source_and_others_are_rejected() {
        let mut latch = Latch::new();
        latch.set_signalled(addr("10.0.0.5:4000"));
        let nat = addr("198.51.100.7:61000");
        assert_eq!(latch.on_packet(nat), LatchDecision::Accept);
        assert_eq!(latch.destination(), Some(nat));
        assert_eq!(latch.on_packet(nat), LatchDecision::Accept);
        assert_eq!(
            latch.on_packet(addr("10.0.0.5:4000")),
            LatchDecision::Reject
        );
        assert_eq!(
            latch.on_packet(addr("203.0.113.9:61000")),
            LatchDecision::Reject
        );
        assert_eq!(latch.destination(), Some(nat));
    }

    #[test]
    fn a_new_sdp_address_unlatches_and_the_same_one_does_not() {
        let mut latch = Latch::new();
        latch.set_signalled(addr("192.0.2.10:4000"));
        latch.on_packet(addr("192.0.2.10:5000"));
        latch.set_signalled(addr("192.0.2.10:4000"));
        assert!(latch.is_latched());
        latch.set_signalled(addr("192.0.2.20:6000"));
        assert!(!latch.is_latched());
        assert_eq!(latch.destination(), Some(addr("192.0.2.20:6000")));
        assert_eq!(
            latch.on_packet(addr("192.0.2.20:6002")),
            LatchDecision::Accept
        );
        assert_eq!(latch.destination(), Some(addr("192.0.2.20:6002")));
    }

    #[test]
    fn a_packet_before_any_sdp_latches_and_gives_a_destination() {
        let mut latch = Latch::new();
        let source = addr("192.0.2.30:7000");
        assert_eq!(latch.on_packet(source), LatchDecision::Accept);
        assert_eq!(latch.destination(), Some(source));
    }
}
