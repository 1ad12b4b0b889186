//! The tokio shell around the sans-IO core: moves datagrams, time and media events in, and
//! sends what the core asks for. It holds no call logic of its own.

use std::sync::Arc;
use std::time::Instant;

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{Map, json};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::events::EventLog;
use crate::media::{CallKey, InspectorEvent, MediaControl, MediaEngine, MediaEvent};
use crate::modules::record::{Recorder, RecorderEvent, RecorderHandle};
use crate::sip::tcp::{TcpInbound, TcpTransport};
use crate::sip::transport::{Peer, Transport};

use crate::b2bua::{Action, B2bua, DigitSource};

/// Commands from the process (signal handling, the API) to the SIP task.
#[derive(Clone, Debug, PartialEq)]
pub enum Control {
    /// Stop taking new calls (new INVITEs get 503).
    BeginShutdown,
    /// Hang up every call now.
    TerminateAll,
    /// Finish recordings and stop the task.
    Stop,
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
    /// The call core.
    pub core: B2bua,
    /// The media engine the core allocates through.
    pub media: MediaEngine,
    /// Timeouts and digits from the relay tasks.
    pub media_events: mpsc::Receiver<MediaEvent>,
    /// Shutdown commands.
    pub control: mpsc::Receiver<Control>,
    /// Where events go.
    pub events: EventLog,
    /// The live-call view of the API.
    pub registry: super::registry::CallRegistry,
    /// Recordings of calls.
    pub recordings: Recordings,
}

/// The recordings in progress and where their events arrive.
pub struct Recordings {
    data_dir: PathBuf,
    active: HashMap<CallKey, (String, RecorderHandle)>,
    events_tx: mpsc::Sender<RecorderEvent>,
    events_rx: mpsc::Receiver<RecorderEvent>,
    stopping: JoinSet<()>,
}

impl Recordings {
    /// No recordings yet; files go under `data_dir/recordings/`.
    pub fn new(data_dir: PathBuf) -> Self {
        let (events_tx, events_rx) = mpsc::channel(256);
        Recordings {
            data_dir,
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
            let deadline = self.core.next_deadline();
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
                        self.core.handle_datagram(Peer::udp(src), data, Instant::now(), &mut self.media);
                    }
                    Err(err) => tracing::debug!(error = %err, "SIP socket receive error"),
                },
                Some(inbound) = self.tcp_inbound.recv() => {
                    self.core.handle_datagram(Peer::tcp(inbound.from), &inbound.data, Instant::now(), &mut self.media);
                }
                () = sleep => self.core.handle_timers(Instant::now(), &mut self.media),
                Some(event) = self.media_events.recv() => self.on_media_event(event),
                Some(event) = self.recordings.events_rx.recv() => self.on_recorder_event(event),
                command = self.control.recv() => match command {
                    Some(Control::BeginShutdown) => self.core.begin_shutdown(),
                    Some(Control::TerminateAll) => self.core.terminate_all(Instant::now(), &mut self.media),
                    Some(Control::RunMetaflow { call_id, node }) => {
                        self.core.run_node_by_api(&call_id, &node, Instant::now(), &mut self.media)
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
        match event {
            MediaEvent::Timeout { call } => {
                self.core
                    .on_media_timeout(call, Instant::now(), &mut self.media)
            }
            MediaEvent::Inspector { call, event, .. } => match event {
                InspectorEvent::Digit { leg, digit, .. } => self.core.on_digit(
                    call,
                    leg,
                    digit,
                    DigitSource::Rtp,
                    Instant::now(),
                    &mut self.media,
                ),
                InspectorEvent::DigitEnded {
                    leg,
                    digit,
                    duration_ms,
                } => {
                    let call_id = self.core.call_id_of(call).unwrap_or_default().to_string();
                    let mut fields = serde_json::Map::new();
                    fields.insert("leg".into(), leg.as_str().into());
                    fields.insert("digit".into(), digit.to_string().into());
                    fields.insert("duration_ms".into(), duration_ms.into());
                    self.events.emit("digit_ended", Some(&call_id), fields);
                }
            },
        }
    }

    fn on_recorder_event(&mut self, event: RecorderEvent) {
        let mut fields = Map::new();
        let (kind, call_id, ended) = match event {
            RecorderEvent::Started { call_id, path } => {
                fields.insert("path".into(), json!(path.display().to_string()));
                ("recording_started", call_id, false)
            }
            RecorderEvent::Stopped {
                call_id,
                path,
                sidecar,
                reason,
                frames,
                dropped,
            } => {
                fields.insert("path".into(), json!(path.display().to_string()));
                fields.insert("sidecar".into(), json!(sidecar.display().to_string()));
                fields.insert("reason".into(), json!(reason));
                fields.insert("frames".into(), json!(frames));
                fields.insert("dropped".into(), json!(dropped));
                ("recording_stopped", call_id, true)
            }
            RecorderEvent::Failed { call_id, error } => {
                fields.insert("error".into(), json!(error));
                ("recording_failed", call_id, true)
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
                self.media.set_tap(key, None);
                self.core.recording_ended(key);
            }
        }
        tracing::info!(call_id = %call_id, event = kind, "recording");
        let ts = crate::events::clock::utc_now_rfc3339();
        self.registry.on_event(kind, &call_id, &fields, &ts);
        self.events.emit(kind, Some(&call_id), fields);
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
                self.media.set_tap(call, Some(std::sync::Arc::new(tap)));
                if let Some((_, old)) = rec.active.insert(call, (call_id, handle)) {
                    rec.stopping.spawn(async move {
                        let _ = old
                            .stop(crate::modules::record::StopReason::CallEnded)
                            .await;
                    });
                }
            }
            Err(err) => {
                tracing::warn!(call_id = %call_id, error = %err, "recording cannot start");
                self.core.recording_ended(call);
                let mut fields = Map::new();
                fields.insert("error".into(), json!(err.to_string()));
                self.events.emit("recording_failed", Some(&call_id), fields);
            }
        }
    }

    fn stop_recording(&mut self, call: CallKey, reason: crate::modules::record::StopReason) {
        self.media.set_tap(call, None);
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

    async fn flush(&mut self) {
        for action in self.core.drain_actions() {
            match action {
                Action::Send { to, data } => match to.transport {
                    Transport::Udp => {
                        if let Err(err) = self.socket.send_to(&data, to.addr).await {
                            tracing::debug!(peer = %to, error = %err, "SIP send failed");
                        }
                    }
                    Transport::Tcp => self.tcp.send(to.addr, data),
                },
                Action::StartRecording {
                    call,
                    info,
                    time_limit,
                } => self.start_recording(call, *info, time_limit),
                Action::StopRecording { call, reason } => self.stop_recording(call, reason),
                Action::Event {
                    kind,
                    call_id,
                    fields,
                } => {
                    let ts = crate::events::clock::utc_now_rfc3339();
                    self.registry.on_event(kind, &call_id, &fields, &ts);
                    self.events.emit(kind, Some(&call_id), fields);
                }
            }
        }
    }
}
