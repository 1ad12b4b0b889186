//! The tokio shell around the sans-IO core: moves datagrams, time and media events in, and
//! sends what the core asks for. It holds no call logic of its own.

use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::events::EventLog;
use crate::media::{InspectorEvent, MediaEngine, MediaEvent};
use crate::sip::transport::Peer;

use super::codes::DigitSource;
use super::core::{Action, B2bua};

/// Commands from the process (signal handling) to the SIP task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Stop taking new calls (new INVITEs get 503).
    BeginShutdown,
    /// Hang up every call now.
    TerminateAll,
}

/// Largest UDP datagram we accept.
const MAX_DATAGRAM: usize = 65_535;

/// Everything the SIP task owns.
pub struct SipTask {
    /// The SIP socket.
    pub socket: Arc<UdpSocket>,
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
}

impl SipTask {
    /// Runs until the control channel closes.
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
                () = sleep => self.core.handle_timers(Instant::now(), &mut self.media),
                Some(event) = self.media_events.recv() => self.on_media_event(event),
                command = self.control.recv() => match command {
                    Some(Control::BeginShutdown) => self.core.begin_shutdown(),
                    Some(Control::TerminateAll) => self.core.terminate_all(Instant::now(), &mut self.media),
                    None => {
                        self.flush().await;
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

    async fn flush(&mut self) {
        for action in self.core.drain_actions() {
            match action {
                Action::Send { to, data } => {
                    if let Err(err) = self.socket.send_to(&data, to.addr).await {
                        tracing::debug!(peer = %to, error = %err, "SIP send failed");
                    }
                }
                Action::Event {
                    kind,
                    call_id,
                    fields,
                } => self.events.emit(kind, Some(&call_id), fields),
            }
        }
    }
}
