//! Call recording for the `record_call` module: the relay hands each packet of both legs to a
//! [`RecorderTap`] (never waiting), and one writer per recording turns them into a stereo WAV
//! (left a-leg, right b-leg, decoded from G.711 and kept aligned in time) or a pcap of the raw
//! RTP and RTCP, under `DATA_DIR/recordings/YYYY/MM/DD/`, with a JSON sidecar beside it.
//!
//! [`params`] validates the module's `data`; [`Recorder::start`] begins a recording and returns
//! the tap for the relay and the [`RecorderHandle`] that stops it. The codecs ([`g711`]), the
//! timeline ([`align`]) and the file formats ([`wav`], [`crate::pcap::writer`]) are sans-IO.
//!
//! After the call: [`library`] reads finished recordings for the API, [`retention`] deletes
//! expired ones, and a recording with a `url` goes through the on-disk [`spool`] to the
//! [`uploader`]; [`stats`] counts failures, deletions and uploads for `/metrics`.

pub mod align;
pub mod file_body;
pub use crate::audio::g711;
pub mod library;
pub mod params;
mod recorder;
mod resample;
pub mod retention;
mod runner;
#[cfg(test)]
mod sample_call;
mod sdp_codecs;
pub mod sidecar;
pub mod sink;
pub mod spool;
pub mod stats;
mod tap;
#[cfg(test)]
mod test_support;
mod types;
pub mod upload_url;
pub mod uploader;
pub mod wav;

/// Name of the module in metaflow nodes.
pub const MODULE_NAME: &str = "record_call";

pub use params::{
    RecordAction, RecordFormat, RecordParams, RecordStep, UploadMethod, UploadTarget, parse_params,
};
pub use recorder::{Recorder, RecorderHandle};
pub use runner::{Kind, TRIGGER_API, TRIGGER_KEY};
pub use sdp_codecs::remember_codecs;
pub use tap::{QUEUE_PACKETS, RecorderTap, SLOT_BYTES};
pub use types::{
    Codec, LegCodecs, RecordError, RecorderEvent, RecordingInfo, RecordingSummary, StopReason,
};
