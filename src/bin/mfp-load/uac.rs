//! The caller side: one SIP socket that sets calls up at a steady rate (INVITE, retransmitted
//! every 500 ms until a response), ACKs answers, answers the proxy's BYEs and hangs up at the end.

use std::collections::{BTreeMap, HashMap};
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use metaflow_proxy::sip::{Method, SipMessage};

use crate::error::LoadError;
use crate::sip_text::{CallerDialog, media_address, response};

/// Retransmission interval for INVITE, BYE and OPTIONS (RFC 3261 T1).
const RETRANSMIT: Duration = Duration::from_millis(500);
/// How long a BYE waits for its final response.
const BYE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest single wait on the socket, so timers stay responsive.
const POLL_SLICE: Duration = Duration::from_millis(5);
/// How often the calls are scanned for due retransmissions and timeouts.
const SCAN_EVERY: Duration = Duration::from_millis(20);

/// Where one call stands on the caller side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallState {
    /// INVITE not sent yet.
    Pending,
    /// INVITE sent; `provisional` once a 1xx stopped the retransmissions.
    Inviting { provisional: bool },
    /// 200 received and ACKed.
    Established,
    /// Set-up failed with this reason.
    Failed(String),
    /// Our BYE is out.
    ByeSent,
    /// The call is over (our BYE answered, or the proxy's BYE received).
    Ended,
}

/// One call as the caller sees it.
pub(crate) struct CallerCall {
    /// Current state.
    pub state: CallState,
    /// The caller's RTP endpoint, offered in the INVITE.
    pub rtp: SocketAddr,
    /// Where the proxy's a-leg receives RTP (from the 200's SDP).
    pub proxy_media: Option<SocketAddr>,
    /// When the proxy's BYE arrived, if it sent one.
    pub bye_received: Option<Instant>,
    call_id: String,
    to_tag: Option<String>,
    first_sent: Option<Instant>,
    last_sent: Option<Instant>,
}

/// The caller side of every call in the run.
pub(crate) struct Uac {
    socket: UdpSocket,
    local: SocketAddr,
    proxy: SocketAddr,
    /// Every call, by index.
    pub calls: Vec<CallerCall>,
    by_call_id: HashMap<String, usize>,
    options_answered: bool,
    /// BYEs of ours that got no final response.
    pub bye_timeouts: u32,
    last_scan: Instant,
    run_id: u64,
}

impl Uac {
    /// A caller side on `socket` for one call per entry of `rtp_endpoints`.
    pub(crate) fn new(
        socket: UdpSocket,
        proxy: SocketAddr,
        rtp_endpoints: &[SocketAddr],
        run_id: u64,
    ) -> Result<Uac, LoadError> {
        socket.set_read_timeout(Some(POLL_SLICE))?;
        let local = socket.local_addr()?;
        let calls: Vec<CallerCall> = rtp_endpoints
            .iter()
            .enumerate()
            .map(|(i, &rtp)| CallerCall {
                state: CallState::Pending,
                rtp,
                proxy_media: None,
                bye_received: None,
                call_id: format!("mfp-load-{run_id:x}-{i}"),
                to_tag: None,
                first_sent: None,
                last_sent: None,
            })
            .collect();
        let by_call_id = calls
            .iter()
            .enumerate()
            .map(|(i, c)| (c.call_id.clone(), i))
            .collect();
        Ok(Uac {
            socket,
            local,
            proxy,
            calls,
            by_call_id,
            options_answered: false,
            bye_timeouts: 0,
            last_scan: Instant::now(),
            run_id,
        })
    }

    /// A branch unique to this run, transaction kind and call.
    fn branch(&self, kind: &str, index: usize) -> String {
        format!("{:x}-{kind}{index}", self.run_id)
    }

    fn dialog(&self, index: usize) -> Option<CallerDialog<'_>> {
        let call = self.calls.get(index)?;
        Some(CallerDialog {
            index: u32::try_from(index).ok()?,
            call_id: &call.call_id,
            local: self.local,
            proxy: self.proxy,
        })
    }

    /// Checks that something answers SIP at the proxy address (OPTIONS, retransmitted).
    pub(crate) fn probe(&mut self, timeout: Duration) -> Result<(), LoadError> {
        let options = format!(
            "OPTIONS sip:{proxy} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{run:x}probe;rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:caller@{local}>;tag=probe\r\nTo: <sip:{proxy}>\r\n\
             Call-ID: mfp-load-{run:x}-probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            proxy = self.proxy,
            local = self.local,
            run = self.run_id
        );
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline && !self.options_answered {
            self.socket.send_to(options.as_bytes(), self.proxy)?;
            self.poll(Instant::now() + RETRANSMIT);
        }
        if self.options_answered {
            Ok(())
        } else {
            Err(LoadError::ProxyUnreachable(self.proxy))
        }
    }

    /// Starts every call at `rate` per second and waits until each is set up or failed.
    pub(crate) fn setup(&mut self, rate: u32, timeout: Duration, mut progress: impl FnMut(&Uac)) {
        let start = Instant::now();
        let gap = Duration::from_secs(1) / rate.max(1);
        let mut next = 0usize;
        let mut last_progress = start;
        loop {
            let now = Instant::now();
            while next < self.calls.len() && start + gap * next as u32 <= now {
                self.send_invite(next, now);
                next += 1;
            }
            self.recv_once();
            self.run_timers(timeout);
            if now.duration_since(last_progress) >= Duration::from_secs(1) {
                last_progress = now;
                progress(self);
            }
            let busy = self
                .calls
                .iter()
                .any(|c| matches!(c.state, CallState::Pending | CallState::Inviting { .. }));
            if !busy {
                break;
            }
        }
    }

    /// Handles incoming SIP and timers until `until`.
    pub(crate) fn poll(&mut self, until: Instant) {
        while Instant::now() < until {
            self.recv_once();
            self.run_timers(Duration::MAX);
        }
    }

    /// Sends BYE on every established call at `rate` per second and waits for the answers.
    pub(crate) fn hangup(&mut self, rate: u32) {
        let gap = Duration::from_secs(1) / rate.max(1);
        let start = Instant::now();
        let targets: Vec<usize> = (0..self.calls.len())
            .filter(|&i| self.calls.get(i).map(|c| &c.state) == Some(&CallState::Established))
            .collect();
        let mut next = 0usize;
        loop {
            let now = Instant::now();
            while let Some(&index) = targets.get(next) {
                if start + gap * next as u32 > now {
                    break;
                }
                self.send_bye(index, now);
                next += 1;
            }
            self.recv_once();
            self.run_timers(Duration::MAX);
            let busy =
                next < targets.len() || self.calls.iter().any(|c| c.state == CallState::ByeSent);
            if !busy {
                break;
            }
        }
    }

    /// Number of calls in each state, named, for progress lines and the report.
    pub(crate) fn state_counts(&self) -> BTreeMap<String, u32> {
        let mut counts = BTreeMap::new();
        for call in &self.calls {
            let name = match &call.state {
                CallState::Pending => "pending".to_owned(),
                CallState::Inviting { .. } => "inviting".to_owned(),
                CallState::Established => "established".to_owned(),
                CallState::Failed(reason) => format!("failed ({reason})"),
                CallState::ByeSent => "bye-sent".to_owned(),
                CallState::Ended => "ended".to_owned(),
            };
            *counts.entry(name).or_insert(0) += 1;
        }
        counts
    }

    fn send_invite(&mut self, index: usize, now: Instant) {
        let Some(call) = self.calls.get(index) else {
            return;
        };
        let Some(bytes) = self
            .dialog(index)
            .map(|d| d.invite(&self.branch("inv", index), call.rtp))
        else {
            return;
        };
        let _ = self.socket.send_to(&bytes, self.proxy);
        if let Some(call) = self.calls.get_mut(index) {
            if call.state == CallState::Pending {
                call.state = CallState::Inviting { provisional: false };
                call.first_sent = Some(now);
            }
            call.last_sent = Some(now);
        }
    }

    fn send_bye(&mut self, index: usize, now: Instant) {
        let Some(tag) = self.calls.get(index).and_then(|c| c.to_tag.clone()) else {
            return;
        };
        let Some(bytes) = self
            .dialog(index)
            .map(|d| d.bye(&self.branch("bye", index), &tag))
        else {
            return;
        };
        let _ = self.socket.send_to(&bytes, self.proxy);
        if let Some(call) = self.calls.get_mut(index) {
            if call.state == CallState::Established {
                call.state = CallState::ByeSent;
                call.first_sent = Some(now);
            }
            call.last_sent = Some(now);
        }
    }

    fn recv_once(&mut self) {
        let mut buffer = [0u8; 65536];
        match self.socket.recv_from(&mut buffer) {
            Ok((len, peer)) => {
                if let Some(Ok(msg)) = buffer.get(..len).map(SipMessage::parse) {
                    self.handle(&msg, peer);
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {}
        }
    }

    fn handle(&mut self, msg: &SipMessage, peer: SocketAddr) {
        if msg.is_request() {
            let is_bye = msg.method() == Some(&Method::Bye);
            let _ = self
                .socket
                .send_to(&response(msg, 200, "OK", None).to_bytes(), peer);
            let index = msg
                .call_id()
                .and_then(|id| self.by_call_id.get(id).copied());
            if let (true, Some(call)) = (is_bye, index.and_then(|i| self.calls.get_mut(i))) {
                call.bye_received.get_or_insert_with(Instant::now);
                call.state = CallState::Ended;
            }
            return;
        }
        let (Some(code), Some((_, method))) = (msg.status(), msg.cseq()) else {
            return;
        };
        if method == Method::Options {
            self.options_answered = true;
            return;
        }
        let Some(index) = msg
            .call_id()
            .and_then(|id| self.by_call_id.get(id).copied())
        else {
            return;
        };
        match method {
            Method::Invite => self.on_invite_response(index, code, msg),
            Method::Bye if code >= 200 => {
                if let Some(call) = self.calls.get_mut(index) {
                    call.state = CallState::Ended;
                }
            }
            _ => {}
        }
    }

    fn on_invite_response(&mut self, index: usize, code: u16, msg: &SipMessage) {
        let Some(call) = self.calls.get_mut(index) else {
            return;
        };
        if code < 200 {
            if let CallState::Inviting { provisional } = &mut call.state {
                *provisional = true;
            }
            return;
        }
        let to_tag = msg.to_tag();
        if code < 300 {
            if matches!(call.state, CallState::Inviting { .. }) {
                call.proxy_media = media_address(msg);
                call.to_tag = to_tag.clone();
                call.state = if call.proxy_media.is_some() {
                    CallState::Established
                } else {
                    CallState::Failed("200 without usable SDP".into())
                };
            }
            let ack = self
                .dialog(index)
                .map(|d| d.ack(&self.branch("ack", index), to_tag.as_deref()));
            if let Some(ack) = ack {
                let _ = self.socket.send_to(&ack, self.proxy);
            }
        } else {
            if matches!(call.state, CallState::Inviting { .. }) {
                call.state = CallState::Failed(code.to_string());
            }
            let ack = self
                .dialog(index)
                .map(|d| d.ack(&self.branch("inv", index), to_tag.as_deref()));
            if let Some(ack) = ack {
                let _ = self.socket.send_to(&ack, self.proxy);
            }
        }
    }

    fn run_timers(&mut self, setup_timeout: Duration) {
        let now = Instant::now();
        if now.duration_since(self.last_scan) < SCAN_EVERY {
            return;
        }
        self.last_scan = now;
        let mut resend_invite = Vec::new();
        let mut resend_bye = Vec::new();
        for (index, call) in self.calls.iter_mut().enumerate() {
            let (Some(first), Some(last)) = (call.first_sent, call.last_sent) else {
                continue;
            };
            let due = now.duration_since(last) >= RETRANSMIT;
            match call.state {
                CallState::Inviting { provisional } => {
                    if now.duration_since(first) > setup_timeout {
                        call.state = CallState::Failed("timeout".into());
                    } else if due && !provisional {
                        resend_invite.push(index);
                    }
                }
                CallState::ByeSent => {
                    if now.duration_since(first) > BYE_TIMEOUT {
                        call.state = CallState::Ended;
                        self.bye_timeouts += 1;
                    } else if due {
                        resend_bye.push(index);
                    }
                }
                _ => {}
            }
        }
        for index in resend_invite {
            self.send_invite(index, now);
        }
        for index in resend_bye {
            self.send_bye(index, now);
        }
    }
}
