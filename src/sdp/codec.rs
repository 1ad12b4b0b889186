//! RTP/AVP static payload types (RFC 3551 table 4/5) for m= lines without rtpmap.

use std::sync::LazyLock;

use super::model::RtpMap;

/// Static audio payload types: (pt, encoding, clock rate, channels).
const STATIC_AUDIO: &[(u8, &str, u32, u8)] = &[
    (0, "PCMU", 8000, 1),
    (3, "GSM", 8000, 1),
    (4, "G723", 8000, 1),
    (5, "DVI4", 8000, 1),
    (6, "DVI4", 16000, 1),
    (7, "LPC", 8000, 1),
    (8, "PCMA", 8000, 1),
    (9, "G722", 8000, 1),
    (10, "L16", 44100, 2),
    (11, "L16", 44100, 1),
    (12, "QCELP", 8000, 1),
    (13, "CN", 8000, 1),
    (14, "MPA", 90000, 1),
    (15, "G728", 8000, 1),
    (16, "DVI4", 11025, 1),
    (17, "DVI4", 22050, 1),
    (18, "G729", 8000, 1),
];

static STATIC_MAPS: LazyLock<Vec<RtpMap>> = LazyLock::new(|| {
    STATIC_AUDIO
        .iter()
        .map(|&(payload_type, encoding, clock_rate, channels)| RtpMap {
            payload_type,
            encoding: encoding.to_string(),
            clock_rate,
            channels: Some(channels),
        })
        .collect()
});

/// The RFC 3551 static mapping of a payload type, if it has one.
pub fn static_payload(pt: u8) -> Option<&'static RtpMap> {
    STATIC_MAPS.iter().find(|m| m.payload_type == pt)
}
