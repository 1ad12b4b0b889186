//! One validation problem type for every document the proxy checks (metaflows, module data,
//! API entities), named the way Kazoo's API error envelope names a violation.

use serde::Serialize;
use serde_json::Value;

/// One schema violation, named the way Kazoo's API error envelope names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{path}: {message} ({rule})")]
pub struct Problem {
    /// Dotted JSON path of the offending value, e.g. `patterns.2(\d+).module` or `binding_digit`.
    pub path: String,
    /// Kazoo rule name: `enum`, `type`, `minLength`, `maxLength`, `pattern`, `required`,
    /// `minimum` or `regex`.
    pub rule: String,
    /// Human-readable explanation.
    pub message: String,
    /// What the rule wanted, as Kazoo's `target` (the enum list, the minimum, the type name);
    /// `None` when the rule has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Value>,
    /// The offending value, as Kazoo's `value`; filled in by whoever holds the document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl Problem {
    /// A problem with the field `field` of a node's `data` (path `data.FIELD`), the form every
    /// module's parameter check reports.
    pub fn in_data(field: &str, rule: &str, message: impl Into<String>) -> Self {
        Problem {
            path: format!("data.{field}"),
            rule: rule.to_owned(),
            message: message.into(),
            target: None,
            value: None,
        }
    }

    /// The same problem with Kazoo's `target` (what the rule wanted).
    #[must_use]
    pub fn with_target(mut self, target: Value) -> Self {
        self.target = Some(target);
        self
    }
}

/// Collects the violations found while walking a document (also used by the API's schemas).
#[derive(Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Records one violation.
    pub fn add(&mut self, path: &str, rule: &str, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.to_owned(),
            rule: rule.to_owned(),
            message: message.into(),
            target: None,
            value: None,
        });
    }

    /// Records one violation with Kazoo's `target` (the enum list, the minimum, the type).
    pub fn add_target(
        &mut self,
        path: &str,
        rule: &str,
        message: impl Into<String>,
        target: Value,
    ) {
        self.add(path, rule, message);
        if let Some(last) = self.0.last_mut() {
            last.target = Some(target);
        }
    }
}
