//! The HTTP API's accept loop: each connection is admitted under the per-source cap and the
//! process-wide connection budget, served as HTTP/1.1 by hyper, and closed when a request head
//! takes longer than the header timeout from its first byte (or from the connection's start)
//! or when a keep-alive connection stays idle past the idle timeout. `axum::serve` has neither
//! timeouts nor caps; see docs/DECISIONS.md.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::connlimit::{ConnPermit, ConnectionBudget, Refusal, SourceLimiter};
use crate::metrics::{MetricsSource, write_header, write_sample};

/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Limits of the API's connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiLimits {
    /// A request head must be complete this long after its first byte, and a new connection
    /// must complete its first head this long after it was accepted.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request in progress is closed after this long.
    pub idle_timeout: Duration,
    /// Most connections open at once from one source IP; more are closed at once.
    pub max_per_source: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_per_source: 32,
        }
    }
}

/// Counters of the API's connections, rendered on `/metrics`.
#[derive(Debug, Default)]
pub struct ApiConnStats {
    open: AtomicU64,
    accepted: AtomicU64,
    per_source_rejected: AtomicU64,
    budget_rejected: AtomicU64,
    header_timeouts: AtomicU64,
    idle_closes: AtomicU64,
}

impl ApiConnStats {
    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections accepted since start.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Connections refused, per source IP cap or budget.
    pub fn refused(&self, refusal: Refusal) -> u64 {
        match refusal {
            Refusal::PerSource => self.per_source_rejected.load(Ordering::Relaxed),
            Refusal::Budget => self.budget_rejected.load(Ordering::Relaxed),
        }
    }

    /// Connections closed because a request head was late.
    pub fn header_timeouts(&self) -> u64 {
        self.header_timeouts.load(Ordering::Relaxed)
    }

    /// Keep-alive connections closed for idleness.
    pub fn idle_closes(&self) -> u64 {
        self.idle_closes.load(Ordering::Relaxed)
    }
}

impl MetricsSource for ApiConnStats {
    fn render_prometheus(&self, out: &mut String) {
        write_header(
            out,
            "api_connections_open",
            "gauge",
            "HTTP API connections open.",
        );
        write_sample(out, "api_connections_open", &[], self.open());
        write_header(
            out,
            "api_connections_accepted_total",
            "counter",
            "HTTP API connections accepted.",
        );
        write_sample(out, "api_connections_accepted_total", &[], self.accepted());
        write_header(
            out,
            "api_connections_refused_total",
            "counter",
            "HTTP API connections closed at once, by the limit that refused them.",
        );
        for refusal in [Refusal::PerSource, Refusal::Budget] {
            write_sample(
                out,
                "api_connections_refused_total",
                &[("reason", refusal.as_str())],
                self.refused(refusal),
            );
        }
        write_header(
            out,
            "api_connections_closed_total",
            "counter",
            "HTTP API connections closed by the proxy, by reason.",
        );
        write_sample(
            out,
            "api_connections_closed_total",
            &[("reason", "header_timeout")],
            self.header_timeouts(),
        );
        write_sample(
            out,
            "api_connections_closed_total",
            &[("reason", "idle")],
            self.idle_closes(),
        );
    }
}

/// Serves `router` on `listener` under `limits` until `shutdown` completes; then stops
/// accepting, lets requests in progress finish and closes idle connections.
pub async fn serve_with_limits(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ApiLimits,
    budget: Arc<ConnectionBudget>,
    stats: Arc<ApiConnStats>,
) -> io::Result<()> {
    let limiter = SourceLimiter::new(limits.max_per_source, budget);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "API accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let permit = match limiter.try_admit(peer.ip()) {
            Ok(permit) => permit,
            Err(refusal) => {
                let counter = match refusal {
                    Refusal::PerSource => &stats.per_source_rejected,
                    Refusal::Budget => &stats.budget_rejected,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                debug!(%peer, reason = refusal.as_str(), "API connection refused");
                continue;
            }
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        tasks.spawn(connection(
            stream,
            peer,
            router.clone(),
            limits.clone(),
            Arc::clone(&stats),
            stop_rx.clone(),
            permit,
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Where a connection stands, for its timers.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Waiting for a request; nothing of it read since the instant.
    Idle(Instant),
    /// Reading a request head whose first byte (or the connection) came at the instant.
    Head(Instant),
    /// A request is being answered.
    Busy,
}

/// The connection's phase, updated by its byte stream and its service; a change of phase
/// wakes the connection's watchdog so it re-arms its timer.
#[derive(Debug)]
struct Clock {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Clock {
    fn new() -> Self {
        Clock {
            phase: Mutex::new(Phase::Head(Instant::now())),
            changed: Notify::new(),
        }
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read_some(&self) {
        let mut phase = self.phase();
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    fn wrote_some(&self) {
        let mut phase = self.phase();
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Idle(Instant::now());
        }
    }

    fn set(&self, next: Phase) {
        *self.phase() = next;
        self.changed.notify_one();
    }

    /// When the current phase runs out, and why the connection would then be closed.
    fn deadline(&self, limits: &ApiLimits) -> (Instant, Option<&'static str>) {
        match *self.phase() {
            Phase::Idle(since) => (later(since, limits.idle_timeout), Some("idle")),
            Phase::Head(since) => (later(since, limits.header_timeout), Some("header_timeout")),
            Phase::Busy => (later(Instant::now(), limits.idle_timeout), None),
        }
    }
}

fn later(at: Instant, after: Duration) -> Instant {
    at.checked_add(after)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 24 * 3600))
}

/// Serves one admitted connection until it ends, times out or the server stops.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ApiLimits,
    stats: Arc<ApiConnStats>,
    mut stop: watch::Receiver<bool>,
    _permit: ConnPermit,
) {
    stats.open.fetch_add(1, Ordering::Relaxed);
    let clock = Arc::new(Clock::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        clock: Arc::clone(&clock),
    });
    let service = Tracker {
        inner: TowerToHyperService::new(router),
        clock: Arc::clone(&clock),
    };
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        let (deadline, _) = clock.deadline(&limits);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    debug!(%peer, %error, "API connection ended");
                }
                break;
            }
            () = tokio::time::sleep_until(deadline) => {
                let (now_deadline, now_reason) = clock.deadline(&limits);
                if let (Some(reason), true) = (now_reason, now_deadline <= Instant::now()) {
                    let counter = if reason == "idle" {
                        &stats.idle_closes
                    } else {
                        &stats.header_timeouts
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    debug!(%peer, reason, "API connection closed");
                    break;
                }
            }
            () = clock.changed.notified() => {}
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    stats.open.fetch_sub(1, Ordering::Relaxed);
}

/// The socket, telling the clock when bytes move.
struct Tracked {
    inner: TcpStream,
    clock: Arc<Clock>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.read_some();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.wrote_some();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.wrote_some();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router, telling the clock when a request is being answered.
struct Tracker {
    inner: TowerToHyperService<Router>,
    clock: Arc<Clock>,
}

impl Service<hyper::Request<Incoming>> for Tracker {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        self.clock.set(Phase::Busy);
        let answer = self.inner.call(request);
        let clock = Arc::clone(&self.clock);
        Box::pin(async move {
            let response = answer.await;
            clock.set(Phase::Idle(Instant::now()));
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::oneshot;
    use tokio::time::timeout;

    use super::*;

    const WAIT: Duration = Duration::from_secs(5);
    const GET: &[u8] = b"GET /live HTTP/1.1\r\nHost: test\r\n\r\n";

    struct Server {
        addr: SocketAddr,
        stats: Arc<ApiConnStats>,
        _stop: oneshot::Sender<()>,
    }

    async fn start(limits: ApiLimits, budget: Arc<ConnectionBudget>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/live", axum::routing::get(|| async { "ok" }));
        let stats = Arc::new(ApiConnStats::default());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve_with_limits(
            listener,
            router,
            async {
                let _ = stopped.await;
            },
            limits,
            budget,
            Arc::clone(&stats),
        ));
        Server {
            addr,
            stats,
            _stop: stop,
        }
    }

    async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        timeout(WAIT, socket.connect(to)).await.unwrap().unwrap()
    }

    /// Sends one GET and reads its response (the body is "ok").
    async fn get(stream: &mut TcpStream) -> String {
        stream.write_all(GET).await.unwrap();
        let mut seen = Vec::new();
        let mut chunk = [0u8; 1024];
        for _ in 0..100 {
            let n = timeout(WAIT, stream.read(&mut chunk))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "closed before the response: {seen:?}");
            seen.extend_from_slice(&chunk[..n]);
            if seen.ends_with(b"\r\n\r\nok") {
                break;
            }
        }
        String::from_utf8(seen).unwrap()
    }

    /// Waits for the server to close; returns whether it did within the bound.
    async fn closed(stream: &mut TcpStream) -> bool {
        let mut rest = Vec::new();
        match timeout(WAIT, stream.read_to_end(&mut rest)).await {
            Ok(Ok(_)) => true,
            Ok(Err(error)) => error.kind() == io::ErrorKind::ConnectionReset,
            Err(_) => false,
        }
    }

    async fn wait_for(ready: impl Fn() -> bool) {
        for _ in 0..500 {
            if ready() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn short(header_ms: u64, idle_ms: u64) -> ApiLimits {
        ApiLimits {
            header_timeout: Duration::from_millis(header_ms),
            idle_timeout: Duration::from_millis(idle_ms),
            ..ApiLimits::default()
        }
    }

    #[tokio::test]
    async fn connection_that_sends_nothing_is_closed_after_the_header_timeout() {
        let server = start(short(200, 60_000), ConnectionBudget::unlimited()).await;
        let mut client = TcpStream::connect(server.addr).await.unwrap();
        let opened = Instant::now();
        assert!(closed(&mut client).await);
        assert!(opened.elapsed() >= Duration::from_millis(150));
        wait_for(|| server.stats.open() == 0).await;
        assert_eq!(server.stats.header_timeouts(), 1);
    }

    #[tokio::test]
    async fn half_a_head_is_closed_after_the_header_timeout() {
        let server = start(short(300, 60_000), ConnectionBudget::unlimited()).await;
        let mut client = TcpStream::connect(server.addr).await.unwrap();
        assert!(get(&mut client).await.starts_with("HTTP/1.1 200"));
        let started = Instant::now();
        let mut cut_off = false;
        for byte in GET.iter().take(GET.len() - 2) {
            if client.write_all(&[*byte]).await.is_err() {
                cut_off = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            if server.stats.header_timeouts() == 1 {
                cut_off = true;
                break;
            }
        }
        assert!(cut_off, "the trickled head was not cut off");
        assert!(closed(&mut client).await);
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert_eq!(server.stats.header_timeouts(), 1);
        assert_eq!(server.stats.idle_closes(), 0);
    }

    #[tokio::test]
    async fn idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
        let server = start(short(60_000, 300), ConnectionBudget::unlimited()).await;
        let mut client = TcpStream::connect(server.addr).await.unwrap();
        assert!(get(&mut client).await.starts_with("HTTP/1.1 200"));
        assert!(get(&mut client).await.starts_with("HTTP/1.1 200"));
        let answered = Instant::now();
        assert!(closed(&mut client).await);
        assert!(answered.elapsed() >= Duration::from_millis(250));
        wait_for(|| server.stats.open() == 0).await;
        assert_eq!(server.stats.idle_closes(), 1);
        assert_eq!(server.stats.header_timeouts(), 0);
    }

    #[tokio::test]
    async fn per_source_cap_refuses_one_more_from_that_ip_but_not_from_another() {
        let limits = ApiLimits {
            max_per_source: 2,
            ..ApiLimits::default()
        };
        let server = start(limits, ConnectionBudget::unlimited()).await;
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut client = connect_from("127.0.0.1", server.addr).await;
            assert!(get(&mut client).await.starts_with("HTTP/1.1 200"));
            held.push(client);
        }
        let mut refused = connect_from("127.0.0.1", server.addr).await;
        assert!(closed(&mut refused).await);
        wait_for(|| server.stats.refused(Refusal::PerSource) == 1).await;
        assert_eq!(server.stats.refused(Refusal::PerSource), 1);

        let mut other = connect_from("127.0.0.2", server.addr).await;
        assert!(get(&mut other).await.starts_with("HTTP/1.1 200"));

        drop(held.pop());
        wait_for(|| server.stats.open() == 2).await;
        let mut again = connect_from("127.0.0.1", server.addr).await;
        assert!(get(&mut again).await.starts_with("HTTP/1.1 200"));

        let mut text = String::new();
        server.stats.render_prometheus(&mut text);
        assert!(
            text.contains(
                "metaflow_proxy_api_connections_refused_total{reason=\"per_source\"} 1\n"
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn budget_shared_with_sip_refuses_api_connections() {
        let budget = ConnectionBudget::new(1);
        let server = start(ApiLimits::default(), budget).await;
        let mut first = connect_from("127.0.0.1", server.addr).await;
        assert!(get(&mut first).await.starts_with("HTTP/1.1 200"));
        let mut second = connect_from("127.0.0.2", server.addr).await;
        assert!(closed(&mut second).await);
        assert_eq!(server.stats.refused(Refusal::Budget), 1);
    }
}
