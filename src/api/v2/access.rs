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
    use super::account_in;

    #[test]
    fn the_account_of_a_path() {
        assert_eq!(account_in("/v2/accounts/abc/users"), Some("abc"));
        assert_eq!(account_in("/v2/accounts/abc"), Some("abc"));
        assert_eq!(account_in("/v2/accounts"), None);
        assert_eq!(account_in("/v2/system/reload"), None);
    }
}
