//! The auth tokens `PUT /v2/user_auth` and `PUT /v2/api_auth` hand out, as Kazoo's: random,
//! valid for an hour (Kazoo's `token_auth_expiry_s` default), each bound to one account. The table
//! is bounded ([`MAX_SESSIONS`]); expired entries are dropped as new ones come. Tokens are kept
//! by their SHA-256, so that a lookup's timing says nothing about a live token. Refusals are
//! counted for `/metrics`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::ApiError;
use super::credentials::random_hex;
use crate::metrics::{MetricsSource, write_header, write_sample};

/// How long a token lives (Kazoo's default `token_auth_expiry_s`).
pub(super) const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// Most live tokens kept; a login beyond it is refused until some expire or log out.
pub(super) const MAX_SESSIONS: usize = 10_000;
/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

/// Why a request was refused, for `api_auth_refusals_total{reason}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Wrong credentials or API key on `user_auth`/`api_auth`.
    InvalidCredentials,
    /// No token, or one that is not (or no longer) valid.
    UnknownToken,
    /// A valid token used outside its account.
    OtherAccount,
    /// The table of live tokens is full.
    TableFull,
}

impl Refusal {
    const ALL: [Refusal; 4] = [
        Refusal::InvalidCredentials,
        Refusal::UnknownToken,
        Refusal::OtherAccount,
        Refusal::TableFull,
    ];

    fn label(self) -> &'static str {
        match self {
            Refusal::InvalidCredentials => "invalid_credentials",
            Refusal::UnknownToken => "unknown_token",
            Refusal::OtherAccount => "other_account",
            Refusal::TableFull => "table_full",
        }
    }
}

/// What a live token stands for.
#[derive(Clone, Debug)]
pub(super) struct Session {
    /// The account the token may act on.
    pub account_id: String,
    /// The user who logged in (`user_auth`); `None` for `api_auth`.
    pub owner_id: Option<String>,
    /// `cb_user_auth` or `cb_api_auth`, as Kazoo names the method in the token's claims.
    pub method: &'static str,
    /// Expiry as seconds since the Unix epoch (Kazoo's `exp` claim).
    pub exp: u64,
    expires: Instant,
}

/// The live tokens and the refusal counters.
pub struct Sessions {
    live: Mutex<HashMap<[u8; 32], Session>>,
    refusals: [AtomicU64; Refusal::ALL.len()],
    /// Most live tokens ([`MAX_SESSIONS`]).
    max: usize,
    /// How long a token lives ([`TOKEN_LIFETIME`]).
    lifetime: Duration,
}

impl Default for Sessions {
    fn default() -> Self {
        Self::limited(MAX_SESSIONS, TOKEN_LIFETIME)
    }
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    /// A table of at most `max` tokens, each living `lifetime`.
    fn limited(max: usize, lifetime: Duration) -> Self {
        Self {
            live: Mutex::default(),
            refusals: Default::default(),
            max,
            lifetime,
        }
    }

    /// Issues a token for `account_id` (and `owner_id`); refused when the table is full.
    pub(super) fn issue(
        &self,
        account_id: &str,
        owner_id: Option<&str>,
        method: &'static str,
    ) -> Result<(String, Session), ApiError> {
        let token = random_hex(TOKEN_BYTES)?;
        let now = Instant::now();
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(self.lifetime)
            .as_secs();
        let session = Session {
            account_id: account_id.to_owned(),
            owner_id: owner_id.map(str::to_owned),
            method,
            exp,
            expires: now + self.lifetime,
        };
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.retain(|_, session| session.expires > now);
        if live.len() >= self.max {
            drop(live);
            self.refused(Refusal::TableFull);
            return Err(ApiError::Unavailable(
                "too many live auth tokens; retry later".into(),
            ));
        }
        live.insert(key(&token), session.clone());
        Ok((token, session))
    }

    /// The session of a live `token`.
    pub(super) fn lookup(&self, token: &str) -> Option<Session> {
        let now = Instant::now();
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.get(&key(token))
            .filter(|session| session.expires > now)
            .cloned()
    }

    /// Ends `token` (logout); `true` when it was live.
    pub(super) fn revoke(&self, token: &str) -> bool {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.remove(&key(token)).is_some()
    }

    /// Counts one refusal.
    pub(super) fn refused(&self, why: Refusal) {
        if let Some(counter) = Refusal::ALL
            .iter()
            .position(|known| *known == why)
            .and_then(|slot| self.refusals.get(slot))
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn live_count(&self) -> usize {
        let now = Instant::now();
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.values()
            .filter(|session| session.expires > now)
            .count()
    }
}

impl MetricsSource for Sessions {
    fn render_prometheus(&self, out: &mut String) {
        let name = "api_auth_refusals_total";
        write_header(
            out,
            name,
            "counter",
            "API requests refused: wrong credentials, unknown or expired token, a token used \
             outside its account, or a full token table.",
        );
        for (why, count) in Refusal::ALL.iter().zip(&self.refusals) {
            let value = count.load(Ordering::Relaxed);
            write_sample(out, name, &[("reason", why.label())], value);
        }
        let name = "api_auth_tokens";
        write_header(
            out,
            name,
            "gauge",
            "Live auth tokens from user_auth and api_auth.",
        );
        write_sample(out, name, &[], self.live_count() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_issued_found_revoked_and_refusals_rendered() {
        let sessions = Sessions::default();
        let (token, session) = sessions
            .issue("acct", Some("user"), "cb_user_auth")
            .unwrap();
        assert_eq!(token.len(), 64);
        assert!(session.exp > 0);
        assert_eq!(sessions.lookup(&token).unwrap().account_id, "acct");
        assert!(sessions.lookup("guess").is_none());
        assert!(sessions.revoke(&token));
        assert!(sessions.lookup(&token).is_none());
        sessions.refused(Refusal::InvalidCredentials);
        let mut out = String::new();
        sessions.render_prometheus(&mut out);
        assert!(
            out.contains("api_auth_refusals_total{reason=\"invalid_credentials\"} 1"),
            "{out}"
        );
        assert!(out.contains("api_auth_tokens 0"), "{out}");
    }

    #[test]
    fn the_table_is_bounded_and_tokens_expire() {
        let sessions = Sessions::limited(2, Duration::from_secs(3600));
        sessions.issue("a", None, "cb_api_auth").unwrap();
        sessions.issue("a", None, "cb_api_auth").unwrap();
        assert!(matches!(
            sessions.issue("a", None, "cb_api_auth"),
            Err(ApiError::Unavailable(_))
        ));
        let mut out = String::new();
        sessions.render_prometheus(&mut out);
        assert!(out.contains("reason=\"table_full\"} 1"), "{out}");

        let short = Sessions::limited(2, Duration::ZERO);
        let (token, _) = short.issue("a", None, "cb_api_auth").unwrap();
        assert!(short.lookup(&token).is_none(), "expired at once");
        short.issue("a", None, "cb_api_auth").unwrap();
        short.issue("a", None, "cb_api_auth").unwrap();
        assert!(
            short.issue("a", None, "cb_api_auth").is_ok(),
            "expired entries make room"
        );
    }
}
