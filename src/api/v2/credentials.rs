//! The secrets account and user documents carry, kept as Kazoo keeps them: an account gets a
//! random `pvt_api_key` (64 hex digits) when created, shown to clients as `api_key`; a user's
//! `password` is never stored, only Kazoo's hashes of `username:password` (`pvt_md5_auth`,
//! `pvt_sha1_auth`). Private (`pvt_`) members survive a replace or a patch and are never
//! shown.

use md5::{Digest, Md5};
use serde_json::{Map, Value};
use sha1::Sha1;

use super::ApiError;
use super::schema::Kind;
use crate::base::Problem;

/// The stored member holding an account's API key.
pub(super) const API_KEY: &str = "pvt_api_key";
/// The stored MD5 hash of a user's `username:password`.
pub(super) const MD5_AUTH: &str = "pvt_md5_auth";
/// The stored SHA-1 hash of a user's `username:password`.
pub(super) const SHA1_AUTH: &str = "pvt_sha1_auth";
/// Random bytes in an API key (written as twice as many hex digits, as Kazoo's).
pub(super) const API_KEY_BYTES: usize = 32;

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Kazoo's `pass_hashes`: MD5 and SHA-1 (lowercase hex) of `username:password`.
pub(super) fn pass_hashes(username: &str, password: &str) -> (String, String) {
    let creds = format!("{username}:{password}");
    (
        hex(&Md5::digest(creds.as_bytes())),
        hex(&Sha1::digest(creds.as_bytes())),
    )
}

/// `bytes` random bytes from the OS RNG as lowercase hex (tokens, API keys).
pub(super) fn random_hex(bytes: usize) -> Result<String, ApiError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|_| ApiError::Internal)?;
    Ok(hex(&buffer))
}

/// Prepares a checked document of `kind` for storage: the private members of `current` are
/// kept, an account gets an API key when it has none, a user's `password` becomes its hashes.
pub(super) fn seal(
    kind: Kind,
    current: Option<&Map<String, Value>>,
    doc: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    if let Some(current) = current {
        for (key, value) in current.iter().filter(|(key, _)| key.starts_with("pvt_")) {
            doc.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    if kind == Kind::Account {
        // The key is the server's: what a client sends as `api_key` is not stored.
        doc.remove("api_key");
    }
    match kind {
        Kind::Account if !doc.get(API_KEY).is_some_and(Value::is_string) => {
            doc.insert(API_KEY.into(), Value::String(random_hex(API_KEY_BYTES)?));
        }
        Kind::User => hash_password(doc)?,
        _ => {}
    }
    Ok(())
}

/// Replaces a user's `password` by its hashes; the username is lowercased as Kazoo stores it.
fn hash_password(doc: &mut Map<String, Value>) -> Result<(), ApiError> {
    let Some(password) = doc.remove("password") else {
        return Ok(());
    };
    let problem = |path: &str, rule: &str, message: &str, value: Option<Value>| {
        ApiError::Validation(vec![Problem {
            path: path.to_owned(),
            rule: rule.to_owned(),
            message: message.to_owned(),
            target: (rule == "type").then(|| Value::String("string".into())),
            value,
        }])
    };
    let Value::String(password) = password else {
        let message = "Value did not match type(s): string";
        return Err(problem("password", "type", message, Some(password)));
    };
    let Some(username) = doc.get("username").and_then(Value::as_str) else {
        let message = "Field is required but missing";
        return Err(problem(
            "username",
            "required",
            message,
            Some("username".into()),
        ));
    };
    let username = username.to_lowercase();
    let (md5, sha1) = pass_hashes(&username, &password);
    doc.insert("username".into(), Value::String(username));
    doc.insert(MD5_AUTH.into(), Value::String(md5));
    doc.insert(SHA1_AUTH.into(), Value::String(sha1));
    Ok(())
}

/// The document as clients see it: private members removed, an account's key as `api_key`.
pub(super) fn public(kind: Kind, mut doc: Map<String, Value>) -> Map<String, Value> {
    let api_key = doc.remove(API_KEY);
    doc.retain(|key, _| !key.starts_with("pvt_"));
    if let (Kind::Account, Some(key)) = (kind, api_key) {
        doc.insert("api_key".into(), key);
    }
    doc
}

/// Kazoo's `normalize_name` of an account name: lowercase letters and digits only.
pub(super) fn normalize_name(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_password_is_stored_as_kazoos_hashes_only() {
        let mut doc = json!({"username": "Alice", "password": "secret"})
            .as_object()
            .cloned()
            .unwrap();
        seal(Kind::User, None, &mut doc).unwrap();
        assert!(doc.get("password").is_none());
        // python3 -c "import hashlib; print(hashlib.md5(b'alice:secret').hexdigest())"
        assert_eq!(doc[MD5_AUTH], "6f622058968bb90757e6c6ed79e5df81");
        assert_eq!(doc[SHA1_AUTH], hex(&Sha1::digest(b"alice:secret")));
        let shown = public(Kind::User, doc);
        assert_eq!(
            shown,
            json!({"username": "alice"}).as_object().cloned().unwrap()
        );
    }

    #[test]
    fn accounts_keep_their_key_and_show_it() {
        let mut doc = Map::new();
        seal(Kind::Account, None, &mut doc).unwrap();
        let key = doc[API_KEY].as_str().unwrap().to_owned();
        assert_eq!(key.len(), 64);
        let mut replaced = Map::new();
        seal(Kind::Account, Some(&doc), &mut replaced).unwrap();
        assert_eq!(replaced[API_KEY], key.as_str());
        assert_eq!(public(Kind::Account, replaced)["api_key"], key.as_str());
        assert_eq!(normalize_name("My Account-1"), "myaccount1");
    }
}
