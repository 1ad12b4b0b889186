//! Uploaded media and speech engines' output into a [`Clip`] at [`super::CLIP_RATE`]: WAV (`hound`) or MP3
//! (`symphonia`), downmixed to mono and resampled to 8 kHz. Decoding is CPU work: callers run it
//! on the blocking pool ([`decode_blocking`]).

use std::io::Cursor;
use std::time::Duration;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::clip::Clip;
use super::library::AudioError;
use super::resample::to_clip_rate;

/// What a file may be: anything larger or longer is refused rather than decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest encoded file accepted.
    pub max_bytes: usize,
    /// Longest audio accepted.
    pub max_duration: Duration,
}

impl Default for DecodeLimits {
    /// 20 MiB and 10 minutes: an announcement or a music on hold, not an album.
    fn default() -> Self {
        Self {
            max_bytes: 20 * 1024 * 1024,
            max_duration: Duration::from_secs(600),
        }
    }
}

/// Sample rates accepted: a file claiming another is refused, since the resampler's filter grows
/// with the ratio (a forged 4 GHz header would ask for gigabytes).
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 4_000..=192_000;

/// The audio formats recognised, by their first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// RIFF/WAVE.
    Wav,
    /// MPEG-1/2 layer III, with or without an ID3 tag.
    Mp3,
}

impl Format {
    /// The format `bytes` start like, if any.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE" {
            return Some(Self::Wav);
        }
        if bytes.starts_with(b"ID3")
            || (bytes.len() >= 2 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0)
        {
            return Some(Self::Mp3);
        }
        None
    }

    /// The media type a download of this format carries.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Wav => "audio/wav",
            Self::Mp3 => "audio/mpeg",
        }
    }
}

/// Decodes `bytes` on the blocking pool; see [`decode`].
pub async fn decode_blocking(bytes: Vec<u8>, limits: DecodeLimits) -> Result<Clip, AudioError> {
    tokio::task::spawn_blocking(move || decode(&bytes, limits))
        .await
        .map_err(|error| AudioError::Decode(format!("decoder task failed: {error}")))?
}

/// Decodes a WAV or MP3 file into a clip at [`CLIP_RATE`]; refuses files over `limits`.
pub fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<Clip, AudioError> {
    if bytes.len() > limits.max_bytes {
        return Err(AudioError::TooLarge(format!(
            "{} bytes, the limit is {}",
            bytes.len(),
            limits.max_bytes
        )));
    }
    let (samples, rate) = match Format::sniff(bytes) {
        Some(Format::Wav) => match g711_wav(bytes, limits)? {
            Some(decoded) => decoded,
            None => decode_wav(bytes, limits)?,
        },
        Some(Format::Mp3) => decode_mp3(bytes, limits)?,
        None => {
            return Err(AudioError::Decode(
                "not a WAV or MP3 file (unrecognised header)".into(),
            ));
        }
    };
    if !SAMPLE_RATES.contains(&rate) {
        return Err(AudioError::Decode(format!(
            "sample rate {rate} Hz (accepted: {} to {} Hz)",
            SAMPLE_RATES.start(),
            SAMPLE_RATES.end()
        )));
    }
    if samples.is_empty() {
        return Err(AudioError::Decode("the file holds no audio".into()));
    }
    Ok(to_clip(&to_clip_rate(&samples, rate)))
}

/// Rounds and clamps float samples (full scale ±1.0, the scale the WAV reader divides by, so a
/// 16-bit file at 8 kHz comes back sample for sample) to 16-bit.
pub fn to_clip(samples: &[f32]) -> Clip {
    Clip::new(
        samples
            .iter()
            .map(|&s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
            .collect(),
    )
}

fn too_long(limits: DecodeLimits) -> AudioError {
    AudioError::TooLong(format!(
        "longer than {} seconds",
        limits.max_duration.as_secs()
    ))
}

/// Mono float samples and their rate from an A-law (format 6) or µ-law (format 7) WAV file,
/// which hound does not read; `None` for any other WAV.
fn g711_wav(bytes: &[u8], limits: DecodeLimits) -> Result<Option<(Vec<f32>, u32)>, AudioError> {
    let mut format = None;
    let mut data = None;
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        let start = at + 8;
        let end = start.saturating_add(size as usize).min(bytes.len());
        match id {
            b"fmt " if end - start >= 16 => format = Some(&bytes[start..end]),
            b"data" => data = Some(&bytes[start..end]),
            _ => {}
        }
        // Chunks are padded to an even size.
        at = start
            .saturating_add(size as usize)
            .saturating_add(size as usize % 2);
    }
    let Some(format) = format else {
        return Ok(None);
    };
    let tag = u16::from_le_bytes([format[0], format[1]]);
    let decode: fn(u8) -> i16 = match tag {
        6 => super::g711::alaw_to_linear,
        7 => super::g711::ulaw_to_linear,
        _ => return Ok(None),
    };
    let channels = usize::from(u16::from_le_bytes([format[2], format[3]]).max(1));
    let rate = u32::from_le_bytes([format[4], format[5], format[6], format[7]]);
    let data = data.ok_or_else(|| AudioError::Decode("WAV: no data chunk".into()))?;
    if rate == 0 {
        return Err(AudioError::Decode("WAV: sample rate 0".into()));
    }
    if (data.len() / channels) as u64 > limits.max_duration.as_secs() * u64::from(rate) {
        return Err(too_long(limits));
    }
    let interleaved: Vec<f32> = data
        .iter()
        .map(|&code| f32::from(decode(code)) / 32768.0)
        .collect();
    Ok(Some((downmix(&interleaved, channels), rate)))
}

/// Mono float samples and their rate from a PCM WAV file (8 to 32-bit integer, 32-bit float).
fn decode_wav(bytes: &[u8], limits: DecodeLimits) -> Result<(Vec<f32>, u32), AudioError> {
    let reader = hound::WavReader::new(Cursor::new(bytes))
        .map_err(|error| AudioError::Decode(format!("WAV: {error}")))?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    if spec.sample_rate == 0 {
        return Err(AudioError::Decode("WAV: sample rate 0".into()));
    }
    let frames = u64::from(reader.duration());
    if frames > limits.max_duration.as_secs() * u64::from(spec.sample_rate) {
        return Err(too_long(limits));
    }
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .into_samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(|error| AudioError::Decode(format!("WAV: {error}")))?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|sample| sample.map(|value| value as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(|error| AudioError::Decode(format!("WAV: {error}")))?
        }
    };
    Ok((downmix(&interleaved, channels), spec.sample_rate))
}

/// Averages interleaved frames of `channels` into one channel.
fn downmix(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return interleaved.to_vec();
    }
    interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() / channels as f32)
        .collect()
}

/// Mono float samples and their rate from an MP3 file, stopping once past the length limit.
fn decode_mp3(bytes: &[u8], limits: DecodeLimits) -> Result<(Vec<f32>, u32), AudioError> {
    let mp3 = |error: SymphoniaError| AudioError::Decode(format!("MP3: {error}"));
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("mp3");
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(mp3)?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|track| track.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| AudioError::Decode("MP3: no audio track".into()))?;
    let track_id = track.id;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(mp3)?;
    let mut rate = track.codec_params.sample_rate.unwrap_or(0);
    let mut mono = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(SymphoniaError::IoError(error))
                if error.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                break;
            }
            Err(error) => return Err(mp3(error)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            // A damaged frame is skipped, as players do.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(error) => return Err(mp3(error)),
        };
        let spec = *decoded.spec();
        rate = spec.rate;
        let channels = spec.channels.count().max(1);
        let mut buffer = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
        buffer.copy_interleaved_ref(decoded);
        mono.extend(downmix(buffer.samples(), channels));
        if rate > 0 && mono.len() as u64 > limits.max_duration.as_secs() * u64::from(rate) {
            return Err(too_long(limits));
        }
    }
    if rate == 0 {
        return Err(AudioError::Decode("MP3: no decodable frame".into()));
    }
    Ok((mono, rate))
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
