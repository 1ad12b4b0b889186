//! The corpus runner: `replay DIR/` plays every `NAME.pcap` that has a `NAME.expect.toml` (or
//! `.expect.json`) beside it and tabulates the results, so a folder of captures is a
//! regression suite for a live proxy.

use std::path::{Path, PathBuf};

use crate::base::ErrorChain;

use super::ReplayError;
use super::expect::{diff, load_expectation};
use super::run::{ReplayOptions, replay_file};

/// One corpus entry's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusRow {
    /// The capture's file name without its extension.
    pub name: String,
    /// Whether every expectation was met.
    pub passed: bool,
    /// The mismatches, or the error, or a short summary when it passed.
    pub detail: String,
}

const CAPTURE_EXTENSIONS: [&str; 3] = ["pcap", "cap", "pcapng"];

/// The (name, capture, expectation) triples of a folder listing, sorted by name; captures
/// without an expectation file are left out.
pub(super) fn pairs(files: &[PathBuf]) -> Vec<(String, PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for file in files {
        let Some(ext) = file.extension().and_then(|e| e.to_str()) else {
            continue;
        };
        if !CAPTURE_EXTENSIONS.contains(&ext) {
            continue;
        }
        let Some(stem) = file.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let expectation = ["toml", "json"]
            .iter()
            .map(|kind| file.with_file_name(format!("{stem}.expect.{kind}")))
            .find(|candidate| files.contains(candidate));
        if let Some(expectation) = expectation {
            out.push((stem.to_owned(), file.clone(), expectation));
        }
    }
    out.sort();
    out
}

/// Replays every pair of `dir` one after the other through the same proxy.
pub fn run_corpus(dir: &Path, opts: &ReplayOptions) -> Result<Vec<CorpusRow>, ReplayError> {
    let io = |source| ReplayError::File {
        path: dir.to_owned(),
        source,
    };
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    let mut rows = Vec::new();
    for (name, capture, expectation) in pairs(&files) {
        let row = match load_expectation(&expectation) {
            Err(err) => CorpusRow {
                name,
                passed: false,
                detail: ErrorChain(&err).to_string(),
            },
            Ok(expected) => match replay_file(&capture, opts) {
                Err(err) => CorpusRow {
                    name,
                    passed: false,
                    detail: ErrorChain(&err).to_string(),
                },
                Ok(seen) => {
                    let misses = diff(&expected, &seen);
                    CorpusRow {
                        name,
                        passed: misses.is_empty(),
                        detail: if misses.is_empty() {
                            format!(
                                "digits a={:?} b={:?}, ended by {}",
                                seen.digits_a, seen.digits_b, seen.ended_by
                            )
                        } else {
                            misses
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("; ")
                        },
                    }
                }
            },
        };
        rows.push(row);
    }
    Ok(rows)
}

/// The table printed for a corpus run: name, result, detail.
pub fn render_table(rows: &[CorpusRow]) -> String {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let mut out = format!("{:width$}  result  detail\n", "name");
    for row in rows {
        let result = if row.passed { "ok" } else { "FAIL" };
        out.push_str(&format!(
            "{:width$}  {result:6}  {}\n",
            row.name, row.detail
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_captures_with_an_expectation_are_paired() {
        let files: Vec<PathBuf> = [
            "d/b.pcap",
            "d/b.expect.toml",
            "d/a.cap",
            "d/a.expect.json",
            "d/c.pcap",
            "d/README.md",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let got = pairs(&files);
        let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, vec!["a", "b"]);
        assert_eq!(got[0].2, PathBuf::from("d/a.expect.json"));
    }

    #[test]
    fn the_table_has_one_row_per_entry() {
        let rows = vec![CorpusRow {
            name: "x".into(),
            passed: false,
            detail: "ended_by: expected \"caller\", seen \"proxy\"".into(),
        }];
        let table = render_table(&rows);
        assert!(table.contains("x     FAIL    ended_by"), "{table}");
    }
}
