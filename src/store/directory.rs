//! Fast, synchronous answers to "which metaflows apply to this call?" for the call core, read from
//! an in-memory snapshot of the store that the API refreshes after every committed write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde_json::{Map, Value};

use crate::metaflow::limits::{MAX_LOADED_PATTERNS, MAX_PATTERNS_PER_DOCUMENT, compile_pattern};
use crate::metaflow::{MetaflowSystem, Metaflows, parse_metaflows};
use crate::store::merged::{Layer, MergeCache, account_timeout_ms};
use crate::store::{Collection, ReadView, Store, StoreError, Stored};

/// Metaflow scope key of an account's own metaflows.
pub fn account_scope() -> String {
    "account".to_owned()
}

/// Metaflow scope key of a user's metaflows.
pub fn user_scope(user_id: &str) -> String {
    format!("user/{user_id}")
}

/// Metaflow scope key of a device's metaflows.
pub fn device_scope(device_id: &str) -> String {
    format!("device/{device_id}")
}

/// Parsed metaflows with the revision they were parsed from, to reuse them across refreshes.
#[derive(Clone)]
struct Parsed {
    rev: String,
    flows: Arc<Metaflows>,
    /// The object as stored, for Kazoo's merge of an endpoint's layers.
    raw: Arc<Map<String, Value>>,
}

/// What the directory needs of a device: its id and the user that owns it.
struct DeviceRef {
    id: String,
    owner_id: Option<String>,
}

/// A callflow reduced to what dialed-number matching needs.
struct CallflowRoute {
    rev: String,
    id: String,
    numbers: Vec<String>,
    patterns: Vec<crate::metaflow::Pattern>,
    metaflow: Option<Parsed>,
}

/// One account's lookup tables.
#[derive(Default)]
struct AccountView {
    /// The credentials the proxy answers the PBX's challenges with on calls it places for this
    /// account (the account document's `pbx_auth`: username, password).
    pbx_auth: Option<(String, String)>,
    devices_by_sip_user: HashMap<String, DeviceRef>,
    account_flows: Option<Parsed>,
    user_flows: HashMap<String, Parsed>,
    device_flows: HashMap<String, Parsed>,
    callflows: Vec<Arc<CallflowRoute>>,
}

impl AccountView {
    /// The callflow `dialed_number` selects: one listing the number exactly wins, else the
    /// first whose pattern matches (callflows in id order, patterns in written order).
    fn route_for(&self, dialed_number: &str) -> Option<&CallflowRoute> {
        let exact = self
            .callflows
            .iter()
            .find(|route| route.numbers.iter().any(|number| number == dialed_number));
        exact
            .or_else(|| {
                self.callflows.iter().find(|route| {
                    route
                        .patterns
                        .iter()
                        .any(|pattern| pattern.is_match(dialed_number))
                })
            })
            .map(Arc::as_ref)
    }
}

/// Everything the lookups read, replaced as a whole on refresh.
#[derive(Default)]
struct Snapshot {
    /// Patterns compiled in this snapshot, at most [`MAX_LOADED_PATTERNS`].
    patterns: usize,
    account_by_realm: HashMap<String, String>,
    accounts: HashMap<String, AccountView>,
}

struct Inner {
    store: Arc<Store>,
    default_account_id: String,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Serialises refreshes so that the last one to finish has read the latest commit.
    refreshing: Mutex<()>,
    /// The operator's metaflow settings (digit timeout fallback, fast re-arm).
    system: RwLock<MetaflowSystem>,
    /// Endpoints' merged metaflows, by the versions of their layers.
    merged: Mutex<MergeCache>,
}

/// Resolves the metaflows of a call leg or a dialed number; cheap to clone, never blocks on I/O.
#[derive(Clone)]
pub struct MetaflowDirectory {
    inner: Arc<Inner>,
}

impl MetaflowDirectory {
    /// A directory over `store`, loaded at once.
    pub fn load(store: Arc<Store>, default_account_id: &str) -> Result<Self, StoreError> {
        let directory = Self {
            inner: Arc::new(Inner {
                store,
                default_account_id: default_account_id.to_owned(),
                snapshot: RwLock::new(Arc::new(Snapshot::default())),
                refreshing: Mutex::new(()),
                system: RwLock::new(MetaflowSystem::default()),
                merged: Mutex::new(MergeCache::default()),
            }),
        };
        directory.refresh()?;
        Ok(directory)
    }

    /// Re-reads the store so that later lookups see every write committed before this call.
    pub fn refresh(&self) -> Result<(), StoreError> {
        let _serialised = self
            .inner
            .refreshing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let previous = self.snapshot();
        let view = self.inner.store.read()?;
        let next = build_snapshot(&view, &previous)?;
        *self
            .inner
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        Ok(())
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(
            &self
                .inner
                .snapshot
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// The metaflows of the endpoint `user@host`, as Kazoo builds them for each endpoint of a
    /// call: the account whose realm is `host` (else the default account), and in it the
    /// account's metaflows, then (our extension) those of the callflow `dialed` selects, then
    /// the device whose `sip.username` is `user`, then the device's owner: deep-merged, later
    /// winning (`kz_json:merge_recursive([Account, Endpoint, Owner])`). With no `digit_timeout`
    /// in the result, the account's `digit_timeout_ms` applies, then the system setting. The
    /// second value names the layers, e.g. `account+device+user`. `None` when they define no
    /// code.
    pub fn for_endpoint(
        &self,
        user: &str,
        host: &str,
        dialed: Option<&str>,
    ) -> Option<(Arc<Metaflows>, String)> {
        let snapshot = self.snapshot();
        let account_id = snapshot
            .account_by_realm
            .get(host)
            .map_or(self.inner.default_account_id.as_str(), String::as_str);
        let view = snapshot.accounts.get(account_id)?;
        let mut layers = Vec::new();
        if let Some(parsed) = &view.account_flows {
            layers.push(layer("account", "", parsed));
        }
        let route = dialed.and_then(|dialed| view.route_for(dialed));
        if let Some((route, parsed)) =
            route.and_then(|route| route.metaflow.as_ref().map(|parsed| (route, parsed)))
        {
            layers.push(layer("callflow", &route.id, parsed));
        }
        if let Some(device) = view.devices_by_sip_user.get(user) {
            if let Some(parsed) = view.device_flows.get(&device.id) {
                layers.push(layer("device", &device.id, parsed));
            }
            let owner = device.owner_id.as_ref();
            if let Some((owner, parsed)) =
                owner.and_then(|owner| view.user_flows.get(owner).map(|parsed| (owner, parsed)))
            {
                layers.push(layer("user", owner, parsed));
            }
        }
        // An emptied document (the API's DELETE) takes no part.
        layers.retain(|layer| !layer.raw.is_empty());
        if layers.is_empty() {
            return None;
        }
        let scopes: Vec<&str> = layers.iter().map(|layer| layer.scope).collect();
        let account_timeout = view
            .account_flows
            .as_ref()
            .and_then(|parsed| account_timeout_ms(&parsed.raw));
        let system = self.system();
        let flows = self
            .inner
            .merged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .merged(&layers, account_timeout, system)?;
        Some((flows, scopes.join("+")))
    }

    /// The operator's metaflow settings in force.
    pub fn system(&self) -> MetaflowSystem {
        *self
            .inner
            .system
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the operator's metaflow settings (at start and at each reload); later calls get
    /// them.
    pub fn set_system(&self, system: MetaflowSystem) {
        *self
            .inner
            .system
            .write()
            .unwrap_or_else(PoisonError::into_inner) = system;
    }

    /// The account a party at `host` belongs to: the one whose realm is `host`, else the
    /// default account.
    pub fn account_for_host(&self, host: &str) -> String {
        let snapshot = self.snapshot();
        snapshot
            .account_by_realm
            .get(host)
            .cloned()
            .unwrap_or_else(|| self.inner.default_account_id.clone())
    }

    /// The credentials for the PBX's challenges to calls the proxy places for `account_id` (the
    /// default account when `None`): its document's `pbx_auth`.
    pub fn pbx_auth(&self, account_id: Option<&str>) -> Option<(String, String)> {
        let snapshot = self.snapshot();
        let account_id = account_id.unwrap_or(self.inner.default_account_id.as_str());
        snapshot.accounts.get(account_id)?.pbx_auth.clone()
    }

    /// The first number of callflow `id` of `account_id` (the default account when `None`).
    pub fn callflow_number(&self, account_id: Option<&str>, id: &str) -> Option<String> {
        let snapshot = self.snapshot();
        let account_id = account_id.unwrap_or(self.inner.default_account_id.as_str());
        let view = snapshot.accounts.get(account_id)?;
        let route = view.callflows.iter().find(|route| route.id == id)?;
        route.numbers.first().cloned()
    }

    /// The SIP username of device `device_id` of `account_id` (the default account when `None`).
    pub fn device_sip_user(&self, account_id: Option<&str>, device_id: &str) -> Option<String> {
        let snapshot = self.snapshot();
        let account_id = account_id.unwrap_or(self.inner.default_account_id.as_str());
        let view = snapshot.accounts.get(account_id)?;
        view.devices_by_sip_user
            .iter()
            .find(|(_, device)| device.id == device_id)
            .map(|(user, _)| user.clone())
    }

    /// The SIP usernames of the devices user `owner_id` of `account_id` owns, by device id.
    pub fn owner_sip_users(&self, account_id: Option<&str>, owner_id: &str) -> Vec<String> {
        let snapshot = self.snapshot();
        let account_id = account_id.unwrap_or(self.inner.default_account_id.as_str());
        let Some(view) = snapshot.accounts.get(account_id) else {
            return Vec::new();
        };
        let mut owned: Vec<(&String, &String)> = view
            .devices_by_sip_user
            .iter()
            .filter(|(_, device)| device.owner_id.as_deref() == Some(owner_id))
            .map(|(user, device)| (&device.id, user))
            .collect();
        owned.sort();
        owned.into_iter().map(|(_, user)| user.clone()).collect()
    }

    /// The metaflows of the callflow of `account_id` that `dialed_number` selects: a callflow
    /// listing the number exactly wins, else the first whose pattern matches (callflows in id
    /// order, patterns in written order). `None` when no callflow matches or the one that does
    /// has no metaflow.
    pub fn for_dialed(&self, account_id: &str, dialed_number: &str) -> Option<Arc<Metaflows>> {
        let snapshot = self.snapshot();
        let view = snapshot.accounts.get(account_id)?;
        let route = view.route_for(dialed_number)?;
        let parsed = route.metaflow.as_ref()?;
        (!parsed.flows.numbers.is_empty() || !parsed.flows.patterns.is_empty())
            .then(|| Arc::clone(&parsed.flows))
    }

    /// Patterns compiled in memory over every stored document, for the API to refuse a write
    /// that would go beyond [`MAX_LOADED_PATTERNS`].
    pub fn loaded_patterns(&self) -> usize {
        self.snapshot().patterns
    }

    /// The account used when no realm matches a leg's host.
    pub fn default_account_id(&self) -> &str {
        &self.inner.default_account_id
    }
}

/// Patterns still allowed in memory while a snapshot is built ([`MAX_LOADED_PATTERNS`]).
struct PatternBudget {
    left: usize,
}

impl PatternBudget {
    /// Takes `count` patterns from the budget; false (and nothing taken) when they do not fit.
    fn take(&mut self, count: usize) -> bool {
        match self.left.checked_sub(count) {
            Some(left) => {
                self.left = left;
                true
            }
            None => false,
        }
    }

    /// Checks `flows` against the budget; `None`, logged naming `document`, when over it.
    fn admit(&mut self, flows: Arc<Metaflows>, document: &str) -> Option<Arc<Metaflows>> {
        if self.take(flows.patterns.len()) {
            return Some(flows);
        }
        tracing::error!(
            document,
            patterns = flows.patterns.len(),
            limit = MAX_LOADED_PATTERNS,
            "metaflows skipped: the patterns of the stored documents exceed the in-memory limit"
        );
        None
    }
}

impl Default for PatternBudget {
    fn default() -> Self {
        Self {
            left: MAX_LOADED_PATTERNS,
        }
    }
}

/// `parsed` as a layer of an endpoint's merge.
fn layer<'a>(scope: &'static str, id: &str, parsed: &'a Parsed) -> Layer<'a> {
    Layer {
        scope,
        key: format!("{scope}/{id}@{}", parsed.rev),
        raw: &parsed.raw,
        flows: &parsed.flows,
    }
}

/// Parses stored metaflows, reusing the previous parse when the revision is unchanged;
/// unparsable ones and ones beyond the pattern budget count as absent. One without codes is kept:
/// its settings (`binding_digit`, `digit_timeout`...) still take part in an endpoint's merge.
fn parse_stored(
    account_id: &str,
    stored: &Stored,
    previous: Option<&Parsed>,
    budget: &mut PatternBudget,
) -> Option<Parsed> {
    let document = format!("{account_id}/metaflows/{}", stored.id);
    let (flows, raw) = match previous.filter(|previous| previous.rev == stored.rev) {
        Some(previous) => (Arc::clone(&previous.flows), Arc::clone(&previous.raw)),
        None => (
            parse_object(&stored.doc, &document)?,
            Arc::new(stored.doc.clone()),
        ),
    };
    budget.admit(flows, &document).map(|flows| Parsed {
        rev: stored.rev.clone(),
        flows,
        raw,
    })
}

/// Parses a metaflow object; `None` when it is invalid (logged naming `document`).
fn parse_object(doc: &Map<String, Value>, document: &str) -> Option<Arc<Metaflows>> {
    match parse_metaflows(&Value::Object(doc.clone())) {
        Ok(flows) => Some(Arc::new(flows)),
        Err(problems) => {
            let first = problems
                .first()
                .map(|problem| format!("{}: {}", problem.path, problem.message))
                .unwrap_or_default();
            tracing::error!(
                document,
                count = problems.len(),
                first = %first,
                "stored metaflows skipped: they no longer validate"
            );
            None
        }
    }
}

fn build_snapshot(view: &ReadView, previous: &Snapshot) -> Result<Snapshot, StoreError> {
    let mut next = Snapshot::default();
    let mut budget = PatternBudget::default();
    for (account_id, stored) in view.list_all(Collection::Accounts)? {
        if let Some(realm) = stored.doc.get("realm").and_then(Value::as_str) {
            next.account_by_realm
                .insert(realm.to_owned(), account_id.clone());
        }
        let pbx_auth = stored.doc.get("pbx_auth").and_then(|auth| {
            let text = |key: &str| auth.get(key).and_then(Value::as_str).map(str::to_owned);
            text("username").zip(text("password"))
        });
        next.accounts.insert(
            account_id,
            AccountView {
                pbx_auth,
                ..AccountView::default()
            },
        );
    }
    for (account_id, stored) in view.list_all(Collection::Devices)? {
        let Some(account) = next.accounts.get_mut(&account_id) else {
            continue;
        };
        let sip_user = stored
            .doc
            .get("sip")
            .and_then(|sip| sip.get("username"))
            .and_then(Value::as_str);
        if let Some(sip_user) = sip_user {
            let owner_id = stored.doc.get("owner_id").and_then(Value::as_str);
            let device = DeviceRef {
                id: stored.id.clone(),
                owner_id: owner_id.map(str::to_owned),
            };
            account
                .devices_by_sip_user
                .insert(sip_user.to_owned(), device);
        }
    }
    for (account_id, stored) in view.list_all(Collection::Metaflows)? {
        let old = previous.accounts.get(&account_id);
        let Some(account) = next.accounts.get_mut(&account_id) else {
            continue;
        };
        if let Some(user_id) = stored.id.strip_prefix("user/") {
            let prior = old.and_then(|old| old.user_flows.get(user_id));
            if let Some(parsed) = parse_stored(&account_id, &stored, prior, &mut budget) {
                account.user_flows.insert(user_id.to_owned(), parsed);
            }
        } else if let Some(device_id) = stored.id.strip_prefix("device/") {
            let prior = old.and_then(|old| old.device_flows.get(device_id));
            if let Some(parsed) = parse_stored(&account_id, &stored, prior, &mut budget) {
                account.device_flows.insert(device_id.to_owned(), parsed);
            }
        } else {
            let prior = old.and_then(|old| old.account_flows.as_ref());
            account.account_flows = parse_stored(&account_id, &stored, prior, &mut budget);
        }
    }
    for (account_id, stored) in view.list_all(Collection::Callflows)? {
        let old = previous.accounts.get(&account_id);
        let Some(account) = next.accounts.get_mut(&account_id) else {
            continue;
        };
        let reused = old.and_then(|old| {
            old.callflows
                .iter()
                .find(|route| route.id == stored.id && route.rev == stored.rev)
        });
        let route = match reused {
            Some(route) => Arc::clone(route),
            None => Arc::new(callflow_route(&account_id, &stored)),
        };
        let patterns = route.patterns.len()
            + route
                .metaflow
                .as_ref()
                .map_or(0, |parsed| parsed.flows.patterns.len());
        if budget.take(patterns) {
            account.callflows.push(route);
        } else {
            tracing::error!(
                document = %format!("{account_id}/callflows/{}", stored.id),
                patterns,
                limit = MAX_LOADED_PATTERNS,
                "callflow skipped: the patterns of the stored documents exceed the in-memory limit"
            );
        }
    }
    next.patterns = MAX_LOADED_PATTERNS.saturating_sub(budget.left);
    Ok(next)
}

/// The strings of the array `doc[key]` (a callflow's `numbers` or `patterns`); anything else
/// in the array, or a missing key, yields nothing.
pub fn string_list(doc: &serde_json::Map<String, Value>, key: &str) -> Vec<String> {
    doc.get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Extracts the numbers, compiled patterns and metaflows of a stored callflow; patterns beyond
/// the limits of [`crate::metaflow::limits`] are left out.
fn callflow_route(account_id: &str, stored: &Stored) -> CallflowRoute {
    let document = format!("{account_id}/callflows/{}", stored.id);
    let strings = |key: &str| string_list(&stored.doc, key);
    let patterns = strings("patterns")
        .iter()
        .take(MAX_PATTERNS_PER_DOCUMENT)
        .filter_map(|pattern| compile_pattern(pattern).ok())
        .collect();
    let metaflow = stored
        .doc
        .get("metaflow")
        .and_then(Value::as_object)
        .and_then(|doc| {
            parse_object(doc, &document).map(|flows| Parsed {
                rev: stored.rev.clone(),
                flows,
                raw: Arc::new(doc.clone()),
            })
        });
    CallflowRoute {
        rev: stored.rev.clone(),
        id: stored.id.clone(),
        numbers: strings("numbers"),
        patterns,
        metaflow,
    }
}
