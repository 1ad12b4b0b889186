//! Where a recording's files go and what its JSON sidecar says.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{Value, json};

use crate::base::Leg;
use crate::events::clock::{format_rfc3339, utc_date_parts};

use super::params::RecordFormat;
use super::sink::SinkStats;
use super::types::{RecordingInfo, StopReason};

/// Folder under the data directory that holds every recording.
pub const RECORDINGS_DIR: &str = "recordings";
/// Suffix of a file still being written.
pub const TEMP_SUFFIX: &str = ".part";
/// Longest Call-ID part of a file name, in bytes.
const MAX_CALL_ID_LEN: usize = 96;

/// The paths of one recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePlan {
    /// `DATA_DIR/recordings/YYYY/MM/DD`.
    pub dir: PathBuf,
    /// The finished recording.
    pub path: PathBuf,
    /// Where the recording is written until it is complete.
    pub temp_path: PathBuf,
    /// The finished JSON sidecar.
    pub sidecar: PathBuf,
}

impl FilePlan {
    /// Paths for a recording of `call_id` started at `started`; `attempt` > 0 adds a suffix so
    /// two recordings of one call in the same millisecond do not collide.
    pub fn new(
        data_dir: &Path,
        call_id: &str,
        started: SystemTime,
        format: RecordFormat,
        attempt: u32,
    ) -> Self {
        let (year, month, day, hour, minute, second, millis) = utc_date_parts(started);
        let dir = data_dir
            .join(RECORDINGS_DIR)
            .join(format!("{year:04}"))
            .join(format!("{month:02}"))
            .join(format!("{day:02}"));
        let mut stem = format!(
            "{}-{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}{millis:03}Z",
            safe_file_name(call_id)
        );
        if attempt > 0 {
            stem.push_str(&format!("-{attempt}"));
        }
        let file_name = format!("{stem}.{}", format.extension());
        Self {
            path: dir.join(&file_name),
            temp_path: dir.join(format!("{file_name}{TEMP_SUFFIX}")),
            sidecar: dir.join(format!("{stem}.json")),
            dir,
        }
    }

    /// The recording's id in the API: its file name without extension (only characters of
    /// [`safe_file_name`] and the timestamp, so it never names another folder).
    pub fn id(&self) -> String {
        self.path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Where the sidecar is written until it is complete.
    pub fn sidecar_temp(&self) -> PathBuf {
        let mut name = self.sidecar.clone().into_os_string();
        name.push(TEMP_SUFFIX);
        PathBuf::from(name)
    }
}

/// A Call-ID reduced to characters every file system accepts: letters, digits, `.`, `_` and
/// `-`; anything else becomes `_`, leading dots are dropped and the length is bounded.
pub fn safe_file_name(call_id: &str) -> String {
    let mut safe: String = call_id
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .skip_while(|c| *c == '.')
        .take(MAX_CALL_ID_LEN)
        .collect();
    if safe.is_empty() {
        safe.push_str("call");
    }
    safe
}

/// Everything the sidecar records about a finished recording.
#[derive(Debug)]
pub struct SidecarFacts<'a> {
    /// The call and trigger.
    pub info: &'a RecordingInfo,
    /// Final file.
    pub plan: &'a FilePlan,
    /// Format actually written.
    pub format: RecordFormat,
    /// Why WAV was not possible, when it fell back to pcap.
    pub format_note: Option<&'a str>,
    /// When it started and ended.
    pub started: SystemTime,
    /// When it ended.
    pub ended: SystemTime,
    /// Why it ended.
    pub reason: &'a StopReason,
    /// The configured limit, in seconds.
    pub time_limit_s: u64,
    /// What the writer counted.
    pub stats: SinkStats,
    /// Packets the queue could not take.
    pub dropped: u64,
    /// Why writing stopped early, when it did: the file holds what was written before.
    pub failure: Option<&'a str>,
    /// PCI masking spans (`record_call` mask/unmask).
    pub masks: &'a [MaskSpan],
}

/// A span during which a leg's audio was written as silence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaskSpan {
    /// The masked leg.
    pub leg: Leg,
    /// When masking began.
    pub start: SystemTime,
    /// When it ended; `None` while masked (the recording's end closes it).
    pub end: Option<SystemTime>,
}

/// Seconds from `from` to `to`, to the millisecond.
fn offset_s(from: SystemTime, to: SystemTime) -> f64 {
    let ms = to.duration_since(from).map_or(0, |elapsed| {
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    });
    ms as f64 / 1000.0
}

fn masks_json(facts: &SidecarFacts<'_>) -> Value {
    let spans: Vec<Value> = facts
        .masks
        .iter()
        .map(|span| {
            let end = span.end.unwrap_or(facts.ended).max(span.start);
            json!({
                "leg": span.leg.as_str(),
                "start_s": offset_s(facts.started, span.start),
                "end_s": offset_s(facts.started, end),
            })
        })
        .collect();
    Value::Array(spans)
}

/// Status of a recording whose file is complete.
pub const STATUS_COMPLETE: &str = "complete";
/// Status of a recording cut short by a write error; the file keeps what was written.
pub const STATUS_FAILED: &str = "failed";

/// Length of the media in milliseconds: for WAV the audio actually written (`frames` at
/// `sample_rate`), so the sidecar and a player agree; for pcap the wall-clock time it was
/// recording.
pub fn media_duration_ms(format: RecordFormat, sample_rate: u32, frames: u64, wall_ms: u64) -> u64 {
    match format {
        RecordFormat::Wav => frames.saturating_mul(1000) / u64::from(sample_rate.max(1)),
        RecordFormat::Pcap => wall_ms,
    }
}

/// The sidecar JSON document.
pub fn sidecar_json(facts: &SidecarFacts<'_>) -> Value {
    let info = facts.info;
    let codec = |leg| {
        info.codecs
            .audio_codec(leg)
            .map(|codec| codec.name().to_owned())
    };
    let stopped_by = match facts.reason {
        StopReason::Stopped { by } => Some(by.clone()),
        _ => None,
    };
    let file_name = |path: &Path| {
        path.file_name()
            .map(|name| name.to_string_lossy().into_owned())
    };
    let wall_ms = facts
        .ended
        .duration_since(facts.started)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let leg = info.leg.map(|leg| leg.as_str());
    let status = if facts.failure.is_some() {
        STATUS_FAILED
    } else {
        STATUS_COMPLETE
    };
    json!({
        "id": facts.plan.id(),
        "call_id": info.call_id,
        "account_id": info.account_id,
        "a_uri": info.a_uri,
        "b_uri": info.b_uri,
        "started_at": format_rfc3339(facts.started),
        "ended_at": format_rfc3339(facts.ended),
        "duration_ms": media_duration_ms(facts.format, info.sample_rate, facts.stats.frames, wall_ms),
        "wall_duration_ms": wall_ms,
        "status": status,
        "error": facts.failure,
        "started_by": info.started_by,
        "leg": leg,
        "stopped_by": stopped_by,
        "stop_reason": facts.reason.as_str(),
        "label": info.label,
        "file": file_name(&facts.plan.path),
        "format": facts.format.as_str(),
        "requested_format": info.format.as_str(),
        "format_note": facts.format_note,
        "codec": { "a": codec(Leg::A), "b": codec(Leg::B) },
        "sample_rate": (facts.format == RecordFormat::Wav).then_some(info.sample_rate),
        "channels": (facts.format == RecordFormat::Wav).then_some(json!({"left": "a-leg", "right": "b-leg"})),
        "time_limit_s": facts.time_limit_s,
        "frames_written": facts.stats.frames,
        "packets_dropped": facts.dropped,
        "packets_late": facts.stats.align.late_packets,
        "packets_undecodable": facts.stats.undecodable,
        "packets_malformed": facts.stats.malformed,
        "telephone_event_packets": facts.stats.telephone_events,
        "masked": masks_json(facts),
        "packets_masked": facts.stats.masked_packets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn call_ids_become_safe_file_names() {
        assert_eq!(
            safe_file_name("a84b4c76e66710@pc33.example.com"),
            "a84b4c76e66710_pc33.example.com"
        );
        assert_eq!(safe_file_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_file_name("..."), "call");
        assert_eq!(safe_file_name(""), "call");
        assert_eq!(safe_file_name("é/ \\x"), "____x");
        assert_eq!(safe_file_name(&"x".repeat(500)).len(), MAX_CALL_ID_LEN);
    }

    #[test]
    fn paths_follow_the_date_layout() {
        // 2026-11-21T05:34:28.123Z
        let started = UNIX_EPOCH + Duration::from_millis(1_795_239_268_123);
        let plan = FilePlan::new(
            Path::new("/data"),
            "abc@host",
            started,
            RecordFormat::Wav,
            0,
        );
        assert_eq!(plan.dir, Path::new("/data/recordings/2026/11/21"));
        assert_eq!(
            plan.path,
            Path::new("/data/recordings/2026/11/21/abc_host-20261121T053428123Z.wav")
        );
        assert_eq!(
            plan.temp_path.to_string_lossy(),
            format!("{}.part", plan.path.display())
        );
        assert_eq!(
            plan.sidecar,
            Path::new("/data/recordings/2026/11/21/abc_host-20261121T053428123Z.json")
        );
        assert_eq!(
            plan.sidecar_temp().to_string_lossy(),
            format!("{}.part", plan.sidecar.display())
        );
        let second = FilePlan::new(
            Path::new("/data"),
            "abc@host",
            started,
            RecordFormat::Pcap,
            2,
        );
        assert!(second.path.ends_with("abc_host-20261121T053428123Z-2.pcap"));
    }
}
