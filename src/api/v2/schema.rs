//! The document kinds behind the Kazoo CRUD routes and their (minimal) schemas: value types,
//! required members, and the cross-document rules (unique realm, unique SIP username and callflow
//! number per account, existing device owner).

use crate::metaflow::limits::{MAX_PATTERNS_PER_DOCUMENT, compile_pattern};
use serde_json::{Map, Value};

use super::V2State;
use super::located::locate;
use super::nodes::check_metaflows;
use crate::base::Problem;
use crate::base::Problems;
use crate::store::{Collection, StoreError, WriteView, string_list};

/// Longest `name` of an account or device.
const NAME_MAX_CHARS: usize = 128;
/// Longest callflow number (Kazoo `string(1..36)`).
const NUMBER_MAX_CHARS: usize = 36;

/// A document kind served by the generic CRUD routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `/v2/accounts`.
    Account,
    /// `/v2/accounts/{A}/users`.
    User,
    /// `/v2/accounts/{A}/devices`.
    Device,
    /// `/v2/accounts/{A}/callflows`.
    Callflow,
}

impl Kind {
    /// The store collection holding this kind.
    pub(super) fn collection(self) -> Collection {
        match self {
            Kind::Account => Collection::Accounts,
            Kind::User => Collection::Users,
            Kind::Device => Collection::Devices,
            Kind::Callflow => Collection::Callflows,
        }
    }

    /// The singular name used in messages.
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Account => "account",
            Kind::User => "user",
            Kind::Device => "device",
            Kind::Callflow => "callflow",
        }
    }

    /// The path parameter naming one document of this kind.
    pub(super) fn id_param(self) -> &'static str {
        match self {
            Kind::Account => "account_id",
            Kind::User => "user_id",
            Kind::Device => "device_id",
            Kind::Callflow => "callflow_id",
        }
    }

    /// Members shown in collection listings (besides `id`).
    pub(super) fn summary_fields(self) -> &'static [&'static str] {
        match self {
            Kind::Account => &["name", "realm"],
            Kind::User => &["first_name", "last_name", "username"],
            Kind::Device => &["name", "owner_id", "sip"],
            Kind::Callflow => &["name", "numbers", "patterns"],
        }
    }
}

impl Problems {
    /// Checks an optional (or, with `required`, mandatory) string of `min..=max` characters.
    fn string(&mut self, doc: &Map<String, Value>, key: &str, required: bool, max: usize) {
        match doc.get(key) {
            None | Some(Value::Null) if required => {
                self.add(key, "required", "Field is required but missing");
            }
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => {
                let length = text.chars().count();
                if length == 0 {
                    let message = "String must be at least 1 characters";
                    self.add_target(key, "minLength", message, Value::from(1));
                } else if length > max {
                    let message = format!("String must not be more than {max} characters");
                    self.add_target(key, "maxLength", message, Value::from(max));
                }
            }
            Some(_) => {
                let message = "Value did not match type(s): string";
                self.add_target(key, "type", message, Value::from("string"));
            }
        }
    }
}

/// Checks the shape of a document of `kind` and returns its stored form (a callflow's metaflow
/// normalised); every problem is reported.
pub(super) fn check_shape(
    state: &V2State,
    kind: Kind,
    mut doc: Map<String, Value>,
) -> Result<Map<String, Value>, Vec<Problem>> {
    let mut problems = Problems::default();
    match kind {
        Kind::Account => {
            problems.string(&doc, "name", true, NAME_MAX_CHARS);
            problems.string(&doc, "realm", false, 253);
            let auth = [("username", true, 256), ("password", true, 256)];
            nested_strings(&doc, "pbx_auth", &auth, &mut problems);
        }
        Kind::User => {
            problems.string(&doc, "first_name", true, NAME_MAX_CHARS);
            problems.string(&doc, "last_name", true, NAME_MAX_CHARS);
            problems.string(&doc, "username", false, 256);
        }
        Kind::Device => {
            problems.string(&doc, "name", true, NAME_MAX_CHARS);
            problems.string(&doc, "owner_id", false, 128);
            nested_strings(&doc, "sip", &[("username", false, 256)], &mut problems);
        }
        Kind::Callflow => check_callflow(state, &mut doc, &mut problems),
    }
    if problems.0.is_empty() {
        Ok(doc)
    } else {
        Err(locate(&doc, problems.0))
    }
}

/// An optional object member `key` whose `fields` (name, required, longest) are strings; problems
/// are reported as `key.FIELD`.
fn nested_strings(
    doc: &Map<String, Value>,
    key: &str,
    fields: &[(&str, bool, usize)],
    problems: &mut Problems,
) {
    match doc.get(key) {
        None | Some(Value::Null) => {}
        Some(Value::Object(inner_doc)) => {
            let mut inner = Problems::default();
            for &(field, required, longest) in fields {
                inner.string(inner_doc, field, required, longest);
            }
            for problem in inner.0 {
                let path = format!("{key}.{}", problem.path);
                problems.add(&path, &problem.rule, problem.message);
            }
        }
        Some(_) => problems.add(key, "type", format!("{key} must be an object")),
    }
}

/// Callflow members: `numbers` and `patterns` string arrays (patterns must compile), `flow` an
/// object kept as-is, `metaflow` a metaflow object.
fn check_callflow(state: &V2State, doc: &mut Map<String, Value>, problems: &mut Problems) {
    for key in ["numbers", "patterns"] {
        match doc.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items))
                if key == "patterns" && items.len() > MAX_PATTERNS_PER_DOCUMENT =>
            {
                problems.add(
                    key,
                    "maxItems",
                    format!(
                        "patterns has {} entries; at most {MAX_PATTERNS_PER_DOCUMENT} are allowed",
                        items.len()
                    ),
                );
            }
            Some(Value::Array(items)) => {
                for (index, item) in items.iter().enumerate() {
                    let path = format!("{key}.{index}");
                    let Some(text) = item.as_str() else {
                        problems.add(&path, "type", format!("{key} entries must be strings"));
                        continue;
                    };
                    if text.is_empty() {
                        problems.add(
                            &path,
                            "minLength",
                            format!("{key} entries must not be empty"),
                        );
                    } else if key == "numbers" && text.chars().count() > NUMBER_MAX_CHARS {
                        problems.add(&path, "maxLength", "numbers must be at most 36 characters");
                    } else if key == "patterns"
                        && let Err(error) = compile_pattern(text)
                    {
                        problems.add(&path, error.rule(), error.to_string());
                    }
                }
            }
            Some(_) => problems.add(key, "type", format!("{key} must be an array of strings")),
        }
    }
    match doc.get("flow") {
        None | Some(Value::Null | Value::Object(_)) => {}
        Some(_) => problems.add("flow", "type", "flow must be an object"),
    }
    match doc.remove("metaflow") {
        None | Some(Value::Null) => {}
        Some(Value::Object(metaflow)) => match check_metaflows(state, metaflow, "metaflow") {
            Ok(normalised) => {
                doc.insert("metaflow".into(), Value::Object(normalised));
            }
            Err(found) => problems.0.extend(found),
        },
        Some(_) => problems.add("metaflow", "type", "metaflow must be an object"),
    }
}

/// Rules that look at other documents of the account, checked inside the write transaction.
pub(super) fn check_references(
    txn: &WriteView<'_>,
    kind: Kind,
    account_id: &str,
    id: &str,
    doc: &Map<String, Value>,
) -> Result<Vec<Problem>, StoreError> {
    let mut problems = Problems::default();
    let others = |collection| -> Result<Vec<_>, StoreError> {
        Ok(txn
            .list(collection, account_id)?
            .into_iter()
            .filter(|stored| stored.id != id)
            .collect())
    };
    match kind {
        Kind::Account => {
            if let Some(realm) = doc.get("realm").and_then(Value::as_str) {
                let taken = txn
                    .list_all(Collection::Accounts)?
                    .into_iter()
                    .filter(|(other, _)| other != account_id)
                    .any(|(_, stored)| {
                        stored.doc.get("realm").and_then(Value::as_str) == Some(realm)
                    });
                if taken {
                    problems.add(
                        "realm",
                        "unique",
                        format!("realm {realm} is already in use"),
                    );
                }
            }
        }
        Kind::User => {}
        Kind::Device => {
            if let Some(owner) = doc.get("owner_id").and_then(Value::as_str)
                && txn.get(Collection::Users, account_id, owner)?.is_none()
            {
                problems.add(
                    "owner_id",
                    "not_found",
                    format!("no user {owner} in this account"),
                );
            }
            let sip_user = |doc: &Map<String, Value>| {
                doc.get("sip")
                    .and_then(|sip| sip.get("username"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            if let Some(username) = sip_user(doc)
                && others(Collection::Devices)?
                    .iter()
                    .any(|other| sip_user(&other.doc).as_deref() == Some(&username))
            {
                problems.add(
                    "sip.username",
                    "unique",
                    format!("SIP username {username} is already in use"),
                );
            }
        }
        Kind::Callflow => {
            let numbers = |doc: &Map<String, Value>| string_list(doc, "numbers");
            let taken: Vec<String> = others(Collection::Callflows)?
                .iter()
                .flat_map(|other| numbers(&other.doc))
                .collect();
            for (index, number) in numbers(doc).iter().enumerate() {
                if taken.contains(number) {
                    problems.add(
                        &format!("numbers.{index}"),
                        "unique",
                        format!("number {number} is used by another callflow"),
                    );
                }
            }
        }
    }
    Ok(problems.0)
}
