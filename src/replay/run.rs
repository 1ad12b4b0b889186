//! The phases of one live replay: set the call up, follow the plan's timeline, hang up and
//! wait for the event log, then turn what was seen into an [`Outcome`].

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use super::ReplayError;
use super::agent::Agent;
use super::expect::{MediaSeen, Outcome};
use super::media::Media;
use super::observe::{EventTail, recording_secs, summarize_events};
use super::plan::{Payload, Plan, Side, plan_capture};
use super::session::{Live, POLL, bind, net, seed};
use super::webhook;

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
    /// Where to receive the proxy's webhooks instead (or as well), for a proxy on another host.
    pub webhook_listen: Option<SocketAddr>,
    /// How long after the capture's last packet the replay waits before hanging up itself.
    pub linger: Duration,
}

/// How long the call may take to be answered through the proxy.
const SETUP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the event log may take to show the end of the call.
const EVENTS_TIMEOUT: Duration = Duration::from_secs(3);

/// The address written into Via, Contact and SDP: `--pbx-listen`'s IP, or when that is a
/// wildcard the local address the system routes to the proxy from.
fn advertised_ip(bound: IpAddr, proxy: SocketAddr) -> IpAddr {
    if !bound.is_unspecified() {
        return bound;
    }
    std::net::UdpSocket::bind(SocketAddr::new(bound, 0))
        .and_then(|socket| {
            socket.connect(proxy)?;
            socket.local_addr()
        })
        .map_or(bound, |local| local.ip())
}

/// Plays `plan` through the proxy and returns what was seen.
pub(super) async fn replay_plan(plan: &Plan, opts: &ReplayOptions) -> Result<Outcome, ReplayError> {
    let ip = opts.pbx_listen.ip();
    let advertise = advertised_ip(ip, opts.proxy);
    let pbx_sip = bind(opts.pbx_listen, "PBX SIP (--pbx-listen)").await?;
    let caller_sip = bind(SocketAddr::new(ip, 0), "caller SIP").await?;
    let media = Media::bind(ip, advertise, &plan.caller_offer, &plan.callee_answer).await?;
    let local = caller_sip
        .local_addr()
        .map_err(net("caller SIP socket".into()))?;
    let local = SocketAddr::new(advertise, local.port());
    let caller = Agent::caller(local, opts.proxy, media.caller_sdp.clone(), seed());
    let hooks = match opts.webhook_listen {
        Some(addr) => Some(webhook::listen(addr).await?),
        None => None,
    };
    let now = Instant::now();
    let mut live = Live {
        caller_sip,
        pbx_sip,
        advertise,
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
        sip_buffers: (Vec::new(), Vec::new()),
        hooks,
        hook_keys: std::collections::HashSet::new(),
    };
    set_up(&mut live).await?;
    follow(&mut live, plan, opts).await;
    finish(&mut live, opts).await;
    Ok(outcome(live, opts))
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
        if ended || !live.observes_events() || Instant::now() >= deadline {
            break;
        }
    }
}

fn outcome(live: Live, opts: &ReplayOptions) -> Outcome {
    let ids = live.call_ids();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let summary = summarize_events(&live.events, &ids);
    let (caller_sent, callee_sent) = live.media.sent;
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
            lost: live.media.received_seqs.0.lost_of(&live.media.sent_seqs.1),
        },
        callee_media: MediaSeen {
            sent_by_peer: caller_sent,
            received: live.media.received.1,
            lost: live.media.received_seqs.1.lost_of(&live.media.sent_seqs.0),
        },
        events_observed: opts.events.is_some() || opts.webhook_listen.is_some(),
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
        ReplayError::Capture(source) => ReplayError::BadCapture {
            path: path.to_owned(),
            source,
        },
        other => other,
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(net("tokio runtime".into()))?;
    runtime.block_on(replay_plan(&plan, opts))
}
