use super::*;

/// A 16-bit WAV of `seconds` of a 1 kHz tone at `rate` with `channels`.
pub(crate) fn wav(rate: u32, channels: u16, seconds: f32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut out, spec).unwrap();
    for n in 0..(rate as f32 * seconds) as usize {
        let value =
            (12000.0 * (std::f32::consts::TAU * 1000.0 * n as f32 / rate as f32).sin()) as i16;
        for _ in 0..channels {
            writer.write_sample(value).unwrap();
        }
    }
    writer.finalize().unwrap();
    out.into_inner()
}

#[test]
fn a_stereo_44k1_wav_becomes_8khz_mono_of_the_same_length() {
    let clip = decode(&wav(44_100, 2, 1.0), DecodeLimits::default()).unwrap();
    assert!((clip.len() as i64 - 8000).abs() <= 1);
    let peak = clip
        .samples()
        .iter()
        .map(|s| s.unsigned_abs())
        .max()
        .unwrap();
    assert!((11_000..13_000).contains(&peak), "peak {peak}");
}

#[test]
fn an_mp3_at_44k1_becomes_one_second_of_1khz_at_8khz() {
    let mp3 = include_bytes!("../../tests/data/audio/tone-1khz-44k1-1s.mp3");
    assert_eq!(Format::sniff(mp3), Some(Format::Mp3));
    let clip = decode(mp3, DecodeLimits::default()).unwrap();
    // The encoder pads a little at both ends.
    let seconds = clip.duration().as_secs_f32();
    assert!((1.0..1.2).contains(&seconds), "{seconds} s");
    let middle = &clip.samples()[2000..6000];
    let crossings = middle
        .windows(2)
        .filter(|pair| pair[0] < 0 && pair[1] >= 0)
        .count();
    assert!(
        (495..=505).contains(&crossings),
        "{crossings} cycles in 0.5 s"
    );
}

#[test]
fn a_ulaw_and_an_alaw_wav_are_read() {
    for (tag, encode) in [
        (7u16, super::super::g711::linear_to_ulaw as fn(i16) -> u8),
        (6, super::super::g711::linear_to_alaw),
    ] {
        let payload: Vec<u8> = (0..8000)
            .map(|n| encode((8000.0 * (std::f32::consts::TAU * n as f32 / 8.0).sin()) as i16))
            .collect();
        let mut file = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        file.extend(18u32.to_le_bytes());
        file.extend(tag.to_le_bytes());
        file.extend(1u16.to_le_bytes());
        file.extend(8000u32.to_le_bytes());
        file.extend(8000u32.to_le_bytes());
        file.extend(1u16.to_le_bytes());
        file.extend(8u16.to_le_bytes());
        file.extend(0u16.to_le_bytes());
        file.extend(b"data");
        file.extend((payload.len() as u32).to_le_bytes());
        file.extend(&payload);
        let clip = decode(&file, DecodeLimits::default()).unwrap();
        assert_eq!(clip.len(), 8000, "format {tag}");
        let peak = clip
            .samples()
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap();
        assert!((7000..9000).contains(&peak), "format {tag}: peak {peak}");
    }
}

#[test]
fn limits_and_garbage_are_refused_with_a_reason() {
    let small = DecodeLimits {
        max_bytes: 1000,
        max_duration: Duration::from_secs(600),
    };
    assert!(matches!(
        decode(&wav(8000, 1, 1.0), small),
        Err(AudioError::TooLarge(_))
    ));
    let short = DecodeLimits {
        max_bytes: 1 << 20,
        max_duration: Duration::from_secs(1),
    };
    assert!(matches!(
        decode(&wav(8000, 1, 2.0), short),
        Err(AudioError::TooLong(_))
    ));
    assert!(matches!(
        decode(b"hello, not audio", DecodeLimits::default()),
        Err(AudioError::Decode(_))
    ));
    let odd_rate = decode(&wav(200_000, 1, 0.01), DecodeLimits::default()).unwrap_err();
    assert!(odd_rate.to_string().contains("200000 Hz"), "{odd_rate}");
    let mut truncated = wav(8000, 1, 1.0);
    truncated.truncate(30);
    assert!(decode(&truncated, DecodeLimits::default()).is_err());
    assert!(decode(&[0xFF, 0xFB, 0, 0, 0], DecodeLimits::default()).is_err());
}
