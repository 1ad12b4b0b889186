//! Command-line flags of the load tool and their validation.

use std::net::{IpAddr, SocketAddr};

use clap::Parser;

/// How to run the proxy this tool measures; repeated in `--help` so operators need no other page.
const PROXY_RECIPE: &str = "\
The tool starts only its own endpoints. Run the proxy first, in another terminal:

  cargo build --release
  ./target/release/metaflow-proxy --sip-listen 127.0.0.1:5060 --upstream 127.0.0.1:5070 \\
      --media-ip 127.0.0.1 --rtp-ports 20000-29999 --api-listen 127.0.0.1:8000 \\
      --data-dir /tmp/mfp-load-data --media-timeout 120 --log-level warn

then, for example:

  ./target/release/mfp-load --calls 1000 --duration 30

Keep --rtp-ports below the kernel's ephemeral range (cat /proc/sys/net/ipv4/ip_local_port_range):
the tool binds its own RTP sockets on ephemeral ports. With --dtmf-hangup, also give the proxy
--metaflows FILE where FILE holds {\"numbers\":{\"0\":{\"module\":\"hangup\"}}}; with
--dtmf-transfer, FILE holds {\"numbers\":{\"0\":{\"module\":\"transfer\",\"data\":{\"target\":\"2000\"}}}}; with
--hold-phase, FILE holds {\"numbers\":{\"0\":{\"module\":\"hold\"}}}.";

/// Everything `mfp-load` accepts.
#[derive(Debug, Parser)]
#[command(
    name = "mfp-load",
    about = "Load generator for metaflow-proxy: sets up calls over SIP/UDP, relays G.711-sized RTP \
through the proxy and reports loss, added latency, CPU per packet and memory per call",
    after_help = PROXY_RECIPE
)]
pub(crate) struct Args {
    /// SIP address the proxy listens on (its --sip-listen); INVITEs go there.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:5060")]
    pub proxy: SocketAddr,

    /// Address this tool's PBX side (UAS) listens on; give the proxy the same --upstream.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:5070")]
    pub upstream: SocketAddr,

    /// The proxy's HTTP API (its --api-listen), read for /metrics counters.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8000")]
    pub api: SocketAddr,

    /// Local address for the tool's caller (UAC) SIP socket and every RTP endpoint.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub local_ip: IpAddr,

    /// Number of calls set up through the proxy.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=20000))]
    pub calls: u32,

    /// New calls started per second during set-up (and BYEs per second at the end).
    #[arg(long, value_name = "PER_SEC", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100000))]
    pub rate: u32,

    /// Seconds of media after all calls are set up.
    #[arg(long, value_name = "SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration: u64,

    /// Extra direct (proxy-less) endpoint pairs, as a fraction of --calls, that send the same
    /// RTP during the media phase to give a same-run latency baseline.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.1, value_parser = parse_fraction)]
    pub direct_share: f64,

    /// Send the baseline pairs through rtpengine instead: each pair is set up with an ng
    /// `offer` and `answer` at this control address (rtpengine's --listen-ng), and each side
    /// sends where rtpengine's answer says. Give its pid with --direct-via-pid.
    #[arg(long, value_name = "ADDR:PORT", conflicts_with = "direct_via")]
    pub direct_via_rtpengine: Option<SocketAddr>,

    /// Exactly this many direct pairs, instead of a share of --calls. With `--calls 1
    /// --direct-pairs N` a run is (almost) only the baseline: run it with the same load as a
    /// proxied run to price the relay by the whole machine's CPU (the kernel path included).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=20000))]
    pub direct_pairs: Option<u32>,

    /// Send the baseline pairs through a relay at this address instead of directly: pair i's
    /// a side sends to PORT+2i and its b side to PORT+2i+1 (`mfp-plain-relay` listens so).
    /// Latency and CPU of the proxy are then compared with that relay's in the same run.
    #[arg(long, value_name = "ADDR:PORT")]
    pub direct_via: Option<SocketAddr>,

    /// Process id of the --direct-via relay, for its CPU per relayed packet.
    #[arg(long, value_name = "PID")]
    pub direct_via_pid: Option<u32>,

    /// Threads pacing RTP sends (streams are spread over them by deadline order).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub sender_threads: u32,

    /// Share N RTP sockets per side among all calls (and N per side among the direct pairs)
    /// instead of one socket per endpoint, and send and receive in batches (`sendmmsg`,
    /// `recvmmsg`, one receiving thread per socket): the tool's own cost per packet falls to
    /// what lets it offer 500,000 packets/s on two cores. Every call's endpoint on a side then
    /// announces one of these N addresses.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub shared_endpoints: Option<u32>,

    /// Tokio worker threads receiving RTP on every endpoint socket.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub receiver_threads: u32,

    /// Process id of the proxy for CPU and memory figures; found by the name
    /// `metaflow-proxy` in /proc when omitted (figures are skipped if none or several match).
    #[arg(long, value_name = "PID")]
    pub proxy_pid: Option<u32>,

    /// Seconds a call may take to be set up (INVITE retransmitted every 500 ms meanwhile).
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub setup_timeout: u64,

    /// After the media phase, send `*` then `0` as RFC 4733 events on every call and measure
    /// the time until the proxy's BYE (the proxy needs a metaflow mapping `0` to `hangup`).
    #[arg(long, conflicts_with = "dtmf_transfer")]
    pub dtmf_hangup: bool,

    /// After the media phase, send `*` then `0` on every call and measure the time until the
    /// proxy's REFER reaches the PBX side, which accepts it (202) and reports success (NOTIFY
    /// with sipfrag 200); the proxy needs a metaflow mapping `0` to `transfer`.
    #[arg(long)]
    pub dtmf_transfer: bool,

    /// With `--dtmf-transfer`: the PBX side answers every REFER 405 (Method Not Allowed), so the
    /// proxy places the call to the target itself; the PBX side answers that INVITE, and the
    /// time from `*0` to its arrival (the decision-to-target-INVITE latency) is measured too.
    #[arg(long, requires = "dtmf_transfer")]
    pub refuse_refer: bool,

    /// After the media phase, send `*` then `0` on every call to put it on hold (the proxy
    /// needs a metaflow mapping `0` to `hold`), then run a second media phase of the same
    /// length: the endpoints keep sending, the proxy drops their audio and plays music on hold
    /// both ways. Prints the proxy's CPU per packet it sent in each phase, from the same run.
    #[arg(long, conflicts_with_all = ["dtmf_hangup", "dtmf_transfer"])]
    pub hold_phase: bool,
}

/// Parses a fraction in `0.0..=1.0`.
fn parse_fraction(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("`{text}` is outside 0.0..=1.0"))
    }
}

/// Which action the `*0` presses trigger at the proxy, and so which message ends the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DtmfAction {
    /// `0` maps to `hangup`: the clock stops at the proxy's BYE at the caller.
    Hangup,
    /// `0` maps to `transfer`: the clock stops at the proxy's REFER at the PBX side.
    Transfer,
}

impl Args {
    /// The DTMF phase asked for, if any.
    pub(crate) fn dtmf_action(&self) -> Option<DtmfAction> {
        if self.dtmf_transfer {
            Some(DtmfAction::Transfer)
        } else if self.dtmf_hangup {
            Some(DtmfAction::Hangup)
        } else {
            None
        }
    }

    /// Number of direct baseline endpoint pairs: `--direct-pairs`, else `--direct-share` of the
    /// calls.
    pub(crate) fn direct_pairs(&self) -> u32 {
        if let Some(pairs) = self.direct_pairs {
            return pairs;
        }
        // The product is at most 20000, so the cast back cannot truncate.
        (f64::from(self.calls) * self.direct_share).ceil() as u32
    }
}
