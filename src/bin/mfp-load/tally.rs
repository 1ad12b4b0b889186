//! Counters of the media phase, per path (through the proxy or direct) and direction, updated
//! by sender threads and receiver tasks without locks.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::histogram::Histogram;

/// Whether a stream goes through the proxy or straight to the other endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// Caller endpoint → proxy anchor → PBX endpoint (or back).
    Proxied,
    /// Endpoint → endpoint, the same-run baseline.
    Direct,
}

/// Which way a stream flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Caller (a-leg) towards PBX (b-leg).
    AToB,
    /// PBX (b-leg) towards caller (a-leg).
    BToA,
}

/// Sent, received and latency of one (path, direction).
#[derive(Default)]
pub(crate) struct Flow {
    /// Packets handed to the kernel.
    pub sent: AtomicU64,
    /// Measurement packets received.
    pub received: AtomicU64,
    /// One-way latency of received packets.
    pub latency: Histogram,
}

/// Every counter of a media phase.
pub(crate) struct Tally {
    flows: [Flow; 4],
    /// Sends the kernel refused.
    pub send_errors: AtomicU64,
    /// Received packets naming a stream that does not exist.
    pub strays: AtomicU64,
    /// Received packets without this tool's stamp (music on hold the proxy made).
    pub unstamped: AtomicU64,
    /// Path and direction of each stream index.
    streams: Vec<(Path, Direction)>,
}

fn slot(path: Path, direction: Direction) -> usize {
    let path = match path {
        Path::Proxied => 0,
        Path::Direct => 2,
    };
    let direction = match direction {
        Direction::AToB => 0,
        Direction::BToA => 1,
    };
    path + direction
}

impl Tally {
    /// A tally for streams whose index `i` flows along `streams[i]`.
    pub(crate) fn new(streams: Vec<(Path, Direction)>) -> Tally {
        Tally {
            flows: Default::default(),
            send_errors: AtomicU64::new(0),
            strays: AtomicU64::new(0),
            unstamped: AtomicU64::new(0),
            streams,
        }
    }

    /// The counters of one path and direction.
    pub(crate) fn flow(&self, path: Path, direction: Direction) -> &Flow {
        // `slot` is always below 4, the array's length.
        &self.flows[slot(path, direction)]
    }

    /// Counts one packet sent.
    pub(crate) fn count_sent(&self, path: Path, direction: Direction) {
        self.flow(path, direction)
            .sent
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refused send.
    pub(crate) fn count_send_error(&self) {
        self.send_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a received measurement packet of `stream` with its one-way latency.
    pub(crate) fn count_received(&self, stream: u32, latency_ns: u64) {
        match self.streams.get(stream as usize) {
            Some(&(path, direction)) => {
                let flow = self.flow(path, direction);
                flow.received.fetch_add(1, Ordering::Relaxed);
                flow.latency.record(latency_ns);
            }
            None => {
                self.strays.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sent and received totals over both directions of `path`.
    pub(crate) fn totals(&self, path: Path) -> (u64, u64) {
        [Direction::AToB, Direction::BToA]
            .iter()
            .map(|&d| {
                let flow = self.flow(path, d);
                (
                    flow.sent.load(Ordering::Relaxed),
                    flow.received.load(Ordering::Relaxed),
                )
            })
            .fold((0, 0), |(s, r), (fs, fr)| (s + fs, r + fr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_land_in_their_stream_flow() {
        let tally = Tally::new(vec![
            (Path::Proxied, Direction::AToB),
            (Path::Direct, Direction::BToA),
        ]);
        tally.count_sent(Path::Proxied, Direction::AToB);
        tally.count_sent(Path::Direct, Direction::BToA);
        tally.count_received(1, 5_000);
        tally.count_received(9, 5_000);
        assert_eq!(tally.totals(Path::Proxied), (1, 0));
        assert_eq!(tally.totals(Path::Direct), (1, 1));
        assert_eq!(tally.strays.load(Ordering::Relaxed), 1);
        assert_eq!(tally.flow(Path::Direct, Direction::BToA).latency.count(), 1);
    }
}
