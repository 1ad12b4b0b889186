//! Expected outcome of a replay and the comparison with what was seen, one line per field, so
//! that a corpus entry says in a few keys what the proxy must do with its capture.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::ReplayError;

/// What a capture must make the proxy do. Every key is optional; a missing key is not checked.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// Digits the proxy reported on the a-leg (the caller), in order.
    pub digits_a: Option<String>,
    /// Digits the proxy reported on the b-leg (the PBX side), in order.
    pub digits_b: Option<String>,
    /// A metaflow module that must have run.
    pub module: Option<String>,
    /// The outcome that module must have finished with (`success`, `failure`, ...).
    pub module_outcome: Option<String>,
    /// The Refer-To of a REFER either side received (substring match).
    pub refer_to: Option<String>,
    /// A recording at least this many seconds long must have been made.
    pub recording_min_secs: Option<f64>,
    /// Who ended the call: `caller`, `callee`, `proxy` or `replay` (the end of the capture).
    pub ended_by: Option<String>,
}

/// Media one side received through the proxy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaSeen {
    /// RTP packets the other side sent.
    pub sent_by_peer: u64,
    /// RTP packets that arrived.
    pub received: u64,
    /// Distinct packets (SSRC and sequence number) the other side sent that never arrived;
    /// unlike `missing`, duplicates the proxy dropped do not count.
    pub lost: u64,
}

impl MediaSeen {
    /// Packets sent that never arrived (dropped, suppressed or deduplicated by the proxy).
    pub fn missing(&self) -> u64 {
        self.sent_by_peer.saturating_sub(self.received)
    }
}

/// What the replay saw the proxy do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Digits on the a-leg, from the event log.
    pub digits_a: String,
    /// Digits on the b-leg, from the event log.
    pub digits_b: String,
    /// Metaflow matches as `leg:collected->module`.
    pub matches: Vec<String>,
    /// Modules run, with their outcome when one was logged.
    pub modules: Vec<(String, Option<String>)>,
    /// Refer-To of every REFER received.
    pub refers: Vec<String>,
    /// Length in seconds of every finished recording.
    pub recordings_secs: Vec<f64>,
    /// Sides that received a BYE from the proxy.
    pub byes_received: Vec<&'static str>,
    /// Who ended the call.
    pub ended_by: String,
    /// Media the caller received.
    pub caller_media: MediaSeen,
    /// Media the callee received.
    pub callee_media: MediaSeen,
    /// Whether an event log was read (without one, digits and modules are unknown).
    pub events_observed: bool,
    /// Seconds from the start of the timeline to each thing the proxy did, for the report.
    pub timeline: Vec<(f64, String)>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.events_observed {
            writeln!(f, "digits a: {:?}  b: {:?}", self.digits_a, self.digits_b)?;
            writeln!(f, "matches: {}", self.matches.join(", "))?;
            writeln!(f, "modules: {}", modules_text(&self.modules))?;
            let recs: Vec<String> = self
                .recordings_secs
                .iter()
                .map(|s| format!("{s:.1}s"))
                .collect();
            writeln!(f, "recordings: {}", recs.join(", "))?;
        } else {
            writeln!(
                f,
                "events: not observed (give --events PATH or --webhook-listen ADDR)"
            )?;
        }
        writeln!(f, "refer-to: {}", self.refers.join(", "))?;
        writeln!(f, "bye received by: {}", self.byes_received.join(", "))?;
        writeln!(f, "ended by: {}", self.ended_by)?;
        for (name, m) in [("caller", self.caller_media), ("callee", self.callee_media)] {
            writeln!(
                f,
                "{name} received {} of {} RTP packets ({} missing, {} distinct packets lost)",
                m.received,
                m.sent_by_peer,
                m.missing(),
                m.lost
            )?;
        }
        for (at, what) in &self.timeline {
            writeln!(f, "  {at:8.3}s {what}")?;
        }
        Ok(())
    }
}

fn modules_text(modules: &[(String, Option<String>)]) -> String {
    modules
        .iter()
        .map(|(name, outcome)| format!("{name}({})", outcome.as_deref().unwrap_or("-")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One expectation that was not met.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// The expectation key.
    pub field: &'static str,
    /// What the file asked for.
    pub expected: String,
    /// What was seen.
    pub seen: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, seen {}",
            self.field, self.expected, self.seen
        )
    }
}

/// Compares an expectation with an outcome; empty when every given key is met.
pub fn diff(expected: &Expectation, seen: &Outcome) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut check = |field, ok: bool, expected: String, seen: String| {
        if !ok {
            out.push(Mismatch {
                field,
                expected,
                seen,
            });
        }
    };
    if let Some(want) = &expected.digits_a {
        check(
            "digits_a",
            *want == seen.digits_a,
            q(want),
            q(&seen.digits_a),
        );
    }
    if let Some(want) = &expected.digits_b {
        check(
            "digits_b",
            *want == seen.digits_b,
            q(want),
            q(&seen.digits_b),
        );
    }
    let modules = modules_text(&seen.modules);
    if let Some(want) = &expected.module {
        let ok = seen.modules.iter().any(|(name, _)| name == want);
        check("module", ok, q(want), format!("[{modules}]"));
        if let Some(outcome) = &expected.module_outcome {
            let ok = seen
                .modules
                .iter()
                .any(|(name, o)| name == want && o.as_deref() == Some(outcome.as_str()));
            check("module_outcome", ok, q(outcome), format!("[{modules}]"));
        }
    } else if let Some(outcome) = &expected.module_outcome {
        let ok = seen
            .modules
            .iter()
            .any(|(_, o)| o.as_deref() == Some(outcome.as_str()));
        check("module_outcome", ok, q(outcome), format!("[{modules}]"));
    }
    if let Some(want) = &expected.refer_to {
        let ok = seen.refers.iter().any(|r| r.contains(want.as_str()));
        check("refer_to", ok, q(want), format!("{:?}", seen.refers));
    }
    if let Some(min) = expected.recording_min_secs {
        let longest = seen
            .recordings_secs
            .iter()
            .copied()
            .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
        check(
            "recording_min_secs",
            longest.is_some_and(|s| s >= min),
            format!(">= {min}"),
            longest.map_or_else(|| "no recording".to_owned(), |s| format!("{s:.2}")),
        );
    }
    if let Some(want) = &expected.ended_by {
        check(
            "ended_by",
            *want == seen.ended_by,
            q(want),
            q(&seen.ended_by),
        );
    }
    out
}

fn q(text: &str) -> String {
    format!("{text:?}")
}

/// Reads an expectation file: JSON when its name ends in `.json`, TOML otherwise.
pub fn load_expectation(path: &Path) -> Result<Expectation, ReplayError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReplayError::File {
        path: path.to_owned(),
        source,
    })?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let parsed = if is_json {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        toml::from_str(&text).map_err(|e| e.to_string())
    };
    parsed.map_err(|message| ReplayError::Expectation {
        path: path.to_owned(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome() -> Outcome {
        Outcome {
            digits_a: "*9".into(),
            modules: vec![("hangup".into(), Some("success".into()))],
            ended_by: "proxy".into(),
            recordings_secs: vec![2.5],
            refers: vec!["<sip:2000@127.0.0.1>".into()],
            ..Outcome::default()
        }
    }

    #[test]
    fn a_met_expectation_has_no_diff() {
        let exp: Expectation = toml::from_str(
            "digits_a = \"*9\"\nmodule = \"hangup\"\nmodule_outcome = \"success\"\n\
             ended_by = \"proxy\"\nrecording_min_secs = 2\nrefer_to = \"sip:2000@\"\n",
        )
        .unwrap();
        assert_eq!(diff(&exp, &outcome()), vec![]);
    }

    #[test]
    fn each_unmet_field_is_one_line_naming_it() {
        let exp = Expectation {
            digits_a: Some("*0".into()),
            module: Some("transfer".into()),
            ended_by: Some("caller".into()),
            recording_min_secs: Some(3.0),
            ..Expectation::default()
        };
        let lines: Vec<String> = diff(&exp, &outcome())
            .iter()
            .map(|m| m.to_string())
            .collect();
        assert_eq!(
            lines,
            vec![
                "digits_a: expected \"*0\", seen \"*9\"",
                "module: expected \"transfer\", seen [hangup(success)]",
                "recording_min_secs: expected >= 3, seen 2.50",
                "ended_by: expected \"caller\", seen \"proxy\"",
            ]
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<Expectation>("digit_a = \"1\"").unwrap_err();
        assert!(err.to_string().contains("digit_a"), "{err}");
    }
}
