//! Which `X-Auth-Token` values the `/v2` API accepts. Configured `api-auth-tokens` are taken as
//! they are; with none configured, a random token is generated at first start and kept in
//! `DATA_DIR/api-token` (mode 0600), so that the API works on the embedded defaults and only the
//! OS user who runs the proxy can read the way in (see docs/DECISIONS.md).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Name of the generated token's file inside `data-dir`.
pub const TOKEN_FILE_NAME: &str = "api-token";

/// Random bytes in a generated token (written as twice as many hex digits).
const TOKEN_BYTES: usize = 32;

/// Why the token file could not be read or written; start-up stops with it.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// Reading, creating or renaming the file failed.
    #[error("cannot {action} the API token file {path}: {source}")]
    Io {
        /// What was being done (`read`, `write`...).
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file exists but holds no usable token.
    #[error(
        "the API token file {path} holds no token (one line of visible ASCII); delete it to have \
         a new one generated, or configure api-auth-tokens"
    )]
    Unusable {
        /// The file concerned.
        path: PathBuf,
    },
    /// The OS random number generator failed.
    #[error("cannot generate an API token: the OS random number generator failed: {0}")]
    Random(getrandom::Error),
}

/// The tokens the `/v2` API accepts and, when one was generated, the file that holds it.
#[derive(Clone, Debug, Default)]
pub struct ApiTokens {
    accepted: Vec<String>,
    file: Option<PathBuf>,
}

impl From<Vec<String>> for ApiTokens {
    /// Exactly the configured tokens, no file (an empty list refuses every request).
    fn from(accepted: Vec<String>) -> Self {
        Self {
            accepted,
            file: None,
        }
    }
}

impl ApiTokens {
    /// The configured tokens when there are any (no file is created then); otherwise the token
    /// kept in `DATA_DIR/api-token`, generated from the OS RNG when the file does not exist yet.
    /// `data_dir` must exist.
    pub fn configured_or_generated(
        configured: Vec<String>,
        data_dir: &Path,
    ) -> Result<Self, TokenFileError> {
        if !configured.is_empty() {
            return Ok(Self::from(configured));
        }
        let joined = data_dir.join(TOKEN_FILE_NAME);
        let path = std::path::absolute(&joined).unwrap_or(joined);
        let token = match fs::read_to_string(&path) {
            Ok(text) => {
                parse(&text).ok_or_else(|| TokenFileError::Unusable { path: path.clone() })?
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => create(&path)?,
            Err(source) => {
                return Err(TokenFileError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        warn_if_readable_by_others(&path);
        Ok(Self {
            accepted: vec![token],
            file: Some(path),
        })
    }

    /// The file holding the generated token; `None` when tokens are configured.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Whether `token` is one of the accepted tokens (compared in constant time).
    pub(super) fn accepts(&self, token: &str) -> bool {
        !token.is_empty()
            && self
                .accepted
                .iter()
                .any(|known| constant_time_eq(known.as_bytes(), token.as_bytes()))
    }

    /// What a refused client is told: how to authenticate and where the token is.
    pub(super) fn how_to_get_in(&self) -> String {
        match &self.file {
            Some(path) => format!(
                "send X-Auth-Token; with no api-auth-tokens configured the token is in {}",
                path.display()
            ),
            None if self.accepted.is_empty() => {
                "send X-Auth-Token; no token is accepted: configure api-auth-tokens".to_owned()
            }
            None => "send X-Auth-Token with one of the configured api-auth-tokens".to_owned(),
        }
    }
}

/// The token in a file's text: its one line, trimmed; `None` unless non-empty visible ASCII.
fn parse(text: &str) -> Option<String> {
    let token = text.trim();
    let usable = !token.is_empty() && token.bytes().all(|byte| byte.is_ascii_graphic());
    usable.then(|| token.to_owned())
}

/// Generates a token and writes it to `path` with mode 0600: to a temporary file first, synced,
/// then renamed, so that a crash never leaves a half-written token behind.
fn create(path: &Path) -> Result<String, TokenFileError> {
    let token = generate()?;
    let temporary = path.with_extension("tmp");
    let io_error = |action, source| TokenFileError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(|source| io_error("create", source))?;
    // `mode` is only applied when the file is created: a leftover temporary file is narrowed.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|source| io_error("restrict", source))?;
    writeln!(file, "{token}").map_err(|source| io_error("write", source))?;
    file.sync_all().map_err(|source| io_error("sync", source))?;
    fs::rename(&temporary, path).map_err(|source| io_error("rename into place", source))?;
    tracing::info!(file = %path.display(), "generated an API token (no api-auth-tokens configured)");
    Ok(token)
}

/// 32 bytes from the OS RNG, as 64 lowercase hex digits.
fn generate() -> Result<String, TokenFileError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(TokenFileError::Random)?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Logs a warning when the token file can be read by other users than its owner.
fn warn_if_readable_by_others(path: &Path) {
    if let Ok(metadata) = fs::metadata(path) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = format!("{mode:o}"),
                "the API token file is readable by other users: chmod 600 it"
            );
        }
    }
}

/// Compares two byte strings without an early exit on the first difference.
pub(super) fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    left.iter()
        .zip(right)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_kept_with_mode_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = ApiTokens::configured_or_generated(Vec::new(), dir.path()).unwrap();
        let path = dir.path().join(TOKEN_FILE_NAME);
        assert_eq!(
            first.file(),
            Some(std::path::absolute(&path).unwrap().as_path())
        );
        let token = fs::read_to_string(&path).unwrap().trim().to_owned();
        assert_eq!(token.len(), 2 * TOKEN_BYTES);
        assert!(token.bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(first.accepts(&token) && !first.accepts("") && !first.accepts("guess"));
        assert!(!dir.path().join("api-token.tmp").exists());

        let again = ApiTokens::configured_or_generated(Vec::new(), dir.path()).unwrap();
        assert!(again.accepts(&token));
        let hint = again.how_to_get_in();
        assert!(hint.contains(&path.display().to_string()), "{hint}");
        assert!(!hint.contains(&token));
    }

    #[test]
    fn configured_tokens_replace_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = ApiTokens::configured_or_generated(vec!["s3cret".into()], dir.path()).unwrap();
        assert!(tokens.accepts("s3cret") && tokens.file().is_none());
        assert!(!dir.path().join(TOKEN_FILE_NAME).exists());
        assert!(
            tokens
                .how_to_get_in()
                .contains("configured api-auth-tokens")
        );
    }

    #[test]
    fn an_edited_token_is_taken_and_an_empty_file_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TOKEN_FILE_NAME);
        fs::write(&path, "  my-own-token\n").unwrap();
        let tokens = ApiTokens::configured_or_generated(Vec::new(), dir.path()).unwrap();
        assert!(tokens.accepts("my-own-token"));
        fs::write(&path, "\n").unwrap();
        let error = ApiTokens::configured_or_generated(Vec::new(), dir.path()).unwrap_err();
        assert!(matches!(error, TokenFileError::Unusable { .. }), "{error}");
        fs::write(&path, "two words").unwrap();
        assert!(ApiTokens::configured_or_generated(Vec::new(), dir.path()).is_err());
    }

    #[test]
    fn two_tokens_are_never_the_same() {
        assert_ne!(generate().unwrap(), generate().unwrap());
    }
}
