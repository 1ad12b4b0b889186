//! The observer of the proxy's event log: the replay tails `events.jsonl` (a local path, or a
//! copy mounted from a remote proxy) from where it stood before the call, and folds the events
//! of its own call into digits, matches, modules and recordings.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Follows a JSON-lines event log from a starting offset; only complete lines are returned.
#[derive(Debug)]
pub(super) struct EventTail {
    path: PathBuf,
    offset: u64,
    pending: Vec<u8>,
}

impl EventTail {
    /// Starts at the current end of the file (0 when it does not exist yet), so that only
    /// events written from now on are seen.
    pub(super) fn from_end(path: &Path) -> EventTail {
        let offset = std::fs::metadata(path).map_or(0, |m| m.len());
        EventTail {
            path: path.to_owned(),
            offset,
            pending: Vec::new(),
        }
    }

    /// Events written since the last call. A file that shrank (rotated) is read from its start.
    pub(super) fn read_new(&mut self) -> Vec<Value> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let len = file.metadata().map_or(0, |m| m.len());
        if len < self.offset {
            self.offset = 0;
            self.pending.clear();
        }
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        let Ok(read) = file.read_to_end(&mut buf) else {
            return Vec::new();
        };
        self.offset += read as u64;
        self.pending.extend_from_slice(&buf);
        let Some(last_newline) = self.pending.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.pending.drain(..=last_newline).collect();
        complete
            .split(|b| *b == b'\n')
            .filter_map(|line| serde_json::from_slice(line).ok())
            .collect()
    }
}

/// What the event log says about one call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventSummary {
    /// Digits on the a-leg.
    pub digits_a: String,
    /// Digits on the b-leg.
    pub digits_b: String,
    /// Metaflow matches as `leg:collected->module`.
    pub matches: Vec<String>,
    /// Modules run and their outcome when logged.
    pub modules: Vec<(String, Option<String>)>,
    /// Sidecar paths and frame counts of finished recordings.
    pub recordings: Vec<(String, u64)>,
    /// Whether `call_ended` was logged.
    pub ended: bool,
    /// Whether the proxy itself terminated the call (`call_terminated`), and why.
    pub terminated: Option<String>,
    /// Each event of the call in order, as `event detail` text.
    pub lines: Vec<String>,
}

fn text<'a>(event: &'a Value, key: &str) -> &'a str {
    event.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Folds the events whose `call_id` is one of `call_ids` (the a-leg and b-leg Call-IDs).
pub fn summarize_events(events: &[Value], call_ids: &[&str]) -> EventSummary {
    let mut summary = EventSummary::default();
    for event in events {
        if !call_ids.contains(&text(event, "call_id")) {
            continue;
        }
        let kind = text(event, "event");
        let mut detail = String::new();
        match kind {
            "digit" => {
                let digit = text(event, "digit");
                if text(event, "leg") == "b" {
                    summary.digits_b.push_str(digit);
                } else {
                    summary.digits_a.push_str(digit);
                }
                detail = format!("{} {digit}", text(event, "leg"));
            }
            "metaflow_match" => {
                detail = format!(
                    "{}:{}->{}",
                    text(event, "leg"),
                    text(event, "collected"),
                    text(event, "module")
                );
                summary.matches.push(detail.clone());
            }
            "module_run" => {
                detail = text(event, "module").to_owned();
                summary.modules.push((detail.clone(), None));
            }
            "module_outcome" => {
                let module = text(event, "module");
                let outcome = text(event, "outcome").to_owned();
                detail = format!("{module} {outcome}");
                match summary
                    .modules
                    .iter_mut()
                    .rev()
                    .find(|(name, o)| name == module && o.is_none())
                {
                    Some(entry) => entry.1 = Some(outcome),
                    None => summary.modules.push((module.to_owned(), Some(outcome))),
                }
            }
            "recording_stopped" => {
                let frames = event.get("frames").and_then(Value::as_u64).unwrap_or(0);
                summary
                    .recordings
                    .push((text(event, "sidecar").to_owned(), frames));
                detail = text(event, "path").to_owned();
            }
            "call_terminated" => {
                summary.terminated = Some(text(event, "reason").to_owned());
                detail = text(event, "reason").to_owned();
            }
            "call_ended" => summary.ended = true,
            _ => {}
        }
        summary
            .lines
            .push(format!("{kind} {detail}").trim_end().to_owned());
    }
    summary
}

/// Length in seconds of a finished recording: the sidecar's `duration_ms` when the sidecar can
/// be read (same host), else the frame count at 8 kHz.
pub(super) fn recording_secs(sidecar: &str, frames: u64) -> f64 {
    std::fs::read(sidecar)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|v| v.get("duration_ms").and_then(Value::as_u64))
        .map_or(frames as f64 / 8000.0, |ms| ms as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_calls_events_are_folded() {
        let events = vec![
            json!({"event":"digit","call_id":"x","leg":"a","digit":"*"}),
            json!({"event":"digit","call_id":"other","leg":"a","digit":"5"}),
            json!({"event":"digit","call_id":"x","leg":"a","digit":"9"}),
            json!({"event":"digit","call_id":"x","leg":"b","digit":"1"}),
            json!({"event":"metaflow_match","call_id":"x","leg":"a","collected":"9","module":"hangup"}),
            json!({"event":"module_run","call_id":"x","module":"hangup"}),
            json!({"event":"module_outcome","call_id":"x","module":"hangup","outcome":"success"}),
            json!({"event":"call_ended","call_id":"x"}),
        ];
        let s = summarize_events(&events, &["x"]);
        assert_eq!(s.digits_a, "*9");
        assert_eq!(s.digits_b, "1");
        assert_eq!(s.matches, vec!["a:9->hangup"]);
        assert_eq!(s.modules, vec![("hangup".into(), Some("success".into()))]);
        assert!(s.ended);
    }

    #[test]
    fn a_recording_lasts_what_its_sidecar_says_else_its_frames_at_8_khz() {
        let dir = tempfile::tempdir().unwrap();
        let sidecar = dir.path().join("r.json");
        std::fs::write(&sidecar, r#"{"duration_ms":2500}"#).unwrap();
        let secs = recording_secs(sidecar.to_str().unwrap(), 1);
        assert!((secs - 2.5).abs() < 1e-9, "{secs}");
        let secs = recording_secs("/nonexistent/r.json", 16_000);
        assert!((secs - 2.0).abs() < 1e-9, "{secs}");
    }

    #[test]
    fn the_tail_returns_complete_lines_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, "{\"event\":\"old\"}\n").unwrap();
        let mut tail = EventTail::from_end(&path);
        std::fs::write(&path, "{\"event\":\"old\"}\n{\"event\":\"new\"}\n{\"ev").unwrap();
        let got = tail.read_new();
        assert_eq!(got, vec![json!({"event":"new"})]);
        assert!(tail.read_new().is_empty());
    }
}
