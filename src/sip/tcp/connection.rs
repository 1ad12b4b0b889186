//! The tasks behind the transport: the accept loop, outbound connection set-up, and one task
//! per connection whose reader and writer run side by side on the split stream.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout, timeout_at};
use tracing::{debug, warn};

use super::TcpInbound;
use super::framer::{Frame, FrameError, StreamFramer};
use crate::connlimit::{ConnPermit, Refusal};

use super::registry::{ConnEntry, OpenGuard, Outbound, Shared, bump, canonical};

/// Room made in the read buffer before each read.
const READ_CHUNK: usize = 8 * 1024;
/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// The answer to a keep-alive ping (RFC 5626 §3.5.1).
const PONG: &[u8] = b"\r\n";
/// Stand-in deadline when the configured idle timeout is too large to add to a clock reading.
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 3600);

/// Why a connection ended; logged at debug level.
#[derive(Debug, Error)]
enum End {
    /// The peer closed its side.
    #[error("closed by peer")]
    Eof,
    /// No traffic either way for the idle timeout.
    #[error("idle")]
    Idle,
    /// An accepted connection sent nothing within the first-byte timeout.
    #[error("silent since accepted")]
    Silent,
    /// A message head was not complete within the header timeout.
    #[error("header timeout")]
    HeaderTimeout,
    /// The byte stream could not be framed.
    #[error("framing: {0}")]
    Framing(FrameError),
    /// A socket read or write failed.
    #[error("socket: {0}")]
    Io(io::Error),
    /// A write did not complete within the write timeout.
    #[error("write stalled")]
    WriteStalled,
    /// The receiver of inbound messages is gone.
    #[error("transport stopped")]
    Shutdown,
}

/// Accepts connections until the inbound receiver is dropped.
pub(super) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shared.inbound.closed() => return,
        };
        match accepted {
            Ok((stream, remote)) => admit(&shared, stream, canonical(remote)),
            Err(error) => {
                warn!(%error, "SIP TCP accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Registers an accepted connection under its remote address, unless the limit is reached.
fn admit(shared: &Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let open = shared.counters.open.load(Ordering::Relaxed);
    if open >= u64::try_from(shared.config.max_connections).unwrap_or(u64::MAX) {
        bump(&shared.counters.rejected);
        debug!(%peer, open, "SIP TCP connection refused: limit reached");
        return;
    }
    let permit = match shared.limiter.try_admit(peer.ip()) {
        Ok(permit) => permit,
        Err(refusal) => {
            bump(match refusal {
                Refusal::PerSource => &shared.counters.per_source_rejected,
                Refusal::Budget => &shared.counters.budget_rejected,
            });
            debug!(%peer, reason = refusal.as_str(), "SIP TCP connection refused");
            return;
        }
    };
    bump(&shared.counters.accepted);
    let guard = OpenGuard::new(Arc::clone(shared));
    let (entry, queue) = shared.new_entry();
    shared.register(peer, entry.clone());
    let limits = Limits {
        first_byte: Some(shared.config.first_byte_timeout),
        _permit: Some(permit),
    };
    tokio::spawn(serve(
        Arc::clone(shared),
        stream,
        peer,
        entry,
        queue,
        guard,
        limits,
    ));
}

/// What applies to an accepted connection only.
struct Limits {
    /// How long the connection may stay silent from the start; `None` for outbound ones.
    first_byte: Option<Duration>,
    /// Its place under the per-source cap and the budget, held while it lives.
    _permit: Option<ConnPermit>,
}

impl Limits {
    /// Outbound connections: the core asked for them, so no cap and no first-byte timer.
    fn outbound() -> Self {
        Limits {
            first_byte: None,
            _permit: None,
        }
    }
}

/// Opens a connection to `target` for messages already queued on `entry`, then serves it.
pub(super) async fn connect(
    shared: Arc<Shared>,
    target: SocketAddr,
    entry: ConnEntry,
    queue: mpsc::Receiver<Outbound>,
) {
    match timeout(shared.config.connect_timeout, TcpStream::connect(target)).await {
        Ok(Ok(stream)) => {
            bump(&shared.counters.connected);
            let guard = OpenGuard::new(Arc::clone(&shared));
            serve(
                shared,
                stream,
                target,
                entry,
                queue,
                guard,
                Limits::outbound(),
            )
            .await;
        }
        Ok(Err(error)) => connect_failed(&shared, target, &entry, queue, &error),
        Err(_elapsed) => {
            let error = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
            connect_failed(&shared, target, &entry, queue, &error);
        }
    }
}

fn connect_failed(
    shared: &Shared,
    target: SocketAddr,
    entry: &ConnEntry,
    queue: mpsc::Receiver<Outbound>,
    error: &io::Error,
) {
    bump(&shared.counters.connect_failures);
    debug!(%target, %error, "SIP TCP connect failed");
    shared.unregister(target, entry.id);
    shared.discard_queue(queue);
}

/// Runs one connection until either side fails, the peer goes quiet, or the transport stops.
async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    entry: ConnEntry,
    mut queue: mpsc::Receiver<Outbound>,
    _open: OpenGuard,
    limits: Limits,
) {
    if let Err(error) = stream.set_nodelay(true) {
        debug!(%peer, %error, "TCP_NODELAY not set");
    }
    let (reader, writer) = stream.into_split();
    let activity = Activity::new();
    let end = tokio::select! {
        end = read_loop(&shared, reader, peer, &entry.queue, &activity, limits.first_byte) => end,
        end = write_loop(&shared, writer, &mut queue, &activity) => end,
        () = shared.inbound.closed() => End::Shutdown,
    };
    debug!(%peer, %end, "SIP TCP connection closed");
    shared.unregister(peer, entry.id);
    drop(entry);
    shared.discard_queue(queue);
}

/// Frames what the peer sends and hands each message to the inbound channel.
async fn read_loop(
    shared: &Shared,
    mut reader: OwnedReadHalf,
    peer: SocketAddr,
    pong: &mpsc::Sender<Outbound>,
    activity: &Activity,
    first_byte: Option<Duration>,
) -> End {
    let mut framer = StreamFramer::new(shared.config.max_message);
    let idle = shared.config.idle_timeout;
    // Until the peer sends its first byte, it has `first_byte` (accepted connections only).
    let mut silent_until = first_byte.map(|limit| later(activity.started, limit));
    // When the head of the message being received started arriving.
    let mut head_since: Option<Instant> = None;
    loop {
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(data))) => {
                    bump(&shared.counters.messages_in);
                    let inbound = TcpInbound { from: peer, data };
                    if shared.inbound.send(inbound).await.is_err() {
                        return End::Shutdown;
                    }
                }
                Ok(Some(Frame::Ping)) => {
                    bump(&shared.counters.pings);
                    // A full queue already carries traffic, which keeps the peer's NAT alive.
                    let _ = pong.try_send(Outbound::Pong);
                }
                Ok(None) => break,
                Err(error) => {
                    let counter = match error {
                        FrameError::Oversize { .. } => &shared.counters.oversize_drops,
                        FrameError::Malformed(_) => &shared.counters.framing_errors,
                    };
                    bump(counter);
                    return End::Framing(error);
                }
            }
        }
        if !framer.head_incomplete() {
            head_since = None;
        } else if head_since.is_none() {
            head_since = Some(Instant::now());
        }
        let header_deadline = head_since.map(|since| later(since, shared.config.header_timeout));
        let deadline = [silent_until, header_deadline]
            .into_iter()
            .flatten()
            .fold(activity.idle_deadline(idle), Instant::min);
        let buffer = framer.buffer_mut();
        buffer.reserve(READ_CHUNK);
        match timeout_at(deadline, reader.read_buf(buffer)).await {
            Ok(Ok(0)) => return End::Eof,
            Ok(Ok(_)) => {
                activity.touch();
                silent_until = None;
            }
            Ok(Err(error)) => return End::Io(error),
            Err(_elapsed) => {
                let now = Instant::now();
                if header_deadline.is_some_and(|at| at <= now) {
                    bump(&shared.counters.header_timeouts);
                    return End::HeaderTimeout;
                }
                if silent_until.is_some_and(|at| at <= now) {
                    bump(&shared.counters.idle_closes);
                    return End::Silent;
                }
                if activity.idle_deadline(idle) <= now {
                    bump(&shared.counters.idle_closes);
                    return End::Idle;
                }
            }
        }
    }
}

/// `at + after`, or far in the future when that does not fit the clock.
fn later(at: Instant, after: Duration) -> Instant {
    at.checked_add(after)
        .unwrap_or_else(|| Instant::now() + FAR_FUTURE)
}

/// Writes queued messages and pongs in order.
async fn write_loop(
    shared: &Shared,
    mut writer: OwnedWriteHalf,
    queue: &mut mpsc::Receiver<Outbound>,
    activity: &Activity,
) -> End {
    while let Some(outbound) = queue.recv().await {
        let (bytes, is_message) = match outbound {
            Outbound::Message(bytes) => (bytes, true),
            Outbound::Pong => (Bytes::from_static(PONG), false),
        };
        let written = timeout(shared.config.write_timeout, writer.write_all(&bytes)).await;
        let failure = match written {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(End::Io(error)),
            Err(_elapsed) => Some(End::WriteStalled),
        };
        if let Some(end) = failure {
            if is_message {
                bump(&shared.counters.send_drops);
            }
            return end;
        }
        if is_message {
            bump(&shared.counters.messages_out);
        }
        activity.touch();
    }
    End::Shutdown
}

/// When the connection last carried traffic, shared by its reader and writer.
struct Activity {
    /// When the connection was set up.
    started: Instant,
    /// Milliseconds from `started` to the latest read or write.
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    /// Records traffic now.
    fn touch(&self) {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(elapsed, Ordering::Relaxed);
    }

    /// When the connection counts as idle if nothing else happens.
    fn idle_deadline(&self, idle: Duration) -> Instant {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.started
            .checked_add(last)
            .and_then(|at| at.checked_add(idle))
            .unwrap_or_else(|| Instant::now() + FAR_FUTURE)
    }
}
