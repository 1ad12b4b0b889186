//! Receivers: one tokio task per endpoint socket, stamping arrival time and tallying packets;
//! for shared endpoints one thread per shared socket reading batches with `recvmmsg`.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use metaflow_proxy::media::register_readable;
use tokio::runtime::Runtime;

use crate::batch::{RECV_LEN, ReceiveBatch};
use crate::rtp::read_stamp;
use crate::tally::Tally;

/// How often a batch receiver looks at the stop flag when no packet comes.
const STOP_POLL: Duration = Duration::from_millis(100);

/// The receiving runtime and batch threads; dropping it stops every receiver.
pub(crate) struct Receivers {
    runtime: Runtime,
    /// Threads of `watch_batched`.
    threads: Vec<JoinHandle<()>>,
    /// Tells the batch threads to end.
    stop: Arc<AtomicBool>,
}

impl Receivers {
    /// A runtime with `workers` threads.
    pub(crate) fn new(workers: usize) -> std::io::Result<Receivers> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("rtp-recv")
            .enable_io()
            .build()?;
        Ok(Receivers {
            runtime,
            threads: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Starts a thread receiving batches on `socket` (a shared endpoint socket).
    pub(crate) fn watch_batched(
        &mut self,
        socket: UdpSocket,
        epoch: Instant,
        tally: Arc<Tally>,
    ) -> std::io::Result<()> {
        socket.set_read_timeout(Some(STOP_POLL))?;
        let stop = Arc::clone(&self.stop);
        let thread = std::thread::Builder::new()
            .name("rtp-recv-batch".into())
            .spawn(move || {
                let mut batch = ReceiveBatch::new();
                while !stop.load(Ordering::Relaxed) {
                    if batch.receive(&socket).is_err() {
                        continue;
                    }
                    let now_ns = epoch.elapsed().as_nanos() as u64;
                    for datagram in batch.datagrams() {
                        record(&tally, datagram, now_ns);
                    }
                }
            })?;
        self.threads.push(thread);
        Ok(())
    }

    /// Starts receiving on `socket` (a clone of an endpoint socket), recording into `tally`.
    pub(crate) fn watch(
        &self,
        socket: UdpSocket,
        epoch: Instant,
        tally: Arc<Tally>,
    ) -> std::io::Result<()> {
        socket.set_nonblocking(true)?;
        let _entered = self.runtime.enter();
        // Readability only: with writability registered too (as `tokio::net::UdpSocket` does),
        // every packet the proxy reads from this socket's sends would raise EPOLLOUT here, and
        // that wake-up would be charged to the proxy's receive.
        let socket = register_readable(socket)?;
        self.runtime.spawn(async move {
            let mut buffer = [0u8; RECV_LEN];
            loop {
                let Ok(mut ready) = socket.readable().await else {
                    tokio::task::yield_now().await;
                    continue;
                };
                let Ok(Ok((len, _))) = ready.try_io(|s| s.get_ref().recv_from(&mut buffer)) else {
                    continue;
                };
                let now_ns = epoch.elapsed().as_nanos() as u64;
                if let Some(datagram) = buffer.get(..len) {
                    record(&tally, datagram, now_ns);
                }
            }
        });
        Ok(())
    }

    /// Stops every receiver; waits for the batch threads (at most [`STOP_POLL`]).
    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.runtime.shutdown_background();
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Tallies one received datagram arriving at `now_ns`.
fn record(tally: &Tally, datagram: &[u8], now_ns: u64) {
    match read_stamp(datagram) {
        Some(stamp) => tally.count_received(stamp.stream, now_ns.saturating_sub(stamp.sent_ns)),
        None => {
            tally.unstamped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
