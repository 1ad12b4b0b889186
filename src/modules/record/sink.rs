//! Turns queued packets into file contents: decoded, aligned stereo for WAV, or the raw packets
//! for pcap. Generic over the writer so failures can be exercised without a real disk.

use std::io::{self, Seek, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::base::Leg;
use crate::rtp::{RtpError, RtpView};

use super::align::{AlignConfig, AlignStats, Aligner, AudioPacket, SAMPLE_RATE};
use super::g711::{decode_alaw, decode_ulaw};
use super::params::{DEFAULT_SAMPLE_RATE, RecordFormat};
use super::resample::Resampler;
use super::tap::TappedPacket;
use crate::media::PacketKind;
use crate::pcap::writer::PcapWriter;

use super::types::{Codec, LegCodecs};
use super::wav::WavWriter;

/// Frames handed to the WAV writer per call, bounding memory after long silences.
const FRAMES_PER_WRITE: usize = 4096;

/// Counters a sink keeps for the metadata.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Stereo frames (WAV, at its sample rate) or packets (pcap) written.
    pub frames: u64,
    /// Packets of a masked leg written as silence (WAV) or with their payload blanked (pcap).
    pub masked_packets: u64,
    /// RTP packets that were not valid RTP.
    pub malformed: u64,
    /// Audio packets whose payload type is unknown or not G.711 (WAV only).
    pub undecodable: u64,
    /// Telephone-event packets left out of the audio (WAV only).
    pub telephone_events: u64,
    /// Repairs made by the aligner (WAV only).
    pub align: AlignStats,
}

/// Decodes both legs' G.711 into an aligned stereo WAV.
#[derive(Debug)]
pub struct WavSink<W: Write + Seek> {
    writer: WavWriter<W>,
    aligner: Aligner,
    codecs: LegCodecs,
    samples: Vec<i16>,
    frames: Vec<[i16; 2]>,
    /// Present when the WAV is not at 8 kHz.
    resampler: Option<Resampler>,
    resampled: Vec<[i16; 2]>,
    /// Legs whose audio is written as silence (PCI masking), a-leg then b-leg.
    masked: [bool; 2],
    stats: SinkStats,
}

impl<W: Write + Seek> WavSink<W> {
    /// Writes the WAV header and prepares the aligner.
    pub fn new(out: W, codecs: LegCodecs) -> io::Result<Self> {
        Self::with_rate(out, codecs, SAMPLE_RATE)
    }

    /// Like [`WavSink::new`], with the WAV at `sample_rate` (resampled from 8 kHz).
    pub fn with_rate(out: W, codecs: LegCodecs, sample_rate: u32) -> io::Result<Self> {
        let resampler = (sample_rate != SAMPLE_RATE).then(|| Resampler::new(sample_rate));
        Ok(Self {
            writer: WavWriter::new(out, sample_rate, 2)?,
            aligner: Aligner::new(AlignConfig::default()),
            codecs,
            samples: Vec::with_capacity(480),
            frames: Vec::with_capacity(FRAMES_PER_WRITE),
            resampler,
            resampled: Vec::new(),
            masked: [false; 2],
            stats: SinkStats::default(),
        })
    }

    fn accept(&mut self, packet: &TappedPacket) -> io::Result<()> {
        if packet.kind == PacketKind::Rtcp {
            return Ok(());
        }
        let rtp = match RtpView::parse(packet.bytes()) {
            Ok(rtp) => rtp,
            // RTCP multiplexed on the RTP port (RFC 5761) is well formed but carries no audio.
            Err(RtpError::Rtcp(_)) => {
                self.stats.undecodable += 1;
                return Ok(());
            }
            Err(_) => {
                self.stats.malformed += 1;
                return Ok(());
            }
        };
        match self.codecs.lookup(packet.leg, rtp.payload_type()) {
            Some(Codec::Pcma) => decode_alaw(rtp.payload(), &mut self.samples),
            Some(Codec::Pcmu) => decode_ulaw(rtp.payload(), &mut self.samples),
            Some(Codec::TelephoneEvent) => {
                self.stats.telephone_events += 1;
                return Ok(());
            }
            Some(Codec::Other(_)) | None => {
                self.stats.undecodable += 1;
                return Ok(());
            }
        }
        if self.masked[leg_index(packet.leg)] {
            // Kept in the timeline so the span is silence of the right length.
            self.samples.fill(0);
            self.stats.masked_packets += 1;
        }
        let audio = AudioPacket {
            timestamp: rtp.timestamp(),
            sequence: rtp.sequence(),
            ssrc: rtp.ssrc(),
            arrival_us: packet.arrival_us,
            samples: &self.samples,
        };
        self.aligner.push(packet.leg, audio);
        self.write_ready(false)
    }

    fn write_ready(&mut self, everything: bool) -> io::Result<()> {
        loop {
            self.frames.clear();
            let count = if everything {
                self.aligner.drain_all(&mut self.frames, FRAMES_PER_WRITE)
            } else {
                self.aligner.drain_ready(&mut self.frames, FRAMES_PER_WRITE)
            };
            if count == 0 {
                return Ok(());
            }
            match self.resampler.as_mut() {
                Some(resampler) => {
                    self.resampled.clear();
                    resampler.push(&self.frames, &mut self.resampled);
                    self.writer.write_stereo(&self.resampled)?;
                }
                None => self.writer.write_stereo(&self.frames)?,
            }
        }
    }

    fn finish(mut self) -> io::Result<(W, SinkStats)> {
        self.write_ready(true)?;
        if let Some(resampler) = self.resampler.as_mut() {
            self.resampled.clear();
            resampler.flush(&mut self.resampled);
            self.writer.write_stereo(&self.resampled)?;
        }
        let mut stats = self.stats;
        stats.frames = u64::from(self.writer.data_bytes() / 4);
        stats.align = self.aligner.stats();
        Ok((self.writer.finish()?, stats))
    }
}

/// Writes every RTP and RTCP packet of both legs to a pcap capture.
#[derive(Debug)]
pub struct PcapSink<W: Write> {
    writer: PcapWriter<W>,
    /// Unix time minus relay clock, in microseconds, estimated from the first packet.
    clock_offset_us: Option<i128>,
    /// Payload types of both legs, to blank a masked leg's payload with its codec's silence.
    codecs: LegCodecs,
    /// Legs whose RTP payload is blanked (PCI masking), a-leg then b-leg.
    masked: [bool; 2],
    masked_packets: u64,
    /// A masked packet's copy, reused.
    blanked: Vec<u8>,
}

impl<W: Write> PcapSink<W> {
    /// Writes the pcap global header.
    pub fn new(out: W) -> io::Result<Self> {
        Self::with_codecs(out, LegCodecs::default())
    }

    /// Like [`PcapSink::new`], knowing the legs' payload types for masking.
    pub fn with_codecs(out: W, codecs: LegCodecs) -> io::Result<Self> {
        Ok(Self {
            writer: PcapWriter::new(out)?,
            clock_offset_us: None,
            codecs,
            masked: [false; 2],
            masked_packets: 0,
            blanked: Vec::new(),
        })
    }

    fn accept(&mut self, packet: &TappedPacket) -> io::Result<()> {
        let arrival = i128::from(packet.arrival_us);
        let offset = *self
            .clock_offset_us
            .get_or_insert_with(|| unix_now_us().saturating_sub(arrival));
        let unix_us = u64::try_from(arrival.saturating_add(offset)).unwrap_or(0);
        let bytes = if self.masked[leg_index(packet.leg)] && packet.kind == PacketKind::Rtp {
            if !self.blank(packet) {
                // Not RTP we can parse: nothing of it is kept while masked.
                self.masked_packets += 1;
                return Ok(());
            }
            self.masked_packets += 1;
            &self.blanked[..]
        } else {
            packet.bytes()
        };
        self.writer
            .write_udp(unix_us, packet.src, packet.dst, bytes)
    }

    /// Copies `packet` into `blanked` with its payload replaced: G.711 by the codec's silence
    /// (same length, so the capture still plays), anything else (telephone-event, other
    /// codecs) removed, leaving the RTP header. `false` when the packet is not valid RTP.
    fn blank(&mut self, packet: &TappedPacket) -> bool {
        let Ok(rtp) = RtpView::parse(packet.bytes()) else {
            return false;
        };
        let header = packet.bytes().get(..rtp.header_len()).unwrap_or_default();
        self.blanked.clear();
        self.blanked.extend_from_slice(header);
        let silence = match self.codecs.lookup(packet.leg, rtp.payload_type()) {
            Some(Codec::Pcmu) => Some(ULAW_SILENCE),
            Some(Codec::Pcma) => Some(ALAW_SILENCE),
            _ => None,
        };
        if let Some(byte) = silence {
            let len = rtp.payload().len();
            self.blanked.resize(header.len() + len, byte);
        }
        // The padding (if any) is gone with the payload.
        if let Some(first) = self.blanked.first_mut() {
            *first &= !0x20;
        }
        true
    }

    fn finish(self) -> io::Result<(W, SinkStats)> {
        let stats = SinkStats {
            frames: self.writer.records(),
            masked_packets: self.masked_packets,
            ..SinkStats::default()
        };
        Ok((self.writer.finish()?, stats))
    }
}

fn unix_now_us() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| i128::try_from(since.as_micros()).unwrap_or(i128::MAX))
        .unwrap_or(0)
}

/// The writer of one recording, whichever its format. Not boxed: one per recording, and the
/// variant is matched for every packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Sink<W: Write + Seek> {
    /// Aligned stereo audio.
    Wav(WavSink<W>),
    /// Raw packets.
    Pcap(PcapSink<W>),
}

impl<W: Write + Seek> Sink<W> {
    /// Starts a file of `format` on `out`, writing its header.
    pub fn new(format: RecordFormat, out: W, codecs: LegCodecs) -> io::Result<Self> {
        Self::with_rate(format, out, codecs, DEFAULT_SAMPLE_RATE)
    }

    /// Like [`Sink::new`], a WAV being written at `sample_rate`.
    pub fn with_rate(
        format: RecordFormat,
        out: W,
        codecs: LegCodecs,
        sample_rate: u32,
    ) -> io::Result<Self> {
        Ok(match format {
            RecordFormat::Wav => Self::Wav(WavSink::with_rate(out, codecs, sample_rate)?),
            RecordFormat::Pcap => Self::Pcap(PcapSink::with_codecs(out, codecs)?),
        })
    }

    /// Starts (`masked`) or ends the PCI masking of `leg`: the packets it accepts from then on
    /// are written as silence (WAV) or with their payload blanked (pcap).
    pub fn mask(&mut self, leg: Leg, masked: bool) {
        let flags = match self {
            Self::Wav(sink) => &mut sink.masked,
            Self::Pcap(sink) => &mut sink.masked,
        };
        flags[leg_index(leg)] = masked;
    }

    /// Adds one tapped packet.
    pub(crate) fn accept(&mut self, packet: &TappedPacket) -> io::Result<()> {
        match self {
            Self::Wav(sink) => sink.accept(packet),
            Self::Pcap(sink) => sink.accept(packet),
        }
    }

    /// Completes the file (patching headers, flushing) and hands back the writer.
    pub fn finish(self) -> io::Result<(W, SinkStats)> {
        match self {
            Self::Wav(sink) => sink.finish(),
            Self::Pcap(sink) => sink.finish(),
        }
    }
}

/// µ-law's silence (the code of linear 0).
const ULAW_SILENCE: u8 = 0xFF;
/// A-law's silence (the code of linear 0).
const ALAW_SILENCE: u8 = 0xD5;

fn leg_index(leg: Leg) -> usize {
    match leg {
        Leg::A => 0,
        Leg::B => 1,
    }
}

/// The format actually written: WAV needs G.711 on both legs, otherwise the recording falls back
/// to pcap and the returned note says why.
pub fn effective_format(
    requested: RecordFormat,
    codecs: &LegCodecs,
) -> (RecordFormat, Option<String>) {
    if requested == RecordFormat::Pcap {
        return (requested, None);
    }
    for (leg, name) in [(Leg::A, "a-leg"), (Leg::B, "b-leg")] {
        if let Some(Codec::Other(codec)) = codecs.audio_codec(leg) {
            let note = format!("{name} codec {codec} cannot be decoded to WAV; recorded as pcap");
            return (RecordFormat::Pcap, Some(note));
        }
    }
    (RecordFormat::Wav, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::record::g711::linear_to_ulaw;
    use crate::modules::record::wav::parse_wav;
    use std::io::Cursor;
    use std::net::SocketAddr;

    fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut packet = vec![0x80, pt];
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(&ts.to_be_bytes());
        packet.extend_from_slice(&1u32.to_be_bytes());
        packet.extend_from_slice(payload);
        packet
    }

    fn tapped(leg: Leg, kind: PacketKind, bytes: &[u8], arrival_us: u64) -> TappedPacket {
        let addr: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        TappedPacket::copy_of(leg, kind, addr, addr, bytes, arrival_us).unwrap()
    }

    #[test]
    fn telephone_events_rtcp_and_unknown_payloads_stay_out_of_the_audio() {
        let codecs = LegCodecs {
            a: vec![(0, Codec::Pcmu), (101, Codec::TelephoneEvent)],
            b: vec![(0, Codec::Pcmu)],
        };
        let mut sink = Sink::new(RecordFormat::Wav, Cursor::new(Vec::new()), codecs).unwrap();
        let tone = [linear_to_ulaw(1000); 160];
        for n in 0..10u16 {
            let ts = u32::from(n) * 160;
            let arrival = u64::from(ts) * 125;
            sink.accept(&tapped(
                Leg::A,
                PacketKind::Rtp,
                &rtp(0, n, ts, &tone),
                arrival,
            ))
            .unwrap();
            let event = rtp(101, n, ts, &[1, 0x80, 0, 160]);
            sink.accept(&tapped(Leg::B, PacketKind::Rtp, &event, arrival))
                .unwrap();
            sink.accept(&tapped(
                Leg::B,
                PacketKind::Rtcp,
                &[0x80, 200, 0, 1],
                arrival,
            ))
            .unwrap();
            sink.accept(&tapped(
                Leg::B,
                PacketKind::Rtp,
                &rtp(96, n, ts, &[1; 20]),
                arrival,
            ))
            .unwrap();
        }
        let (out, stats) = sink.finish().unwrap();
        assert_eq!(stats.frames, 1600);
        assert_eq!(
            stats.undecodable, 20,
            "pt 101 is unknown on the b-leg, pt 96 everywhere"
        );
        let wav = parse_wav(&out.into_inner());
        let left_ok = wav
            .samples
            .chunks(2)
            .all(|f| (f[0] - 1000).abs() < 64 && f[1] == 0);
        assert!(left_ok, "left carries the tone, right is silent");
    }

    #[test]
    fn muxed_rtcp_is_undecodable_and_broken_rtp_malformed() {
        let codecs = LegCodecs {
            a: vec![(0, Codec::Pcmu)],
            b: vec![(0, Codec::Pcmu)],
        };
        let mut sink = Sink::new(RecordFormat::Wav, Cursor::new(Vec::new()), codecs).unwrap();
        let receiver_report = [0x81, 201, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        sink.accept(&tapped(Leg::A, PacketKind::Rtp, &receiver_report, 0))
            .unwrap();
        sink.accept(&tapped(Leg::A, PacketKind::Rtp, &[0x80, 0, 0], 0))
            .unwrap();
        let (_, stats) = sink.finish().unwrap();
        assert_eq!((stats.undecodable, stats.malformed), (1, 1), "{stats:?}");
    }

    fn tone_call(sink: &mut Sink<Cursor<Vec<u8>>>, packets: std::ops::Range<u16>) {
        let tone = [linear_to_ulaw(1000); 160];
        for n in packets {
            let ts = u32::from(n) * 160;
            let arrival = u64::from(ts) * 125;
            for leg in [Leg::A, Leg::B] {
                sink.accept(&tapped(
                    leg,
                    PacketKind::Rtp,
                    &rtp(0, n, ts, &tone),
                    arrival,
                ))
                .unwrap();
            }
        }
    }

    #[test]
    fn a_mask_silences_exactly_the_masked_span_of_that_leg() {
        let codecs = LegCodecs {
            a: vec![(0, Codec::Pcmu)],
            b: vec![(0, Codec::Pcmu)],
        };
        let mut sink = Sink::new(RecordFormat::Wav, Cursor::new(Vec::new()), codecs).unwrap();
        tone_call(&mut sink, 0..50);
        sink.mask(Leg::A, true);
        tone_call(&mut sink, 50..100);
        sink.mask(Leg::A, false);
        tone_call(&mut sink, 100..150);
        let (out, stats) = sink.finish().unwrap();
        assert_eq!((stats.frames, stats.masked_packets), (150 * 160, 50));
        let wav = parse_wav(&out.into_inner());
        let frames: Vec<&[i16]> = wav.samples.chunks(2).collect();
        assert_eq!(frames.len(), 150 * 160);
        for (n, frame) in frames.iter().enumerate() {
            let masked = (50 * 160..100 * 160).contains(&n);
            let left_expected = if masked { 0 } else { 1000 };
            assert!(
                (frame[0] - left_expected).abs() < 64,
                "frame {n}: left {} (masked {masked})",
                frame[0]
            );
            assert!((frame[1] - 1000).abs() < 64, "the b-leg is never masked");
        }
    }

    #[test]
    fn a_masked_pcap_leg_keeps_its_headers_with_silent_or_no_payload() {
        use crate::modules::record::g711::ulaw_to_linear;
        let codecs = LegCodecs {
            a: vec![(0, Codec::Pcmu), (101, Codec::TelephoneEvent)],
            b: vec![(0, Codec::Pcmu)],
        };
        let mut sink = PcapSink::with_codecs(Cursor::new(Vec::new()), codecs).unwrap();
        sink.masked[0] = true;
        let voice = rtp(0, 1, 160, &[0x12; 160]);
        sink.accept(&tapped(Leg::A, PacketKind::Rtp, &voice, 0))
            .unwrap();
        let mut blanked = voice[..12].to_vec();
        blanked.extend_from_slice(&[ULAW_SILENCE; 160]);
        assert_eq!(sink.blanked, blanked, "same length, µ-law silence");
        assert_eq!(ulaw_to_linear(ULAW_SILENCE), 0);
        let digit = rtp(101, 2, 160, &[5, 0x80, 0, 160]);
        sink.accept(&tapped(Leg::A, PacketKind::Rtp, &digit, 0))
            .unwrap();
        assert_eq!(sink.blanked, digit[..12], "a key press keeps no payload");
        sink.accept(&tapped(Leg::B, PacketKind::Rtp, &voice, 0))
            .unwrap();
        sink.accept(&tapped(Leg::A, PacketKind::Rtp, &[0x80, 0], 0))
            .unwrap();
        let (out, stats) = sink.finish().unwrap();
        assert_eq!(stats.frames, 3, "the malformed masked packet is left out");
        assert_eq!(stats.masked_packets, 3);
        let bytes = out.into_inner();
        let needle = [0x12u8; 160];
        let found = bytes.windows(160).filter(|w| *w == needle).count();
        assert_eq!(found, 1, "only the b-leg's voice is in the capture");
    }

    #[test]
    fn non_g711_codecs_fall_back_to_pcap() {
        let mut codecs = LegCodecs {
            a: vec![(101, Codec::TelephoneEvent), (8, Codec::Pcma)],
            b: vec![],
        };
        assert_eq!(
            effective_format(RecordFormat::Wav, &codecs),
            (RecordFormat::Wav, None)
        );
        codecs.b = vec![(111, Codec::from_encoding_name("opus"))];
        let (format, note) = effective_format(RecordFormat::Wav, &codecs);
        assert_eq!(format, RecordFormat::Pcap);
        assert!(note.unwrap().contains("b-leg codec opus"));
        assert_eq!(
            effective_format(RecordFormat::Pcap, &codecs).0,
            RecordFormat::Pcap
        );
    }
}
