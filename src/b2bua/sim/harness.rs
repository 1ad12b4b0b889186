//! The simulation: the phone, the core and the PBX joined by a [`Network`] on a fake clock, in
//! the style of quinn-proto's test `Pair`. Time only moves to the next thing that happens (the
//! core's next deadline, the next datagram's arrival, an endpoint's retransmission), so a call
//! of minutes runs in microseconds and every run with the same seed is the same run.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::base::CallEvent;
use crate::metrics::Metrics;
use crate::sip::SipMessage;
use crate::sip::transport::{Peer, Transport};
use crate::sip::txn::Timers;

use super::super::{B2bua, CoreConfig, Input, Output, RateLimit, StaticMetaflows};
use super::endpoint::Endpoint;
use super::media::FakeMedia;
use super::net::{Datagram, NetConfig, Network};

/// The proxy's SIP address.
pub(super) const PROXY: &str = "192.0.2.1:5060";
/// The phone's SIP address (the a-leg).
pub(super) const PHONE: &str = "192.0.2.10:5062";
/// The PBX's SIP address (the upstream, the b-leg).
pub(super) const PBX: &str = "192.0.2.20:5070";
/// The PBX host written into transfer `Refer-To` URIs.
pub(super) const PBX_HOST: &str = "pbx.example.com";
/// Steps after which a run is declared stuck (a busy loop in the core or the harness).
pub(super) const MAX_STEPS: usize = 200_000;

/// A socket address constant.
pub(super) fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// Which scripted endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    /// The caller, a-leg.
    Phone,
    /// The upstream, b-leg.
    Pbx,
}

impl Side {
    /// The endpoint across the proxy.
    pub(super) fn other(self) -> Side {
        match self {
            Side::Phone => Side::Pbx,
            Side::Pbx => Side::Phone,
        }
    }
}

/// How a simulation is set up.
#[derive(Clone, Debug)]
pub(super) struct SimConfig {
    /// The one seed of every random choice: the core's tags and the network's delays and losses.
    pub(super) seed: u64,
    /// Latency, jitter and loss.
    pub(super) net: NetConfig,
    /// The account metaflow owned by the a-leg of every call, as Kazoo JSON.
    pub(super) metaflows: Option<Value>,
    /// The core's call limit.
    pub(super) max_calls: usize,
    /// The core's transaction limit.
    pub(super) max_transactions: usize,
    /// The core's Timer C.
    pub(super) timer_c: Duration,
    /// The core's no-answer limit.
    pub(super) no_answer_timeout: Option<Duration>,
    /// The core's scanner User-Agent prefixes.
    pub(super) scanner_user_agents: Vec<String>,
    /// The core's per-source rate limit.
    pub(super) rate_limit: Option<RateLimit>,
    /// The core's `pbx_sources`: where else the PBX's requests may come from.
    pub(super) pbx_sources: Vec<crate::base::TrustedSource>,
    /// Sources the rate limit never counts.
    pub(super) rate_limit_exempt: Vec<crate::base::TrustedSource>,
    /// The core's `max_registrations`.
    pub(super) max_registrations: usize,
    /// The core's `advertise`: the address written instead of the bound one.
    pub(super) advertise: Option<std::net::SocketAddr>,
    /// The core's `placed_call_from`.
    pub(super) placed_call_from: crate::base::PlacedCallFrom,
}

impl Default for SimConfig {
    /// Seed 1, a clean network, no metaflows, generous limits, Timer C at its default, no
    /// no-answer limit, and the scanner list and rate limit at their defaults.
    fn default() -> Self {
        SimConfig {
            seed: 1,
            net: NetConfig::default(),
            metaflows: None,
            max_calls: 100,
            max_transactions: 10_000,
            timer_c: crate::b2bua::DEFAULT_TIMER_C,
            no_answer_timeout: None,
            scanner_user_agents: crate::sip::validate::default_scanner_user_agents(),
            rate_limit: Some(RateLimit::default()),
            max_registrations: 1000,
            advertise: None,
            pbx_sources: Vec::new(),
            rate_limit_exempt: Vec::new(),
            placed_call_from: crate::base::PlacedCallFrom::Staying,
        }
    }
}

/// The world of one test.
pub(super) struct Sim {
    /// The system under test, driven only through its public doors.
    pub(super) core: B2bua,
    /// What the core asked of the media plane.
    pub(super) media: FakeMedia,
    /// The wire between everyone.
    pub(super) net: Network,
    /// The caller.
    pub(super) phone: Endpoint,
    /// The upstream.
    pub(super) pbx: Endpoint,
    /// The fake clock.
    pub(super) now: Instant,
    /// Time zero of the run: times in the transcript are relative to it.
    pub(super) start: Instant,
    /// Every event the core emitted: (caller's Call-ID, event).
    pub(super) events: Vec<(String, CallEvent)>,
    /// Every recording request the core made (StartRecording / StopRecording /
    /// MaskRecording), in order.
    pub(super) recordings: Vec<Output>,
    /// Every sound the core asked the shell to produce: (call, playback, sound).
    pub(super) sounds: Vec<(
        crate::base::CallKey,
        crate::base::PlaybackId,
        crate::audio::SoundRef,
    )>,
    /// Every output of the core as text with its time: two runs are the same run when their
    /// transcripts are equal.
    pub(super) transcript: Vec<String>,
    /// Datagrams the core sent to addresses nobody listens on.
    pub(super) strays: Vec<Datagram>,
}

impl Sim {
    /// A simulation with seed `seed` and everything else by default.
    pub(super) fn new(seed: u64) -> Self {
        Sim::with(SimConfig {
            seed,
            ..SimConfig::default()
        })
    }

    /// A simulation set up by `cfg`.
    pub(super) fn with(cfg: SimConfig) -> Self {
        let mut rng = fastrand::Rng::with_seed(cfg.seed);
        let timers = Timers::default();
        let core_cfg = CoreConfig {
            local: addr(PROXY),
            upstream: Some(addr(PBX)),
            upstream_host: PBX_HOST.into(),
            media_ip: IpAddr::from([192, 0, 2, 1]),
            timers,
            max_calls: cfg.max_calls,
            upstream_transport: Transport::Udp,
            max_transactions: cfg.max_transactions,
            rng_seed: Some(rng.u64(..)),
            timer_c: cfg.timer_c,
            no_answer_timeout: cfg.no_answer_timeout,
            scanner_user_agents: cfg.scanner_user_agents.clone(),
            rate_limit: cfg.rate_limit,
            pbx_sources: cfg.pbx_sources.clone(),
            rate_limit_exempt: cfg.rate_limit_exempt.clone(),
            advertise: cfg.advertise,
            max_registrations: cfg.max_registrations,
            placed_call_from: cfg.placed_call_from.clone(),
        };
        let media = FakeMedia::default();
        let mut core = B2bua::new(core_cfg, Arc::new(Metrics::new()), Box::new(media.clone()));
        if let Some(json) = &cfg.metaflows {
            let flows = crate::metaflow::parse_metaflows(json).unwrap();
            core.set_resolver(Box::new(StaticMetaflows(Some(Arc::new(flows)))));
        }
        let now = Instant::now();
        Sim {
            core,
            media,
            net: Network::new(cfg.net, rng),
            phone: Endpoint::new("phone", addr(PHONE), addr(PROXY), timers),
            pbx: Endpoint::new("pbx", addr(PBX), addr(PROXY), timers),
            now,
            start: now,
            events: Vec::new(),
            recordings: Vec::new(),
            sounds: Vec::new(),
            transcript: Vec::new(),
            strays: Vec::new(),
        }
    }

    /// The endpoint on `side`.
    pub(super) fn ep(&mut self, side: Side) -> &mut Endpoint {
        match side {
            Side::Phone => &mut self.phone,
            Side::Pbx => &mut self.pbx,
        }
    }

    /// Time since the start of the run.
    pub(super) fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// `side` sends `msg` to the proxy now.
    pub(super) fn send(&mut self, side: Side, msg: &SipMessage) {
        let now = self.now;
        self.ep(side).send(now, msg);
        self.flush(side);
    }

    /// Hands one input other than a datagram to the core now.
    pub(super) fn input(&mut self, input: Input<'_>) {
        self.core.handle(self.now, input);
        self.drain_core();
    }

    /// Puts what an endpoint wants sent on the wire.
    fn flush(&mut self, side: Side) {
        let now = self.now;
        let from = self.ep(side).addr;
        let to = self.ep(side).proxy();
        for data in self.ep(side).take_outbox() {
            self.net.send(now, Datagram { from, to, data });
        }
    }

    /// Takes every output the core queued: datagrams go on the wire, the rest is written down.
    fn drain_core(&mut self) {
        let t = self.elapsed().as_micros();
        while let Some(out) = self.core.poll_output() {
            match &out {
                Output::Send { to, data, connect } => {
                    let text = String::from_utf8_lossy(data);
                    let flow = if to.transport.is_reliable() && !connect {
                        " on its flow"
                    } else {
                        ""
                    };
                    self.transcript
                        .push(format!("{t}us send {to}{flow}\n{text}"));
                    let dgram = Datagram {
                        from: addr(PROXY),
                        to: to.addr,
                        data: data.clone(),
                    };
                    self.net.send(self.now, dgram);
                }
                Output::Event { call_id, event } => {
                    self.transcript
                        .push(format!("{t}us event {call_id} {event:?}"));
                    self.events.push((call_id.clone(), event.clone()));
                }
                Output::ResolveSound { call, id, sound } => {
                    self.transcript.push(format!("{t}us {out:?}"));
                    self.sounds.push((*call, *id, sound.clone()));
                }
                Output::StartRecording { .. }
                | Output::StopRecording { .. }
                | Output::MaskRecording { .. } => {
                    self.transcript.push(format!("{t}us {out:?}"));
                    self.recordings.push(out);
                }
            }
        }
    }

    /// When the next thing happens, if anything is pending.
    pub(super) fn next_event(&self) -> Option<Instant> {
        [
            self.core.poll_timeout(),
            self.net.next_delivery(),
            self.phone.next_timer(),
            self.pbx.next_timer(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Moves the clock to the next thing that happens and makes it happen. False when nothing
    /// is pending.
    pub(super) fn step(&mut self) -> bool {
        let Some(at) = self.next_event() else {
            return false;
        };
        self.now = self.now.max(at);
        let now = self.now;
        if let Some(d) = self.net.pop_due(now) {
            self.deliver(d);
        } else if self.core.poll_timeout().is_some_and(|t| t <= now) {
            self.core.handle(now, Input::Timeout);
            self.drain_core();
        } else {
            for side in [Side::Phone, Side::Pbx] {
                if self.ep(side).next_timer().is_some_and(|t| t <= now) {
                    self.ep(side).on_timer(now);
                    self.flush(side);
                }
            }
        }
        true
    }

    /// Hands a datagram that arrived to whoever listens at its address.
    fn deliver(&mut self, d: Datagram) {
        let now = self.now;
        if d.to == addr(PROXY) {
            let from = Peer::udp(d.from);
            self.core.handle(
                now,
                Input::Datagram {
                    from,
                    data: &d.data,
                },
            );
            self.drain_core();
        } else if d.to == self.phone.addr {
            self.phone.receive(now, &d.data);
            self.flush(Side::Phone);
        } else if d.to == self.pbx.addr {
            self.pbx.receive(now, &d.data);
            self.flush(Side::Pbx);
        } else {
            self.strays.push(d);
        }
    }

    /// Runs everything that happens in the next `d`, and leaves the clock `d` later.
    pub(super) fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        let mut steps = 0;
        while self.next_event().is_some_and(|t| t <= end) {
            self.step();
            steps += 1;
            assert!(
                steps < MAX_STEPS,
                "simulation stuck at {:?}",
                self.elapsed()
            );
        }
        self.now = end;
    }

    /// Runs until nothing is in flight on the network (timers falling due meanwhile run too).
    pub(super) fn settle(&mut self) {
        let mut steps = 0;
        while self.net.in_flight() > 0 {
            self.step();
            steps += 1;
            assert!(
                steps < MAX_STEPS,
                "simulation stuck at {:?}",
                self.elapsed()
            );
        }
    }
}
