//! G.711 A-law and µ-law companding (ITU-T G.711), as lookup tables built at compile time.
//!
//! Recordings decode the PCMA/PCMU payloads of both legs to 16-bit linear PCM; the encoders exist
//! so that tone generators and tests can produce payloads the decoders are checked against.

/// Linear value of every A-law code, indexed by the code byte.
static ALAW_TO_LINEAR: [i16; 256] = build_alaw_table();
/// Linear value of every µ-law code, indexed by the code byte.
static ULAW_TO_LINEAR: [i16; 256] = build_ulaw_table();

const SIGN_BIT: u8 = 0x80;
const QUANT_MASK: u8 = 0x0f;
const SEG_MASK: u8 = 0x70;
const SEG_SHIFT: u8 = 4;
const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 8159;

/// Decodes one A-law byte to 16-bit linear PCM.
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TO_LINEAR[usize::from(code)]
}

/// Decodes one µ-law byte to 16-bit linear PCM.
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TO_LINEAR[usize::from(code)]
}

/// Decodes a whole A-law payload into `out` (cleared first).
pub fn decode_alaw(payload: &[u8], out: &mut Vec<i16>) {
    out.clear();
    out.extend(payload.iter().map(|&code| alaw_to_linear(code)));
}

/// Decodes a whole µ-law payload into `out` (cleared first).
pub fn decode_ulaw(payload: &[u8], out: &mut Vec<i16>) {
    out.clear();
    out.extend(payload.iter().map(|&code| ulaw_to_linear(code)));
}

/// Which G.711 companding law a payload uses: what the relay needs to decode, scale and encode
/// the audio it plays or adjusts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Law {
    /// A-law (PCMA, static payload type 8).
    A,
    /// µ-law (PCMU, static payload type 0).
    Mu,
}

impl Law {
    /// Decodes one byte.
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Self::A => alaw_to_linear(code),
            Self::Mu => ulaw_to_linear(code),
        }
    }

    /// Encodes one sample.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Self::A => linear_to_alaw(sample),
            Self::Mu => linear_to_ulaw(sample),
        }
    }

    /// The code of digital silence.
    pub fn silence(self) -> u8 {
        self.encode(0)
    }

    /// The law an SDP `a=rtpmap` encoding name names (case-insensitive), if it is G.711.
    pub fn from_encoding(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("PCMA") {
            Some(Self::A)
        } else if name.eq_ignore_ascii_case("PCMU") {
            Some(Self::Mu)
        } else {
            None
        }
    }
}

const fn alaw_decode(code: u8) -> i16 {
    let value = code ^ 0x55;
    let mut magnitude = ((value & QUANT_MASK) as i32) << 4;
    let segment = (value & SEG_MASK) >> SEG_SHIFT;
    magnitude += match segment {
        0 => 8,
        _ => 0x108,
    };
    if segment > 1 {
        magnitude <<= segment - 1;
    }
    if value & SIGN_BIT != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn ulaw_decode(code: u8) -> i16 {
    let value = !code;
    let mut magnitude = (((value & QUANT_MASK) as i32) << 3) + ULAW_BIAS;
    magnitude <<= (value & SEG_MASK) >> SEG_SHIFT;
    if value & SIGN_BIT != 0 {
        (ULAW_BIAS - magnitude) as i16
    } else {
        (magnitude - ULAW_BIAS) as i16
    }
}

const fn build_alaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = alaw_decode(code as u8);
        code += 1;
    }
    table
}

const fn build_ulaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = ulaw_decode(code as u8);
        code += 1;
    }
    table
}

/// Index of the first segment end at or above `value`, or the number of segments if none is.
fn segment_of(value: i32, segment_ends: &[i32; 8]) -> u8 {
    let mut segment = 0u8;
    for &end in segment_ends {
        if value <= end {
            return segment;
        }
        segment += 1;
    }
    segment
}

/// Encodes one 16-bit linear sample to A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    const SEGMENT_ENDS: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let mut value = i32::from(sample) >> 3;
    let mask = if value >= 0 {
        0xD5
    } else {
        value = -value - 1;
        0x55
    };
    let segment = segment_of(value, &SEGMENT_ENDS);
    if segment >= 8 {
        return 0x7F ^ mask;
    }
    let shift = if segment < 2 { 1 } else { segment };
    let mantissa = ((value >> shift) & 0x0F) as u8;
    ((segment << SEG_SHIFT) | mantissa) ^ mask
}

/// Encodes one 16-bit linear sample to µ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const SEGMENT_ENDS: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
    let mut value = i32::from(sample) >> 2;
    let mask = if value < 0 {
        value = -value;
        0x7F
    } else {
        0xFF
    };
    value = value.min(ULAW_CLIP) + (ULAW_BIAS >> 2);
    let segment = segment_of(value, &SEGMENT_ENDS);
    if segment >= 8 {
        return 0x7F ^ mask;
    }
    let mantissa = ((value >> (segment + 1)) & 0x0F) as u8;
    ((segment << SEG_SHIFT) | mantissa) ^ mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alaw_known_values_from_the_reference() {
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(alaw_to_linear(0xD4), 24);
        assert_eq!(linear_to_alaw(0), 0xD5);
    }

    #[test]
    fn ulaw_known_values_from_the_reference() {
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0xFE), 8);
        assert_eq!(linear_to_ulaw(0), 0xFF);
    }

    #[test]
    fn every_alaw_code_round_trips() {
        for code in 0..=255u8 {
            assert_eq!(
                linear_to_alaw(alaw_to_linear(code)),
                code,
                "code {code:#04x}"
            );
        }
    }

    #[test]
    fn every_ulaw_code_round_trips_except_negative_zero() {
        for code in 0..=255u8 {
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(
                linear_to_ulaw(ulaw_to_linear(code)),
                expected,
                "code {code:#04x}"
            );
        }
    }

    #[test]
    fn decoding_is_monotonic_and_odd_symmetric() {
        for code in 0..=127u8 {
            // Flipping the sign bit negates the value (A-law and µ-law alike).
            assert_eq!(alaw_to_linear(code), -alaw_to_linear(code | 0x80));
            assert_eq!(ulaw_to_linear(code), -ulaw_to_linear(code | 0x80));
        }
        let mut previous = i32::MIN;
        for sample in (-32768i32..=32767).step_by(7) {
            let decoded = i32::from(alaw_to_linear(linear_to_alaw(sample as i16)));
            assert!(decoded >= previous, "A-law not monotonic at {sample}");
            previous = decoded;
        }
    }

    #[test]
    fn quantisation_error_stays_within_the_segment_step() {
        for sample in (-32000i32..=32000).step_by(13) {
            let linear = sample as i16;
            let alaw_error = (i32::from(alaw_to_linear(linear_to_alaw(linear))) - sample).abs();
            let ulaw_error = (i32::from(ulaw_to_linear(linear_to_ulaw(linear))) - sample).abs();
            // The coarsest steps are 1024 (A-law) and 1024 (µ-law); half a step at most.
            assert!(alaw_error <= 512, "A-law error {alaw_error} at {sample}");
            assert!(ulaw_error <= 1024, "µ-law error {ulaw_error} at {sample}");
            assert!(
                alaw_error <= sample.abs() / 16 + 16,
                "A-law relative error at {sample}"
            );
        }
    }
}
