//! The systemd notify protocol (`Type=notify`): READY once every listener serves, RELOADING
//! around a SIGHUP, STOPPING when draining begins, and WATCHDOG pings while the SIP task still
//! answers. Without `NOTIFY_SOCKET` every call is a no-op, so the proxy runs the same outside
//! systemd.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::mpsc;

use super::shell::Control;

/// Sends `states` to the service manager, if there is one; a failure is logged, never fatal.
fn send(states: &[NotifyState<'_>]) {
    if let Err(err) = sd_notify::notify(false, states) {
        tracing::warn!(error = %err, "cannot notify the service manager");
    }
}

/// Every listener serves: the service is up. `status` is shown by `systemctl status`.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload (SIGHUP) begins; [`reloaded`] ends it.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// A reload is over (whether or not it changed anything).
pub fn reloaded() {
    send(&[NotifyState::Ready]);
}

/// Draining has begun (SIGTERM).
pub fn stopping(status: &str) {
    send(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

/// The watchdog interval systemd asked for (`WatchdogSec=`), if any, for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0;
    (sd_notify::watchdog_enabled(false, &mut usec) && usec > 0).then(|| Duration::from_micros(usec))
}

/// Pings the watchdog at half its interval, but only while the SIP task answers a heartbeat:
/// a wedged call core must make systemd restart the proxy, not be covered by a timer task.
pub fn spawn_watchdog(interval: Duration, control: mpsc::Sender<Control>) {
    let period = interval / 2;
    tokio::spawn(async move {
        let beats = Arc::new(AtomicU64::new(0));
        let mut seen = 0;
        loop {
            if control
                .send(Control::Heartbeat(Arc::clone(&beats)))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(period).await;
            let now = beats.load(Ordering::Relaxed);
            if now > seen {
                seen = now;
                send(&[NotifyState::Watchdog]);
            } else {
                tracing::error!(
                    "the SIP task did not answer within {period:?}; watchdog not pinged"
                );
            }
        }
    });
}
