//! Kazoo's collection listings: `GET /v2/accounts` and `GET /v2/accounts/{A}/{users|devices|
//! callflows}`, each entry the document's `id` and its kind's summary members.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, State};
use serde_json::{Map, Value};

use super::entities::require_account;
use super::envelope::Reply;
use super::schema::Kind;
use super::{ApiError, V2State};
use crate::store::Collection;

/// A listing entry: `id` and the kind's summary members.
fn summary(kind: Kind, id: &str, doc: &Map<String, Value>) -> Value {
    let mut entry = Map::new();
    entry.insert("id".into(), Value::String(id.to_owned()));
    for field in kind.summary_fields() {
        if let Some(value) = doc.get(*field) {
            entry.insert((*field).to_owned(), value.clone());
        }
    }
    Value::Object(entry)
}

/// `GET /v2/accounts`: every account.
pub(super) async fn list_accounts(State(state): State<V2State>) -> Result<Reply, ApiError> {
    state
        .blocking(|state| {
            let view = state.shared.store.read()?;
            let entries = view
                .list_all(Collection::Accounts)?
                .iter()
                .map(|(id, stored)| summary(Kind::Account, id, &stored.doc))
                .collect();
            Ok(Reply::ok(Value::Array(entries), None))
        })
        .await
}

/// `GET /v2/accounts/{A}/{users|devices|callflows}`.
pub(super) async fn list(
    State(state): State<V2State>,
    Extension(kind): Extension<Kind>,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Reply, ApiError> {
    let account_id = params.get("account_id").cloned().unwrap_or_default();
    state
        .blocking(move |state| {
            let view = state.shared.store.read()?;
            require_account(&view, &account_id)?;
            let entries = view
                .list(kind.collection(), &account_id)?
                .iter()
                .map(|stored| summary(kind, &stored.id, &stored.doc))
                .collect();
            Ok(Reply::ok(Value::Array(entries), None))
        })
        .await
}
