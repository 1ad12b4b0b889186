//! `mfp-load`: drives calls with media through a running metaflow-proxy and reports loss,
//! added latency against a direct baseline, the proxy's CPU per relayed packet, its memory per
//! call and, optionally, the latency from a DTMF code to the proxy's hang-up (BYE) or transfer
//! (REFER). `mfp-load --help` explains how to run it.

mod args;
mod batch;
mod batched_sender;
mod dtmf;
mod dtmf_phase;
mod endpoints;
mod error;
mod histogram;
mod media;
mod ng;
mod pbx_dialog;
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
use crate::endpoints::{Endpoints, bind};
use crate::error::LoadError;
use crate::media::{MediaRun, baseline_destinations, plan};
use crate::receive::Receivers;
use crate::report::{Summary, print};
use crate::tally::Tally;
use crate::uac::Uac;
use crate::uas::Uas;

/// How long the proxy gets to answer the start-up OPTIONS probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Shorter than an RTP header: the `--direct-via` relay latches it without forwarding it.
const PRIMING_PACKET: &[u8] = b"mfpl";
/// Time given to the priming packets to reach the `--direct-via` relay.
const PRIMING_WAIT: Duration = Duration::from_millis(200);

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
    let endpoints = Endpoints::bind_all(
        args.local_ip,
        args.calls,
        args.direct_pairs(),
        args.shared_endpoints,
    )?;
    let pbx_rtp: Vec<SocketAddr> = endpoints.pbx.iter().map(|e| e.addr).collect();
    let caller_rtp: Vec<SocketAddr> = endpoints.caller.iter().map(|e| e.addr).collect();
    let uas = Uas::start(uas_socket, pbx_rtp, args.refuse_refer)?;
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
    let baseline = baseline_destinations(&endpoints, args.direct_via, args.direct_via_rtpengine)?;
    if args.direct_via.is_some() || args.direct_via_rtpengine.is_some() {
        prime(&endpoints, &baseline)?;
    }
    let plan = plan(&endpoints, &uac, &pbx_media, &baseline)?;
    eprintln!("[setup] done: {:?}", uac.state_counts());
    if plan.calls_up == 0 {
        let states = format!("{:?}", uac.state_counts());
        uas.stop();
        return Err(LoadError::NoCalls(states));
    }

    let tally = Arc::new(Tally::new(plan.table));
    let mut receivers = Receivers::new(args.receiver_threads as usize)?;
    for endpoint in endpoints.distinct() {
        let socket = endpoint.socket.try_clone()?;
        if endpoints.shared {
            receivers.watch_batched(socket, epoch, Arc::clone(&tally))?;
        } else {
            receivers.watch(socket, epoch, Arc::clone(&tally))?;
        }
    }
    let media_run = MediaRun {
        duration: args.duration,
        sender_threads: args.sender_threads as usize,
        batched: endpoints.shared,
        epoch,
        pid,
        baseline_pid: args.direct_via_pid,
        api: args.api,
        tally: &tally,
    };
    let (streams, mut readings) = media::run(&media_run, plan.streams, &mut uac)?;
    readings.rss_before_kib = rss_before_kib;

    let streams = if args.hold_phase {
        dtmf_phase::hold_all(args.rate, &streams, &mut uac)?;
        let unstamped_before = tally.unstamped.load(std::sync::atomic::Ordering::Relaxed);
        let (streams, held) = media::run(&media_run, streams, &mut uac)?;
        let unstamped = tally.unstamped.load(std::sync::atomic::Ordering::Relaxed);
        report::print_hold(&readings, &held, unstamped - unstamped_before);
        streams
    } else {
        streams
    };
    let dtmf = match args.dtmf_action() {
        Some(action) => dtmf_phase::run(action, args.rate, &streams, &mut uac, &uas.shared)?,
        None => Vec::new(),
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
        direct_via: args.direct_via.or(args.direct_via_rtpengine),
        tally: &tally,
        proxy: readings,
        dtmf,
    });
    if uac.bye_timeouts > 0 {
        println!("BYEs without a final response: {}", uac.bye_timeouts);
    }
    Ok(())
}

/// Lets the `--direct-via` relay latch both sides of every baseline pair before the media phase,
/// so that neither side's first packets are lost waiting for the other side's.
fn prime(endpoints: &Endpoints, baseline: &[(SocketAddr, SocketAddr)]) -> Result<(), LoadError> {
    for ((a, b), (a_dest, b_dest)) in endpoints.direct.iter().zip(baseline) {
        a.socket.send_to(PRIMING_PACKET, a_dest)?;
        b.socket.send_to(PRIMING_PACKET, b_dest)?;
    }
    std::thread::sleep(PRIMING_WAIT);
    Ok(())
}
