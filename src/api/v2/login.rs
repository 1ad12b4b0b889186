//! Kazoo's logins and token routes: `PUT /v2/user_auth` (a user's `credentials`, the MD5 or
//! SHA-1 of `username:password`, with `account_name` or `account_realm`), `PUT /v2/api_auth`
//! (an account's `api_key`), each answering 201 with a fresh `auth_token` in the envelope and
//! Kazoo's `data` (`account_id`, `owner_id`, ...); `GET /v2/token_auth` (what the token stands
//! for) and `DELETE /v2/token_auth` (logout); `GET`/`PUT /v2/accounts/{A}/api_key` (show, renew).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use super::auth::constant_time_eq;
use super::credentials::{API_KEY, API_KEY_BYTES, MD5_AUTH, SHA1_AUTH, normalize_name, random_hex};
use super::envelope::{AUTH_TOKEN_HEADER, IssuedToken, Reply};
use super::request::{submitted, wrong_type};
use super::sessions::{Refusal, Session};
use super::{ApiError, V2State};
use crate::base::Problem;
use crate::store::{Collection, OpenTable, View};

/// Kazoo's refusal of wrong credentials (counted).
fn invalid_credentials(state: &V2State) -> ApiError {
    state.shared.sessions.refused(Refusal::InvalidCredentials);
    ApiError::Unauthorized { how: String::new() }
}

/// A required string member of a login's `data`.
fn required_string(data: &Map<String, Value>, key: &str) -> Result<String, ApiError> {
    match data.get(key) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        None | Some(Value::Null) => Err(ApiError::Validation(vec![Problem {
            path: key.to_owned(),
            rule: "required".into(),
            message: "Field is required but missing".into(),
            target: None,
            value: Some(Value::String(key.to_owned())),
        }])),
        Some(other) => Err(wrong_type(key, "string", Some(other.clone()))),
    }
}

/// Kazoo's `response_auth` data for a session.
fn session_data(view: &View<impl OpenTable>, session: &Session) -> Result<Value, ApiError> {
    let account = view.get(Collection::Accounts, &session.account_id, "")?;
    let name = account
        .as_ref()
        .and_then(|stored| stored.doc.get("name").cloned())
        .unwrap_or(Value::Null);
    let mut data = json!({
        "account_id": session.account_id,
        "account_name": name,
        "apps": [],
        "is_reseller": false,
        "language": "en-us",
        "method": session.method,
        "exp": session.exp,
    });
    if let (Some(owner), Value::Object(map)) = (&session.owner_id, &mut data) {
        map.insert("owner_id".into(), Value::String(owner.clone()));
    }
    Ok(data)
}

/// Issues a token for the account (and user) found and answers 201 with it.
fn logged_in(
    state: &V2State,
    view: &View<impl OpenTable>,
    account_id: &str,
    owner_id: Option<&str>,
    method: &'static str,
) -> Result<(Extension<IssuedToken>, Reply), ApiError> {
    let (token, session) = state.shared.sessions.issue(account_id, owner_id, method)?;
    let data = session_data(view, &session)?;
    let reply = Reply {
        status: StatusCode::CREATED,
        data,
        revision: None,
    };
    Ok((Extension(IssuedToken(token)), reply))
}

/// `PUT /v2/user_auth`.
pub(super) async fn user_auth(
    State(state): State<V2State>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(Extension<IssuedToken>, Reply), ApiError> {
    let data = submitted(&headers, &body)?.data;
    let credentials = required_string(&data, "credentials")?.to_ascii_lowercase();
    let hash_key = match data.get("method").and_then(Value::as_str).unwrap_or("md5") {
        "md5" => MD5_AUTH,
        "sha" | "sha1" => SHA1_AUTH,
        _ => return Err(invalid_credentials(&state)),
    };
    let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_owned);
    let name = text("account_name").map(|name| normalize_name(&name));
    let realm = text("account_realm").or_else(|| text("realm"));
    state
        .blocking(move |state| {
            let view = state.shared.store.read()?;
            let account = view
                .list_all(Collection::Accounts)?
                .into_iter()
                .find(|(_, stored)| {
                    let field = |key: &str| stored.doc.get(key).and_then(Value::as_str);
                    match (&realm, &name) {
                        (Some(realm), _) => {
                            field("realm").is_some_and(|it| it.eq_ignore_ascii_case(realm))
                        }
                        (None, Some(name)) => {
                            field("name").is_some_and(|it| normalize_name(it) == *name)
                        }
                        (None, None) => false,
                    }
                });
            let Some((account_id, _)) = account else {
                return Err(invalid_credentials(state));
            };
            let user = view
                .list(Collection::Users, &account_id)?
                .into_iter()
                .find(|user| {
                    user.doc
                        .get(hash_key)
                        .and_then(Value::as_str)
                        .is_some_and(|hash| {
                            constant_time_eq(hash.as_bytes(), credentials.as_bytes())
                        })
                });
            let Some(user) = user else {
                return Err(invalid_credentials(state));
            };
            logged_in(state, &view, &account_id, Some(&user.id), "cb_user_auth")
        })
        .await
}

/// `PUT /v2/api_auth`.
pub(super) async fn api_auth(
    State(state): State<V2State>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(Extension<IssuedToken>, Reply), ApiError> {
    let data = submitted(&headers, &body)?.data;
    let api_key = required_string(&data, "api_key")?;
    state
        .blocking(move |state| {
            let view = state.shared.store.read()?;
            let mut found = None;
            // Every key is compared, so that the time taken says nothing about which matched.
            for (account_id, stored) in view.list_all(Collection::Accounts)? {
                let key = stored
                    .doc
                    .get(API_KEY)
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if constant_time_eq(key.as_bytes(), api_key.as_bytes()) && !key.is_empty() {
                    found = Some(account_id);
                }
            }
            let Some(account_id) = found else {
                return Err(invalid_credentials(state));
            };
            logged_in(state, &view, &account_id, None, "cb_api_auth")
        })
        .await
}

/// The token a request was sent with.
fn token_of(headers: &HeaderMap) -> String {
    headers
        .get(AUTH_TOKEN_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// `GET /v2/token_auth`: what the token stands for (an operator's token: `method` only).
pub(super) async fn token_info(
    State(state): State<V2State>,
    headers: HeaderMap,
) -> Result<Reply, ApiError> {
    let token = token_of(&headers);
    state
        .blocking(move |state| match state.shared.sessions.lookup(&token) {
            Some(session) => {
                let view = state.shared.store.read()?;
                Ok(Reply::ok(session_data(&view, &session)?, None))
            }
            None => Ok(Reply::ok(json!({"method": "api_auth_tokens"}), None)),
        })
        .await
}

/// `DELETE /v2/token_auth`: ends the token (an operator's static token cannot be ended).
pub(super) async fn logout(
    State(state): State<V2State>,
    headers: HeaderMap,
) -> Result<Reply, ApiError> {
    if state.shared.sessions.revoke(&token_of(&headers)) {
        Ok(Reply::ok(json!({}), None))
    } else {
        Err(ApiError::Forbidden(
            "an api-auth-tokens token cannot be logged out".into(),
        ))
    }
}

/// The `{"api_key": ...}` reply of `/v2/accounts/{A}/api_key`.
fn api_key_reply(doc: &Map<String, Value>) -> Reply {
    let key = doc.get(API_KEY).cloned().unwrap_or(Value::Null);
    Reply::ok(json!({ "api_key": key }), None)
}

/// `GET /v2/accounts/{A}/api_key`: the account's API key (Kazoo's route for it).
pub(super) async fn api_key(
    State(state): State<V2State>,
    Path(account_id): Path<String>,
) -> Result<Reply, ApiError> {
    state
        .blocking(move |state| {
            let view = state.shared.store.read()?;
            match view.get(Collection::Accounts, &account_id, "")? {
                Some(stored) => Ok(api_key_reply(&stored.doc)),
                None => Err(ApiError::NotFound {
                    kind: "account",
                    id: account_id,
                }),
            }
        })
        .await
}

/// `PUT /v2/accounts/{A}/api_key`: a new random key replaces the account's (Kazoo's way to
/// revoke one); tokens already issued with the old key live on until they expire.
pub(super) async fn renew_api_key(
    State(state): State<V2State>,
    Path(account_id): Path<String>,
) -> Result<Reply, ApiError> {
    let key = random_hex(API_KEY_BYTES)?;
    state
        .blocking(move |state| {
            state.write(|txn| {
                let Some(stored) = txn.get(Collection::Accounts, &account_id, "")? else {
                    return Err(ApiError::NotFound {
                        kind: "account",
                        id: account_id.clone(),
                    });
                };
                let mut doc = stored.doc;
                doc.insert(API_KEY.into(), Value::String(key));
                let stored = txn.put(Collection::Accounts, &account_id, "", doc)?;
                Ok(api_key_reply(&stored.doc))
            })
        })
        .await
}
