//! Offline capture reading and analysis: pcap/pcapng frames down to UDP datagrams, and the
//! `analyze` report of every DTMF key press found in the RTP streams of a capture.

mod analyze;
mod infer;
mod packet;
mod pcap;
mod report;
mod sdp_scan;

use std::path::Path;

use thiserror::Error;

pub mod replay;

pub use crate::base::Leg;
pub use analyze::{AnalyzeOptions, analyze};
pub use packet::{
    Segment, Segments, Transport, UdpDatagram, UdpDatagrams, decode_segment, decode_udp,
};
pub use pcap::{Frame, FrameReader};
pub use report::{AnalyzeReport, ConfigSource, DigitRecord, DigitSource, StreamId, StreamReport};
pub use sdp_scan::{SdpAudio, SipSdp, scan_sip_sdp};

/// Why a capture could not be read.
#[derive(Debug, Error)]
pub enum CaptureError {
    /// The file could not be read from disk.
    #[error("read failed")]
    Io(#[from] std::io::Error),
    /// The magic number is neither pcap nor pcapng.
    #[error("not a pcap or pcapng capture (magic 0x{0:08x})")]
    UnknownFormat(u32),
    /// A header or record runs past the end of the data.
    #[error("capture truncated at byte {offset}")]
    Truncated {
        /// Where the incomplete header or record starts.
        offset: usize,
    },
    /// A structure is inconsistent.
    #[error("malformed capture at byte {offset}: bad {reason}")]
    Malformed {
        /// Where the bad structure starts.
        offset: usize,
        /// Which field is wrong.
        reason: &'static str,
    },
}

/// Reads a whole capture file into memory, ready for [`UdpDatagrams::new`] or [`analyze`].
pub fn read_capture_file(path: &Path) -> Result<Vec<u8>, CaptureError> {
    Ok(std::fs::read(path)?)
}

#[cfg(test)]
mod tests;
