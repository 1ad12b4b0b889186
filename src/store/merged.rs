//! The metaflow an endpoint gets, made from its layers (account, callflow, device, user) by
//! Kazoo's deep merge, with Kazoo's digit-timeout fallbacks, and kept so that a call setup
//! parses a given combination once.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::metaflow::limits::MAX_LOADED_PATTERNS;
use crate::metaflow::merge::merge_recursive;
use crate::metaflow::{MetaflowSystem, Metaflows, parse_metaflows};

/// One stored metaflow object taking part in a merge.
pub(super) struct Layer<'a> {
    /// Its scope, for events and logs: `account`, `callflow`, `device` or `user`.
    pub(super) scope: &'static str,
    /// Identifies this version of the object (scope, id and revision) in the cache.
    pub(super) key: String,
    /// The object as stored.
    pub(super) raw: &'a Map<String, Value>,
    /// Its own parse, used as is when it is the only layer and names its digit timeout.
    pub(super) flows: &'a Arc<Metaflows>,
}

/// Merged metaflows by layer versions and settings. Bounded by the patterns its entries hold
/// (the same budget as the stored documents'); emptied when a new entry would go beyond it.
#[derive(Default)]
pub(super) struct MergeCache {
    entries: HashMap<String, Option<Arc<Metaflows>>>,
    patterns: usize,
}

impl MergeCache {
    /// The merged metaflows of `layers` (lowest first), `None` when they define no code.
    /// `account_timeout_ms` is the account document's `digit_timeout_ms`, used (as Kazoo's
    /// `konami_config:timeout/1`) when the merged object has no `digit_timeout`; then comes
    /// the system setting.
    pub(super) fn merged(
        &mut self,
        layers: &[Layer<'_>],
        account_timeout_ms: Option<u64>,
        system: MetaflowSystem,
    ) -> Option<Arc<Metaflows>> {
        let system_ms = u64::try_from(system.digit_timeout.as_millis()).unwrap_or(u64::MAX);
        if let [only] = layers
            && only.raw.get("digit_timeout").is_some_and(|v| !v.is_null())
        {
            return has_codes(only.flows).then(|| Arc::clone(only.flows));
        }
        let mut key = format!("{account_timeout_ms:?}|{system_ms}");
        for layer in layers {
            key.push('|');
            key.push_str(&layer.key);
        }
        if let Some(found) = self.entries.get(&key) {
            return found.clone();
        }
        let made = merge(layers, account_timeout_ms.unwrap_or(system_ms));
        let patterns = made.as_ref().map_or(0, |flows| flows.patterns.len());
        if self.patterns + patterns > MAX_LOADED_PATTERNS {
            self.entries.clear();
            self.patterns = 0;
        }
        self.patterns += patterns;
        self.entries.insert(key, made.clone());
        made
    }
}

/// Merges and parses; a merged object that does not validate (the layers each did) falls back
/// to the most specific layer that defines a code, logged.
fn merge(layers: &[Layer<'_>], default_timeout_ms: u64) -> Option<Arc<Metaflows>> {
    let mut merged = merge_recursive(layers.iter().map(|layer| layer.raw));
    if merged.get("digit_timeout").is_none_or(Value::is_null) {
        merged.insert("digit_timeout".into(), Value::from(default_timeout_ms));
    }
    match parse_metaflows(&Value::Object(merged)) {
        Ok(flows) => has_codes(&flows).then(|| Arc::new(flows)),
        Err(problems) => {
            let scopes: Vec<&str> = layers.iter().map(|layer| layer.scope).collect();
            let first = problems
                .first()
                .map(|problem| format!("{}: {}", problem.path, problem.message))
                .unwrap_or_default();
            tracing::warn!(
                ?scopes,
                first = %first,
                "merged metaflows do not validate; the most specific layer is used alone"
            );
            layers
                .iter()
                .rev()
                .find(|layer| has_codes(layer.flows))
                .map(|layer| Arc::clone(layer.flows))
        }
    }
}

/// Whether `flows` defines any code (an object without codes counts as absent).
fn has_codes(flows: &Metaflows) -> bool {
    !flows.numbers.is_empty() || !flows.patterns.is_empty()
}

/// The account document's `digit_timeout_ms`: an integer, or a string of one as Kazoo's
/// `kz_term:to_integer/1` reads it.
pub(super) fn account_timeout_ms(raw: &Map<String, Value>) -> Option<u64> {
    match raw.get("digit_timeout_ms")? {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}
