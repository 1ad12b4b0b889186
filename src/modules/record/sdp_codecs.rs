//! What a leg's SDP says about its audio codecs, kept per call so that a recording started later
//! knows how to decode each leg.

use crate::base::Leg;
use crate::sdp::Sdp;

use super::types::{Codec, LegCodecs};

/// The payload types of the first audio stream of an SDP, for the recorder's decoder.
fn audio_codecs(sdp: &Sdp) -> Vec<(u8, Codec)> {
    let Some(m) = sdp
        .media()
        .iter()
        .find(|m| m.kind == "audio" && m.port != 0)
    else {
        return Vec::new();
    };
    m.formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter_map(|pt| {
            m.codec(pt)
                .map(|map| (pt, Codec::from_encoding_name(&map.encoding)))
        })
        .collect()
}

/// Records the codecs a leg's SDP declared.
pub fn remember_codecs(codecs: &mut LegCodecs, leg: Leg, sdp: &Sdp) {
    let list = audio_codecs(sdp);
    if list.is_empty() {
        return;
    }
    match leg {
        Leg::A => codecs.a = list,
        Leg::B => codecs.b = list,
    }
}
