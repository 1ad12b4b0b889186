//! `/v2/accounts/{A}/metaflows` and the same under `users/{U}` and `devices/{D}`: fetch, replace
//! (`POST`), merge (`PATCH`) and empty (`DELETE`) the metaflows of an account, user or device.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Map, Value};

use super::envelope::Reply;
use super::nodes::check_metaflows;
use super::request::{check_revision, merge_metaflows, submitted};
use super::{ApiError, V2State};
use crate::metaflow::limits::MAX_LOADED_PATTERNS;
use crate::store::{
    Collection, OpenTable, Stored, View, WriteView, account_scope, device_scope, user_scope,
};

/// Whose metaflows a request reads or writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaflowOwner {
    /// The account itself: codes every user and device of the account can dial.
    Account(String),
    /// One user of an account.
    User {
        /// The account.
        account_id: String,
        /// The user.
        user_id: String,
    },
    /// One device of an account.
    Device {
        /// The account.
        account_id: String,
        /// The device.
        device_id: String,
    },
}

impl MetaflowOwner {
    /// The owner named by a route's path parameters.
    fn from_params(mut params: HashMap<String, String>) -> Self {
        let account_id = params.remove("account_id").unwrap_or_default();
        if let Some(user_id) = params.remove("user_id") {
            Self::User {
                account_id,
                user_id,
            }
        } else if let Some(device_id) = params.remove("device_id") {
            Self::Device {
                account_id,
                device_id,
            }
        } else {
            Self::Account(account_id)
        }
    }

    /// The account the metaflows belong to.
    pub(super) fn account_id(&self) -> &str {
        match self {
            Self::Account(account_id)
            | Self::User { account_id, .. }
            | Self::Device { account_id, .. } => account_id,
        }
    }

    /// The metaflows collection's key of this owner inside its account.
    pub(super) fn scope(&self) -> String {
        match self {
            Self::Account(_) => account_scope(),
            Self::User { user_id, .. } => user_scope(user_id),
            Self::Device { device_id, .. } => device_scope(device_id),
        }
    }

    /// 404 unless the account (and the user or device) exists in `view`.
    fn ensure_exists(&self, view: &View<impl OpenTable>) -> Result<(), ApiError> {
        let account_id = self.account_id();
        if view.get(Collection::Accounts, account_id, "")?.is_none() {
            return Err(not_found("account", account_id));
        }
        let (collection, kind, id) = match self {
            Self::Account(_) => return Ok(()),
            Self::User { user_id, .. } => (Collection::Users, "user", user_id),
            Self::Device { device_id, .. } => (Collection::Devices, "device", device_id),
        };
        match view.get(collection, account_id, id)? {
            Some(_) => Ok(()),
            None => Err(not_found(kind, id)),
        }
    }
}

fn not_found(kind: &'static str, id: &str) -> ApiError {
    ApiError::NotFound {
        kind,
        id: id.to_owned(),
    }
}

/// The reply for a stored metaflow document.
fn reply(stored: Stored) -> Reply {
    Reply::ok(Value::Object(stored.doc), Some(stored.rev))
}

/// `GET`: the stored metaflows, `{}` (and no revision) when none were ever set.
pub(super) async fn fetch(
    State(state): State<V2State>,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Reply, ApiError> {
    let owner = MetaflowOwner::from_params(params);
    state
        .blocking(move |state| {
            let view = state.shared.store.read()?;
            owner.ensure_exists(&view)?;
            match view.get(Collection::Metaflows, owner.account_id(), &owner.scope())? {
                Some(stored) => Ok(reply(stored)),
                None => Ok(Reply::ok(Value::Object(Map::new()), None)),
            }
        })
        .await
}

/// `POST`: replaces the metaflows with the request's `data`.
pub(super) async fn change(
    State(state): State<V2State>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let owner = MetaflowOwner::from_params(params);
    let request = submitted(&headers, &body)?;
    state
        .blocking(move |state| replace(state, &owner, request.data, request.expected_rev))
        .await
        .map(reply)
}

/// Validates, normalises and stores `doc` as `owner`'s metaflows.
pub(super) fn replace(
    state: &V2State,
    owner: &MetaflowOwner,
    doc: Map<String, Value>,
    expected_rev: Option<String>,
) -> Result<Stored, ApiError> {
    let view = state.shared.store.read()?;
    owner.ensure_exists(&view)?;
    drop(view);
    let doc = check_metaflows(state, doc, "").map_err(ApiError::Validation)?;
    state.write(|txn| {
        let current = guarded_current(txn, owner, expected_rev.as_deref())?;
        check_loaded_patterns(state, current.as_ref(), &doc)?;
        put_metaflows(txn, owner, doc)
    })
}

/// Number of `patterns` in a metaflow document.
fn pattern_count(doc: &Map<String, Value>) -> usize {
    doc.get("patterns")
        .and_then(Value::as_object)
        .map_or(0, Map::len)
}

/// Refuses `doc` replacing `current` when its patterns would take the directory beyond
/// [`MAX_LOADED_PATTERNS`].
fn check_loaded_patterns(
    state: &V2State,
    current: Option<&Stored>,
    doc: &Map<String, Value>,
) -> Result<(), ApiError> {
    let before = current.map_or(0, |stored| pattern_count(&stored.doc));
    check_pattern_growth(state, before, doc)
}

/// Refuses `doc` when it adds patterns (over the `before` it replaces) beyond what the
/// directory may keep compiled in memory.
fn check_pattern_growth(
    state: &V2State,
    before: usize,
    doc: &Map<String, Value>,
) -> Result<(), ApiError> {
    let after = pattern_count(doc);
    let loaded = state.shared.directory.loaded_patterns();
    if after > before && loaded.saturating_sub(before) + after > MAX_LOADED_PATTERNS {
        return Err(ApiError::field(
            "patterns",
            "maxTotal",
            format!(
                "the stored metaflows hold {loaded} patterns; at most {MAX_LOADED_PATTERNS} \
                 are kept in memory, so these {after} do not fit"
            ),
        ));
    }
    Ok(())
}

/// Stores validated `doc` as `owner`'s metaflows inside a write already in progress (an
/// account, user or device document carrying `metaflows`), bounded as the routes bound them.
pub(super) fn put_within(
    txn: &mut WriteView<'_>,
    state: &V2State,
    owner: &MetaflowOwner,
    doc: Map<String, Value>,
) -> Result<Stored, ApiError> {
    let current = txn.get(Collection::Metaflows, owner.account_id(), &owner.scope())?;
    check_loaded_patterns(state, current.as_ref(), &doc)?;
    put_metaflows(txn, owner, doc)
}

/// Stores `doc` as `owner`'s metaflows, with a new revision.
fn put_metaflows(
    txn: &mut WriteView<'_>,
    owner: &MetaflowOwner,
    doc: Map<String, Value>,
) -> Result<Stored, ApiError> {
    Ok(txn.put(
        Collection::Metaflows,
        owner.account_id(),
        &owner.scope(),
        doc,
    )?)
}

/// The current metaflows of `owner` after the existence and revision checks.
fn guarded_current(
    txn: &WriteView<'_>,
    owner: &MetaflowOwner,
    expected_rev: Option<&str>,
) -> Result<Option<Stored>, ApiError> {
    owner.ensure_exists(txn)?;
    let current = txn.get(Collection::Metaflows, owner.account_id(), &owner.scope())?;
    check_revision(
        expected_rev,
        current.as_ref().map(|stored| stored.rev.as_str()),
    )?;
    Ok(current)
}

/// `PATCH`: merges the request's `data` into the stored metaflows (see
/// [`merge_metaflows`]) and stores the validated result.
pub(super) async fn merge(
    State(state): State<V2State>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let owner = MetaflowOwner::from_params(params);
    let request = submitted(&headers, &body)?;
    state
        .blocking(move |state| {
            state.write(|txn| {
                let current = guarded_current(txn, &owner, request.expected_rev.as_deref())?;
                let before = current
                    .as_ref()
                    .map_or(0, |stored| pattern_count(&stored.doc));
                let mut doc = current.map(|stored| stored.doc).unwrap_or_default();
                merge_metaflows(&mut doc, request.data);
                let doc = check_metaflows(state, doc, "").map_err(ApiError::Validation)?;
                check_pattern_growth(state, before, &doc)?;
                put_metaflows(txn, &owner, doc)
            })
        })
        .await
        .map(reply)
}

/// `DELETE`: empties the metaflows (the document stays, as `{}`, with a new revision).
pub(super) async fn remove(
    State(state): State<V2State>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Reply, ApiError> {
    let owner = MetaflowOwner::from_params(params);
    let expected_rev = super::request::if_match(&headers);
    state
        .blocking(move |state| {
            state.write(|txn| {
                guarded_current(txn, &owner, expected_rev.as_deref())?;
                let empty = Map::new();
                put_metaflows(txn, &owner, empty)
            })
        })
        .await
        .map(reply)
}
