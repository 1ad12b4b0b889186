//! The hook through which a feature that keeps media (recording today; capture and listening-in
//! later) gets a copy of every relayed packet. The relay knows only this trait, not the feature.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::base::Leg;

use super::stats::PacketKind;

/// Receives a copy of every packet of a call's streams, both legs, RTP and RTCP. It runs on the
/// relay's per-packet path: it must return at once, never block, never allocate per packet and
/// never log above debug. An implementation hands the copy to its own bounded queue and counts
/// what it could not take.
pub trait PacketTap: Send + Sync + std::fmt::Debug {
    /// One relayed packet: sent by `from`, arrived from `src` at the proxy socket `dst`, at
    /// `arrival_us` on the relay's monotonic clock.
    fn offer(
        &self,
        from: Leg,
        kind: PacketKind,
        src: SocketAddr,
        dst: SocketAddr,
        packet: &[u8],
        arrival_us: u64,
    );
}

/// A tap shared by every stream relay of one call.
pub type SharedTap = Arc<dyn PacketTap>;
