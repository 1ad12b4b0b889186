//! Who may call which `/v2` route: the OpenAPI document and the two logins (`PUT /v2/user_auth`,
//! `PUT /v2/api_auth`) need no token; an operator's static token (`api-auth-tokens` or the
//! generated one) opens every route; a token from a login opens its own account's routes and
//! `/v2/token_auth` only (Kazoo: the account and its descendants; accounts here are flat).

use axum::http::Method;

use super::routes::{API_AUTH, OPENAPI_PATH, TOKEN_AUTH, USER_AUTH};
use super::sessions::Refusal;
use super::{ApiError, V2State};

/// The account a path is under (`/v2/accounts/{A}` or below), if any.
fn account_in(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v2/accounts/")?;
    rest.split('/').next().filter(|account| !account.is_empty())
}

/// Whether a request for `path` may be one node forwarding to another: the routes that act on
/// a single call or recording (`PUT .../channels/{CALL_ID}`, `GET`/`DELETE`
/// `.../recordings/{ID}`), the only ones the cluster secret opens.
pub(super) fn forwardable(method: &Method, path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/v2/accounts/") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [account, "channels", call] if !account.is_empty() && !call.is_empty() => {
            *method == Method::PUT
        }
        [account, "recordings", id] if !account.is_empty() && !id.is_empty() => {
            *method == Method::GET || *method == Method::DELETE
        }
        _ => false,
    }
}

/// Admits the request or says why not (401 without a valid token, 403 outside its account).
pub(super) fn admit(
    state: &V2State,
    method: &Method,
    path: &str,
    token: &str,
) -> Result<(), ApiError> {
    let login = *method == Method::PUT && (path == USER_AUTH || path == API_AUTH);
    if path == OPENAPI_PATH || login || state.accepts(token) {
        return Ok(());
    }
    let sessions = &state.shared.sessions;
    let Some(session) = (!token.is_empty())
        .then(|| sessions.lookup(token))
        .flatten()
    else {
        sessions.refused(Refusal::UnknownToken);
        return Err(ApiError::Unauthorized {
            how: state.how_to_get_in(),
        });
    };
    if path == TOKEN_AUTH || account_in(path) == Some(session.account_id.as_str()) {
        return Ok(());
    }
    sessions.refused(Refusal::OtherAccount);
    Err(ApiError::Forbidden(
        "the auth token is not authorised for this account".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::{Method, account_in, forwardable};

    #[test]
    fn only_single_call_and_recording_routes_take_the_cluster_secret() {
        assert!(forwardable(&Method::PUT, "/v2/accounts/a/channels/c1"));
        assert!(forwardable(&Method::GET, "/v2/accounts/a/recordings/r1"));
        assert!(forwardable(&Method::DELETE, "/v2/accounts/a/recordings/r1"));
        assert!(!forwardable(&Method::GET, "/v2/accounts/a/channels"));
        assert!(!forwardable(&Method::GET, "/v2/accounts/a/channels/c1"));
        assert!(!forwardable(&Method::PUT, "/v2/accounts/a/recordings/r1"));
        assert!(!forwardable(&Method::GET, "/v2/accounts/a/users/u1"));
        assert!(!forwardable(&Method::PUT, "/v2/accounts/a/channels/c1/x"));
        assert!(!forwardable(&Method::PUT, "/v2/accounts//channels/c1"));
        assert!(!forwardable(&Method::DELETE, "/v2/accounts/a"));
    }

    #[test]
    fn the_account_of_a_path() {
        assert_eq!(account_in("/v2/accounts/abc/users"), Some("abc"));
        assert_eq!(account_in("/v2/accounts/abc"), Some("abc"));
        assert_eq!(account_in("/v2/accounts"), None);
        assert_eq!(account_in("/v2/system/reload"), None);
    }
}
