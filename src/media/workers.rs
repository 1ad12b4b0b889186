//! Relay worker threads: one single-threaded tokio runtime per thread, each with its own epoll
//! reactor and timers. A stream's relay task lives on one worker for its whole life, so a packet
//! is received, inspected and sent on the thread whose reactor saw it: no cross-thread wake-up,
//! no work stealing, and the stream's state stays in that core's cache.

use std::io;
use std::thread::JoinHandle;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

use crate::base::CallKey;

/// Where relay tasks run: dedicated workers, or (with none) the runtime the engine was created
/// in (tests, small deployments).
pub(crate) struct RelayRuntime {
    shared: Handle,
    workers: Vec<Worker>,
}

/// One worker thread and the means to stop it.
pub(crate) struct Worker {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RelayRuntime {
    /// Starts `count` worker threads (0: relay on `shared`).
    pub(crate) fn start(count: usize, shared: Handle) -> io::Result<Self> {
        let mut workers = Vec::with_capacity(count);
        for index in 0..count {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("mfp-relay-{index}"))
                .spawn(move || {
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                })?;
            workers.push(Worker {
                handle,
                stop: Some(stop),
                thread: Some(thread),
            });
        }
        Ok(RelayRuntime { shared, workers })
    }

    /// The runtime the streams of `call` run on (all streams of a call share a worker).
    pub(crate) fn for_call(&self, call: CallKey) -> &Handle {
        let count = u64::try_from(self.workers.len()).unwrap_or(0);
        if count == 0 {
            return &self.shared;
        }
        let index = usize::try_from(call % count).unwrap_or(0);
        self.workers
            .get(index)
            .map(|w| &w.handle)
            .unwrap_or(&self.shared)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
