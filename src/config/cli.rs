//! Command line: run the proxy (the default), `check-config`, `analyze` a capture offline,
//! `replay` it through a running proxy, or `ctl` a running proxy over its API.
//!
//! Run flags mirror the configuration file's keys; `Config::load` merges them over the file.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{
    LogFormat, parse_media_fastpath, parse_rtp_latch, parse_rtp_ports, parse_rtp_source_match,
};
use crate::media::latch::{LatchMode, SourceMatch};

/// Everything the `metaflow-proxy` binary accepts. With no subcommand it runs the proxy.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "metaflow-proxy",
    version,
    about = "SIP B2BUA-lite media proxy that runs Kazoo-style metaflow codes dialed on live calls",
    long_about = "SIP B2BUA-lite media proxy placed in front of a PBX. It forwards SIP between \
phones and the upstream PBX, anchors the RTP of every call on its own ports, watches each leg for \
RFC 4733 telephone-events and executes metaflow codes (transfer, record, hangup) on the live call.\n\n\
Settings come from embedded defaults, then the file given with --config (top-level keys named \
like the long flags, e.g. sip-listen = \"0.0.0.0:5060\"), then the flags below; a flag wins \
over the file. With no arguments at all the proxy listens on 127.0.0.1 and keeps data in ./data.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do instead of running the proxy.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// TOML configuration file; see config/metaflow-proxy.toml for every key and its default.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address for SIP over UDP and TCP [default: 127.0.0.1:5060].
    #[arg(long, value_name = "ADDR:PORT")]
    pub sip_listen: Option<SocketAddr>,

    /// The PBX every new call from a phone is sent to, resolved at start-up.
    /// Without it new calls are answered 503.
    #[arg(long, value_name = "HOST:PORT")]
    pub upstream: Option<String>,

    /// The address written into Via and Contact instead of the bound one, for a host behind
    /// 1:1 NAT: IP (the bound port) or IP:PORT [default: the bound address].
    #[arg(long, value_name = "IP[:PORT]", value_parser = crate::config::parse_sip_advertise)]
    pub sip_advertise: Option<(IpAddr, Option<u16>)>,

    /// The address written into SDP instead of --media-ip, which stays the one bound (1:1 NAT)
    /// [default: the bound media address].
    #[arg(long, value_name = "IP")]
    pub media_advertise: Option<IpAddr>,

    /// Address written into SDP and bound for RTP [default: the --sip-listen address].
    /// Required when --sip-listen is 0.0.0.0 or [::].
    #[arg(long, value_name = "IP")]
    pub media_ip: Option<IpAddr>,

    /// Inclusive UDP port range for RTP/RTCP, both ends >= 1024 [default: 30000-39999].
    #[arg(long, value_name = "LOW-HIGH", value_parser = parse_rtp_ports)]
    pub rtp_ports: Option<(u16, u16)>,

    /// Which sources may latch a leg's RTP: "strict" (only its SDP address), "learning" (its SDP
    /// address, or a NATed source once the SDP address stayed silent for --rtp-learning-ms)
    /// or "first-packet" (whoever sends first; lab use only, open to hijacking)
    /// [default: learning].
    #[arg(long, value_name = "MODE", value_parser = parse_rtp_latch)]
    pub rtp_latch: Option<LatchMode>,

    /// Milliseconds a leg's SDP address must stay silent before a NATed source may latch
    /// (learning mode), 1-10000 [default: 500].
    #[arg(long, value_name = "MS")]
    pub rtp_learning_ms: Option<u64>,

    /// How a packet's source is compared with the leg's SDP address: "ip" or "ip-port"
    /// [default: ip].
    #[arg(long, value_name = "RULE", value_parser = parse_rtp_source_match)]
    pub rtp_source_match: Option<SourceMatch>,

    /// Address of the HTTP API: /live, /ready, /metrics and /v2 [default: 127.0.0.1:8000].
    #[arg(long, value_name = "ADDR:PORT")]
    pub api_listen: Option<SocketAddr>,

    /// Directory for the embedded store, recordings and events.jsonl; created if missing
    /// [default: ./data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Where the /v2 documents live: redb (the embedded file in data-dir) or a PostgreSQL URL
    /// shared by several proxies, postgres://USER@HOST:PORT/DB [default: redb].
    #[arg(long, value_name = "redb|URL")]
    pub store: Option<String>,

    /// This proxy's name among the proxies sharing a PostgreSQL store [default: the advertised
    /// SIP address].
    #[arg(long, value_name = "NAME")]
    pub node_id: Option<String>,

    /// The API address the other proxies of a cluster reach this one at [default: api-listen].
    #[arg(long, value_name = "ADDR:PORT")]
    pub api_advertise: Option<SocketAddr>,

    /// Account-level metaflows for the default account (one Kazoo metaflow object, JSON).
    #[arg(long, value_name = "FILE.json")]
    pub metaflows: Option<PathBuf>,

    /// A token accepted in the X-Auth-Token header of the /v2 API; repeat for several. Added to
    /// the file's api-auth-tokens. Prefer the file: arguments are visible to local users.
    /// Without any, a token is generated into DATA_DIR/api-token and accepted instead.
    #[arg(long = "api-auth-token", value_name = "TOKEN")]
    pub api_auth_tokens: Vec<String>,

    /// Seconds without RTP or RTCP on a call before it is torn down [default: 60].
    #[arg(long, value_name = "SECS")]
    pub media_timeout: Option<u64>,

    /// Seconds without RTP or RTCP on a call whose every stream is on hold before it is torn
    /// down; 0 never tears a held call down [default: 3600].
    #[arg(long, value_name = "SECS")]
    pub media_timeout_hold: Option<u64>,
    /// Seconds the PBX may leave a call without a provisional or final response before the
    /// proxy cancels it and answers the caller 408 (RFC 3261 Timer C, at least 180)
    /// [default: 180].
    #[arg(long, value_name = "SECS")]
    pub timer_c: Option<u64>,

    /// Milliseconds between DTMF digits before a code is decided, for a metaflow that names no
    /// `digit_timeout` and whose account's metaflows name no `digit_timeout_ms` (Kazoo's
    /// system setting) [default: 800].
    #[arg(long, value_name = "MS")]
    pub digit_timeout_ms: Option<u64>,

    /// Kazoo's use_fast_rearm: the binding digit pressed in the middle of a code starts the
    /// code over: true or false [default: false].
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub use_fast_rearm: Option<bool>,

    /// Seconds a call may ring before the proxy cancels it and answers the caller 480;
    /// 0 leaves ringing to the PBX [default: 0].
    #[arg(long, value_name = "SECS")]
    pub no_answer_timeout: Option<u64>,

    /// Seconds a SIP over TCP connection may carry no traffic either way before it is closed; at least 1 [default: 600].
    #[arg(long, value_name = "SECS")]
    pub tcp_idle_timeout: Option<u64>,

    /// Seconds an accepted SIP over TCP connection may stay silent from the start before it is closed; at least 1 [default: 30].
    #[arg(long, value_name = "SECS")]
    pub tcp_first_byte_timeout: Option<u64>,

    /// Seconds a SIP over TCP message head may take from its first byte before the connection is closed; at least 1 [default: 10].
    #[arg(long, value_name = "SECS")]
    pub tcp_header_timeout: Option<u64>,

    /// Most accepted SIP over TCP connections open at once from one source IP; more are closed at once; at least 1 [default: 32].
    #[arg(long, value_name = "COUNT")]
    pub tcp_max_per_source: Option<u64>,

    /// Seconds an HTTP API request head may take from its first byte (or from the connection's start) before the connection is closed; at least 1 [default: 10].
    #[arg(long, value_name = "SECS")]
    pub api_header_timeout: Option<u64>,

    /// Seconds an HTTP API keep-alive connection may wait for its next request before it is closed; at least 1 [default: 60].
    #[arg(long, value_name = "SECS")]
    pub api_idle_timeout: Option<u64>,

    /// Most HTTP API connections open at once from one source IP; more are closed at once; at least 1 [default: 32].
    #[arg(long, value_name = "COUNT")]
    pub api_max_per_source: Option<u64>,

    /// Log level (trace, debug, info, warn, error) or filter directives such as
    /// info,metaflow_proxy::sip=debug; RUST_LOG overrides it [default: info].
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Log line format, written to standard error [default: text].
    #[arg(long, value_name = "FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Transport towards the upstream PBX: udp or tcp [default: udp].
    #[arg(long, value_name = "TRANSPORT", value_parser = ["udp", "tcp", "UDP", "TCP"])]
    pub upstream_transport: Option<String>,

    /// Relay threads, each with its own event loop and the streams of its calls; at least 1
    /// [default: one per CPU].
    #[arg(long, value_name = "N")]
    pub media_workers: Option<u64>,

    /// Forward latched audio in the kernel (eBPF at TC ingress): "auto" (when the process may
    /// load BPF programs, else the userspace relay), "kernel" (or refuse to start) or "off"
    /// [default: auto].
    #[arg(long, value_name = "MODE", value_parser = parse_media_fastpath)]
    pub media_fastpath: Option<crate::media::fastpath::FastPathMode>,

    /// Who the calls the proxy places (transfers, callflow, intercept, move) say they are
    /// from: "staying" (the party that stays, e.g. the transferee), "replaced" (the party whose
    /// place is taken, e.g. the transferor, as Kazoo) or a sip:user@host URI [default: staying].
    #[arg(long, value_name = "WHO", value_parser = clap::value_parser!(crate::base::PlacedCallFrom))]
    pub placed_call_from: Option<crate::base::PlacedCallFrom>,

    /// Seconds calls may go on after SIGTERM before they are hung up [default: 30].
    #[arg(long, value_name = "SECS")]
    pub shutdown_grace: Option<u64>,

    /// Days recordings are kept before a periodic sweep deletes them; 0 keeps them forever
    /// [default: 0].
    #[arg(long, value_name = "DAYS")]
    pub recordings_retention_days: Option<u64>,

    /// RFC 3261 timer T1 (round-trip estimate) in milliseconds; at least 1 [default: 500].
    #[arg(long, value_name = "MS")]
    pub sip_t1_ms: Option<u64>,

    /// RFC 3261 timer T2 (longest retransmission interval) in milliseconds; at least 1
    /// [default: 4000].
    #[arg(long, value_name = "MS")]
    pub sip_t2_ms: Option<u64>,

    /// RFC 3261 timer T4 (how long a message may stay in the network) in milliseconds; at
    /// least 1 [default: 5000].
    #[arg(long, value_name = "MS")]
    pub sip_t4_ms: Option<u64>,

    /// New INVITEs beyond this many calls get 503; at least 1 [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_calls: Option<u64>,

    /// Requests beyond this many SIP transactions in memory get 503; at least 1
    /// [default: 100000].
    #[arg(long, value_name = "N")]
    pub max_transactions: Option<u64>,

    /// Phones registered through the proxy at once; a REGISTER adding one more gets 503; at
    /// least 1 [default: 100000].
    #[arg(long, value_name = "N")]
    pub max_registrations: Option<u64>,

    /// Another source of the PBX's requests besides --upstream: an address (10.0.0.5, any
    /// port), a network (10.0.0.0/24) or an address and port; repeat for several. Added to the
    /// file's pbx-addresses. Needed when the PBX opens its own TCP connections or sends from
    /// other addresses.
    #[arg(long = "pbx-address", value_name = "ADDR")]
    pub pbx_addresses: Vec<String>,

    /// A source never rate limited, besides the PBX: a SIP dispatcher in front of the proxy,
    /// whose one address carries every phone's traffic (10.0.0.5, 10.0.0.0/24 or ADDR:PORT);
    /// repeat for several. Added to the file's rate-limit-exempt.
    #[arg(long = "rate-limit-exempt", value_name = "ADDR")]
    pub rate_limit_exempt: Vec<String>,

    /// Drop requests whose User-Agent names a known SIP scanner (friendly-scanner, sipvicious,
    /// sipcli...) without any answer: true or false [default: true].
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub drop_scanners: Option<bool>,

    /// A User-Agent prefix (case-insensitive) to drop as a scanner; repeat for several. Added
    /// to the file's scanner-user-agents (or to the built-in list).
    #[arg(long = "scanner-user-agent", value_name = "PREFIX")]
    pub scanner_user_agents: Vec<String>,

    /// A URL call events are POSTed to (http:// only: no TLS client is built in); repeat for
    /// several. Added to the file's webhook-urls.
    #[arg(long = "webhook-url", value_name = "URL")]
    pub webhook_urls: Vec<String>,

    /// An event kind sent to the webhooks (call_started, digit, metaflow_match... or a Kazoo
    /// hook name: channel_create, channel_answer, channel_destroy); repeat for several. Added
    /// to the file's webhook-events; none sends every kind.
    #[arg(long = "webhook-event", value_name = "KIND")]
    pub webhook_events: Vec<String>,

    /// The HMAC-SHA256 key signing webhook requests (X-Metaflow-Signature). Visible to other
    /// users in the process list: prefer the file's webhook-secret.
    #[arg(long, value_name = "SECRET")]
    pub webhook_secret: Option<String>,

    /// Datagrams one source IP may send per --rate-limit-window before it is blocked; 0 turns
    /// the per-source rate limit off. The upstream PBX is never limited [default: 200].
    #[arg(long, value_name = "N")]
    pub rate_limit_requests: Option<u64>,

    /// The per-source rate limit's sampling window in seconds, 1-86400 [default: 2].
    #[arg(long, value_name = "SECS")]
    pub rate_limit_window: Option<u64>,

    /// Seconds a source over the rate limit stays blocked (its datagrams dropped unanswered),
    /// 1-86400 [default: 60].
    #[arg(long, value_name = "SECS")]
    pub rate_limit_block: Option<u64>,

    /// The most source IPs the rate limiter tracks; beyond it the oldest entry is evicted
    /// [default: 10000].
    #[arg(long, value_name = "N")]
    pub rate_limit_max_sources: Option<usize>,
}

/// The subcommands that do something other than run the proxy.
#[derive(Debug, Clone, Subcommand, PartialEq)]
pub enum Command {
    /// Validate a configuration file and exit: 0 and a summary when it is usable, 1 and the
    /// reason (naming the key) when it is not.
    CheckConfig {
        /// The TOML configuration file to check.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
    /// Read a pcap capture offline and print every RFC 4733 DTMF digit per RTP stream (time,
    /// digit, duration, payload type, source); with --metaflows also what the metaflow engine
    /// would have executed and why.
    Analyze {
        /// The capture to read (pcap format).
        #[arg(value_name = "CAPTURE")]
        capture: PathBuf,
        /// Metaflow object (JSON) to replay the digits against.
        #[arg(long, value_name = "FILE.json")]
        metaflows: Option<PathBuf>,
        /// Print one JSON object per line (type digit, match or no_match) instead of text.
        #[arg(long)]
        json: bool,
        /// Treat this RTP payload type as telephone-event, optionally with its clock rate
        /// (e.g. 101 or 101/8000), instead of detecting it from the capture's SDP.
        #[arg(long, value_name = "PT[/RATE]", value_parser = parse_event_pt)]
        event_pt: Option<EventPayloadType>,
    },
    /// Replay a capture through a running proxy: play the call's caller and its PBX from the
    /// capture's SIP and RTP, and report the digits, metaflow modules, REFERs, BYEs,
    /// recordings and media the proxy produced. The proxy's --upstream must be --pbx-listen.
    Replay {
        /// The capture (pcap or pcapng), or a folder of NAME.pcap + NAME.expect.toml pairs.
        #[arg(value_name = "CAPTURE|DIR")]
        capture: PathBuf,
        /// The proxy's SIP address, where the caller sends its INVITE.
        #[arg(long, value_name = "ADDR:PORT")]
        proxy: SocketAddr,
        /// Where the stand-in PBX listens; start the proxy with --upstream set to this address.
        /// The caller's SIP and both RTP sockets bind its IP too; Via, Contact and SDP carry it,
        /// or for a wildcard (0.0.0.0) the local address that routes to --proxy.
        #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:5090")]
        pbx_listen: SocketAddr,
        /// Play this many times faster than captured (0.1-100).
        #[arg(long, value_name = "X", default_value_t = 1.0, value_parser = parse_speed)]
        speed: f64,
        /// The proxy's events.jsonl (its DATA_DIR/events.jsonl), read for digits, metaflow
        /// matches, modules and recordings; without it only SIP and RTP are reported.
        #[arg(long, value_name = "PATH")]
        events: Option<PathBuf>,
        /// Receive the proxy's webhooks here (start it with --webhook-url http://ADDR:PORT/):
        /// the same events as --events, for a proxy on another host.
        #[arg(long, value_name = "ADDR:PORT")]
        webhook_listen: Option<SocketAddr>,
        /// Expected outcome (TOML, or JSON by extension): exit 1 with a diff when not met.
        #[arg(long, value_name = "FILE")]
        expect: Option<PathBuf>,
        /// Milliseconds to wait after the capture's last packet before hanging up.
        #[arg(long, value_name = "MS", default_value_t = 1000)]
        linger_ms: u64,
    },
    /// Control a running proxy over its HTTP API: calls, hangup, reload, stats.
    #[command(long_about = super::ctl_args::LONG_ABOUT)]
    Ctl(super::ctl_args::CtlArgs),
}

/// Parses `--speed`: a finite factor between 0.1 and 100.
pub fn parse_speed(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && (0.1..=100.0).contains(x))
        .ok_or_else(|| format!("\"{text}\" is not a speed factor between 0.1 and 100"))
}

/// A telephone-event payload type forced on the command line, e.g. `101/8000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayloadType {
    /// RTP payload type number, 0-127.
    pub payload_type: u8,
    /// RTP clock rate in Hz when given; `None` lets the analyzer use the SDP's or 8000.
    pub clock_rate: Option<u32>,
}

/// Parses `PT` or `PT/RATE` for `--event-pt`.
pub fn parse_event_pt(text: &str) -> Result<EventPayloadType, String> {
    let (pt_text, rate_text) = match text.split_once('/') {
        Some((pt, rate)) => (pt, Some(rate)),
        None => (text, None),
    };
    let payload_type = pt_text
        .parse::<u8>()
        .ok()
        .filter(|pt| *pt <= 127)
        .ok_or_else(|| format!("\"{pt_text}\" is not an RTP payload type (0-127)"))?;
    let clock_rate = rate_text
        .map(|rate| {
            rate.parse::<u32>()
                .ok()
                .filter(|hz| *hz > 0)
                .ok_or_else(|| format!("\"{rate}\" is not a clock rate in Hz such as 8000"))
        })
        .transpose()?;
    Ok(EventPayloadType {
        payload_type,
        clock_rate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_arguments_runs_the_proxy_with_nothing_set() {
        let cli = Cli::parse_from(["metaflow-proxy"]);
        assert!(cli.command.is_none());
        assert!(cli.config.is_none() && cli.sip_listen.is_none() && cli.upstream.is_none());
        assert!(cli.api_auth_tokens.is_empty());
    }

    #[test]
    fn run_flags_are_parsed_and_typed() {
        let cli = Cli::parse_from([
            "metaflow-proxy",
            "--config",
            "x.toml",
            "--sip-listen",
            "0.0.0.0:5070",
            "--media-ip",
            "192.0.2.5",
            "--rtp-ports",
            "20000-20099",
            "--api-auth-token",
            "one",
            "--api-auth-token",
            "two",
            "--log-format",
            "json",
            "--media-timeout",
            "15",
            "--media-timeout-hold",
            "0",
        ]);
        assert_eq!(cli.config, Some(PathBuf::from("x.toml")));
        assert_eq!(cli.sip_listen, Some("0.0.0.0:5070".parse().unwrap()));
        assert_eq!(cli.media_ip, Some("192.0.2.5".parse().unwrap()));
        assert_eq!(cli.rtp_ports, Some((20000, 20099)));
        assert_eq!(cli.api_auth_tokens, vec!["one", "two"]);
        assert_eq!(cli.log_format, Some(LogFormat::Json));
        assert_eq!(cli.media_timeout, Some(15));
        assert_eq!(cli.media_timeout_hold, Some(0));
    }

    #[test]
    fn bad_flag_values_are_refused_naming_the_flag() {
        let err = Cli::try_parse_from(["metaflow-proxy", "--rtp-ports", "500-400"]).unwrap_err();
        assert!(err.to_string().contains("--rtp-ports"), "{err}");
        let err = Cli::try_parse_from(["metaflow-proxy", "--sip-listen", "nowhere"]).unwrap_err();
        assert!(err.to_string().contains("--sip-listen"), "{err}");
    }

    #[test]
    fn check_config_subcommand_takes_its_file() {
        let cli = Cli::parse_from(["metaflow-proxy", "check-config", "--config", "a.toml"]);
        assert_eq!(
            cli.command,
            Some(Command::CheckConfig {
                config: PathBuf::from("a.toml")
            })
        );
        assert!(Cli::try_parse_from(["metaflow-proxy", "check-config"]).is_err());
    }

    #[test]
    fn replay_subcommand_takes_capture_proxy_and_defaults() {
        let cli = Cli::parse_from([
            "metaflow-proxy",
            "replay",
            "pcaps/",
            "--proxy",
            "127.0.0.1:5060",
            "--speed",
            "10",
        ]);
        let Some(Command::Replay {
            capture,
            proxy,
            pbx_listen,
            speed,
            events,
            webhook_listen,
            expect,
            linger_ms,
        }) = cli.command
        else {
            panic!("not replay: {:?}", cli.command);
        };
        assert_eq!(capture, PathBuf::from("pcaps/"));
        assert_eq!(proxy, "127.0.0.1:5060".parse().unwrap());
        assert_eq!(pbx_listen, "127.0.0.1:5090".parse().unwrap());
        assert!((speed - 10.0).abs() < f64::EPSILON);
        assert!(events.is_none() && expect.is_none() && webhook_listen.is_none());
        assert_eq!(linger_ms, 1000);
        let err = Cli::try_parse_from(["metaflow-proxy", "replay", "x.pcap"]).unwrap_err();
        assert!(err.to_string().contains("--proxy"), "{err}");
        let err = Cli::try_parse_from([
            "metaflow-proxy",
            "replay",
            "x.pcap",
            "--proxy",
            "127.0.0.1:5060",
            "--speed",
            "0",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("--speed"), "{err}");
    }

    #[test]
    fn analyze_subcommand_takes_capture_and_options() {
        let cli = Cli::parse_from([
            "metaflow-proxy",
            "analyze",
            "call.pcap",
            "--metaflows",
            "mf.json",
            "--json",
            "--event-pt",
            "101/8000",
        ]);
        assert_eq!(
            cli.command,
            Some(Command::Analyze {
                capture: PathBuf::from("call.pcap"),
                metaflows: Some(PathBuf::from("mf.json")),
                json: true,
                event_pt: Some(EventPayloadType {
                    payload_type: 101,
                    clock_rate: Some(8000)
                }),
            })
        );
    }

    #[test]
    fn ctl_takes_its_options_before_or_after_the_action() {
        use crate::config::ctl_args::{CtlAction, CtlArgs};
        let cli = Cli::parse_from([
            "metaflow-proxy",
            "ctl",
            "--api",
            "127.0.0.1:9000",
            "hangup",
            "abc@host",
            "--json",
            "--token",
            "t",
        ]);
        assert_eq!(
            cli.command,
            Some(Command::Ctl(CtlArgs {
                action: CtlAction::Hangup {
                    call_id: "abc@host".into(),
                    account: None,
                },
                api: Some("127.0.0.1:9000".into()),
                token: Some("t".into()),
                config: None,
                json: true,
            }))
        );
        assert!(Cli::try_parse_from(["metaflow-proxy", "ctl"]).is_err());
        assert!(Cli::try_parse_from(["metaflow-proxy", "ctl", "hangup"]).is_err());
    }

    #[test]
    fn event_pt_accepts_pt_and_rate_only_in_range() {
        assert_eq!(
            parse_event_pt("96"),
            Ok(EventPayloadType {
                payload_type: 96,
                clock_rate: None
            })
        );
        assert!(parse_event_pt("128").is_err());
        assert!(parse_event_pt("101/0").is_err());
        assert!(parse_event_pt("x/8000").is_err());
    }
}
