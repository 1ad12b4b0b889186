//! State shared by the accept loop, the connection tasks and the sending handles: the
//! connections by remote address, the counters and the inbound channel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{TcpConfig, TcpInbound, TcpStats};
use crate::connlimit::SourceLimiter;

/// What a connection's writer sends.
#[derive(Debug)]
pub(super) enum Outbound {
    /// A SIP message handed to `send`.
    Message(Bytes),
    /// The CRLF answer to a keep-alive ping.
    Pong,
}

/// The sending side of one live (or connecting) connection.
#[derive(Debug, Clone)]
pub(super) struct ConnEntry {
    /// Identifies the connection, so a closing one only removes its own entry.
    pub(super) id: u64,
    /// The connection's bounded write queue.
    pub(super) queue: mpsc::Sender<Outbound>,
}

/// Running totals; read as a [`TcpStats`] snapshot, whose fields they mirror one for one
/// (`open` is the only gauge, the rest only grow).
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) open: AtomicU64,
    pub(super) accepted: AtomicU64,
    pub(super) connected: AtomicU64,
    pub(super) rejected: AtomicU64,
    pub(super) connect_failures: AtomicU64,
    pub(super) messages_in: AtomicU64,
    pub(super) messages_out: AtomicU64,
    pub(super) framing_errors: AtomicU64,
    pub(super) oversize_drops: AtomicU64,
    pub(super) send_drops: AtomicU64,
    pub(super) pings: AtomicU64,
    pub(super) idle_closes: AtomicU64,
    pub(super) per_source_rejected: AtomicU64,
    pub(super) budget_rejected: AtomicU64,
    pub(super) header_timeouts: AtomicU64,
    pub(super) flow_failures: AtomicU64,
}

/// Adds one to a counter.
pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// A consistent-enough snapshot for metrics.
    pub(super) fn snapshot(&self) -> TcpStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        TcpStats {
            connections_open: read(&self.open),
            accepted_total: read(&self.accepted),
            connected_total: read(&self.connected),
            rejected_total: read(&self.rejected),
            connect_failures: read(&self.connect_failures),
            messages_in: read(&self.messages_in),
            messages_out: read(&self.messages_out),
            framing_errors: read(&self.framing_errors),
            oversize_drops: read(&self.oversize_drops),
            send_drops: read(&self.send_drops),
            keepalive_pings: read(&self.pings),
            idle_closes: read(&self.idle_closes),
            per_source_rejected: read(&self.per_source_rejected),
            budget_rejected: read(&self.budget_rejected),
            header_timeouts: read(&self.header_timeouts),
            flow_failures: read(&self.flow_failures),
        }
    }
}

/// Everything the transport's tasks share.
#[derive(Debug)]
pub(super) struct Shared {
    /// Limits and timers.
    pub(super) config: TcpConfig,
    /// Where the listener is bound.
    pub(super) local_addr: SocketAddr,
    /// Running totals.
    pub(super) counters: Counters,
    /// Where complete inbound messages go; its closing stops the transport.
    pub(super) inbound: mpsc::Sender<TcpInbound>,
    /// Per-source caps and the share of the process-wide budget for accepted connections.
    pub(super) limiter: Arc<SourceLimiter>,
    /// Live and connecting connections by (canonical) remote address.
    connections: Mutex<HashMap<SocketAddr, ConnEntry>>,
    /// Source of connection ids.
    next_id: AtomicU64,
}

impl Shared {
    /// Fresh state for a transport listening on `local_addr`.
    pub(super) fn new(
        config: TcpConfig,
        local_addr: SocketAddr,
        inbound: mpsc::Sender<TcpInbound>,
        limiter: Arc<SourceLimiter>,
    ) -> Self {
        Shared {
            config,
            local_addr,
            counters: Counters::default(),
            inbound,
            limiter,
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// The connection table; a poisoned lock still holds a usable map.
    pub(super) fn table(&self) -> MutexGuard<'_, HashMap<SocketAddr, ConnEntry>> {
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new connection entry with its write queue; the caller decides where to register it.
    pub(super) fn new_entry(&self) -> (ConnEntry, mpsc::Receiver<Outbound>) {
        let (queue, receiver) = mpsc::channel(self.config.write_queue.max(1));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        (ConnEntry { id, queue }, receiver)
    }

    /// Registers a connection under `peer`, replacing an older one to the same address.
    pub(super) fn register(&self, peer: SocketAddr, entry: ConnEntry) {
        self.table().insert(peer, entry);
    }

    /// Removes the entry for `peer` if it still belongs to connection `id`.
    pub(super) fn unregister(&self, peer: SocketAddr, id: u64) {
        let mut table = self.table();
        if table.get(&peer).is_some_and(|entry| entry.id == id) {
            table.remove(&peer);
        }
    }

    /// Drops whatever is still queued on a closing connection, counting each message lost.
    pub(super) fn discard_queue(&self, mut receiver: mpsc::Receiver<Outbound>) {
        receiver.close();
        while let Ok(outbound) = receiver.try_recv() {
            if matches!(outbound, Outbound::Message(_)) {
                bump(&self.counters.send_drops);
            }
        }
    }
}

/// Keeps the open-connections gauge right however a connection ends; taken as soon as a
/// connection exists so the accept limit sees it at once.
pub(super) struct OpenGuard {
    shared: Arc<Shared>,
}

impl OpenGuard {
    /// Counts one more open connection until dropped.
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        shared.counters.open.fetch_add(1, Ordering::Relaxed);
        OpenGuard { shared }
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.shared.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Maps IPv4-mapped IPv6 addresses (seen on dual-stack listeners) to plain IPv4, so the
/// address a connection is registered under matches the one the core sends to.
pub(super) fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}
