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
    /// Connections closed for inactivity.
    pub idle_closes: u64,
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
        let listener = TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        let (inbound, receiver) = mpsc::channel(config.inbound_queue.max(1));
        let shared = Arc::new(Shared::new(config, local_addr, inbound));
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

    /// A snapshot of the counters.
    pub fn stats(&self) -> TcpStats {
        self.shared.counters.snapshot()
    }
}
