//! Kazoo CRUD on accounts, users, devices and callflows: `GET` a collection (summaries), `PUT` a
//! collection (create), and `GET`/`POST` (replace)/`PATCH` (merge)/`DELETE` one document.

use std::collections::HashMap;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use super::credentials::{API_KEY, public, random_hex, seal};
use super::embedded::{self, Embedded};
use super::envelope::Reply;
use super::metaflows::MetaflowOwner;
use super::request::{check_revision, if_match, merge_patch, submitted};
use super::schema::{Kind, check_references, check_shape};
use super::{ApiError, DEFAULT_REALM, V2State};
use crate::store::{
    Collection, OpenTable, Store, StoreError, Stored, View, WriteView, device_scope, user_scope,
};

/// Where one document lives: its account, its key in the store, and the id clients see.
struct Location {
    kind: Kind,
    account_id: String,
    store_id: String,
}

impl Location {
    fn from_params(kind: Kind, mut params: HashMap<String, String>) -> Self {
        let account_id = params.remove("account_id").unwrap_or_default();
        let store_id = match kind {
            Kind::Account => String::new(),
            other => params.remove(other.id_param()).unwrap_or_default(),
        };
        Self {
            kind,
            account_id,
            store_id,
        }
    }

    /// The id clients use: the account id for accounts, the document id otherwise.
    fn public_id(&self) -> &str {
        match self.kind {
            Kind::Account => &self.account_id,
            _ => &self.store_id,
        }
    }

    /// Whose metaflows this document carries (none for a callflow).
    fn owner(&self) -> Option<MetaflowOwner> {
        embedded::owner_of(self.kind, &self.account_id, &self.store_id)
    }

    fn not_found(&self) -> ApiError {
        ApiError::NotFound {
            kind: self.kind.name(),
            id: self.public_id().to_owned(),
        }
    }
}

/// Creates the default account when it does not exist yet.
pub(super) fn ensure_default_account(store: &Store, account_id: &str) -> Result<(), StoreError> {
    store.write(|txn| {
        if txn.get(Collection::Accounts, account_id, "")?.is_none() {
            // Without the OS RNG the key comes with the account's next write.
            let mut doc = json!({ "name": "Default", "realm": DEFAULT_REALM });
            if let (Ok(api_key), Value::Object(doc)) = (random_hex(32), &mut doc) {
                doc.insert(API_KEY.into(), Value::String(api_key));
            }
            if let Value::Object(doc) = doc {
                txn.put(Collection::Accounts, account_id, "", doc)?;
            }
        }
        Ok(())
    })
}

/// The document with its public `id` added.
fn with_id(mut doc: Map<String, Value>, id: &str) -> Value {
    doc.insert("id".into(), Value::String(id.to_owned()));
    Value::Object(doc)
}

fn account_missing(account_id: &str) -> ApiError {
    ApiError::NotFound {
        kind: "account",
        id: account_id.to_owned(),
    }
}

/// 404 unless `account_id` exists (in a snapshot or in the write in progress).
pub(super) fn require_account(
    view: &View<impl OpenTable>,
    account_id: &str,
) -> Result<(), ApiError> {
    match view.get(Collection::Accounts, account_id, "")? {
        Some(_) => Ok(()),
        None => Err(account_missing(account_id)),
    }
}

/// `PUT /v2/accounts`: creates an account.
pub(super) async fn create_account(
    State(state): State<V2State>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    create_at(state, Kind::Account, HashMap::new(), &headers, &body).await
}

/// `PUT /v2/accounts/{A}/{users|devices|callflows}`: creates a document with a fresh id.
pub(super) async fn create(
    State(state): State<V2State>,
    Extension(kind): Extension<Kind>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    create_at(state, kind, params, &headers, &body).await
}

async fn create_at(
    state: V2State,
    kind: Kind,
    mut params: HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let request = submitted(headers, body)?;
    let fresh_id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    params.insert(kind.id_param().to_owned(), fresh_id);
    let location = Location::from_params(kind, params);
    let stored = state
        .blocking(move |state| {
            if kind != Kind::Account {
                require_account(&state.shared.store.read()?, &location.account_id)?;
            }
            let (doc, embedded) = checked(state, kind, request.data, None)?;
            state.write(|txn| {
                if kind != Kind::Account {
                    require_account(txn, &location.account_id)?;
                }
                commit(txn, state, &location, (doc, None), embedded)
                    .map(|stored| (location, stored))
            })
        })
        .await?;
    let (location, stored) = stored;
    Ok(Reply {
        status: StatusCode::CREATED,
        data: with_id(public(kind, stored.doc), location.public_id()),
        revision: Some(stored.rev),
    })
}

/// The shape check of a submitted document and of the `metaflows` it carries (merged into
/// `current_flows` for a `PATCH`), every problem of both reported at once.
fn checked(
    state: &V2State,
    kind: Kind,
    mut data: Map<String, Value>,
    current_flows: Option<Map<String, Value>>,
) -> Result<(Map<String, Value>, Embedded), ApiError> {
    let embedded = embedded::take(state, kind, &mut data, current_flows);
    match (check_shape(state, kind, data), embedded) {
        (Ok(doc), Ok(embedded)) => Ok((doc, embedded)),
        (shape, embedded) => {
            let mut problems = shape.err().unwrap_or_default();
            problems.extend(embedded.err().unwrap_or_default());
            Err(ApiError::Validation(problems))
        }
    }
}

/// Stores a checked document and its metaflows in one transaction; the stored document is
/// returned with its metaflows shown.
fn commit(
    txn: &mut WriteView<'_>,
    state: &V2State,
    location: &Location,
    (mut doc, current): (Map<String, Value>, Option<&Map<String, Value>>),
    embedded: Embedded,
) -> Result<Stored, ApiError> {
    seal(location.kind, current, &mut doc)?;
    let mut stored = store_checked(txn, location, doc)?;
    let owner = location.owner();
    embedded::store(txn, state, owner.as_ref(), embedded)?;
    embedded::attach(txn, owner.as_ref(), &mut stored.doc)?;
    Ok(stored)
}

/// Runs the cross-document checks and stores `doc`.
fn store_checked(
    txn: &mut WriteView<'_>,
    location: &Location,
    doc: Map<String, Value>,
) -> Result<Stored, ApiError> {
    let problems = check_references(
        txn,
        location.kind,
        &location.account_id,
        &location.store_id,
        &doc,
    )?;
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let collection = location.kind.collection();
    Ok(txn.put(collection, &location.account_id, &location.store_id, doc)?)
}

/// The current document (404 when missing) after checking the expected revision.
fn current(
    txn: &WriteView<'_>,
    location: &Location,
    expected_rev: Option<&str>,
) -> Result<Stored, ApiError> {
    let found = txn.get(
        location.kind.collection(),
        &location.account_id,
        &location.store_id,
    )?;
    let Some(found) = found else {
        require_account(txn, &location.account_id)?;
        return Err(location.not_found());
    };
    check_revision(expected_rev, Some(&found.rev))?;
    Ok(found)
}

/// The document at `location` in a fresh snapshot; 404 naming the account when that is
/// missing, else naming the document.
fn read_document(state: &V2State, location: &Location) -> Result<Stored, ApiError> {
    let view = state.shared.store.read()?;
    require_account(&view, &location.account_id)?;
    let mut stored = view
        .get(
            location.kind.collection(),
            &location.account_id,
            &location.store_id,
        )?
        .ok_or_else(|| location.not_found())?;
    embedded::attach(&view, location.owner().as_ref(), &mut stored.doc)?;
    Ok(stored)
}

fn document_reply(location: &Location, stored: Stored) -> Reply {
    let doc = public(location.kind, stored.doc);
    Reply::ok(with_id(doc, location.public_id()), Some(stored.rev))
}

/// `GET` one document.
pub(super) async fn fetch(
    State(state): State<V2State>,
    Extension(kind): Extension<Kind>,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Reply, ApiError> {
    let location = Location::from_params(kind, params);
    state
        .blocking(move |state| {
            read_document(state, &location).map(|stored| document_reply(&location, stored))
        })
        .await
}

/// `POST` one document: replaces it with the request's `data`.
pub(super) async fn replace(
    State(state): State<V2State>,
    Extension(kind): Extension<Kind>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let location = Location::from_params(kind, params);
    let request = submitted(&headers, &body)?;
    state
        .blocking(move |state| {
            read_document(state, &location)?;
            let (doc, embedded) = checked(state, kind, request.data, None)?;
            let stored = state.write(|txn| {
                let before = current(txn, &location, request.expected_rev.as_deref())?;
                commit(txn, state, &location, (doc, Some(&before.doc)), embedded)
            })?;
            Ok(document_reply(&location, stored))
        })
        .await
}

/// `PATCH` one document: merges the request's `data` into it (JSON merge patch).
pub(super) async fn patch(
    State(state): State<V2State>,
    Extension(kind): Extension<Kind>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let location = Location::from_params(kind, params);
    let request = submitted(&headers, &body)?;
    state
        .blocking(move |state| {
            let stored = state.write(|txn| {
                let mut doc = current(txn, &location, request.expected_rev.as_deref())?.doc;
                doc.remove("metaflows");
                let mut patch = request.data;
                let owner = location.owner();
                let sent_flows = owner.as_ref().and_then(|_| patch.remove("metaflows"));
                merge_patch(&mut doc, patch);
                let current_flows = match (&sent_flows, &owner) {
                    (Some(Value::Object(_)), Some(owner)) => Some(embedded::current(txn, owner)?),
                    _ => None,
                };
                if let Some(sent) = sent_flows {
                    doc.insert("metaflows".into(), sent);
                }
                let (doc, embedded) = checked(state, kind, doc, current_flows)?;
                commit(txn, state, &location, (doc, None), embedded)
            })?;
            Ok(document_reply(&location, stored))
        })
        .await
}

/// `DELETE` one document, with what hangs off it (a user's or device's metaflows; everything
/// of an account). The default account cannot be deleted.
pub(super) async fn remove(
    State(state): State<V2State>,
    Extension(kind): Extension<Kind>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Reply, ApiError> {
    let location = Location::from_params(kind, params);
    let expected_rev = if_match(&headers);
    state
        .blocking(move |state| {
            if kind == Kind::Account && location.account_id == state.shared.default_account_id {
                return Err(ApiError::Forbidden(
                    "the default account cannot be deleted".into(),
                ));
            }
            let removed = state.write(|txn| {
                let found = current(txn, &location, expected_rev.as_deref())?;
                let account = location.account_id.as_str();
                match kind {
                    Kind::Account => txn.remove_account(account)?,
                    Kind::User => {
                        txn.remove(
                            Collection::Metaflows,
                            account,
                            &user_scope(&location.store_id),
                        )?;
                    }
                    Kind::Device => {
                        let scope = device_scope(&location.store_id);
                        txn.remove(Collection::Metaflows, account, &scope)?;
                    }
                    Kind::Callflow => {}
                }
                txn.remove(kind.collection(), account, &location.store_id)?;
                Ok(found)
            })?;
            Ok(document_reply(&location, removed))
        })
        .await
}
