//! The tokio shell around the sans-IO core: moves datagrams, time and media events in, and
//! sends what the core asks for. It holds no call logic of its own.

use std::sync::Arc;
use std::time::Instant;

use std::collections::HashMap;
use std::path::PathBuf;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::base::{CallEvent, CallKey};
use crate::events::EventLog;
use crate::media::{InspectorEvent, MediaEvent};
use crate::modules::record::stats::RecordingStats;
use crate::modules::record::uploader::UploadWake;
use crate::modules::record::{Recorder, RecorderEvent, RecorderHandle};
use crate::sip::tcp::{TcpInbound, TcpTransport};
use crate::sip::transport::{Peer, Transport};

use crate::b2bua::{B2bua, Input, Output};

/// Commands from the process (signal handling, the API) to the SIP task.
#[derive(Debug)]
pub enum Control {
    /// Stop taking new calls (new INVITEs get 503).
    BeginShutdown,
    /// Hang up every call now.
    TerminateAll,
    /// Finish recordings and stop the task.
    Stop,
    /// New call-core settings from a reload (SIGHUP).
    Reconfigure(Box<crate::b2bua::CoreConfig>),
    /// The service manager's watchdog asks whether the SIP task still turns: it adds one to
    /// the counter when it handles this.
    Heartbeat(Arc<std::sync::atomic::AtomicU64>),
    /// Run a metaflow node on a call as if its code had been dialed (Kazoo's channel action).
    RunMetaflow {
        /// The caller's Call-ID.
        call_id: String,
        /// The node (`{"module": .., "data": .., "children": ..}`), already validated.
        node: serde_json::Value,
    },
}

/// Largest UDP datagram we accept.
const MAX_DATAGRAM: usize = 65_535;

/// Everything the SIP task owns.
pub struct SipTask {
    /// The SIP socket.
    pub socket: Arc<UdpSocket>,
    /// SIP over TCP on the same address.
    pub tcp: TcpTransport,
    /// Complete messages from the TCP connections.
    pub tcp_inbound: mpsc::Receiver<TcpInbound>,
    /// The call core (it owns the media engine).
    pub core: B2bua,
    /// Timeouts and digits from the stream relays.
    pub media_events: mpsc::Receiver<MediaEvent>,
    /// Shutdown commands.
    pub control: mpsc::Receiver<Control>,
    /// Where events go.
    pub events: EventLog,
    /// The live-call view of the API.
    pub registry: super::registry::CallRegistry,
    /// Recordings of calls.
    pub recordings: Recordings,
    /// Feature metrics counted from the published events.
    pub call_metrics: crate::metrics::CallEventMetrics,
    /// The webhook receivers' queues.
    pub webhooks: crate::webhooks::Webhooks,
    /// Produces the sounds modules play.
    pub sounds: super::sounds::Sounds,
}

/// The recordings in progress and where their events arrive.
pub struct Recordings {
    data_dir: PathBuf,
    stats: Arc<RecordingStats>,
    upload_wake: UploadWake,
    active: HashMap<CallKey, (String, RecorderHandle)>,
    events_tx: mpsc::Sender<RecorderEvent>,
    events_rx: mpsc::Receiver<RecorderEvent>,
    stopping: JoinSet<()>,
}

impl Recordings {
    /// No recordings yet; files go under `data_dir/recordings/`, failures are counted in
    /// `stats`, and the uploader hears of each finished recording through `upload_wake`.
    pub fn new(data_dir: PathBuf, stats: Arc<RecordingStats>, upload_wake: UploadWake) -> Self {
        let (events_tx, events_rx) = mpsc::channel(256);
        Recordings {
            data_dir,
            stats,
            upload_wake,
            active: HashMap::new(),
            events_tx,
            events_rx,
            stopping: JoinSet::new(),
        }
    }
}

impl SipTask {
    /// Runs until told to stop (or the control channel closes).
    pub async fn run(mut self) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let deadline = self.core.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, src)) => {
                        let data = buf.get(..n).unwrap_or_default();
                        self.core.handle(Instant::now(), Input::Datagram { from: Peer::udp(src), data });
                    }
                    Err(err) => {
                        tracing::debug!(error = %err, "SIP socket receive error");
                        // An ICMP error (IP_RECVERR): each names a destination that refused.
                        for to in super::icmp::drain_unreachable(&*self.socket) {
                            tracing::debug!(peer = %to, "ICMP unreachable");
                            self.core.handle(Instant::now(), Input::Unreachable { to: Peer::udp(to) });
                        }
                    }
                },
                Some(inbound) = self.tcp_inbound.recv() => {
                    let from = Peer::tcp(inbound.from);
                    self.core.handle(Instant::now(), Input::Datagram { from, data: &inbound.data });
                }
                () = sleep => self.core.handle(Instant::now(), Input::Timeout),
                Some(event) = self.media_events.recv() => self.on_media_event(event),
                Some(event) = self.recordings.events_rx.recv() => self.on_recorder_event(event),
                Some((call, id, result)) = self.sounds.rx.recv() => {
                    self.core.handle(Instant::now(), Input::SoundReady { call, id, result });
                }
                command = self.control.recv() => match command {
                    Some(Control::BeginShutdown) => self.core.handle(Instant::now(), Input::BeginShutdown),
                    Some(Control::TerminateAll) => self.core.handle(Instant::now(), Input::TerminateAll),
                    Some(Control::Reconfigure(cfg)) => self.core.handle(Instant::now(), Input::Reconfigure(cfg)),
                    Some(Control::Heartbeat(beats)) => {
                        beats.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Some(Control::RunMetaflow { call_id, node }) => {
                        self.core.handle(Instant::now(), Input::RunNode { call_id, node })
                    }
                    Some(Control::Stop) | None => {
                        self.flush().await;
                        self.finish_recordings().await;
                        return;
                    }
                },
            }
            self.flush().await;
        }
    }

    fn on_media_event(&mut self, event: MediaEvent) {
        let input = match event {
            MediaEvent::Timeout { call } => Input::MediaTimeout { call },
            MediaEvent::Playback { call, id, end, .. } => Input::PlaybackEnded { call, id, end },
            MediaEvent::Inspector { call, event, .. } => match event {
                InspectorEvent::Digit { leg, digit, .. } => Input::Digit { call, leg, digit },
                InspectorEvent::InbandDigit { leg, digit, .. } => {
                    Input::InbandDigit { call, leg, digit }
                }
                InspectorEvent::DigitEnded {
                    leg,
                    digit,
                    duration_ms,
                } => Input::DigitEnded {
                    call,
                    leg,
                    digit,
                    duration_ms,
                },
            },
        };
        self.core.handle(Instant::now(), input);
    }

    fn on_recorder_event(&mut self, event: RecorderEvent) {
        let (call_id, event, ended) = match event {
            RecorderEvent::Started { call_id, path } => {
                let path = path.display().to_string();
                (call_id, CallEvent::RecordingStarted { path }, false)
            }
            RecorderEvent::Stopped {
                call_id,
                path,
                sidecar,
                reason,
                frames,
                bytes,
                dropped,
            } => {
                // A recording with a `url` is in the spool by now.
                self.recordings.upload_wake.wake();
                let event = CallEvent::RecordingStopped {
                    path: path.display().to_string(),
                    sidecar: sidecar.display().to_string(),
                    reason,
                    frames,
                    bytes,
                    dropped,
                };
                (call_id, event, true)
            }
            RecorderEvent::UploadNotQueued { call_id, error } => {
                tracing::warn!(call_id = %call_id, %error, "recording upload not queued");
                self.recordings.stats.upload_failed();
                return;
            }
            RecorderEvent::Discarded {
                call_id,
                duration_ms,
                min_sec,
            } => {
                let event = CallEvent::RecordingDiscarded {
                    duration_ms,
                    min_sec,
                };
                (call_id, event, true)
            }
            RecorderEvent::Failed { call_id, error } => {
                self.recordings.stats.failed();
                (call_id, CallEvent::RecordingFailed { error }, true)
            }
        };
        if ended {
            // A recording that ended by itself (time limit, write error) releases its tap.
            let key = self
                .recordings
                .active
                .iter()
                .find(|(_, (id, handle))| *id == call_id && handle.is_finished())
                .map(|(k, _)| *k);
            if let Some(key) = key {
                self.recordings.active.remove(&key);
                self.core
                    .handle(Instant::now(), Input::RecordingEnded { call: key });
            }
        }
        tracing::info!(call_id = %call_id, event = event.kind(), "recording");
        self.publish(&call_id, &event);
    }

    /// Writes a call event to the event log, the API's live-call view and the webhook queues.
    fn publish(&mut self, call_id: &str, event: &CallEvent) {
        self.call_metrics.observe(call_id, event, Instant::now());
        let ts = crate::events::clock::utc_now_rfc3339();
        self.registry.on_event(call_id, event, &ts);
        self.webhooks.publish(call_id, event, &ts);
        self.events.emit_call(call_id, event);
    }

    fn start_recording(
        &mut self,
        call: CallKey,
        info: crate::modules::record::RecordingInfo,
        limit: std::time::Duration,
    ) {
        let call_id = info.call_id.clone();
        let rec = &mut self.recordings;
        match Recorder::start(&rec.data_dir, info, limit, rec.events_tx.clone()) {
            Ok((tap, handle)) => {
                if let Some((_, old)) = rec.active.insert(call, (call_id, handle)) {
                    rec.stopping.spawn(async move {
                        let _ = old
                            .stop(crate::modules::record::StopReason::CallEnded)
                            .await;
                    });
                }
                let tap = Arc::new(tap);
                self.core
                    .handle(Instant::now(), Input::RecordingReady { call, tap });
            }
            Err(err) => {
                tracing::warn!(call_id = %call_id, error = %err, "recording cannot start");
                rec.stats.failed();
                self.core
                    .handle(Instant::now(), Input::RecordingEnded { call });
                let error = err.to_string();
                self.publish(&call_id, &CallEvent::RecordingFailed { error });
            }
        }
    }

    fn stop_recording(&mut self, call: CallKey, reason: crate::modules::record::StopReason) {
        if let Some((_, handle)) = self.recordings.active.remove(&call) {
            self.recordings.stopping.spawn(async move {
                let _ = handle.stop(reason).await;
            });
        }
    }

    /// Waits (bounded) for every recording to be finished and renamed, and for their events.
    async fn finish_recordings(&mut self) {
        let keys: Vec<CallKey> = self.recordings.active.keys().copied().collect();
        for key in keys {
            self.stop_recording(key, crate::modules::record::StopReason::Shutdown);
        }
        let wait = async { while self.recordings.stopping.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), wait).await;
        while let Ok(event) = self.recordings.events_rx.try_recv() {
            self.on_recorder_event(event);
        }
    }

    /// Performs everything the core asked for, including what it asks while answering (a
    /// recording that could not start, for instance).
    async fn flush(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Send { to, data, connect } => match to.transport {
                    Transport::Udp => {
                        if let Err(err) = self.socket.send_to(&data, to.addr).await {
                            tracing::debug!(peer = %to, error = %err, "SIP send failed");
                        }
                    }
                    Transport::Tcp if connect => self.tcp.send(to.addr, data),
                    Transport::Tcp => {
                        if !self.tcp.send_on_flow(to.addr, data) {
                            // The peer's connection is gone and cannot be dialled back: what
                            // was sent towards it fails now rather than at Timer B/F.
                            tracing::debug!(peer = %to, "flow closed; message not sent");
                            self.core.handle(Instant::now(), Input::Unreachable { to });
                        }
                    }
                },
                Output::StartRecording {
                    call,
                    info,
                    time_limit,
                } => self.start_recording(call, *info, time_limit),
                Output::StopRecording { call, reason } => self.stop_recording(call, reason),
                Output::ResolveSound { call, id, sound } => self.sounds.resolve(call, id, sound),
                Output::MaskRecording { call, leg, masked } => {
                    if let Some((_, handle)) = self.recordings.active.get(&call) {
                        handle.mask(leg, masked);
                    }
                }
                Output::Event { call_id, event } => self.publish(&call_id, &event),
            }
        }
    }
}
