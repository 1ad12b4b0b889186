//! Transaction timers of the core: queueing each transaction's next deadline and running the
//! retransmissions, time-outs and clean-ups that fall due.

use std::time::Instant;

use crate::sip::txn::{ClientTimerEvent, ServerTimerEvent};

use super::B2bua;
use super::timers::TimerRef;

impl B2bua {
    pub(super) fn schedule_client(&mut self, branch: &str) {
        if let Some(at) = self.clients.get(branch).and_then(|e| e.tx.next_deadline()) {
            self.timers
                .schedule(at, TimerRef::Client(branch.to_string()));
        }
    }

    pub(super) fn schedule_server(&mut self, key: &str) {
        if let Some(at) = self.servers.get(key).and_then(|e| e.tx.next_deadline()) {
            self.timers.schedule(at, TimerRef::Server(key.to_string()));
        }
    }

    /// Runs every timer due at `now`.
    pub(super) fn handle_timers(&mut self, now: Instant) {
        self.fire_timers(now);
        self.publish_sizes();
    }

    pub(super) fn fire_timers(&mut self, now: Instant) {
        while let Some(what) = self.timers.pop_due(now) {
            match what {
                TimerRef::Client(branch) => self.client_timer(&branch, now),
                TimerRef::Server(key) => self.server_timer(&key, now),
                TimerRef::Collector(call) => self.collector_timer(call, now),
                TimerRef::Session(call) => self.session_timer(call, now),
            }
        }
    }

    pub(super) fn client_timer(&mut self, branch: &str, now: Instant) {
        let timers = self.cfg.timers;
        let Some(entry) = self.clients.get_mut(branch) else {
            return;
        };
        match entry.tx.next_deadline() {
            Some(at) if at <= now => {}
            _ => return, // stale queue entry
        }
        match entry.tx.on_timer(now, &timers) {
            Some(ClientTimerEvent::Retransmit) => {
                let (dest, bytes) = (entry.dest, entry.bytes.clone());
                self.send_raw(dest, bytes);
                self.schedule_client(branch);
            }
            Some(ClientTimerEvent::Timeout) => {
                let Some(entry) = self.clients.remove(branch) else {
                    return;
                };
                self.on_client_timeout(entry, now);
            }
            Some(ClientTimerEvent::Terminated) => {
                self.clients.remove(branch);
            }
            None => self.schedule_client(branch),
        }
    }

    pub(super) fn server_timer(&mut self, key: &str, now: Instant) {
        let timers = self.cfg.timers;
        let Some(entry) = self.servers.get_mut(key) else {
            return;
        };
        match entry.tx.next_deadline() {
            Some(at) if at <= now => {}
            _ => return,
        }
        match entry.tx.on_timer(now, &timers) {
            Some(ServerTimerEvent::Retransmit) => {
                let to = entry.source;
                if let Some(bytes) = entry.tx.on_request_retransmission().map(<[u8]>::to_vec) {
                    self.send_raw(to, bytes);
                }
                self.schedule_server(key);
            }
            Some(ServerTimerEvent::AckTimeout) => {
                let call = entry.call;
                let code = entry.tx.last_code();
                self.servers.remove(key);
                if let Some((call, _)) = call
                    && (200..300).contains(&code)
                {
                    // The caller never acknowledged our 2xx: end both dialogs (§13.3.1.4).
                    self.terminate_call(call, super::Outcome::Failed, "no ACK", now);
                }
            }
            Some(ServerTimerEvent::Terminated) => {
                self.servers.remove(key);
            }
            None => self.schedule_server(key),
        }
    }
}
