//! The core state machine: owns calls and transactions, turns messages and time into actions.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::base::CallEvent;
use crate::media::MediaControl;
use crate::metrics::Metrics;
use crate::sip::names::{ACCEPT, ALLOW, RETRY_AFTER};
use crate::sip::transport::Peer;
use crate::sip::txn::{RequestEvent, ServerKey, Timers, TxLayer};
use crate::sip::{Method, SipMessage, validate};

use super::call::Call;
use super::codes::{MetaflowResolver, StaticMetaflows};
use super::entries::{ClientData, Purpose, Transactions};
use super::io::Output;
use super::timers::TimerQueue;
use super::{CallKey, Leg};

/// Static settings of the core.
#[derive(Clone, Debug, PartialEq)]
pub struct CoreConfig {
    /// The address the proxy's SIP socket is bound to (written into Via and Contact unless
    /// `advertise` says otherwise).
    pub local: SocketAddr,
    /// The address the world reaches the proxy at when it is not `local` (1:1 NAT): written
    /// into Via, Contact, Call-IDs and the Contacts of relayed REGISTERs.
    pub advertise: Option<SocketAddr>,
    /// The PBX new calls go to; None makes every new call fail with 503.
    pub upstream: Option<SocketAddr>,
    /// Host part used in `Refer-To` of blind transfers (the PBX's host as configured).
    pub upstream_host: String,
    /// The address written into anchored SDP (the advertised one when it differs from the one
    /// the media sockets are bound to).
    pub media_ip: IpAddr,
    /// SIP timer values.
    pub timers: Timers,
    /// INVITEs beyond this many active calls are refused with 503.
    pub max_calls: usize,
    /// Transport towards the PBX.
    pub upstream_transport: crate::sip::transport::Transport,
    /// Requests beyond this many transactions in memory are refused with 503.
    pub max_transactions: usize,
    /// Seed of the core's random numbers (tags, branches, Call-IDs, CSeq): a run with the same
    /// seed and the same inputs produces the same bytes. `None` seeds from the operating system.
    pub rng_seed: Option<u64>,
    /// Timer C (RFC 3261 §16.6 step 11): how long the PBX may leave our INVITE without a
    /// provisional (101-199) or final response before the proxy cancels it and answers the
    /// caller 408. Reset on each provisional, so a PBX that keeps saying "ringing" is left
    /// alone; one that goes quiet after its 180 no longer holds the call forever.
    pub timer_c: Duration,
    /// The most a call may ring (from the PBX's first provisional response) before the proxy
    /// cancels it and answers the caller 480; `None` leaves the ringing policy to the PBX.
    pub no_answer_timeout: Option<Duration>,
    /// Requests whose `User-Agent` starts (ignoring case) with one of these are dropped without
    /// any answer and counted (`sip_dropped_total{reason="scanner"}`); empty drops none.
    pub scanner_user_agents: Vec<String>,
    /// The per-source-IP rate limit (pike-style); `None` turns it off. The PBX (see
    /// `pbx_sources`) is never limited.
    pub rate_limit: Option<super::RateLimit>,
    /// Where else the PBX's requests may come from besides `upstream` itself: its other
    /// addresses and networks, or its host at any port (a PBX that opens its own TCP
    /// connections, or sends from a port other than the one it listens on). A new INVITE from
    /// the PBX goes to the registered phone its Request-URI names; from anywhere else, to the
    /// PBX.
    pub pbx_sources: Vec<crate::base::TrustedSource>,
    /// Sources never rate limited besides the PBX: a SIP dispatcher or proxy in front, whose
    /// one address carries every phone's traffic.
    pub rate_limit_exempt: Vec<crate::base::TrustedSource>,
    /// The most phones registered through the proxy at once; a REGISTER that would add one
    /// more gets 503 (refreshes and removals always pass).
    pub max_registrations: usize,
    /// Who the calls the proxy places say they are from (key `placed-call-from`).
    pub placed_call_from: crate::base::PlacedCallFrom,
}

/// Timer C's default: the customary 3 minutes (RFC 3261 §16.6 asks for more than 3 minutes;
/// Kamailio, SER and most proxies use 180 s).
pub const DEFAULT_TIMER_C: Duration = Duration::from_secs(180);

/// The B2BUA core. See the module docs of [`crate::b2bua`].
pub struct B2bua {
    /// Settings fixed at start.
    pub(super) cfg: CoreConfig,
    /// The media plane the core allocates ports through and steers; owned here so that no other
    /// part of the program changes a call's media behind the core's back.
    pub(super) media: Box<dyn MediaControl + Send>,
    /// Every random token the core writes comes from here, so a seeded run is reproducible.
    pub(super) rng: fastrand::Rng,
    /// The calls in progress; a call leaves this table when both its dialogs are over.
    pub(super) calls: HashMap<CallKey, Call>,
    /// Either leg's Call-ID to its call: in-dialog requests and responses name a Call-ID, and
    /// each leg has its own.
    pub(super) by_call_id: HashMap<String, (CallKey, Leg)>,
    /// The Call-ID of each consulted party's dialog (attended transfers): at most one per
    /// call, removed when the consultation ends or the call does.
    pub(super) consult_by_call_id: HashMap<String, CallKey>,
    /// Every server and client transaction, with the call, leg and purpose each belongs to.
    pub(super) txns: Transactions,
    /// Call-level deadlines (digit collectors, session timers, module timers, Timer C, the
    /// no-answer limit); transactions keep their own.
    pub(super) timers: TimerQueue,
    /// The key of the next call; keys are never reused, so a late event cannot hit a new call.
    pub(super) next_key: CallKey,
    /// The identity of the next module instance started on any call.
    pub(super) next_module_id: super::host::ModuleId,
    /// The identity of the next sound played on any call.
    pub(super) next_playback_id: crate::base::PlaybackId,
    /// Ends of sounds to tell their modules once the current input is handled (call, module,
    /// playback, end).
    pub(super) playback_ends: std::collections::VecDeque<(
        CallKey,
        super::host::ModuleId,
        crate::base::PlaybackId,
        crate::base::PlaybackEnd,
    )>,
    /// Draining: new INVITEs are refused with 503 while calls in progress go on.
    pub(super) shutting_down: bool,
    /// What the core decided, in order, until the shell polls it.
    pub(super) actions: std::collections::VecDeque<Output>,
    /// Process-wide SIP and call counters (shared with `/metrics`).
    pub(super) metrics: Arc<Metrics>,
    /// Where the metaflows of a new call come from (the API's directory, or a fixed file).
    pub(super) resolver: Box<dyn MetaflowResolver>,
    /// Phones registered through the proxy, so the PBX's calls reach them at their real address.
    pub(super) registrar: super::registrar::Registrar,
    /// Where binding changes go to outlive the process (the cluster link), if anywhere.
    pub(super) binding_sink: Option<Box<dyn super::persist::BindingSink>>,
    /// Caller Call-ID -> (PBX-side Call-ID, our From tag, until) after a 401/407, so that the
    /// retried INVITE reaches the PBX in the same dialog identity its nonce was issued for.
    pub(super) auth_retries: HashMap<String, (String, String, Instant)>,
    /// The core's sizes and refusals for `/metrics`.
    pub(super) stats: Arc<super::stats::CoreStats>,
    /// Per-source datagram counts and blocks, when a rate limit is configured.
    pub(super) rate_limiter: Option<super::ratelimit::RateLimiter>,
}

impl B2bua {
    /// A core with no calls.
    pub fn new(
        cfg: CoreConfig,
        metrics: Arc<Metrics>,
        media: Box<dyn MediaControl + Send>,
    ) -> Self {
        let rng = match cfg.rng_seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        let txns = TxLayer::new(cfg.timers);
        let rate_limiter = cfg.rate_limit.map(super::ratelimit::RateLimiter::new);
        B2bua {
            cfg,
            media,
            rng,
            calls: HashMap::new(),
            by_call_id: HashMap::new(),
            consult_by_call_id: HashMap::new(),
            txns,
            timers: TimerQueue::default(),
            next_key: 1,
            next_module_id: 1,
            next_playback_id: 1,
            playback_ends: std::collections::VecDeque::new(),
            shutting_down: false,
            actions: std::collections::VecDeque::new(),
            metrics,
            resolver: Box::new(StaticMetaflows(None)),
            registrar: Default::default(),
            binding_sink: None,
            auth_retries: HashMap::new(),
            stats: Arc::default(),
            rate_limiter,
        }
    }

    /// The core's figures for `/metrics`.
    pub fn stats(&self) -> Arc<super::stats::CoreStats> {
        self.stats.clone()
    }

    /// Takes the settings that may change while calls run: where new calls go (`upstream`,
    /// its host and transport, `pbx_sources`), the limits (`max_calls`, `max_transactions`,
    /// `max_registrations`, Timer C, the no-answer limit), the scanner list and the rate limit
    /// (whose table starts afresh if its parameters changed). The bound address, the timer base
    /// values, the media address and the seed stay as they were: they need a restart. Calls in
    /// progress keep their peers, dialogs and timers.
    pub fn reconfigure(&mut self, new: CoreConfig) {
        let keep = &self.cfg;
        let rate_limit_changed = new.rate_limit != keep.rate_limit;
        let cfg = CoreConfig {
            local: keep.local,
            advertise: keep.advertise,
            media_ip: keep.media_ip,
            timers: keep.timers,
            rng_seed: keep.rng_seed,
            ..new
        };
        if rate_limit_changed {
            self.rate_limiter = cfg.rate_limit.map(super::ratelimit::RateLimiter::new);
            self.stats
                .set_rate_limit_sources(self.rate_limited_sources());
        }
        self.cfg = cfg;
        tracing::debug!("call core reconfigured");
    }

    /// The address the proxy writes into its messages: `advertise`, else the bound address.
    pub(super) fn public_addr(&self) -> SocketAddr {
        self.cfg.advertise.unwrap_or(self.cfg.local)
    }

    /// Whether a message from `from` comes from the PBX: the upstream address itself (an
    /// IPv4-mapped form included) or one of the configured `pbx_sources`.
    pub(super) fn is_pbx(&self, from: Peer) -> bool {
        let canonical = |addr: SocketAddr| (addr.ip().to_canonical(), addr.port());
        self.cfg
            .upstream
            .is_some_and(|up| canonical(up) == canonical(from.addr))
            || self.cfg.pbx_sources.iter().any(|s| s.matches(from.addr))
    }

    /// The PBX as a peer, if configured.
    pub(super) fn upstream_peer(&self) -> Option<Peer> {
        self.cfg.upstream.map(|addr| Peer {
            transport: self.cfg.upstream_transport,
            addr,
        })
    }

    /// Publishes the sizes of what the core holds.
    pub(super) fn publish_sizes(&self) {
        self.stats
            .set_sizes(self.transactions(), self.calls.len(), self.registrar.len());
    }

    /// Sets where the metaflows of new calls come from.
    pub fn set_resolver(&mut self, resolver: Box<dyn MetaflowResolver>) {
        self.resolver = resolver;
    }

    /// Number of calls in progress.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Number of transactions held in memory.
    pub fn transactions(&self) -> usize {
        self.txns.len()
    }

    /// The caller's Call-ID of a call, for logs.
    pub fn call_id_of(&self, key: CallKey) -> Option<&str> {
        self.calls.get(&key).map(Call::call_id)
    }

    /// The earliest time the core must be handed [`super::Input::Timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.timers.next(), self.txns.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Feeds one received datagram.
    pub(super) fn handle_datagram(&mut self, from: Peer, data: &[u8], now: Instant) {
        if !self.admit(from, now) {
            return;
        }
        let msg = match SipMessage::parse(data) {
            Ok(m) => m,
            Err(err) => {
                self.metrics.record_sip_malformed();
                tracing::debug!(peer = %from, error = %err, "unparseable SIP message dropped");
                self.reject_garbage(from, data);
                return;
            }
        };
        if msg.is_request() {
            let method = msg
                .method()
                .map(|m| m.as_str().to_string())
                .unwrap_or_default();
            self.metrics.record_sip_in_request(&method);
            if validate::is_scanner(&msg, &self.cfg.scanner_user_agents) {
                // No answer at all, not even to a malformed one: a scanner must learn nothing.
                self.stats.dropped(super::stats::DropReason::Scanner);
                tracing::debug!(peer = %from, user_agent = msg.header(crate::sip::names::USER_AGENT).unwrap_or(""), "request of a known scanner dropped");
                return;
            }
            if let Err(rejection) = validate::check_request(&msg) {
                self.metrics.record_sip_malformed();
                tracing::debug!(peer = %from, code = rejection.code, reason = %rejection.reason, "request rejected");
                if !matches!(msg.method(), Some(Method::Ack)) {
                    // A token is drawn only for an answer that carries it.
                    let tag = rejection.to_tag.then(|| self.token(12));
                    let resp = rejection.response_to(&msg, tag.as_deref());
                    self.send_response_bytes(from, &resp);
                }
                return;
            }
            self.handle_request(from, msg, now);
        } else {
            self.metrics
                .record_sip_in_response(msg.status().unwrap_or(0));
            self.handle_response(from, msg, now);
        }
        self.publish_sizes();
    }

    /// The per-source rate limit: counts the datagram against its source IP and says whether it
    /// may be processed. Every datagram counts (requests, their retransmissions, responses and
    /// garbage) before any parsing, so a blocked source costs nothing more than a table lookup.
    /// The upstream PBX and the `rate_limit_exempt` sources are trusted and never counted.
    fn admit(&mut self, from: Peer, now: Instant) -> bool {
        if self.rate_limiter.is_none() {
            return true;
        }
        // A dual-stack socket reports IPv4 peers as `::ffff:a.b.c.d`: one key per host.
        let ip = from.addr.ip().to_canonical();
        let pbx_host = self
            .cfg
            .upstream
            .is_some_and(|up| up.ip().to_canonical() == ip);
        if pbx_host
            || self.is_pbx(from)
            || self
                .cfg
                .rate_limit_exempt
                .iter()
                .any(|s| s.matches(from.addr))
        {
            return true;
        }
        let Some(limiter) = self.rate_limiter.as_mut() else {
            return true;
        };
        let allowed = limiter.allow(ip, now);
        self.stats.set_rate_limit_sources(limiter.len());
        if !allowed {
            self.stats.dropped(super::stats::DropReason::RateLimit);
            tracing::debug!(peer = %from, "datagram of a rate-limited source dropped");
        }
        allowed
    }

    /// Source IPs the rate limiter tracks now (0 without a rate limit).
    pub fn rate_limited_sources(&self) -> usize {
        self.rate_limiter.as_ref().map_or(0, |l| l.len())
    }

    /// A message that does not parse can still be answered (400, 505, 513) if its start line is
    /// a request and the headers needed to route a response can be recovered; otherwise it is
    /// dropped, since without a Via there is nowhere RFC 3261 lets us send a response.
    fn reject_garbage(&mut self, from: Peer, data: &[u8]) {
        let tag = self.token(12);
        if let Some(resp) = validate::answer_unparseable(data, &tag) {
            self.send_response_bytes(from, &resp);
        }
    }

    fn handle_request(&mut self, from: Peer, msg: SipMessage, now: Instant) {
        let Some(method) = msg.method().cloned() else {
            return;
        };
        match self.txns.on_request(&msg, now) {
            RequestEvent::New => {}
            RequestEvent::Retransmission(resend) => {
                // Answered with what we last sent, never relayed.
                if let Some(transmit) = resend {
                    self.send_raw(transmit.to, transmit.bytes);
                }
                return;
            }
            RequestEvent::AckAbsorbed => return,
        }
        if self.names_unknown_dialog(&msg, &method) {
            // Before the limit check: a refusal that keeps no state costs the table nothing.
            self.refuse_unknown_dialog(from, &msg);
            return;
        }
        if method != Method::Ack && self.transactions() >= self.cfg.max_transactions {
            // Memory stays bounded under a flood: refuse without keeping any state.
            self.stats.rejected(super::stats::Limit::Transactions);
            let mut resp = SipMessage::response_to(&msg, 503, "Service Unavailable");
            resp.push_header(RETRY_AFTER, "5");
            self.send_response_bytes(from, &resp);
            return;
        }
        match method {
            Method::Cancel => self.on_cancel(from, msg, now),
            Method::Ack => self.on_ack(from, msg, now),
            _ if msg.to_tag().is_some() => self.on_in_dialog_request(from, msg, now),
            Method::Invite => self.on_new_invite(from, msg, now),
            Method::Options if self.addressed_to_me(&msg) && self.shutting_down => {
                // A dispatcher probing us must stop sending calls while we drain.
                let mut resp = SipMessage::response_to(&msg, 503, "Service Unavailable");
                resp.push_header(RETRY_AFTER, "5");
                self.answer_out_of_dialog(from, &msg, resp, now);
            }
            Method::Options if self.addressed_to_me(&msg) => {
                let mut resp = SipMessage::response_to(&msg, 200, "OK");
                resp.push_header(
                    ALLOW,
                    "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, NOTIFY, MESSAGE, REFER, PRACK",
                );
                resp.push_header(ACCEPT, "application/sdp");
                self.answer_out_of_dialog(from, &msg, resp, now);
            }
            _ => self.proxy_out_of_dialog(from, msg, now),
        }
    }

    /// Whether `msg` can only belong to a dialog and names none the core knows: a To tag with
    /// a Call-ID of no call in progress, or no To tag on a method that exists only inside a
    /// dialog (BYE, INFO, UPDATE, PRACK). Such a request has nowhere to go; forwarding it
    /// upstream (or keeping a transaction for its answer) let spoofed datagrams fill the
    /// transaction table. ACK is never answered and CANCEL matches transactions, not dialogs.
    fn names_unknown_dialog(&self, msg: &SipMessage, method: &Method) -> bool {
        if matches!(method, Method::Ack | Method::Cancel) {
            return false;
        }
        if msg.to_tag().is_some() {
            let known = msg.call_id().is_some_and(|c| {
                self.by_call_id
                    .get(c)
                    .is_some_and(|(key, _)| self.calls.contains_key(key))
                    || self.consult_by_call_id.contains_key(c)
            });
            return !known;
        }
        matches!(
            method,
            Method::Bye | Method::Info | Method::Update | Method::Prack
        )
    }

    /// Answers 481 without a transaction (RFC 3261 §12.2.2): a retransmission is simply
    /// answered again, so nothing is lost by keeping no state, and a flood costs no memory.
    pub(super) fn refuse_unknown_dialog(&mut self, from: Peer, msg: &SipMessage) {
        self.stats.refused_unknown_dialog();
        tracing::debug!(peer = %from, call_id = msg.call_id().unwrap_or(""), "request for an unknown dialog refused 481");
        let mut resp = SipMessage::response_to(msg, 481, "Call/Transaction Does Not Exist");
        if resp.to_tag().is_none() {
            // §8.2.6.2: a final response carries a To tag.
            let tag = self.token(12);
            super::invite::add_to_tag(&mut resp, &tag);
        }
        self.send_response_bytes(from, &resp);
    }

    /// An out-of-dialog request is for the proxy itself when its Request-URI has no user part
    /// or names the proxy's own address.
    fn addressed_to_me(&self, msg: &SipMessage) -> bool {
        let Some(uri) = request_uri(msg) else {
            return false;
        };
        match crate::sip::SipUri::parse(uri) {
            Ok(u) => {
                u.user.is_none()
                    || [self.cfg.local, self.public_addr()].iter().any(|own| {
                        u.host == own.ip().to_string() && u.port.unwrap_or(5060) == own.port()
                    })
            }
            Err(_) => false,
        }
    }

    /// Answers a request outside any call with a ready response, keeping a server transaction
    /// so that retransmissions get the same answer.
    pub(super) fn answer_out_of_dialog(
        &mut self,
        from: Peer,
        req: &SipMessage,
        mut resp: SipMessage,
        now: Instant,
    ) {
        // RFC 3261 §8.2.6.2: every response but 100 carries a To tag. A CANCEL's answer is left
        // alone: it should share the tag of the INVITE's answer, which is not ours to invent.
        if resp.status().is_some_and(|code| code > 100)
            && resp.to_tag().is_none()
            && req.method() != Some(&Method::Cancel)
        {
            let tag = self.token(12);
            super::invite::add_to_tag(&mut resp, &tag);
        }
        self.metrics
            .record_sip_out_response(resp.status().unwrap_or(500));
        let Some(key) = ServerKey::of_request(req) else {
            self.send_raw(from, resp.to_bytes());
            return;
        };
        let reliable = from.transport.is_reliable();
        self.txns
            .insert_server(key.clone(), req.clone(), from, reliable, None);
        if let Some(transmit) = self.txns.respond(&key, &resp, now) {
            self.send_raw(transmit.to, transmit.bytes);
        }
    }

    /// Sends a response without transaction state (used for requests we refuse outright).
    pub(super) fn send_response_bytes(&mut self, to: Peer, resp: &SipMessage) {
        self.metrics
            .record_sip_out_response(resp.status().unwrap_or(0));
        self.send_raw(to, resp.to_bytes());
    }

    /// Queues raw bytes for sending.
    pub(super) fn send_raw(&mut self, to: Peer, data: Vec<u8>) {
        let connect = self.upstream_peer() == Some(to);
        self.actions.push_back(Output::Send { to, data, connect });
    }

    /// Queues an event of a call for the event log and the API's live-call view.
    pub(super) fn event(&mut self, call_id: &str, event: CallEvent) {
        self.actions.push_back(Output::Event {
            call_id: call_id.to_string(),
            event,
        });
    }

    /// A random token of `len` characters from the core's generator (tags, Call-IDs, branches).
    pub(super) fn token(&mut self, len: usize) -> String {
        super::dialog::random_token(&mut self.rng, len)
    }

    /// Our Via header value with a fresh branch; returns (value, branch).
    pub(super) fn new_via(&mut self) -> (String, String) {
        let branch = format!("z9hG4bK-mfp-{}", self.token(16));
        let value = format!(
            "SIP/2.0/UDP {};branch={branch};rport",
            fmt_hostport(self.public_addr())
        );
        (value, branch)
    }

    /// Our Contact header value.
    pub(super) fn contact(&self) -> String {
        format!("<sip:metaflow-proxy@{}>", fmt_hostport(self.public_addr()))
    }

    /// Sends a request of the proxy's own in the dialog of `leg` (fresh Via and CSeq, the
    /// dialog's route set and target), after `fill` adds what the request carries, and ties its
    /// client transaction to the call and leg for `purpose`. Nothing is sent where the dialog
    /// has no remote tag yet (there is no dialog to speak in). Returns whether it went out.
    pub(super) fn send_in_dialog(
        &mut self,
        key: CallKey,
        leg: Leg,
        method: Method,
        purpose: Purpose,
        now: Instant,
        fill: impl FnOnce(&mut SipMessage),
    ) -> bool {
        let (via, _) = self.new_via();
        let contact = self.contact();
        let Some(call) = self.calls.get_mut(&key) else {
            return false;
        };
        let dialog = call.dialog_mut(leg);
        if dialog.remote_tag.is_none() {
            return false;
        }
        let mut request = dialog.request(method, via, &contact, None);
        fill(&mut request);
        let dest = dialog.peer;
        self.send_request(request, dest, purpose, Some((key, leg)), now);
        true
    }

    /// Sends a request and starts its client transaction (keyed by the branch of its top Via,
    /// which must be ours).
    pub(super) fn send_request(
        &mut self,
        request: SipMessage,
        dest: Peer,
        purpose: Purpose,
        call: Option<(CallKey, Leg)>,
        now: Instant,
    ) {
        if let Some(m) = request.method() {
            self.metrics.record_sip_out_request(m.as_str());
        }
        let mut request = request;
        super::headers::adapt_to_transport(&mut request, dest.transport);
        let transmit = self
            .txns
            .send(request, dest, ClientData { purpose, call }, now);
        self.send_raw(transmit.to, transmit.bytes);
    }
}

/// The Request-URI of a request.
pub(crate) fn request_uri(msg: &SipMessage) -> Option<&str> {
    match &msg.start {
        crate::sip::StartLine::Request { uri, .. } => Some(uri),
        crate::sip::StartLine::Response { .. } => None,
    }
}

/// `host:port` with IPv6 brackets.
pub(super) fn fmt_hostport(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}
