//! RIFF/WAVE writer for 16-bit linear PCM: the header goes out first with placeholder sizes, the
//! frames are streamed, and [`WavWriter::finish`] patches the sizes in place.

use std::io::{self, Seek, SeekFrom, Write};

/// Size of the canonical 44-byte header (RIFF + `fmt ` + `data` chunk headers).
pub const HEADER_LEN: u32 = 44;
/// Offset of the RIFF chunk size field.
const RIFF_SIZE_OFFSET: u64 = 4;
/// Offset of the `data` chunk size field.
const DATA_SIZE_OFFSET: u64 = 40;
const BITS_PER_SAMPLE: u16 = 16;
const PCM_FORMAT_TAG: u16 = 1;

/// Streams interleaved 16-bit frames into a WAV file whose sizes are fixed up on finish.
#[derive(Debug)]
pub struct WavWriter<W: Write + Seek> {
    out: W,
    channels: u16,
    data_bytes: u32,
}

impl<W: Write + Seek> WavWriter<W> {
    /// Writes the header (with zero sizes) and returns a writer positioned at the first frame.
    pub fn new(mut out: W, sample_rate: u32, channels: u16) -> io::Result<Self> {
        let block_align = channels.saturating_mul(BITS_PER_SAMPLE / 8);
        let byte_rate = sample_rate.saturating_mul(u32::from(block_align));
        let mut header = [0u8; HEADER_LEN as usize];
        let mut cursor = io::Cursor::new(&mut header[..]);
        cursor.write_all(b"RIFF")?;
        cursor.write_all(&0u32.to_le_bytes())?;
        cursor.write_all(b"WAVEfmt ")?;
        cursor.write_all(&16u32.to_le_bytes())?;
        cursor.write_all(&PCM_FORMAT_TAG.to_le_bytes())?;
        cursor.write_all(&channels.to_le_bytes())?;
        cursor.write_all(&sample_rate.to_le_bytes())?;
        cursor.write_all(&byte_rate.to_le_bytes())?;
        cursor.write_all(&block_align.to_le_bytes())?;
        cursor.write_all(&BITS_PER_SAMPLE.to_le_bytes())?;
        cursor.write_all(b"data")?;
        cursor.write_all(&0u32.to_le_bytes())?;
        out.write_all(&header)?;
        Ok(Self {
            out,
            channels,
            data_bytes: 0,
        })
    }

    /// Appends stereo frames (left, right). Fails once the 4 GiB RIFF limit would be passed.
    pub fn write_stereo(&mut self, frames: &[[i16; 2]]) -> io::Result<()> {
        if self.channels != 2 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "stereo frames written to a writer that is not stereo",
            ));
        }
        let mut chunk = [0u8; 4096];
        for group in frames.chunks(chunk.len() / 4) {
            let mut used = 0;
            for (frame, bytes) in group.iter().zip(chunk.chunks_exact_mut(4)) {
                let [left, right] = *frame;
                let (l, r) = (left.to_le_bytes(), right.to_le_bytes());
                bytes.copy_from_slice(&[l[0], l[1], r[0], r[1]]);
                used += 4;
            }
            let written = chunk.get(..used).unwrap_or_default();
            self.grow(used)?;
            self.out.write_all(written)?;
        }
        Ok(())
    }

    fn grow(&mut self, bytes: usize) -> io::Result<()> {
        let limit = u32::MAX - (HEADER_LEN - 8);
        self.data_bytes = u32::try_from(bytes)
            .ok()
            .and_then(|added| self.data_bytes.checked_add(added))
            .filter(|total| *total <= limit)
            .ok_or_else(|| io::Error::new(io::ErrorKind::FileTooLarge, "WAV data over 4 GiB"))?;
        Ok(())
    }

    /// Bytes of sample data written so far.
    pub fn data_bytes(&self) -> u32 {
        self.data_bytes
    }

    /// Patches the RIFF and data sizes, flushes, and hands back the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        let riff_size = self.data_bytes.saturating_add(HEADER_LEN - 8);
        self.out.seek(SeekFrom::Start(RIFF_SIZE_OFFSET))?;
        self.out.write_all(&riff_size.to_le_bytes())?;
        self.out.seek(SeekFrom::Start(DATA_SIZE_OFFSET))?;
        self.out.write_all(&self.data_bytes.to_le_bytes())?;
        self.out.seek(SeekFrom::End(0))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The format fields and samples of a WAV file, as read back by tests.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct ParsedWav {
    pub channels: u16,
    pub sample_rate: u32,
    pub bits_per_sample: u16,
    pub samples: Vec<i16>,
}

/// Parses a canonical 44-byte-header PCM WAV, checking every size field.
#[cfg(test)]
pub(crate) fn parse_wav(bytes: &[u8]) -> ParsedWav {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let u16_at = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap());
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(u32_at(4) as usize, bytes.len() - 8, "RIFF size");
    assert_eq!(&bytes[8..16], b"WAVEfmt ");
    assert_eq!(u16_at(20), PCM_FORMAT_TAG);
    assert_eq!(&bytes[36..40], b"data");
    assert_eq!(u32_at(40) as usize, bytes.len() - 44, "data size");
    let channels = u16_at(22);
    let bits_per_sample = u16_at(34);
    assert_eq!(u32_at(28), u32_at(24) * u32::from(u16_at(32)), "byte rate");
    assert_eq!(u16_at(32), channels * bits_per_sample / 8, "block align");
    let samples = bytes[44..]
        .chunks_exact(2)
        .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    ParsedWav {
        channels,
        sample_rate: u32_at(24),
        bits_per_sample,
        samples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn header_is_patched_with_the_real_sizes() {
        let mut writer = WavWriter::new(Cursor::new(Vec::new()), 8000, 2).unwrap();
        writer
            .write_stereo(&[[1, -1], [2, -2], [i16::MAX, i16::MIN]])
            .unwrap();
        assert_eq!(writer.data_bytes(), 12);
        let bytes = writer.finish().unwrap().into_inner();
        assert_eq!(bytes.len(), 44 + 12);
        let parsed = parse_wav(&bytes);
        assert_eq!(
            (parsed.channels, parsed.sample_rate, parsed.bits_per_sample),
            (2, 8000, 16)
        );
        assert_eq!(parsed.samples, vec![1, -1, 2, -2, i16::MAX, i16::MIN]);
    }

    #[test]
    fn an_empty_recording_is_still_a_valid_file() {
        let writer = WavWriter::new(Cursor::new(Vec::new()), 8000, 2).unwrap();
        let bytes = writer.finish().unwrap().into_inner();
        let parsed = parse_wav(&bytes);
        assert!(parsed.samples.is_empty());
    }

    #[test]
    fn long_writes_cross_the_internal_chunk_size() {
        let frames: Vec<[i16; 2]> = (0..5000).map(|i| [i as i16, -(i as i16)]).collect();
        let mut writer = WavWriter::new(Cursor::new(Vec::new()), 8000, 2).unwrap();
        writer.write_stereo(&frames).unwrap();
        let parsed = parse_wav(&writer.finish().unwrap().into_inner());
        let expected: Vec<i16> = frames.iter().flatten().copied().collect();
        assert_eq!(parsed.samples, expected);
    }

    #[test]
    fn mono_writer_refuses_stereo_frames() {
        let mut writer = WavWriter::new(Cursor::new(Vec::new()), 8000, 1).unwrap();
        assert!(writer.write_stereo(&[[0, 0]]).is_err());
    }
}
