//! The `intercept` metaflow module (Kazoo's `konami_intercept`): the call is handed to a target
//! (a device, a user's devices or a number). The proxy places a call to it, straight to a device
//! registered through the proxy (over the flow it registered on) or through the PBX, and once
//! answered it takes the dialing party's place; the dialing party gets a BYE. Shared with `move`
//! ([`SwapIn`]), which hands the call to another device of a user.

use serde_json::{Map, Value};

use crate::base::Problem;
use crate::modules::catalog::ModuleKind;
use crate::modules::context::{CallContext, Destination, Module, PlaceOptions, Progress, RunInfo};
use crate::modules::data;
use crate::modules::transfer::{TransferParams, refer_target};

/// The name of this module in a metaflow node (`"module": "intercept"`).
pub const MODULE_NAME: &str = "intercept";

/// How long the targets may ring (each, one after another with `dial_strategy: single`)
/// before they are given up (Kazoo's default target timeout).
const RING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// What a call is handed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapTarget {
    /// A device document of the account.
    Device(String),
    /// Every device a user owns, all at once (or in turn with `dial_strategy: single`).
    User(String),
    /// A number, through the PBX.
    Number(String),
}

/// Checked `data` of an `intercept` or `move` node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapParams {
    /// Where the call goes; `None` for a `move` that names neither device nor owner.
    pub target: Option<SwapTarget>,
    /// Ask the phone to answer by itself.
    pub auto_answer: bool,
    /// Whether the dialing party's own device may be the target.
    pub can_call_self: bool,
    /// Ring every candidate at once (Kazoo's `dial_strategy` `simultaneous`, the default) or
    /// one after another (`single`).
    pub simultaneous: bool,
}

impl SwapParams {
    /// The parameters for `target` with the options both modules share (`auto_answer`,
    /// `can_call_self`) read from `data`, or every problem found.
    pub fn with_options(
        target: Option<SwapTarget>,
        data: &Map<String, Value>,
        mut problems: Vec<Problem>,
    ) -> Result<SwapParams, Vec<Problem>> {
        let auto_answer = data::boolean(data, "auto_answer", &mut problems).unwrap_or(false);
        let can_call_self = data::boolean(data, "can_call_self", &mut problems).unwrap_or(true);
        let strategies = ["simultaneous", "single"];
        let strategy = data::one_of(
            data,
            "dial_strategy",
            &strategies,
            "simultaneous",
            &mut problems,
        );
        if problems.is_empty() {
            Ok(SwapParams {
                target,
                auto_answer,
                can_call_self,
                simultaneous: strategy == "simultaneous",
            })
        } else {
            Err(problems)
        }
    }
}

/// The catalog entry of `intercept`.
#[derive(Debug)]
pub struct Kind;

impl ModuleKind for Kind {
    const NAME: &'static str = MODULE_NAME;
    type Params = SwapParams;

    fn parse(data: &Map<String, Value>) -> Result<SwapParams, Vec<Problem>> {
        let mut problems = Vec::new();
        let kind = data::string(data, "target_type", &mut problems);
        let id = data::string(data, "target_id", &mut problems);
        let target = match (kind.as_deref(), id) {
            (_, None) => {
                problems.push(Problem::in_data("target_id", "required", "is required"));
                None
            }
            (Some("device"), Some(id)) => Some(SwapTarget::Device(id)),
            (Some("user"), Some(id)) => Some(SwapTarget::User(id)),
            (Some("number"), Some(id)) => Some(SwapTarget::Number(id)),
            (Some(_), Some(_)) => {
                let message = "must be one of device, user, number";
                problems.push(Problem::in_data("target_type", "enum", message));
                None
            }
            (None, Some(_)) => {
                problems.push(Problem::in_data("target_type", "required", "is required"));
                None
            }
        };
        // Kazoo's `unbridged_only` is accepted; every call through the proxy is bridged.
        let _ = data::boolean(data, "unbridged_only", &mut problems);
        SwapParams::with_options(target, data, problems)
    }

    fn start(params: &SwapParams) -> Box<dyn Module> {
        Box::new(SwapIn::new(MODULE_NAME, "intercepted", params.clone()))
    }
}

/// One `intercept` or `move` on one call: the candidates, rung all at once or left to try one
/// at a time.
#[derive(Debug)]
pub struct SwapIn {
    name: &'static str,
    reason: &'static str,
    params: SwapParams,
    /// SIP usernames (devices) or numbers still to try.
    left: Vec<Candidate>,
    /// The dialing leg, once started.
    dialing: Option<crate::base::Leg>,
}

/// One place a call can go.
#[derive(Debug, Clone)]
enum Candidate {
    Device(String),
    Number(String),
}

impl SwapIn {
    /// A swap for module `name` whose leaving party's BYE says `reason`.
    pub fn new(name: &'static str, reason: &'static str, params: SwapParams) -> SwapIn {
        SwapIn {
            name,
            reason,
            params,
            left: Vec::new(),
            dialing: None,
        }
    }

    /// Places the call to the next candidate, or to every candidate left when they ring at
    /// once; `Done("failure")` when none is left or usable.
    fn try_next(&mut self, ctx: &mut dyn CallContext) -> Progress {
        let Some(dialing) = self.dialing else {
            return Progress::Done("failure");
        };
        let take = if self.params.simultaneous {
            self.left.len()
        } else {
            self.left.len().min(1)
        };
        let batch: Vec<Candidate> = self.left.drain(..take).collect();
        // (user, fallback URI at the PBX, straight to the device when registered here)
        let mut places: Vec<(String, String, bool)> = Vec::new();
        for candidate in batch {
            let (user, device) = match candidate {
                Candidate::Device(user) => (user, true),
                Candidate::Number(number) => (number, false),
            };
            let params = TransferParams {
                target: Some(user.clone()),
                ..TransferParams::default()
            };
            if let Ok(uri) = refer_target(&params, &[], &ctx.upstream_host()) {
                places.push((user, uri, device));
            }
        }
        if places.is_empty() {
            return if self.left.is_empty() {
                Progress::Done("failure")
            } else {
                self.try_next(ctx)
            };
        }
        let to: Vec<Destination<'_>> = places
            .iter()
            .map(|(user, uri, device)| {
                if *device {
                    Destination::Device {
                        sip_user: user,
                        fallback: uri,
                    }
                } else {
                    Destination::Pbx(uri)
                }
            })
            .collect();
        let options = PlaceOptions {
            reason: self.reason,
            auto_answer: self.params.auto_answer,
        };
        match ctx.originate(dialing, &to, options) {
            Ok(()) => {
                ctx.set_timer(ctx.now() + RING_TIMEOUT);
                Progress::Pending
            }
            Err(reason) => {
                tracing::warn!(call_id = %ctx.call_id(), module = self.name, %reason, "cannot place the call");
                Progress::Done("failure")
            }
        }
    }
}

impl Module for SwapIn {
    fn name(&self) -> &'static str {
        self.name
    }

    fn start(&mut self, ctx: &mut dyn CallContext, run: RunInfo<'_>) -> Progress {
        if !ctx.is_confirmed() {
            return Progress::Done("failure");
        }
        // The dialing party's own device: its From/To user part.
        let own_user = ctx
            .remote_uri(run.leg)
            .split_once("sip:")
            .and_then(|(_, rest)| rest.split(['@', ';', '>']).next().map(str::to_owned))
            .unwrap_or_default();
        let users = match &self.params.target {
            None => Vec::new(),
            Some(SwapTarget::Number(number)) => vec![Candidate::Number(number.clone())],
            Some(SwapTarget::Device(id)) => ctx
                .device_sip_user(id)
                .map(Candidate::Device)
                .into_iter()
                .collect(),
            Some(SwapTarget::User(owner)) => ctx
                .owner_sip_users(owner)
                .into_iter()
                .map(Candidate::Device)
                .collect(),
        };
        let can_call_self = self.params.can_call_self && self.name == MODULE_NAME;
        self.left = users
            .into_iter()
            .filter(|c| match c {
                Candidate::Device(user) => can_call_self || *user != own_user,
                Candidate::Number(_) => true,
            })
            .collect();
        self.dialing = Some(run.leg);
        if self.left.is_empty() {
            tracing::warn!(call_id = %ctx.call_id(), module = self.name, "no target to hand the call to");
        }
        self.try_next(ctx)
    }

    fn on_originated(&mut self, ctx: &mut dyn CallContext, status: u16) -> Progress {
        if (200..300).contains(&status) {
            return Progress::Done("success");
        }
        self.try_next(ctx)
    }

    fn on_timer(&mut self, ctx: &mut dyn CallContext) -> Progress {
        // The target rang too long: give it up; its 487 moves on to the next one.
        ctx.cancel_origination();
        Progress::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(data: Value) -> Result<SwapParams, Vec<Problem>> {
        Kind::parse(data.as_object().unwrap())
    }

    #[test]
    fn target_type_and_id_are_required_and_checked() {
        assert_eq!(
            parse(json!({"target_type": "device", "target_id": "d1", "auto_answer": true})),
            Ok(SwapParams {
                target: Some(SwapTarget::Device("d1".into())),
                auto_answer: true,
                can_call_self: true,
                simultaneous: true,
            })
        );
        assert_eq!(
            parse(json!({"target_type": "device"})).unwrap_err()[0].path,
            "data.target_id"
        );
        assert_eq!(
            parse(json!({"target_type": "phone", "target_id": "x"})).unwrap_err()[0].path,
            "data.target_type"
        );
        assert_eq!(
            parse(json!({"target_id": "x", "auto_answer": "yes"})).unwrap_err()[0].path,
            "data.target_type"
        );
    }
}
