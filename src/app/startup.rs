//! What start-up checks before it opens anything, shared with `check-config` so that the two
//! can never disagree: a file `check-config` accepts starts, and one start-up refuses is refused
//! by `check-config` with the same message.

use std::path::PathBuf;

use serde_json::Value;

use crate::config::Config;

/// Why a configuration that parsed cannot run.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// The `metaflows` file is missing, unreadable, not JSON or not a valid metaflow object;
    /// the message names the file and every problem found.
    #[error("{0}")]
    Metaflows(String),
    /// `data-dir` exists but is not a directory.
    #[error("data-dir {} exists and is not a directory", .0.display())]
    DataDirNotADirectory(PathBuf),
}

/// What the checks read and start-up goes on with.
#[derive(Debug, Default)]
pub struct Preflight {
    /// The `metaflows` file's document, validated exactly as the API validates one.
    pub metaflows: Option<Value>,
}

/// Runs every check that needs no socket, lock or write: the `metaflows` file (read, parsed and
/// validated as the API would) and the kind of `data-dir`.
pub fn preflight(cfg: &Config) -> Result<Preflight, PreflightError> {
    if cfg.data_dir.exists() && !cfg.data_dir.is_dir() {
        return Err(PreflightError::DataDirNotADirectory(cfg.data_dir.clone()));
    }
    let metaflows = match &cfg.metaflows {
        Some(path) => Some(read_metaflows(path)?),
        None => None,
    };
    Ok(Preflight { metaflows })
}

/// Reads and validates a metaflows file; the document comes back as JSON for the store.
pub fn read_metaflows(path: &std::path::Path) -> Result<Value, PreflightError> {
    crate::metaflow::load_metaflows_document(path)
        .map(|(_, document)| document)
        .map_err(PreflightError::Metaflows)
}

/// The file in the data directory that remembers which revision of the default account's
/// metaflows the `metaflows` file stored: that document is the file's, not the API's.
pub const METAFLOWS_MARKER: &str = "metaflows-file.rev";

/// What [`sync_metaflows_file`] did, for the log.
#[derive(Debug, PartialEq, Eq)]
pub enum MetaflowsSync {
    /// The file's document is now the default account's metaflows, at this revision.
    Stored(String),
    /// No file is configured and the document it had stored was emptied.
    Removed,
    /// No file is configured; the document it had stored was edited through the API since,
    /// so it stays (now the API's).
    KeptEdited,
    /// No file is configured and none had stored anything: the store is left alone.
    Untouched,
}

/// Makes the default account's metaflows follow the `metaflows` file: while the file is
/// configured its document is stored (at start-up and at each reload); once it is no longer
/// configured, the document it stored is emptied, unless it was changed through the API since.
/// Metaflows of other accounts, users and devices are the API's alone.
pub fn sync_metaflows_file(
    v2: &crate::api::v2::V2State,
    data_dir: &std::path::Path,
    doc: Option<&Value>,
) -> Result<MetaflowsSync, String> {
    use crate::api::v2::MetaflowOwner;
    let owner = MetaflowOwner::Account(v2.default_account_id().to_string());
    let marker = data_dir.join(METAFLOWS_MARKER);
    match doc {
        Some(doc) => {
            let rev = v2
                .replace_metaflows(&owner, doc)
                .map_err(|e| format!("cannot store the metaflows file: {e:?}"))?;
            std::fs::write(&marker, &rev)
                .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
            Ok(MetaflowsSync::Stored(rev))
        }
        None => {
            let Ok(rev) = std::fs::read_to_string(&marker) else {
                return Ok(MetaflowsSync::Untouched);
            };
            let empty = Value::Object(serde_json::Map::new());
            let outcome = match v2.replace_metaflows_at(&owner, &empty, Some(rev.trim().to_owned()))
            {
                Ok(_) => MetaflowsSync::Removed,
                Err(crate::api::v2::ApiError::Conflict { .. }) => MetaflowsSync::KeptEdited,
                Err(e) => {
                    return Err(format!(
                        "cannot remove the metaflows file's document: {e:?}"
                    ));
                }
            };
            std::fs::remove_file(&marker)
                .map_err(|e| format!("cannot remove {}: {e}", marker.display()))?;
            Ok(outcome)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(metaflows: Option<PathBuf>, data_dir: PathBuf) -> Config {
        Config {
            metaflows,
            data_dir,
            ..Config::default()
        }
    }

    #[test]
    fn a_missing_or_invalid_metaflows_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.json");
        let err = preflight(&config_with(Some(missing.clone()), dir.path().join("d")))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&missing.display().to_string()), "{err}");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"numbers": {"1": {"module": "no_such_module"}}}"#).unwrap();
        let err = preflight(&config_with(Some(bad), dir.path().join("d")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("numbers.1"), "{err}");
        let good = dir.path().join("good.json");
        std::fs::write(&good, r#"{"numbers": {"2": {"module": "hangup"}}}"#).unwrap();
        let ok = preflight(&config_with(Some(good), dir.path().join("d"))).unwrap();
        assert!(ok.metaflows.is_some());
    }

    #[test]
    fn a_data_dir_that_is_a_file_is_refused() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = preflight(&config_with(None, file.path().to_owned())).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }
}
