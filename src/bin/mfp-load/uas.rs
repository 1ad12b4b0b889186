//! The PBX side: listens where the proxy sends new calls (its --upstream), answers INVITEs with
//! 100 and 200 plus SDP, absorbs ACKs, answers BYEs, and accepts the proxy's REFER (blind
//! transfer) with 202 followed by a NOTIFY reporting success, on its own thread; with
//! `--refuse-refer` it answers REFER 405 and answers the call the proxy then places itself.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use metaflow_proxy::sip::{Method, SipMessage};

use crate::pbx_dialog::{PbxDialog, refer_accepted};
use crate::sip_text::{answer, call_index, media_address, placed_call_index, response};

/// How often an unacknowledged 200 OK is sent again.
const RETRANSMIT: Duration = Duration::from_millis(500);
/// How long a 200 OK is retransmitted before the PBX side gives up on its ACK.
const GIVE_UP: Duration = Duration::from_secs(32);
/// How often the answered dialogs are scanned for due retransmissions.
const SCAN_EVERY: Duration = Duration::from_millis(50);
/// How long a NOTIFY is retransmitted before the PBX side gives up on its response.
const NOTIFY_GIVE_UP: Duration = Duration::from_secs(8);

/// What the PBX side learned, read by the rest of the tool.
#[derive(Default)]
pub(crate) struct UasShared {
    /// Per call index: where the proxy's b-leg receives RTP (from the INVITE's SDP).
    pub proxy_media: Mutex<Vec<Option<SocketAddr>>>,
    /// BYEs received from the proxy.
    pub byes: AtomicU64,
    /// INVITEs refused because they named no known call.
    pub refused: AtomicU64,
    /// 200 OKs that never got an ACK.
    pub unacked: AtomicU64,
    /// Per call index: when the proxy's first REFER arrived.
    pub refer_received: Mutex<Vec<Option<Instant>>>,
    /// REFERs received (first copies only).
    pub refers: AtomicU64,
    /// Per call index: when the proxy's own INVITE to the transfer target arrived (after a
    /// REFER refused with `--refuse-refer`).
    pub placed_received: Mutex<Vec<Option<Instant>>>,
    /// NOTIFYs that never got a final response.
    pub unanswered_notifies: AtomicU64,
}

/// Our NOTIFY of a REFER's outcome, resent until the proxy answers it.
struct PendingNotify {
    bytes: Vec<u8>,
    first_sent: Instant,
    last_sent: Instant,
    answered: bool,
}

/// One answered INVITE, kept to answer retransmissions and resend the 200 until the ACK.
struct Answered {
    index: u32,
    dialog: Option<PbxDialog>,
    notify: Option<PendingNotify>,
    answer: Vec<u8>,
    peer: SocketAddr,
    acked: bool,
    first_sent: Instant,
    last_sent: Instant,
}

/// The running PBX side.
pub(crate) struct Uas {
    /// Shared findings.
    pub shared: Arc<UasShared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Uas {
    /// Starts answering on `socket`; `endpoints[i]` is the RTP address offered for call `i`.
    /// With `refuse_refer` every REFER is answered 405, so the proxy places the call itself.
    pub(crate) fn start(
        socket: UdpSocket,
        endpoints: Vec<SocketAddr>,
        refuse_refer: bool,
    ) -> std::io::Result<Uas> {
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        let shared = Arc::new(UasShared {
            proxy_media: Mutex::new(vec![None; endpoints.len()]),
            refer_received: Mutex::new(vec![None; endpoints.len()]),
            placed_received: Mutex::new(vec![None; endpoints.len()]),
            ..UasShared::default()
        });
        let stop = Arc::new(AtomicBool::new(false));
        let mut worker = Worker {
            local: socket.local_addr()?,
            socket,
            endpoints,
            shared: Arc::clone(&shared),
            dialogs: HashMap::new(),
            last_scan: Instant::now(),
            refuse_refer,
        };
        let stop_flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("uas".into())
            .spawn(move || worker.run(&stop_flag))?;
        Ok(Uas {
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it.
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// State owned by the PBX side's thread.
struct Worker {
    socket: UdpSocket,
    local: SocketAddr,
    endpoints: Vec<SocketAddr>,
    shared: Arc<UasShared>,
    dialogs: HashMap<String, Answered>,
    last_scan: Instant,
    /// Answer REFERs 405 (`--refuse-refer`).
    refuse_refer: bool,
}

impl Worker {
    fn run(&mut self, stop: &AtomicBool) {
        let mut buffer = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            match self.socket.recv_from(&mut buffer) {
                Ok((len, peer)) => {
                    if let Some(Ok(msg)) = buffer.get(..len).map(SipMessage::parse) {
                        self.handle(&msg, peer);
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => {}
            }
            self.retransmit();
        }
    }

    fn send(&self, bytes: &[u8], peer: SocketAddr) {
        let _ = self.socket.send_to(bytes, peer);
    }

    fn handle(&mut self, msg: &SipMessage, peer: SocketAddr) {
        let Some(call_id) = msg.call_id().map(str::to_owned) else {
            return;
        };
        if let (Some(code), Some((_, Method::Notify))) = (msg.status(), msg.cseq()) {
            let pending = self
                .dialogs
                .get_mut(&call_id)
                .and_then(|d| d.notify.as_mut());
            if let (true, Some(notify)) = (code >= 200, pending) {
                notify.answered = true;
            }
            return;
        }
        match msg.method() {
            Some(Method::Invite) => self.on_invite(msg, &call_id, peer),
            Some(Method::Ack) => {
                if let Some(dialog) = self.dialogs.get_mut(&call_id) {
                    dialog.acked = true;
                }
            }
            Some(Method::Bye) => {
                self.shared.byes.fetch_add(1, Ordering::Relaxed);
                self.dialogs.remove(&call_id);
                self.send(&response(msg, 200, "OK", None).to_bytes(), peer);
            }
            Some(Method::Refer) => self.on_refer(msg, &call_id, peer),
            Some(Method::Cancel) | Some(Method::Options) => {
                self.send(&response(msg, 200, "OK", None).to_bytes(), peer);
            }
            Some(_) => self.send(&response(msg, 200, "OK", None).to_bytes(), peer),
            None => {}
        }
    }

    fn on_invite(&mut self, msg: &SipMessage, call_id: &str, peer: SocketAddr) {
        if let Some(dialog) = self.dialogs.get(call_id) {
            // A retransmission (or re-INVITE): the stored answer still describes our side.
            self.send(&dialog.answer, peer);
            return;
        }
        let placed = placed_call_index(msg).filter(|_| call_index(msg).is_none());
        if let Some(index) = placed {
            stamp(&self.shared.placed_received, index, Instant::now());
        }
        let index = call_index(msg).or(placed);
        let endpoint = index.and_then(|i| self.endpoints.get(i as usize).copied());
        let (Some(index), Some(endpoint)) = (index, endpoint) else {
            self.shared.refused.fetch_add(1, Ordering::Relaxed);
            self.send(&response(msg, 404, "Not Found", None).to_bytes(), peer);
            return;
        };
        if let Some(slot) = self
            .shared
            .proxy_media
            .lock()
            .ok()
            .as_mut()
            .and_then(|media| media.get_mut(index as usize))
        {
            *slot = media_address(msg);
        }
        self.send(&response(msg, 100, "Trying", None).to_bytes(), peer);
        let tag = format!("uas{index}");
        let answer = answer(msg, &tag, self.local, endpoint, u64::from(index));
        self.send(&answer, peer);
        let now = Instant::now();
        self.dialogs.insert(
            call_id.to_owned(),
            Answered {
                index,
                dialog: PbxDialog::from_invite(msg, &tag, self.local),
                notify: None,
                answer,
                peer,
                acked: false,
                first_sent: now,
                last_sent: now,
            },
        );
    }

    /// Accepts a REFER with 202 and, the first time, reports the transfer's success with a
    /// NOTIFY in the same dialog (retransmissions of the REFER only get the 202 again).
    fn on_refer(&mut self, refer: &SipMessage, call_id: &str, peer: SocketAddr) {
        let now = Instant::now();
        if self.refuse_refer {
            self.send(
                &response(refer, 405, "Method Not Allowed", None).to_bytes(),
                peer,
            );
            if let Some(dialog) = self.dialogs.get(call_id) {
                self.shared.refers.fetch_add(1, Ordering::Relaxed);
                stamp(&self.shared.refer_received, dialog.index, now);
            }
            return;
        }
        self.send(&refer_accepted(refer).to_bytes(), peer);
        let Some(dialog) = self.dialogs.get_mut(call_id) else {
            return;
        };
        if dialog.notify.is_some() {
            return;
        }
        let Some(pbx_dialog) = dialog.dialog.as_ref() else {
            return;
        };
        self.shared.refers.fetch_add(1, Ordering::Relaxed);
        stamp(&self.shared.refer_received, dialog.index, now);
        let branch = format!("notify{}", dialog.index);
        let bytes = pbx_dialog.notify_success(1, &branch).to_bytes();
        let _ = self.socket.send_to(&bytes, peer);
        dialog.notify = Some(PendingNotify {
            bytes,
            first_sent: now,
            last_sent: now,
            answered: false,
        });
    }

    fn retransmit(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.last_scan) < SCAN_EVERY {
            return;
        }
        self.last_scan = now;
        let mut gave_up = 0;
        let mut notify_gave_up = 0;
        for dialog in self.dialogs.values_mut() {
            if let Some(notify) = dialog.notify.as_mut().filter(|n| !n.answered)
                && now.duration_since(notify.last_sent) >= RETRANSMIT
            {
                if now.duration_since(notify.first_sent) > NOTIFY_GIVE_UP {
                    notify.answered = true;
                    notify_gave_up += 1;
                } else {
                    notify.last_sent = now;
                    let _ = self.socket.send_to(&notify.bytes, dialog.peer);
                }
            }
            if dialog.acked || now.duration_since(dialog.last_sent) < RETRANSMIT {
                continue;
            }
            if now.duration_since(dialog.first_sent) > GIVE_UP {
                dialog.acked = true;
                gave_up += 1;
                continue;
            }
            dialog.last_sent = now;
            let _ = self.socket.send_to(&dialog.answer, dialog.peer);
        }
        self.shared.unacked.fetch_add(gave_up, Ordering::Relaxed);
        self.shared
            .unanswered_notifies
            .fetch_add(notify_gave_up, Ordering::Relaxed);
    }
}

/// Records `now` for call `index` unless an earlier time is there.
fn stamp(times: &Mutex<Vec<Option<Instant>>>, index: u32, now: Instant) {
    if let Some(slot) = times
        .lock()
        .ok()
        .as_mut()
        .and_then(|times| times.get_mut(index as usize))
    {
        slot.get_or_insert(now);
    }
}
