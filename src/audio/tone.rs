//! FreeSWITCH/Kazoo `tone_stream://` descriptions into a [`Clip`].
//!
//! The syntax FreeSWITCH's teletone reads: segments separated by `;`, each either
//! `%(on_ms,off_ms,freq[,freq...])` (a tone of the summed frequencies for `on_ms`, then `off_ms`
//! of silence), `v=DB` (level of the following tones in dBFS, default -7), `L=N` (play the whole
//! description N times) or `loops=N` (the same, as Kazoo writes it at the end). `loops=-1` (or
//! `L=-1`) means "for ever": the clip is one cycle, and the player loops it.

use std::f64::consts::TAU;

use super::clip::{CLIP_RATE, Clip};
use super::library::AudioError;

/// The default level of a tone (teletone's), in dBFS.
const DEFAULT_DB: f64 = -7.0;

/// The longest clip a description may produce (loops included): ten minutes.
const MAX_SAMPLES: u64 = 600 * CLIP_RATE as u64;

/// The longest single on or off time, in ms (one minute).
const MAX_SEGMENT_MS: u64 = 60_000;

/// One tone and the silence after it.
#[derive(Clone, Debug, PartialEq)]
struct Segment {
    on_ms: u64,
    off_ms: u64,
    freqs: Vec<f64>,
    db: f64,
}

/// Renders a `tone_stream://` description (with or without its scheme).
pub fn render(description: &str) -> Result<Clip, AudioError> {
    let (segments, loops, endless) = parse(description)?;
    let cycle: u64 = segments
        .iter()
        .map(|segment| (segment.on_ms + segment.off_ms) * u64::from(CLIP_RATE) / 1000)
        .sum();
    if cycle.saturating_mul(loops) > MAX_SAMPLES {
        return Err(bad(description, "longer than ten minutes"));
    }
    let mut samples = Vec::with_capacity((cycle * loops) as usize);
    for _ in 0..loops {
        for segment in &segments {
            push_segment(&mut samples, segment);
        }
    }
    let clip = Clip::new(samples);
    Ok(if endless { clip.endless() } else { clip })
}

fn bad(description: &str, why: &str) -> AudioError {
    AudioError::BadTone(format!("{why} in {description:?}"))
}

/// The segments, how many times to play them (1 for a loop for ever) and whether for ever.
fn parse(description: &str) -> Result<(Vec<Segment>, u64, bool), AudioError> {
    let body = description.trim();
    let body = body.strip_prefix("tone_stream://").unwrap_or(body);
    let mut segments = Vec::new();
    let mut loops: i64 = 1;
    let mut db = DEFAULT_DB;
    for part in body
        .split(';')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        if let Some(tone) = part.strip_prefix("%(").or_else(|| part.strip_prefix('(')) {
            let tone = tone
                .strip_suffix(')')
                .ok_or_else(|| bad(description, "a tone without its closing ')'"))?;
            segments.push(parse_tone(description, tone, db)?);
        } else if let Some((key, value)) = part.split_once('=') {
            let value = value.trim();
            match key.trim().to_ascii_lowercase().as_str() {
                "l" | "loops" => {
                    loops = value.parse().map_err(|_| {
                        bad(description, &format!("loops {value:?} is not a number"))
                    })?;
                }
                "v" => {
                    db = value.parse().map_err(|_| {
                        bad(description, &format!("volume {value:?} is not a number"))
                    })?;
                    if !(-100.0..=0.0).contains(&db) {
                        return Err(bad(description, "volume outside -100..0 dB"));
                    }
                }
                other => {
                    return Err(bad(description, &format!("unknown setting {other:?}")));
                }
            }
        } else {
            return Err(bad(
                description,
                &format!("{part:?} is neither %(on,off,freq...) nor a setting"),
            ));
        }
    }
    if segments.is_empty() {
        return Err(bad(description, "no tone %(on_ms,off_ms,freq)"));
    }
    let endless = loops == -1;
    let loops = match loops {
        -1 | 0 => 1,
        n if n > 0 => n as u64,
        _ => return Err(bad(description, "loops must be -1 or positive")),
    };
    Ok((segments, loops, endless))
}

fn parse_tone(description: &str, tone: &str, db: f64) -> Result<Segment, AudioError> {
    let fields: Vec<&str> = tone.split(',').map(str::trim).collect();
    if fields.len() < 2 {
        return Err(bad(description, "a tone needs at least on_ms,off_ms"));
    }
    let ms = |field: &str| -> Result<u64, AudioError> {
        let value: u64 = field
            .parse()
            .map_err(|_| bad(description, &format!("{field:?} is not a duration in ms")))?;
        if value > MAX_SEGMENT_MS {
            return Err(bad(description, "a duration over a minute"));
        }
        Ok(value)
    };
    let freqs = fields[2..]
        .iter()
        .map(|field| {
            field
                .parse::<f64>()
                .ok()
                .filter(|freq| (0.0..4000.0).contains(freq))
                .ok_or_else(|| {
                    bad(
                        description,
                        &format!("{field:?} is not a frequency below 4000 Hz"),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Segment {
        on_ms: ms(fields[0])?,
        off_ms: ms(fields[1])?,
        freqs,
        db,
    })
}

/// Appends the tone (with 5 ms ramps, so it does not click) and its silence.
fn push_segment(samples: &mut Vec<i16>, segment: &Segment) {
    let on = (segment.on_ms * u64::from(CLIP_RATE) / 1000) as usize;
    let off = (segment.off_ms * u64::from(CLIP_RATE) / 1000) as usize;
    let ramp = (CLIP_RATE as usize / 200).min(on / 2).max(1);
    let amplitude = if segment.freqs.is_empty() {
        0.0
    } else {
        32767.0 * 10f64.powf(segment.db / 20.0) / segment.freqs.len() as f64
    };
    for n in 0..on {
        let t = n as f64 / f64::from(CLIP_RATE);
        let envelope = (n.min(on - 1 - n) as f64 / ramp as f64).min(1.0);
        let value: f64 = segment.freqs.iter().map(|f| (TAU * f * t).sin()).sum();
        samples.push((amplitude * envelope * value) as i16);
    }
    samples.extend(std::iter::repeat_n(0, off));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn us_ringback_is_one_six_second_cycle() {
        let clip = render("tone_stream://%(2000,4000,440,480);loops=-1").unwrap();
        assert_eq!(clip.len(), 6 * 8000);
        assert!(clip.is_endless(), "loops=-1 repeats until stopped");
        assert!(!render("tone_stream://%(500,0,1000)").unwrap().is_endless());
        assert!(
            clip.samples()[..16000]
                .iter()
                .any(|s| s.unsigned_abs() > 10_000)
        );
        assert!(clip.samples()[16000..].iter().all(|&s| s == 0));
    }

    #[test]
    fn a_beep_and_loops_and_volume() {
        let beep = render("tone_stream://%(500,0,1000)").unwrap();
        assert_eq!(beep.len(), 4000);
        let peak = beep
            .samples()
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap();
        assert!((14_000..15_000).contains(&peak), "-7 dBFS peak {peak}");
        let three = render("tone_stream://L=3;%(100,100,425)").unwrap();
        assert_eq!(three.len(), 3 * 1600);
        let quiet = render("tone_stream://v=-20;%(100,0,1000)").unwrap();
        let peak = quiet
            .samples()
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap();
        assert!((3_000..3_400).contains(&peak), "-20 dBFS peak {peak}");
        let two = render("tone_stream://%(250,250,350,440);%(500,0,620)").unwrap();
        assert_eq!(two.len(), 8000);
    }

    #[test]
    fn bad_syntax_says_what_is_wrong() {
        for (text, says) in [
            ("tone_stream://", "no tone"),
            ("tone_stream://%(100,x,440)", "\"x\" is not a duration"),
            ("tone_stream://%(100,0,440", "closing"),
            ("tone_stream://%(100,0,9000)", "below 4000"),
            ("tone_stream://loops=two;%(100,0,440)", "not a number"),
            ("tone_stream://%(100)", "at least"),
            ("tone_stream://hello", "neither"),
            ("tone_stream://%(60000,0,440);loops=20", "ten minutes"),
        ] {
            let error = render(text).unwrap_err().to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
