//! Result of an offline capture analysis and its text and JSON-lines renderings.

use std::fmt;
use std::fmt::Write as _;
use std::net::SocketAddr;

use serde_json::json;

use crate::base::Leg;
use crate::dtmf::EventConfig;

/// Identity of one RTP stream: one direction between two transport addresses, one SSRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamId {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Synchronisation source.
    pub ssrc: u32,
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{} ssrc=0x{:08x}", self.src, self.dst, self.ssrc)
    }
}

/// Where a stream's telephone-event payload type came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Given on the command line.
    Forced,
    /// From an `a=rtpmap` line of an SDP in the capture.
    Sdp,
    /// Guessed from the shape of the stream's packets.
    Inferred,
}

impl ConfigSource {
    fn as_str(self) -> &'static str {
        match self {
            ConfigSource::Forced => "forced",
            ConfigSource::Sdp => "sdp",
            ConfigSource::Inferred => "inferred",
        }
    }
}

/// Per-stream summary, so that streams without digits are visible too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamReport {
    /// Which stream.
    pub id: StreamId,
    /// RTP packets it carried.
    pub packets: u64,
    /// Telephone-event payload type and clock rate decoded, if any.
    pub event_config: Option<EventConfig>,
    /// How `event_config` was found.
    pub config_source: Option<ConfigSource>,
    /// Dialog side that sent the stream, when its SDP ties it to a SIP dialog.
    pub sender_leg: Option<Leg>,
}

/// How a digit was carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitSource {
    /// RFC 4733 telephone-event packets.
    Rfc4733,
    /// DTMF tones in the G.711 audio, found by the in-band detector.
    Inband,
}

impl DigitSource {
    /// The name used in the text and JSON reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DigitSource::Rfc4733 => "rtp",
            DigitSource::Inband => "inband",
        }
    }
}

/// One key press found in the capture: what a metaflow engine would have been fed.
#[derive(Debug, Clone, PartialEq)]
pub struct DigitRecord {
    /// Stream that carried it.
    pub stream: StreamId,
    /// Dialog side that dialed it, when known.
    pub sender_leg: Option<Leg>,
    /// Capture time of the press's first packet (µs since the Unix epoch).
    pub at_us: u64,
    /// Seconds since the capture's first frame.
    pub time_s: f64,
    /// The key.
    pub digit: char,
    /// Duration the sender reported, in ms.
    pub duration_ms: u32,
    /// Telephone-event payload type.
    pub payload_type: u8,
    /// Event clock rate used for `duration_ms`.
    pub clock_rate: u32,
    /// RTP timestamp identifying the event.
    pub rtp_timestamp: u32,
    /// No end packet was seen.
    pub timed_out: bool,
    /// Telephone-event or in-band tone. For in-band digits `payload_type` is the audio's,
    /// `duration_ms` the detector's estimate and `rtp_timestamp` that of the packet that
    /// completed recognition.
    pub source: DigitSource,
}

/// Everything `analyze` found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnalyzeReport {
    /// Time of the capture's first frame (µs since the Unix epoch).
    pub capture_start_us: u64,
    /// RTP streams in order of first appearance.
    pub streams: Vec<StreamReport>,
    /// Problems that did not stop the analysis (e.g. a truncated last record).
    pub warnings: Vec<String>,
    pub(crate) digits: Vec<DigitRecord>,
}

impl AnalyzeReport {
    /// Digits of all streams ordered by time, for feeding a metaflow engine.
    pub fn digits(&self) -> &[DigitRecord] {
        &self.digits
    }

    /// The digits of one stream as a string, e.g. `"6789123"`.
    pub fn digit_string(&self, stream: &StreamId) -> String {
        self.digits
            .iter()
            .filter(|d| d.stream == *stream)
            .map(|d| d.digit)
            .collect()
    }

    /// Human-readable listing, grouped by stream.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for stream in &self.streams {
            let digits = self.digit_string(&stream.id);
            let source = stream.config_source.map_or("", ConfigSource::as_str);
            match stream.event_config {
                Some(cfg) => {
                    let _ = write!(
                        out,
                        "stream {} ({} packets): telephone-event PT {}/{} ({source})",
                        stream.id, stream.packets, cfg.payload_type, cfg.clock_rate
                    );
                }
                None if !digits.is_empty() => {
                    let _ = write!(
                        out,
                        "stream {} ({} packets): in-band tones only",
                        stream.id, stream.packets
                    );
                }
                None => continue,
            }
            if let Some(leg) = stream.sender_leg.map(Leg::as_str) {
                let _ = write!(out, ", sent by {leg}-leg");
            }
            let _ = writeln!(out, ": {} digit(s) \"{digits}\"", digits.chars().count());
            for d in self.digits.iter().filter(|d| d.stream == stream.id) {
                let note = if d.timed_out { "  (no end packet)" } else { "" };
                let _ = writeln!(
                    out,
                    "  {:>10.3} s  digit {}  {:>5} ms  PT {}  {:<7}  from {}{note}",
                    d.time_s,
                    d.digit,
                    d.duration_ms,
                    d.payload_type,
                    d.source.as_str(),
                    d.stream.src
                );
            }
        }
        let all: String = self.digits.iter().map(|d| d.digit).collect();
        let _ = writeln!(out, "{} digit(s) in total: \"{all}\"", self.digits.len());
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }

    /// One JSON object per line: every digit (`"type":"digit"`, `"source"` `rtp` (RFC 4733) or
    /// `inband`, `"sender"` its address), then any warnings.
    pub fn render_json_lines(&self) -> String {
        let mut out = String::new();
        for d in &self.digits {
            let line = json!({
                "type": "digit",
                "stream": d.stream.to_string(),
                "time": d.time_s,
                "digit": d.digit.to_string(),
                "duration_ms": d.duration_ms,
                "payload_type": d.payload_type,
                "clock_rate": d.clock_rate,
                "source": d.source.as_str(),
                "sender": d.stream.src.to_string(),
                "destination": d.stream.dst.to_string(),
                "ssrc": d.stream.ssrc,
                "rtp_timestamp": d.rtp_timestamp,
                "leg": d.sender_leg.map(Leg::as_str),
                "end_seen": !d.timed_out,
            });
            let _ = writeln!(out, "{line}");
        }
        for w in &self.warnings {
            let _ = writeln!(out, "{}", json!({ "type": "warning", "message": w }));
        }
        out
    }
}
