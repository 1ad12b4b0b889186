//! Receivers: one tokio task per endpoint socket, stamping arrival time and tallying packets.

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Instant;

use metaflow_proxy::media::register_readable;
use tokio::runtime::Runtime;

use crate::rtp::read_stamp;
use crate::tally::Tally;

/// Largest datagram read; anything bigger is not ours.
const RECV_LEN: usize = 2048;

/// The receiving runtime; dropping it stops every receiver.
pub(crate) struct Receivers {
    runtime: Runtime,
}

impl Receivers {
    /// A runtime with `workers` threads.
    pub(crate) fn new(workers: usize) -> std::io::Result<Receivers> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("rtp-recv")
            .enable_io()
            .build()?;
        Ok(Receivers { runtime })
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
                match buffer.get(..len).and_then(read_stamp) {
                    Some(stamp) => {
                        tally.count_received(stamp.stream, now_ns.saturating_sub(stamp.sent_ns));
                    }
                    None => {
                        tally
                            .unstamped
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        });
        Ok(())
    }

    /// Stops every receiver without waiting for them.
    pub(crate) fn stop(self) {
        self.runtime.shutdown_background();
    }
}
