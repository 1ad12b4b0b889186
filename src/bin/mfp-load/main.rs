//! `mfp-load`: drives calls with media through a running metaflow-proxy and reports loss,
//! added latency against a direct baseline, the proxy's CPU per relayed packet, its memory per
//! call and, optionally, DTMF-to-hangup latency. `mfp-load --help` explains how to run it.

mod args;
mod dtmf;
mod endpoints;
mod error;
mod histogram;
mod media;
mod probe;
mod receive;
mod report;
mod rtp;
mod sip_text;
mod tally;
mod uac;
mod uas;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::args::Args;
use crate::dtmf::{PressTarget, press_star_zero};
use crate::endpoints::{Endpoints, bind};
use crate::error::LoadError;
use crate::media::{MediaRun, plan};
use crate::receive::Receivers;
use crate::report::{DtmfOutcome, Summary, print};
use crate::rtp::SendStream;
use crate::tally::{Direction, Path, Tally};
use crate::uac::{CallState, Uac};
use crate::uas::Uas;

/// How long the proxy gets to answer the start-up OPTIONS probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long after the last DTMF press the caller side waits for outstanding BYEs.
const BYE_WAIT: Duration = Duration::from_secs(3);

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mfp-load: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), LoadError> {
    let epoch = Instant::now();
    let uas_socket = bind("the PBX-side SIP socket (--upstream)", args.upstream)?;
    let uac_socket = bind("the caller SIP socket", SocketAddr::new(args.local_ip, 0))?;
    let endpoints = Endpoints::bind_all(args.local_ip, args.calls, args.direct_pairs())?;
    let pbx_rtp: Vec<SocketAddr> = endpoints.pbx.iter().map(|e| e.addr).collect();
    let caller_rtp: Vec<SocketAddr> = endpoints.caller.iter().map(|e| e.addr).collect();
    let uas = Uas::start(uas_socket, pbx_rtp)?;
    let wall_nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let run_id = u64::from(std::process::id()) << 32 | u64::from(wall_nanos);
    let mut uac = Uac::new(uac_socket, args.proxy, &caller_rtp, run_id)?;
    uac.probe(PROBE_TIMEOUT)?;
    probe::relayed_rtp_packets(args.api)?;
    let pid = match probe::find_proxy_pid(args.proxy_pid) {
        Ok(pid) => Some(pid),
        Err(why) => {
            eprintln!("mfp-load: warning: {why}; CPU and memory figures are skipped");
            None
        }
    };
    let rss_before_kib = pid.and_then(probe::rss_kib);
    eprintln!(
        "mfp-load: proxy {} (pid {}), {} calls at {}/s, {} s of media, {} direct pairs",
        args.proxy,
        pid.map_or("unknown".into(), |p| p.to_string()),
        args.calls,
        args.rate,
        args.duration,
        args.direct_pairs()
    );

    uac.setup(args.rate, Duration::from_secs(args.setup_timeout), |uac| {
        eprintln!("[setup] {:?}", uac.state_counts());
    });
    let pbx_media = uas
        .shared
        .proxy_media
        .lock()
        .map(|m| m.clone())
        .unwrap_or_default();
    let plan = plan(&endpoints, &uac, &pbx_media)?;
    eprintln!("[setup] done: {:?}", uac.state_counts());
    if plan.calls_up == 0 {
        let states = format!("{:?}", uac.state_counts());
        uas.stop();
        return Err(LoadError::NoCalls(states));
    }

    let tally = Arc::new(Tally::new(plan.table));
    let receivers = Receivers::new(args.receiver_threads as usize)?;
    let all_sockets = endpoints
        .caller
        .iter()
        .chain(&endpoints.pbx)
        .chain(endpoints.direct.iter().flat_map(|(a, b)| [a, b]));
    for endpoint in all_sockets {
        receivers.watch(endpoint.socket.try_clone()?, epoch, Arc::clone(&tally))?;
    }
    let media_run = MediaRun {
        duration: args.duration,
        sender_threads: args.sender_threads as usize,
        epoch,
        pid,
        api: args.api,
        tally: &tally,
    };
    let (streams, mut readings) = media::run(&media_run, plan.streams, &mut uac)?;
    readings.rss_before_kib = rss_before_kib;

    let dtmf = if args.dtmf_hangup {
        Some(dtmf_phase(args.rate, &streams, &mut uac)?)
    } else {
        None
    };
    uac.hangup(args.rate);
    receivers.stop();
    let call_states = uac.state_counts();
    uas.stop();
    print(&Summary {
        calls_wanted: args.calls,
        calls_up: plan.calls_up,
        call_states,
        direct_pairs: args.direct_pairs(),
        tally: &tally,
        proxy: readings,
        dtmf,
    });
    if uac.bye_timeouts > 0 {
        println!("BYEs without a final response: {}", uac.bye_timeouts);
    }
    Ok(())
}

/// Presses `*0` on every call still up and measures the time to the proxy's BYE.
fn dtmf_phase(rate: u32, streams: &[SendStream], uac: &mut Uac) -> Result<DtmfOutcome, LoadError> {
    let mut targets = Vec::new();
    for stream in streams {
        let is_caller = stream.path == Path::Proxied && stream.direction == Direction::AToB;
        let Some(call) = stream.call.filter(|_| is_caller) else {
            continue;
        };
        let up = uac.calls.get(call as usize).map(|c| &c.state) == Some(&CallState::Established);
        if up {
            targets.push(PressTarget {
                call,
                socket: stream.socket.try_clone()?,
                dest: stream.dest,
                ssrc: stream.id,
                rtp_seq: stream.rtp_seq,
                rtp_timestamp: stream.rtp_timestamp,
            });
        }
    }
    eprintln!("[dtmf] pressing *0 on {} calls", targets.len());
    let start = Instant::now() + Duration::from_millis(100);
    let presser = std::thread::Builder::new()
        .name("dtmf".into())
        .spawn(move || {
            let completed = press_star_zero(&targets, rate, start);
            let calls: Vec<u32> = targets.iter().map(|t| t.call).collect();
            (calls, completed)
        })?;
    while !presser.is_finished() {
        uac.poll(Instant::now() + Duration::from_millis(100));
    }
    let (calls, completed) = presser
        .join()
        .map_err(|_| std::io::Error::other("the DTMF sender thread panicked"))?;
    let waiting_since = Instant::now();
    let bye_missing = |uac: &Uac| {
        calls
            .iter()
            .filter(|&&c| {
                uac.calls
                    .get(c as usize)
                    .is_some_and(|x| x.bye_received.is_none())
            })
            .count()
    };
    while bye_missing(uac) > 0 && waiting_since.elapsed() < BYE_WAIT {
        uac.poll(Instant::now() + Duration::from_millis(50));
    }
    let mut outcome = DtmfOutcome {
        latencies: Vec::new(),
        missing: bye_missing(uac),
        early: 0,
    };
    for (call, sent) in calls.iter().zip(completed) {
        let bye = uac.calls.get(*call as usize).and_then(|c| c.bye_received);
        match (sent, bye) {
            (Some(sent), Some(bye)) if bye >= sent => outcome.latencies.push(bye - sent),
            (_, Some(_)) => outcome.early += 1,
            _ => {}
        }
    }
    Ok(outcome)
}
