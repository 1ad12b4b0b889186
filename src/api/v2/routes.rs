//! The `/v2` route table and the OpenAPI document that describes it.

use axum::routing::{MethodRouter, get};
use axum::{Extension, Router, middleware};

use super::schema::Kind;
use super::{
    V2State, channel_commands, channels, entities, envelope, listing, login, media, metaflows,
    recordings, system,
};

/// Path of the OpenAPI document (served without a token).
pub(super) const OPENAPI_PATH: &str = "/v2/openapi.json";

/// The OpenAPI 3 document of every `/v2` route plus `/live`, `/ready` and `/metrics`, as kept in
/// `docs/openapi.json`.
pub const OPENAPI_DOCUMENT: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"));

const ACCOUNTS: &str = "/v2/accounts";
const ACCOUNT: &str = "/v2/accounts/{account_id}";
const ACCOUNT_API_KEY: &str = "/v2/accounts/{account_id}/api_key";
const ACCOUNT_METAFLOWS: &str = "/v2/accounts/{account_id}/metaflows";
const USERS: &str = "/v2/accounts/{account_id}/users";
const USER: &str = "/v2/accounts/{account_id}/users/{user_id}";
const USER_METAFLOWS: &str = "/v2/accounts/{account_id}/users/{user_id}/metaflows";
const DEVICES: &str = "/v2/accounts/{account_id}/devices";
const DEVICE: &str = "/v2/accounts/{account_id}/devices/{device_id}";
const DEVICE_METAFLOWS: &str = "/v2/accounts/{account_id}/devices/{device_id}/metaflows";
const CALLFLOWS: &str = "/v2/accounts/{account_id}/callflows";
const CALLFLOW: &str = "/v2/accounts/{account_id}/callflows/{callflow_id}";
const CHANNELS: &str = "/v2/accounts/{account_id}/channels";
const CHANNEL: &str = "/v2/accounts/{account_id}/channels/{call_id}";
/// `PUT`: log in with a user's credentials.
pub(super) const USER_AUTH: &str = "/v2/user_auth";
/// `PUT`: log in with an account's API key.
pub(super) const API_AUTH: &str = "/v2/api_auth";
/// `GET` (token info) and `DELETE` (logout) of the token sent.
pub(super) const TOKEN_AUTH: &str = "/v2/token_auth";
const SYSTEM_RELOAD: &str = "/v2/system/reload";
const RECORDINGS: &str = "/v2/accounts/{account_id}/recordings";
const RECORDING: &str = "/v2/accounts/{account_id}/recordings/{recording_id}";
const MEDIA: &str = "/v2/accounts/{account_id}/media";
const MEDIA_DOC: &str = "/v2/accounts/{account_id}/media/{media_id}";
const MEDIA_RAW: &str = "/v2/accounts/{account_id}/media/{media_id}/raw";

/// Every path the `/v2` router serves, so that the OpenAPI document can be checked against it.
pub const ROUTE_PATHS: &[&str] = &[
    OPENAPI_PATH,
    ACCOUNTS,
    ACCOUNT,
    ACCOUNT_API_KEY,
    ACCOUNT_METAFLOWS,
    USERS,
    USER,
    USER_METAFLOWS,
    DEVICES,
    DEVICE,
    DEVICE_METAFLOWS,
    CALLFLOWS,
    CALLFLOW,
    CHANNELS,
    CHANNEL,
    SYSTEM_RELOAD,
    USER_AUTH,
    API_AUTH,
    TOKEN_AUTH,
    RECORDINGS,
    RECORDING,
    MEDIA,
    MEDIA_DOC,
    MEDIA_RAW,
];

/// `GET /v2/openapi.json`.
async fn openapi() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI_DOCUMENT,
    )
}

/// The collection routes of `kind`: `GET` lists, `PUT` creates.
fn collection(kind: Kind) -> MethodRouter<V2State> {
    get(listing::list)
        .put(entities::create)
        .layer(Extension(kind))
}

/// The document routes of `kind`: `GET`, `POST` (replace), `PATCH` (merge), `DELETE`.
fn document(kind: Kind) -> MethodRouter<V2State> {
    get(entities::fetch)
        .post(entities::replace)
        .patch(entities::patch)
        .delete(entities::remove)
        .layer(Extension(kind))
}

/// The metaflow routes: `GET`, `POST` (replace), `PATCH` (merge), `DELETE` (empty).
fn metaflow_routes() -> MethodRouter<V2State> {
    get(metaflows::fetch)
        .post(metaflows::change)
        .patch(metaflows::merge)
        .delete(metaflows::remove)
}

/// The `/v2` router; merge it into the API router (it sets no fallback).
pub fn routes(state: V2State) -> Router {
    Router::new()
        .route(OPENAPI_PATH, get(openapi))
        .route(
            ACCOUNTS,
            get(listing::list_accounts).put(entities::create_account),
        )
        .route(ACCOUNT, document(Kind::Account))
        .route(
            ACCOUNT_API_KEY,
            get(login::api_key).put(login::renew_api_key),
        )
        .route(ACCOUNT_METAFLOWS, metaflow_routes())
        .route(USERS, collection(Kind::User))
        .route(USER, document(Kind::User))
        .route(USER_METAFLOWS, metaflow_routes())
        .route(DEVICES, collection(Kind::Device))
        .route(DEVICE, document(Kind::Device))
        .route(DEVICE_METAFLOWS, metaflow_routes())
        .route(CALLFLOWS, collection(Kind::Callflow))
        .route(CALLFLOW, document(Kind::Callflow))
        .route(CHANNELS, get(channels::list))
        .route(
            CHANNEL,
            get(channel_commands::read)
                .put(channels::act)
                .post(channel_commands::command),
        )
        .route(SYSTEM_RELOAD, axum::routing::post(system::reload))
        .route(USER_AUTH, axum::routing::put(login::user_auth))
        .route(API_AUTH, axum::routing::put(login::api_auth))
        .route(TOKEN_AUTH, get(login::token_info).delete(login::logout))
        .route(RECORDINGS, get(recordings::list))
        .route(RECORDING, get(recordings::fetch).delete(recordings::remove))
        .route(MEDIA, get(media::list).put(media::create))
        .route(
            MEDIA_DOC,
            get(media::fetch)
                .post(media::replace)
                .delete(media::remove)
                .layer(axum::extract::DefaultBodyLimit::max(
                    media::MAX_UPLOAD_BYTES,
                )),
        )
        .route(
            MEDIA_RAW,
            get(media::download)
                .post(media::upload)
                .layer(axum::extract::DefaultBodyLimit::max(
                    media::MAX_UPLOAD_BYTES,
                )),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            envelope::wrap,
        ))
        .with_state(state)
}
