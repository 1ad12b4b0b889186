//! SIP over TCP (RFC 3261 §18): a listener plus outbound connections, with messages framed by
//! Content-Length, RFC 5626 §3.5.1 CRLF keep-alives answered, and connections reused per remote
//! address so responses and in-dialog requests travel on the connection the peer opened.
//!
//! The transport is driven by two ends: [`TcpTransport::send`] queues bytes for a peer and never
//! blocks, and the receiver returned by [`TcpTransport::bind`] yields each complete inbound
//! message with the address it came from.

mod connection;
pub mod framer;
mod registry;

#[cfg(test)]
mod tests;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::connlimit::{ConnectionBudget, SourceLimiter};
use crate::metrics::{MetricsSource, write_header, write_sample};
use registry::{Outbound, Shared, bump, canonical};

pub use framer::{Frame, FrameError, StreamFramer};

/// Limits and timers of the TCP transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpConfig {
    /// Largest message accepted, head plus body, in bytes (capped at the parser's 64 KiB).
    pub max_message: usize,
    /// Accepted connections are refused while this many connections are open (outbound
    /// connections count towards it but are never refused: the core asked for them).
    pub max_connections: usize,
    /// A connection with no traffic either way for this long is closed.
    pub idle_timeout: Duration,
    /// An accepted connection that has not sent a single byte this long after it was accepted
    /// is closed (shorter than `idle_timeout`: such a peer holds a descriptor for nothing).
    pub first_byte_timeout: Duration,
    /// A connection that has not completed a message's head (start line and headers) this long
    /// after the head's first byte is closed, however slowly bytes keep trickling in.
    pub header_timeout: Duration,
    /// Most accepted connections open at once from one source IP; more are refused.
    pub max_per_source: usize,
    /// How long an outbound connection attempt may take.
    pub connect_timeout: Duration,
    /// How long one write may stall (peer not reading) before the connection is dropped.
    pub write_timeout: Duration,
    /// Messages queued per connection before `send` starts dropping.
    pub write_queue: usize,
    /// Inbound messages buffered before connections stop reading (backpressure).
    pub inbound_queue: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            max_message: 65536,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(600),
            first_byte_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            max_per_source: 32,
            connect_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            write_queue: 256,
            inbound_queue: 1024,
        }
    }
}

/// One complete SIP message read from a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpInbound {
    /// The connection's remote address: the peer's address for accepted connections, the
    /// dialled address for outbound ones. Sending to it reuses the connection.
    pub from: SocketAddr,
    /// Exactly one SIP message, bytes as received.
    pub data: Bytes,
}

/// Counters of the transport, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Connections currently open (accepted or outbound).
    pub connections_open: u64,
    /// Connections accepted since start.
    pub accepted_total: u64,
    /// Outbound connections established since start.
    pub connected_total: u64,
    /// Incoming connections refused because `max_connections` were open.
    pub rejected_total: u64,
    /// Outbound connection attempts that failed or timed out.
    pub connect_failures: u64,
    /// Messages delivered to the inbound channel.
    pub messages_in: u64,
    /// Messages written to a connection.
    pub messages_out: u64,
    /// Connections closed because their bytes could not be framed as SIP.
    pub framing_errors: u64,
    /// Connections closed because a message exceeded `max_message`.
    pub oversize_drops: u64,
    /// Messages given to `send` that were never written (queue full, connect or write failure).
    pub send_drops: u64,
    /// Keep-alive pings received.
    pub keepalive_pings: u64,
    /// Connections closed for inactivity (including accepted ones that never sent a byte).
    pub idle_closes: u64,
    /// Incoming connections refused because their source IP had `max_per_source` open.
    pub per_source_rejected: u64,
    /// Incoming connections refused because the process-wide connection budget (what the
    /// file descriptor limit leaves beside the RTP range) was used up.
    pub budget_rejected: u64,
    /// Connections closed because a message head was not complete within `header_timeout`.
    pub header_timeouts: u64,
    /// Messages for a peer's flow that found its connection gone (never redialled).
    pub flow_failures: u64,
}

/// Handle to a running TCP transport; cloning is cheap and every clone sends on the same
/// connections.
#[derive(Clone, Debug)]
pub struct TcpTransport {
    shared: Arc<Shared>,
    runtime: Handle,
}

impl TcpTransport {
    /// Listens on `listen` and starts accepting. Everything stops once the returned receiver
    /// is dropped. Must be called from within a tokio runtime.
    pub async fn bind(
        listen: SocketAddr,
        config: TcpConfig,
    ) -> io::Result<(TcpTransport, mpsc::Receiver<TcpInbound>)> {
        TcpTransport::bind_with_budget(listen, config, ConnectionBudget::unlimited()).await
    }

    /// Like [`TcpTransport::bind`], with accepted connections also drawn from `budget`, the
    /// total shared with the other listeners.
    pub async fn bind_with_budget(
        listen: SocketAddr,
        config: TcpConfig,
        budget: Arc<ConnectionBudget>,
    ) -> io::Result<(TcpTransport, mpsc::Receiver<TcpInbound>)> {
        let listener = TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        let (inbound, receiver) = mpsc::channel(config.inbound_queue.max(1));
        let limiter = SourceLimiter::new(config.max_per_source, budget);
        let shared = Arc::new(Shared::new(config, local_addr, inbound, limiter));
        let runtime = Handle::current();
        runtime.spawn(connection::accept_loop(Arc::clone(&shared), listener));
        Ok((TcpTransport { shared, runtime }, receiver))
    }

    /// The address the listener is bound to (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Queues one message for `to` without waiting: on the open connection with that remote
    /// address if there is one, else on a new outbound connection opened in the background.
    /// A full write queue or a failed connection drops the message and counts it.
    pub fn send(&self, to: SocketAddr, data: Vec<u8>) {
        let to = canonical(to);
        let mut message = Outbound::Message(Bytes::from(data));
        let mut table = self.shared.table();
        if let Some(entry) = table.get(&to) {
            match entry.queue.try_send(message) {
                Ok(()) => return,
                Err(TrySendError::Full(_)) => {
                    bump(&self.shared.counters.send_drops);
                    return;
                }
                Err(TrySendError::Closed(returned)) => {
                    table.remove(&to);
                    message = returned;
                }
            }
        }
        let (entry, queue) = self.shared.new_entry();
        if entry.queue.try_send(message).is_err() {
            bump(&self.shared.counters.send_drops);
            return;
        }
        table.insert(to, entry.clone());
        drop(table);
        let shared = Arc::clone(&self.shared);
        self.runtime
            .spawn(connection::connect(shared, to, entry, queue));
    }

    /// Queues one message on the open connection with remote address `to`, the peer's flow
    /// (RFC 5626), and never opens one: a phone behind NAT cannot be dialled back at the
    /// address it connected from. Returns false, and counts a flow failure, when no such
    /// connection is open; a full write queue drops the message as [`TcpTransport::send`] does.
    pub fn send_on_flow(&self, to: SocketAddr, data: Vec<u8>) -> bool {
        let to = canonical(to);
        let mut table = self.shared.table();
        let Some(entry) = table.get(&to) else {
            drop(table);
            bump(&self.shared.counters.flow_failures);
            return false;
        };
        match entry.queue.try_send(Outbound::Message(Bytes::from(data))) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                bump(&self.shared.counters.send_drops);
                true
            }
            Err(TrySendError::Closed(_)) => {
                table.remove(&to);
                drop(table);
                bump(&self.shared.counters.flow_failures);
                false
            }
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TcpStats {
        self.shared.counters.snapshot()
    }

    /// The counters as a `/metrics` source.
    pub fn metrics_source(&self) -> Arc<dyn MetricsSource> {
        Arc::new(TcpMetrics(Arc::clone(&self.shared)))
    }
}

/// Renders the transport's counters for `/metrics`.
struct TcpMetrics(Arc<Shared>);

impl MetricsSource for TcpMetrics {
    fn render_prometheus(&self, out: &mut String) {
        let stats = self.0.counters.snapshot();
        write_header(
            out,
            "sip_tcp_connections_open",
            "gauge",
            "SIP over TCP connections open, accepted or outbound.",
        );
        write_sample(out, "sip_tcp_connections_open", &[], stats.connections_open);
        write_header(
            out,
            "sip_tcp_connections_accepted_total",
            "counter",
            "SIP over TCP connections accepted.",
        );
        write_sample(
            out,
            "sip_tcp_connections_accepted_total",
            &[],
            stats.accepted_total,
        );
        write_header(
            out,
            "sip_tcp_connections_refused_total",
            "counter",
            "Accepted SIP over TCP connections closed at once, by the limit that refused them.",
        );
        for (reason, value) in [
            ("max_connections", stats.rejected_total),
            ("per_source", stats.per_source_rejected),
            ("fd_budget", stats.budget_rejected),
        ] {
            write_sample(
                out,
                "sip_tcp_connections_refused_total",
                &[("reason", reason)],
                value,
            );
        }
        write_header(
            out,
            "sip_tcp_flow_failures_total",
            "counter",
            "Messages for a phone's or proxy's own TCP connection (its flow) that found it closed; \
             the proxy never dials such a peer back.",
        );
        write_sample(out, "sip_tcp_flow_failures_total", &[], stats.flow_failures);
        write_header(
            out,
            "sip_tcp_connections_closed_total",
            "counter",
            "SIP over TCP connections closed by the proxy, by reason.",
        );
        for (reason, value) in [
            ("idle", stats.idle_closes),
            ("header_timeout", stats.header_timeouts),
            ("framing", stats.framing_errors),
            ("oversize", stats.oversize_drops),
        ] {
            write_sample(
                out,
                "sip_tcp_connections_closed_total",
                &[("reason", reason)],
                value,
            );
        }
    }
}
