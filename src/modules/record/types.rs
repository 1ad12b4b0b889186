//! The vocabulary shared by the recorder and its callers: codecs, recording description,
//! stop reasons, events, summary and errors.

use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

use crate::base::Leg;

use super::params::{RecordFormat, UploadTarget};

/// RTP payload type PCMU has without SDP (RFC 3551).
const STATIC_PCMU: u8 = 0;
/// RTP payload type PCMA has without SDP (RFC 3551).
const STATIC_PCMA: u8 = 8;

/// A codec as negotiated in a leg's SDP, reduced to what recording cares about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Codec {
    /// G.711 A-law.
    Pcma,
    /// G.711 µ-law.
    Pcmu,
    /// RFC 4733 telephone-event: never decoded as audio.
    TelephoneEvent,
    /// Any other codec, by its SDP encoding name; WAV cannot be produced from it.
    Other(String),
}

impl Codec {
    /// Maps an SDP `a=rtpmap` encoding name (case-insensitive).
    pub fn from_encoding_name(name: &str) -> Self {
        if name.eq_ignore_ascii_case("PCMA") {
            Self::Pcma
        } else if name.eq_ignore_ascii_case("PCMU") {
            Self::Pcmu
        } else if name.eq_ignore_ascii_case("telephone-event") {
            Self::TelephoneEvent
        } else {
            Self::Other(name.to_owned())
        }
    }

    /// The encoding name written to the metadata.
    pub fn name(&self) -> &str {
        match self {
            Self::Pcma => "PCMA",
            Self::Pcmu => "PCMU",
            Self::TelephoneEvent => "telephone-event",
            Self::Other(name) => name,
        }
    }
}

/// The payload types each leg negotiated, so packets are decoded with the leg's own mapping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LegCodecs {
    /// Payload types of the a-leg's SDP, in preference order.
    pub a: Vec<(u8, Codec)>,
    /// Payload types of the b-leg's SDP, in preference order.
    pub b: Vec<(u8, Codec)>,
}

impl LegCodecs {
    fn of(&self, leg: Leg) -> &[(u8, Codec)] {
        match leg {
            Leg::A => &self.a,
            Leg::B => &self.b,
        }
    }

    /// The codec of `payload_type` on `leg`; the static G.711 numbers apply when the SDP did
    /// not map them. `None` for an unknown payload type.
    pub fn lookup(&self, leg: Leg, payload_type: u8) -> Option<&Codec> {
        let mapped = self.of(leg).iter().find(|(pt, _)| *pt == payload_type);
        match (mapped, payload_type) {
            (Some((_, codec)), _) => Some(codec),
            (None, STATIC_PCMA) => Some(&Codec::Pcma),
            (None, STATIC_PCMU) => Some(&Codec::Pcmu),
            (None, _) => None,
        }
    }

    /// The leg's audio codec: its first payload type that is not telephone-event.
    pub fn audio_codec(&self, leg: Leg) -> Option<&Codec> {
        self.of(leg)
            .iter()
            .map(|(_, codec)| codec)
            .find(|codec| **codec != Codec::TelephoneEvent)
    }
}

/// Everything about the call a recording needs to name and describe its file.
#[derive(Clone, Debug)]
pub struct RecordingInfo {
    /// SIP Call-ID of the call (made safe before it is used in a file name).
    pub call_id: String,
    /// The account of the call, when resolved; the API lists the recording under it.
    pub account_id: Option<String>,
    /// URI of the a-leg party.
    pub a_uri: String,
    /// URI of the b-leg party.
    pub b_uri: String,
    /// What started the recording, e.g. `code "9" by a-leg`, or `api` for a channel action.
    pub started_by: String,
    /// The leg that dialed the code; `None` when the API started the recording.
    pub leg: Option<Leg>,
    /// Free text from `data.label`.
    pub label: Option<String>,
    /// Requested format (WAV falls back to pcap when a leg's codec is not G.711).
    pub format: RecordFormat,
    /// Payload type mapping of both legs.
    pub codecs: LegCodecs,
    /// Where the finished recording is sent (`data.url`, `data.method`), if anywhere.
    pub upload: Option<UploadTarget>,
    /// Sample rate of the WAV (`data.record_sample_rate`); G.711's 8 kHz is resampled to it.
    pub sample_rate: u32,
    /// A recording shorter than this many seconds is discarded (`data.record_min_sec`).
    pub min_sec: u64,
}

/// Why a recording ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// A `record_call` stop (or toggle); `by` names the code and leg, e.g. `*9 by b-leg`.
    Stopped {
        /// The code and leg that stopped it.
        by: String,
    },
    /// The call ended, however it ended.
    CallEnded,
    /// `time_limit` was reached.
    TimeLimit,
    /// The proxy is shutting down.
    Shutdown,
    /// Writing the file failed; what was written is kept, marked `failed`.
    WriteError,
}

impl StopReason {
    /// The name written to the metadata and the event log.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Stopped { .. } => "stopped",
            Self::CallEnded => "call_ended",
            Self::TimeLimit => "time_limit",
            Self::Shutdown => "shutdown",
            Self::WriteError => "write_error",
        }
    }
}

/// What the recorder reports for the event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecorderEvent {
    /// The recording began; the file will appear at `path` once complete.
    Started {
        /// Call-ID of the recorded call.
        call_id: String,
        /// Final path of the recording.
        path: PathBuf,
    },
    /// The recording ended and its file and sidecar are complete.
    Stopped {
        /// Call-ID of the recorded call.
        call_id: String,
        /// The recording.
        path: PathBuf,
        /// Its JSON metadata.
        sidecar: PathBuf,
        /// Why it ended (`StopReason::as_str`).
        reason: String,
        /// Stereo frames (WAV) or packets (pcap) written.
        frames: u64,
        /// Size of the finished file.
        bytes: u64,
        /// Packets the queue could not take.
        dropped: u64,
    },
    /// The finished recording has a `url` but could not be put in the upload spool (spool full,
    /// disk error): it stays on disk and is not uploaded.
    UploadNotQueued {
        /// Call-ID of the recorded call.
        call_id: String,
        /// What went wrong.
        error: String,
    },
    /// The recording was shorter than `data.record_min_sec`: its file and sidecar are
    /// deleted and it is not uploaded.
    Discarded {
        /// Call-ID of the recorded call.
        call_id: String,
        /// How long it was, in milliseconds.
        duration_ms: u64,
        /// The configured minimum, in seconds.
        min_sec: u64,
    },
    /// The recording was abandoned (e.g. disk full); the call goes on.
    Failed {
        /// Call-ID of the recorded call.
        call_id: String,
        /// What went wrong.
        error: String,
    },
}

/// What a finished recording produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingSummary {
    /// The recording.
    pub path: PathBuf,
    /// Its JSON metadata.
    pub sidecar: PathBuf,
    /// Why it ended.
    pub reason: StopReason,
    /// Format actually written.
    pub format: RecordFormat,
    /// Stereo frames (WAV) or packets (pcap) written.
    pub frames: u64,
    /// Packets the queue could not take.
    pub dropped: u64,
    /// When the recording started.
    pub started_at: SystemTime,
    /// When it ended.
    pub ended_at: SystemTime,
    /// Where it is to be uploaded, if anywhere.
    pub upload: Option<UploadTarget>,
}

/// Why a recording could not start or could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The recordings directory could not be created.
    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The recording file could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// Writing the recording failed (disk full, I/O error, file too large).
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The recording was shorter than `data.record_min_sec` and was deleted.
    #[error("recording of {duration_ms} ms is shorter than record_min_sec {min_sec}: discarded")]
    Discarded {
        /// How long it was, in milliseconds.
        duration_ms: u64,
        /// The configured minimum, in seconds.
        min_sec: u64,
    },
    /// The writer stopped without reporting (it panicked).
    #[error("the recording writer stopped unexpectedly")]
    WriterLost,
}
