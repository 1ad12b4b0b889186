//! From decisions to module executions, and from a module's outcome to the next node.

use serde_json::{Map, Value};

use crate::base::Leg;
use crate::metaflow::collector::Decision;
use crate::metaflow::model::MetaflowNode;

/// Outcome key that matches any outcome without a child of its own.
pub const FALLBACK_OUTCOME: &str = "_";

/// One module to execute on the call: which node, for which dialing leg, with which arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleRun {
    /// The leg that dialed the code (modules act relative to it, e.g. transfer refers the other).
    pub leg: Leg,
    /// The node whose module runs.
    pub node: MetaflowNode,
    /// `node.data` plus what the code carried:
    /// * `captures`: the pattern's capture groups (`[]` for `numbers`), replacing any stored value
    ///   (Kazoo stores a placeholder `["no_match"]` there);
    /// * `collected`: the digits dialed after the binding digit;
    /// * `dtmf_side`: the dialing leg as `"a"` or `"b"` (ours; the call core adds Kazoo's
    ///   `dtmf_leg`, that leg's Call-ID, when it runs the module);
    /// * `dtmf_party`: the dialing leg relative to the metaflow's owner, `"self"` or `"peer"`,
    ///   in the vocabulary of `listen_on`.
    pub data: Map<String, Value>,
}

impl ModuleRun {
    /// The run of the child selected by `outcome`, carrying the code's `captures`, `collected`,
    /// `dtmf_leg`, `dtmf_side` and `dtmf_party` into the child's data; `None` when execution stops.
    pub fn next(&self, outcome: &str) -> Option<ModuleRun> {
        let child = next_node(&self.node, outcome)?;
        let mut data = child.data.clone();
        for key in [
            "captures",
            "collected",
            "dtmf_leg",
            "dtmf_side",
            "dtmf_party",
        ] {
            if let Some(value) = self.data.get(key) {
                data.insert(key.to_owned(), value.clone());
            }
        }
        Some(ModuleRun {
            leg: self.leg,
            node: child.clone(),
            data,
        })
    }
}

/// The module execution a decision calls for: `Some` for [`Decision::Match`], `None` otherwise.
/// `owner_leg` is the leg that owns the metaflow (the "self" of `listen_on`).
pub fn module_run(decision: &Decision, owner_leg: Leg) -> Option<ModuleRun> {
    let Decision::Match {
        leg,
        collected,
        node,
        captures,
        ..
    } = decision
    else {
        return None;
    };
    let mut data = node.data.clone();
    let captures = captures.iter().cloned().map(Value::String).collect();
    data.insert("captures".into(), Value::Array(captures));
    data.insert("collected".into(), Value::String(collected.clone()));
    data.insert("dtmf_side".into(), Value::String(leg.as_str().into()));
    let party = if *leg == owner_leg { "self" } else { "peer" };
    data.insert("dtmf_party".into(), Value::String(party.into()));
    Some(ModuleRun {
        leg: *leg,
        node: node.clone(),
        data,
    })
}

/// The child to continue with after `node`'s module ended with `outcome`:
/// `children[outcome]`, else `children["_"]`, else `None` (execution stops).
pub fn next_node<'a>(node: &'a MetaflowNode, outcome: &str) -> Option<&'a MetaflowNode> {
    let child_for = |key: &str| {
        node.children
            .iter()
            .find(|(child_key, _)| child_key == key)
            .map(|(_, child)| child)
    };
    child_for(outcome).or_else(|| child_for(FALLBACK_OUTCOME))
}
