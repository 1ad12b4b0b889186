//! The kernel routes of one media stream, kept by its relay: which of its four flows the
//! kernel forwards, and the counts the kernel made for them since the task last looked.
//!
//! The relay says what it wants for each flow ([`KernelRoutes::set`]); this installs, replaces
//! or removes the map entry and hands back what the kernel counted and sent up to then, so
//! nothing is counted twice or lost when a flow moves between the kernel and the socket. A
//! packet is forwarded by exactly one of them: the map lookup happens before the socket, so a
//! packet that found no entry is in the socket's queue and the relay sends it. Dropping the
//! routes removes every entry (the ports go back to the pool and may serve another call).

use aya::maps::{Array, MapData, MapError};
use tracing::debug;

use super::FastPath;
use super::route::{Route, RouteSpec, slot_of};
use crate::media::playout::continuity::StreamShift;

/// What the kernel did for one flow since it was last asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counted {
    /// Packets forwarded.
    pub packets: u64,
    /// UDP payload bytes forwarded.
    pub bytes: u64,
    /// Packets left to the socket for want of a route.
    pub declined: u64,
}

/// The header of the last RTP packet the kernel forwarded on a flow being handed back, so that
/// the relay's own packets continue that stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LastSent {
    /// After the kernel's renumbering.
    pub ssrc: u32,
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub ts: u32,
    /// `CLOCK_MONOTONIC` nanoseconds when it went.
    pub at_ns: u64,
    /// The stream shift the kernel applied on top of the relay's own renumbering.
    shift: Option<StreamShift>,
}

impl LastSent {
    /// The last header recorded in `route`, installed per `spec`, if the kernel forwarded
    /// anything on it.
    fn of(route: &Route, spec: &RouteSpec) -> Option<Self> {
        (route.last_ns != 0).then_some(LastSent {
            ssrc: route.last_ssrc,
            seq: route.last_seq,
            ts: route.last_ts,
            at_ns: route.last_ns,
            shift: spec.shift(),
        })
    }

    /// The header as the relay's inspector numbers it (before the stream shift): sequence
    /// number, timestamp, SSRC.
    pub(crate) fn as_relayed(&self) -> (u16, u32, u32) {
        match self.shift {
            None => (self.seq, self.ts, self.ssrc),
            Some(shift) => (
                self.seq.wrapping_sub(shift.seq),
                self.ts.wrapping_sub(shift.ts),
                shift.from_ssrc,
            ),
        }
    }
}

/// One installed flow.
#[derive(Debug)]
struct Installed {
    /// The map slot (the port the flow arrives on).
    key: u32,
    spec: RouteSpec,
    /// The kernel's counters when last read, to report differences.
    seen: Route,
}

/// The map entries of one stream, by flow (`Port::index` order).
pub(crate) struct KernelRoutes {
    map: Array<MapData, Route>,
    /// The map in memory, for the counters read every tick.
    mapped: std::sync::Arc<super::mapped::MappedRoutes>,
    installed: [Option<Installed>; 4],
}

impl KernelRoutes {
    /// A handle on the fast path's map for one stream (its own file descriptor, so no lock is
    /// shared with other streams).
    pub(crate) fn new(fastpath: &FastPath) -> Result<Self, MapError> {
        let map = Array::try_from(aya::maps::Map::Array(fastpath.map_handle()?))?;
        Ok(Self {
            map,
            mapped: std::sync::Arc::clone(&fastpath.mapped),
            installed: [None, None, None, None],
        })
    }

    /// Whether the kernel forwards flow `slot`.
    pub(crate) fn is_installed(&self, slot: usize) -> bool {
        self.installed.get(slot).is_some_and(Option::is_some)
    }

    /// Makes flow `slot` forwarded per `spec`, or by the socket when `None`. Returns what the
    /// kernel counted on the flow's previous entry since the last read, and, when the flow
    /// leaves the kernel, the last RTP header it forwarded. A map that refuses the entry leaves
    /// the flow on the socket.
    pub(crate) fn set(
        &mut self,
        slot: usize,
        spec: Option<RouteSpec>,
    ) -> (Counted, Option<LastSent>) {
        let Some(current) = self.installed.get_mut(slot) else {
            return (Counted::default(), None);
        };
        if current.as_ref().map(|i| i.spec) == spec {
            return (Counted::default(), None);
        }
        let mut counted = Counted::default();
        let mut last = None;
        if let Some(old) = current.take() {
            if let Some(now) = self.mapped.read(old.key) {
                counted = difference(&old.seen, &now);
                last = LastSent::of(&now, &old.spec);
            }
            if let Err(error) = self.map.set(old.key, Route::default(), 0) {
                debug!(%error, "kernel route not removed");
            }
        }
        if let Some(spec) = spec {
            let key = slot_of(spec.addrs.local);
            let route = spec.to_route();
            match self.map.set(key, route, 0) {
                Ok(()) => {
                    *current = Some(Installed {
                        key,
                        spec,
                        seen: route,
                    });
                    // Still forwarding: the relay keeps its own header bookkeeping.
                    last = None;
                }
                Err(error) => debug!(%error, "kernel route not installed; the socket relays"),
            }
        }
        (counted, last)
    }

    /// The last RTP header the kernel forwarded on flow `slot` (read from memory), if it did.
    pub(crate) fn last_sent(&self, slot: usize) -> Option<LastSent> {
        let installed = self.installed.get(slot)?.as_ref()?;
        LastSent::of(&self.mapped.read(installed.key)?, &installed.spec)
    }

    /// What the kernel counted on flow `slot` since the last read (from memory: no system call).
    pub(crate) fn poll(&mut self, slot: usize) -> Counted {
        let Some(Some(installed)) = self.installed.get_mut(slot) else {
            return Counted::default();
        };
        match self.mapped.read(installed.key) {
            Some(now) => {
                let counted = difference(&installed.seen, &now);
                installed.seen = now;
                counted
            }
            None => Counted::default(),
        }
    }
}

impl Drop for KernelRoutes {
    fn drop(&mut self) {
        for installed in self.installed.iter_mut().filter_map(Option::take) {
            if let Err(error) = self.map.set(installed.key, Route::default(), 0) {
                debug!(%error, "kernel route not removed");
            }
        }
    }
}

fn difference(before: &Route, now: &Route) -> Counted {
    Counted {
        packets: now.packets.saturating_sub(before.packets),
        bytes: now.bytes.saturating_sub(before.bytes),
        declined: now.declined.saturating_sub(before.declined),
    }
}
