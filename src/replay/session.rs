//! The live state of one replay: the caller's and the PBX's SIP sockets and dialogs, the media
//! sockets and the event-log tail, served together until a deadline; whatever the proxy sends
//! is answered and noted on the timeline.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::sip::{Method, SipMessage};

use super::ReplayError;
use super::agent::{Agent, Heard, is_response_to};
use super::media::Media;
use super::observe::{EventTail, summarize_events};
use super::plan::{Side, sdp_media_addr};

/// How often the event log is read while the call runs.
pub(super) const POLL: Duration = Duration::from_millis(100);

/// The sockets and dialogs of a running replay, and what they saw.
pub(super) struct Live {
    pub(super) caller_sip: UdpSocket,
    pub(super) pbx_sip: UdpSocket,
    /// The IP written into Via, Contact and SDP.
    pub(super) advertise: IpAddr,
    pub(super) caller: Agent,
    pub(super) callee: Option<Agent>,
    pub(super) media: Media,
    pub(super) start: Instant,
    pub(super) setup_error: Option<String>,
    pub(super) answered: bool,
    pub(super) invite_responded: bool,
    pub(super) byes: Vec<Side>,
    pub(super) refers: Vec<String>,
    pub(super) ended_by: Option<&'static str>,
    pub(super) timeline: Vec<(f64, String)>,
    pub(super) tail: Option<EventTail>,
    pub(super) events: Vec<serde_json::Value>,
    pub(super) next_poll: Instant,
    /// Set during call setup: `pump` returns as soon as the caller has its 2xx.
    pub(super) until_answered: bool,
    /// Receive buffers of the two SIP sockets, kept between pumps.
    pub(super) sip_buffers: (Vec<u8>, Vec<u8>),
    /// Events arriving as webhooks (`--webhook-listen`), when the replay listens for them.
    pub(super) hooks: Option<tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>>,
    /// `call_id event ts` of every webhook event taken, since a retried batch comes twice.
    pub(super) hook_keys: std::collections::HashSet<String>,
}

pub(super) fn net(what: String) -> impl FnOnce(std::io::Error) -> ReplayError {
    move |source| ReplayError::Network { what, source }
}

pub(super) async fn bind(addr: SocketAddr, what: &str) -> Result<UdpSocket, ReplayError> {
    UdpSocket::bind(addr)
        .await
        .map_err(net(format!("cannot bind the {what} socket on {addr}")))
}

impl Live {
    pub(super) fn note(&mut self, what: String) {
        let at = self.start.elapsed().as_secs_f64();
        self.timeline.push((at, what));
    }

    pub(super) async fn send(&self, side: Side, msg: &SipMessage) {
        let (socket, peer) = match side {
            Side::Caller => (&self.caller_sip, self.caller.peer),
            Side::Callee => match &self.callee {
                Some(agent) => (&self.pbx_sip, agent.peer),
                None => return,
            },
        };
        // A lost datagram shows up as a missing outcome; there is nothing better to do here.
        let _ = socket.send_to(&msg.to_bytes(), peer).await;
    }

    /// Serves every socket until `deadline`: SIP answered, RTP counted, events read.
    pub(super) async fn pump(&mut self, deadline: Instant) {
        let (mut buf_a, mut buf_b) = std::mem::take(&mut self.sip_buffers);
        buf_a.resize(65_536, 0);
        buf_b.resize(65_536, 0);
        self.pump_with(&mut buf_a, &mut buf_b, deadline).await;
        self.sip_buffers = (buf_a, buf_b);
    }

    async fn pump_with(&mut self, buf_a: &mut [u8], buf_b: &mut [u8], deadline: Instant) {
        loop {
            let wake = deadline.min(self.next_poll);
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {
                    if Instant::now() >= self.next_poll {
                        self.poll_events();
                    }
                    if Instant::now() >= deadline {
                        return;
                    }
                }
                r = self.caller_sip.recv_from(buf_a) => {
                    if let Ok((n, _)) = r {
                        self.on_caller_sip(buf_a.get(..n).unwrap_or_default()).await;
                    }
                    if self.until_answered && (self.answered || self.setup_error.is_some()) {
                        return;
                    }
                }
                r = self.pbx_sip.recv_from(buf_b) => {
                    if let Ok((n, src)) = r {
                        self.on_pbx_sip(buf_b.get(..n).unwrap_or_default(), src).await;
                    }
                }
                () = self.media.recv() => {}
            }
        }
    }

    pub(super) fn poll_events(&mut self) {
        self.next_poll = Instant::now() + POLL;
        let mut fresh = self
            .tail
            .as_mut()
            .map(EventTail::read_new)
            .unwrap_or_default();
        if let Some(hooks) = self.hooks.as_mut() {
            while let Ok(event) = hooks.try_recv() {
                let key = ["call_id", "event", "ts"]
                    .map(|k| event.get(k).map(ToString::to_string).unwrap_or_default())
                    .join(" ");
                if self.hook_keys.insert(key) {
                    fresh.push(event);
                }
            }
        }
        if fresh.is_empty() {
            return;
        }
        let ids = self.call_ids();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let summary = summarize_events(&fresh, &ids);
        for line in summary.lines {
            self.note(format!("proxy event: {line}"));
        }
        self.events.extend(fresh);
    }

    /// Whether any observer of the proxy's events is running.
    pub(super) fn observes_events(&self) -> bool {
        self.tail.is_some() || self.hooks.is_some()
    }

    pub(super) fn call_ids(&self) -> Vec<String> {
        let mut ids = vec![self.caller.call_id.clone()];
        ids.extend(self.callee.as_ref().map(|c| c.call_id.clone()));
        ids
    }

    pub(super) async fn on_caller_sip(&mut self, bytes: &[u8]) {
        let Ok(msg) = SipMessage::parse(bytes) else {
            return;
        };
        if let Some(code) = is_response_to(&msg, &Method::Invite) {
            self.invite_responded = true;
            if (200..300).contains(&code) {
                if let Some(addr) = sdp_media_addr(&msg.body) {
                    self.media.caller_remote = Some(addr);
                }
                let ack = self.caller.answered(&msg);
                self.send(Side::Caller, &ack).await;
                if !self.answered {
                    self.answered = true;
                    self.note(format!("caller got {code}"));
                }
            } else if code >= 300 {
                let ack = self.caller.answered(&msg);
                self.send(Side::Caller, &ack).await;
                self.setup_error = Some(format!("the proxy answered the INVITE with {code}"));
            }
            return;
        }
        if msg.is_request() {
            if msg.method() == Some(&Method::Invite)
                && let Some(addr) = sdp_media_addr(&msg.body)
            {
                self.media.caller_remote = Some(addr);
            }
            let (out, heard) = self.caller.on_request(&msg);
            for reply in &out {
                self.send(Side::Caller, reply).await;
            }
            self.heard(Side::Caller, heard);
        }
    }

    pub(super) async fn on_pbx_sip(&mut self, bytes: &[u8], src: SocketAddr) {
        let Ok(msg) = SipMessage::parse(bytes) else {
            return;
        };
        if !msg.is_request() {
            return;
        }
        let new_call = msg.method() == Some(&Method::Invite)
            && msg.to_tag().is_none()
            && self
                .callee
                .as_ref()
                .is_none_or(|c| Some(c.call_id.as_str()) == msg.call_id());
        if new_call {
            if let Some(addr) = sdp_media_addr(&msg.body) {
                self.media.callee_remote = Some(addr);
            }
            if self.callee.is_none() {
                let sdp = self.media.callee_sdp.clone();
                let port = self.pbx_sip.local_addr().map_or(0, |a| a.port());
                let local = SocketAddr::new(self.advertise, port);
                self.callee = Some(Agent::callee(local, src, &msg, sdp, seed()));
                self.note("callee got the proxy's INVITE".into());
            }
            if let Some(agent) = &self.callee {
                let ringing = agent.respond(&msg, 180, "Ringing", false);
                let ok = agent.respond(&msg, 200, "OK", true);
                self.send(Side::Callee, &ringing).await;
                self.send(Side::Callee, &ok).await;
            }
            return;
        }
        let Some(agent) = self.callee.as_mut() else {
            return;
        };
        if msg.method() == Some(&Method::Invite)
            && let Some(addr) = sdp_media_addr(&msg.body)
        {
            self.media.callee_remote = Some(addr);
        }
        let (out, heard) = agent.on_request(&msg);
        for reply in &out {
            self.send(Side::Callee, reply).await;
        }
        self.heard(Side::Callee, heard);
    }

    pub(super) fn heard(&mut self, side: Side, heard: Heard) {
        match heard {
            Heard::Bye => {
                self.byes.push(side);
                if self.ended_by.is_none() {
                    self.ended_by = Some("proxy");
                }
                self.note(format!("{} got BYE", side.as_str()));
            }
            Heard::Refer(target) => {
                self.note(format!("{} got REFER to {target}", side.as_str()));
                self.refers.push(target);
            }
            Heard::Other(what) if what != "ACK" => {
                self.note(format!("{} got {what}", side.as_str()));
            }
            Heard::Other(_) => {}
        }
    }

    pub(super) fn over(&self) -> bool {
        self.ended_by.is_some_and(|by| by != "proxy")
            || (self.byes.contains(&Side::Caller) && self.byes.contains(&Side::Callee))
    }

    pub(super) async fn hang_up(&mut self, side: Side, by: &'static str) {
        let bye = match side {
            Side::Caller => Some(self.caller.in_dialog(Method::Bye)),
            Side::Callee => self.callee.as_mut().map(|c| c.in_dialog(Method::Bye)),
        };
        if let Some(bye) = bye {
            self.send(side, &bye).await;
            self.ended_by.get_or_insert(by);
            self.note(format!("{} sent BYE", side.as_str()));
        }
    }

    pub(super) async fn info(&mut self, side: Side, content_type: &str, body: &[u8]) {
        let info = match side {
            Side::Caller => Some(self.caller.in_dialog(Method::Info)),
            Side::Callee => self.callee.as_mut().map(|c| c.in_dialog(Method::Info)),
        };
        if let Some(mut info) = info {
            info.set_header("Content-Type", content_type);
            info.body = bytes::Bytes::copy_from_slice(body);
            self.send(side, &info).await;
        }
    }
}

pub(super) fn seed() -> u64 {
    fastrand::u64(..)
}
