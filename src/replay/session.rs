//! One live replay: binds the caller's and the PBX's sockets, sets the call up through the
//! proxy, follows the plan's timeline, answers whatever the proxy sends, and gathers the
//! outcome from the SIP, the RTP and the event log.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::sip::{Method, SipMessage};

use super::ReplayError;
use super::agent::{Agent, Heard, is_response_to};
use super::expect::{MediaSeen, Outcome};
use super::media::Media;
use super::observe::{EventTail, recording_secs, summarize_events};
use super::plan::{Payload, Plan, Side, plan_capture};

/// How to reach the proxy and how to play the capture.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The proxy's SIP address, where the caller sends its INVITE.
    pub proxy: SocketAddr,
    /// Where the stand-in PBX listens: the proxy's `--upstream` must point here.
    pub pbx_listen: SocketAddr,
    /// Timing factor: 2.0 plays twice as fast as captured.
    pub speed: f64,
    /// The proxy's `events.jsonl`, tailed for digits, matches, modules and recordings.
    pub events: Option<PathBuf>,
    /// How long after the capture's last packet the replay waits before hanging up itself.
    pub linger: Duration,
}

/// How long the call may take to be answered through the proxy.
const SETUP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the event log may take to show the end of the call.
const EVENTS_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the event log is read while the call runs.
const POLL: Duration = Duration::from_millis(100);

/// The sockets and dialogs of a running replay, and what they saw.
struct Live {
    caller_sip: UdpSocket,
    pbx_sip: UdpSocket,
    caller: Agent,
    callee: Option<Agent>,
    media: Media,
    start: Instant,
    setup_error: Option<String>,
    answered: bool,
    invite_responded: bool,
    byes: Vec<Side>,
    refers: Vec<String>,
    ended_by: Option<&'static str>,
    timeline: Vec<(f64, String)>,
    tail: Option<EventTail>,
    events: Vec<serde_json::Value>,
    next_poll: Instant,
    /// Set during call setup: `pump` returns as soon as the caller has its 2xx.
    until_answered: bool,
}

fn net(what: String) -> impl FnOnce(std::io::Error) -> ReplayError {
    move |source| ReplayError::Network { what, source }
}

async fn bind(addr: SocketAddr, what: &str) -> Result<UdpSocket, ReplayError> {
    UdpSocket::bind(addr)
        .await
        .map_err(net(format!("cannot bind the {what} socket on {addr}")))
}

impl Live {
    fn note(&mut self, what: String) {
        let at = self.start.elapsed().as_secs_f64();
        self.timeline.push((at, what));
    }

    async fn send(&self, side: Side, msg: &SipMessage) {
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
    async fn pump(&mut self, deadline: Instant) {
        let mut buf_a = vec![0u8; 65_536];
        let mut buf_b = vec![0u8; 65_536];
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
                r = self.caller_sip.recv_from(&mut buf_a) => {
                    if let Ok((n, _)) = r {
                        self.on_caller_sip(buf_a.get(..n).unwrap_or_default()).await;
                    }
                    if self.until_answered && (self.answered || self.setup_error.is_some()) {
                        return;
                    }
                }
                r = self.pbx_sip.recv_from(&mut buf_b) => {
                    if let Ok((n, src)) = r {
                        self.on_pbx_sip(buf_b.get(..n).unwrap_or_default(), src).await;
                    }
                }
                side = self.media.recv() => {
                    let _ = side;
                }
            }
        }
    }

    fn poll_events(&mut self) {
        self.next_poll = Instant::now() + POLL;
        let Some(tail) = self.tail.as_mut() else {
            return;
        };
        let fresh = tail.read_new();
        let ids = self.call_ids();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let summary = summarize_events(&fresh, &ids);
        for line in summary.lines {
            self.note(format!("proxy event: {line}"));
        }
        self.events.extend(fresh);
    }

    fn call_ids(&self) -> Vec<String> {
        let mut ids = vec![self.caller.call_id.clone()];
        ids.extend(self.callee.as_ref().map(|c| c.call_id.clone()));
        ids
    }

    async fn on_caller_sip(&mut self, bytes: &[u8]) {
        let Ok(msg) = SipMessage::parse(bytes) else {
            return;
        };
        if let Some(code) = is_response_to(&msg, &Method::Invite) {
            self.invite_responded = true;
            if (200..300).contains(&code) {
                if let Some(addr) = media_addr(&msg.body) {
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
            let (out, heard) = self.caller.on_request(&msg);
            for reply in &out {
                self.send(Side::Caller, reply).await;
            }
            self.heard(Side::Caller, heard);
        }
    }

    async fn on_pbx_sip(&mut self, bytes: &[u8], src: SocketAddr) {
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
            if let Some(addr) = media_addr(&msg.body) {
                self.media.callee_remote = Some(addr);
            }
            if self.callee.is_none() {
                let sdp = self.media.callee_sdp.clone();
                let local = self.pbx_sip.local_addr().unwrap_or(src);
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
            && let Some(addr) = media_addr(&msg.body)
        {
            self.media.callee_remote = Some(addr);
        }
        let (out, heard) = agent.on_request(&msg);
        for reply in &out {
            self.send(Side::Callee, reply).await;
        }
        self.heard(Side::Callee, heard);
    }

    fn heard(&mut self, side: Side, heard: Heard) {
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

    fn over(&self) -> bool {
        self.ended_by.is_some_and(|by| by != "proxy")
            || (self.byes.contains(&Side::Caller) && self.byes.contains(&Side::Callee))
    }

    async fn hang_up(&mut self, side: Side, by: &'static str) {
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

    async fn info(&mut self, side: Side, content_type: &str, body: &[u8]) {
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

fn media_addr(body: &[u8]) -> Option<SocketAddr> {
    let sdp = crate::sdp::Sdp::parse(body).ok()?;
    let m = sdp.media().iter().find(|m| m.kind == "audio")?;
    Some(SocketAddr::new(
        m.connection.or(sdp.session_connection())?,
        m.port,
    ))
}

fn seed() -> u64 {
    fastrand::u64(..)
}

/// Plays `plan` through the proxy and returns what was seen.
pub(super) async fn replay_plan(plan: &Plan, opts: &ReplayOptions) -> Result<Outcome, ReplayError> {
    let ip = opts.pbx_listen.ip();
    let pbx_sip = bind(opts.pbx_listen, "PBX SIP (--pbx-listen)").await?;
    let caller_sip = bind(SocketAddr::new(ip, 0), "caller SIP").await?;
    let media = Media::bind(ip, &plan.caller_offer, &plan.callee_answer).await?;
    let local = caller_sip
        .local_addr()
        .map_err(net("caller SIP socket".into()))?;
    let caller = Agent::caller(local, opts.proxy, media.caller_sdp.clone(), seed());
    let now = Instant::now();
    let mut live = Live {
        caller_sip,
        pbx_sip,
        caller,
        callee: None,
        media,
        start: now,
        setup_error: None,
        answered: false,
        invite_responded: false,
        byes: Vec::new(),
        refers: Vec::new(),
        ended_by: None,
        timeline: Vec::new(),
        tail: opts.events.as_deref().map(EventTail::from_end),
        events: Vec::new(),
        next_poll: now,
        until_answered: true,
    };
    set_up(&mut live).await?;
    follow(&mut live, plan, opts).await;
    finish(&mut live, opts).await;
    Ok(outcome(live, plan, opts))
}

async fn set_up(live: &mut Live) -> Result<(), ReplayError> {
    let invite = live.caller.invite();
    let give_up = Instant::now() + SETUP_TIMEOUT;
    while !live.answered {
        if !live.invite_responded {
            live.send(Side::Caller, &invite).await;
        }
        let slice = (Instant::now() + Duration::from_millis(500)).min(give_up);
        live.pump(slice).await;
        if let Some(err) = live.setup_error.take() {
            return Err(ReplayError::Setup(err));
        }
        if Instant::now() >= give_up && !live.answered {
            let detail = if live.callee.is_some() {
                "the PBX side answered but the caller got no 2xx"
            } else {
                "no INVITE reached the PBX side: is the proxy's --upstream the replay's --pbx-listen?"
            };
            return Err(ReplayError::Setup(format!(
                "no answer from {} within {SETUP_TIMEOUT:?} ({detail})",
                live.caller.peer
            )));
        }
    }
    live.until_answered = false;
    if live.media.caller_remote.is_none() || live.media.callee_remote.is_none() {
        return Err(ReplayError::Setup(
            "the proxy's SDP named no audio address".into(),
        ));
    }
    Ok(())
}

async fn follow(live: &mut Live, plan: &Plan, opts: &ReplayOptions) {
    let speed = if opts.speed.is_finite() && opts.speed > 0.0 {
        opts.speed
    } else {
        1.0
    };
    let origin = Instant::now();
    live.note("timeline starts".into());
    for step in &plan.steps {
        let offset = Duration::from_secs_f64(step.at_us as f64 / 1e6 / speed);
        live.pump(origin + offset).await;
        if live.over() {
            break;
        }
        match &step.payload {
            Payload::Rtp(bytes) => live.media.send(step.from, bytes).await,
            Payload::Info { content_type, body } => live.info(step.from, content_type, body).await,
            Payload::Bye => live.hang_up(step.from, step.from.as_str()).await,
        }
    }
}

async fn finish(live: &mut Live, opts: &ReplayOptions) {
    live.pump(Instant::now() + opts.linger).await;
    if !live.over() && live.ended_by.is_none() {
        live.hang_up(Side::Caller, "replay").await;
    }
    let deadline = Instant::now() + EVENTS_TIMEOUT;
    loop {
        live.pump(Instant::now() + POLL).await;
        let ids = live.call_ids();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let ended = summarize_events(&live.events, &ids).ended;
        if ended || live.tail.is_none() || Instant::now() >= deadline {
            break;
        }
    }
}

fn outcome(live: Live, plan: &Plan, opts: &ReplayOptions) -> Outcome {
    let ids = live.call_ids();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let summary = summarize_events(&live.events, &ids);
    let (caller_sent, callee_sent) = live.media.sent;
    let _ = plan;
    Outcome {
        digits_a: summary.digits_a,
        digits_b: summary.digits_b,
        matches: summary.matches,
        modules: summary.modules,
        refers: live.refers,
        recordings_secs: summary
            .recordings
            .iter()
            .map(|(sidecar, frames)| recording_secs(sidecar, *frames))
            .collect(),
        byes_received: live.byes.iter().map(|s| s.as_str()).collect(),
        ended_by: live.ended_by.unwrap_or("nobody").to_owned(),
        caller_media: MediaSeen {
            sent_by_peer: callee_sent,
            received: live.media.received.0,
        },
        callee_media: MediaSeen {
            sent_by_peer: caller_sent,
            received: live.media.received.1,
        },
        events_observed: opts.events.is_some(),
        timeline: live.timeline,
    }
}

/// Reads, plans and replays one capture file on a runtime of its own.
pub fn replay_file(path: &Path, opts: &ReplayOptions) -> Result<Outcome, ReplayError> {
    let bytes = std::fs::read(path).map_err(|source| ReplayError::File {
        path: path.to_owned(),
        source,
    })?;
    let plan = plan_capture(&bytes).map_err(|e| match e {
        ReplayError::Capture(c) => ReplayError::File {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, c),
        },
        other => other,
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(net("tokio runtime".into()))?;
    runtime.block_on(replay_plan(&plan, opts))
}
