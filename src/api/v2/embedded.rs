//! The `metaflows` member of account, user and device documents. Kazoo keeps an owner's
//! metaflows inside its document; here they stay in the metaflows collection the call core
//! resolves from (the one `/metaflows` routes serve), and the member is a view of it: a write
//! carrying `metaflows` validates it as `/metaflows` would (paths prefixed `metaflows.`) and
//! stores it there in the same transaction; a read shows it; `{}` or `null` clears it.

use serde_json::{Map, Value};

use super::metaflows::{MetaflowOwner, put_within};
use super::nodes::check_metaflows;
use super::request::merge_metaflows;
use super::schema::Kind;
use super::{ApiError, V2State};
use crate::base::Problem;
use crate::store::{Collection, OpenTable, View, WriteView};

/// The member's name in the owner's document.
const MEMBER: &str = "metaflows";

/// What a write asks of the owner's metaflows.
pub(super) enum Embedded {
    /// The write names no `metaflows`: they stay as they are.
    Absent,
    /// Store this validated document (empty clears).
    Set(Map<String, Value>),
}

/// Whose metaflows a document of `kind` at (`account_id`, `store_id`) carries; `None` for a
/// callflow (its `metaflow` member is part of the callflow itself).
pub(super) fn owner_of(kind: Kind, account_id: &str, store_id: &str) -> Option<MetaflowOwner> {
    let account_id = account_id.to_owned();
    match kind {
        Kind::Account => Some(MetaflowOwner::Account(account_id)),
        Kind::User => Some(MetaflowOwner::User {
            account_id,
            user_id: store_id.to_owned(),
        }),
        Kind::Device => Some(MetaflowOwner::Device {
            account_id,
            device_id: store_id.to_owned(),
        }),
        Kind::Callflow => None,
    }
}

/// Removes `metaflows` from a submitted document of `kind` and validates it; with `current`
/// (a `PATCH`), an object is merged into the current metaflows as `PATCH .../metaflows` does.
pub(super) fn take(
    state: &V2State,
    kind: Kind,
    data: &mut Map<String, Value>,
    current: Option<Map<String, Value>>,
) -> Result<Embedded, Vec<Problem>> {
    if kind == Kind::Callflow {
        return Ok(Embedded::Absent);
    }
    let doc = match data.remove(MEMBER) {
        None => return Ok(Embedded::Absent),
        Some(Value::Null) => return Ok(Embedded::Set(Map::new())),
        Some(Value::Object(sent)) if sent.is_empty() => return Ok(Embedded::Set(Map::new())),
        Some(Value::Object(sent)) => match current {
            Some(mut merged) => {
                merge_metaflows(&mut merged, sent);
                merged
            }
            None => sent,
        },
        Some(other) => {
            return Err(vec![Problem {
                path: MEMBER.to_owned(),
                rule: "type".into(),
                message: "Value did not match type(s): object".into(),
                target: Some(Value::String("object".into())),
                value: Some(other),
            }]);
        }
    };
    check_metaflows(state, doc, MEMBER).map(Embedded::Set)
}

/// Stores what [`take`] returned for `owner` inside the write in progress.
pub(super) fn store(
    txn: &mut WriteView<'_>,
    state: &V2State,
    owner: Option<&MetaflowOwner>,
    embedded: Embedded,
) -> Result<(), ApiError> {
    if let (Some(owner), Embedded::Set(doc)) = (owner, embedded) {
        put_within(txn, state, owner, doc)?;
    }
    Ok(())
}

/// The stored metaflows of `owner` (empty when none were set).
pub(super) fn current(
    view: &View<impl OpenTable>,
    owner: &MetaflowOwner,
) -> Result<Map<String, Value>, ApiError> {
    let stored = view.get(Collection::Metaflows, owner.account_id(), &owner.scope())?;
    Ok(stored.map(|stored| stored.doc).unwrap_or_default())
}

/// Shows `owner`'s metaflows in its document (when it has any), as Kazoo's document holds them.
pub(super) fn attach(
    view: &View<impl OpenTable>,
    owner: Option<&MetaflowOwner>,
    doc: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    doc.remove(MEMBER);
    if let Some(owner) = owner {
        let flows = current(view, owner)?;
        if !flows.is_empty() {
            doc.insert(MEMBER.to_owned(), Value::Object(flows));
        }
    }
    Ok(())
}
