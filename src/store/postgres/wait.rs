//! Waiting for a database reply from synchronous code. The store's API is synchronous (the
//! API runs its writes on the blocking pool; `redb` is synchronous), while `tokio-postgres` is
//! async: its client futures only talk to the connection task over a channel, so any thread can
//! poll them while the connection thread drives the socket. This waits for one with a deadline,
//! so that a database that stops answering costs a refused write, never a stuck thread.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// Wakes the waiting thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// The future did not finish in time.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("PostgreSQL did not answer within {} ms", .0.as_millis())]
pub(super) struct TimedOut(pub Duration);

/// Polls `future` on this thread until it completes or `limit` has passed.
pub(super) fn wait<F: Future>(future: F, limit: Duration) -> Result<F::Output, TimedOut> {
    let deadline = Instant::now() + limit;
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Ok(output);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(TimedOut(limit));
        }
        thread::park_timeout(deadline - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_future_completes_and_a_pending_one_times_out() {
        assert_eq!(wait(async { 7 }, Duration::from_millis(10)).ok(), Some(7));
        let never = std::future::pending::<()>();
        assert!(wait(never, Duration::from_millis(20)).is_err());
    }

    #[test]
    fn a_future_woken_from_another_thread_completes() {
        let (tx, rx) = tokio::sync::oneshot::channel::<u8>();
        let sender = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            let _ = tx.send(9);
        });
        let got = wait(rx, Duration::from_secs(5));
        sender.join().ok();
        assert_eq!(got.ok().and_then(Result::ok), Some(9));
    }
}
