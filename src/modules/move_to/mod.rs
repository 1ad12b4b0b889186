//! The `move` metaflow module (Kazoo's `konami_move`): the call moves to another device, the
//! node's `device_id` or one of user `owner_id`'s devices (the dialing party's own device is
//! skipped). The proxy places a call to it (straight to a device registered through the proxy,
//! else through the PBX by its SIP username), ringing the devices all at once (Kazoo's
//! `dial_strategy` `simultaneous`, the default) or one after another (`single`), and the first
//! to answer takes the dialing party's place. The work is [`SwapIn`]'s, shared with
//! `intercept`.

use serde_json::{Map, Value};

use crate::base::Problem;
use crate::modules::catalog::ModuleKind;
use crate::modules::context::Module;
use crate::modules::data;
use crate::modules::intercept::{SwapIn, SwapParams, SwapTarget};

/// The name of this module in a metaflow node (`"module": "move"`).
pub const MODULE_NAME: &str = "move";

/// The catalog entry of `move`.
#[derive(Debug)]
pub struct Kind;

impl ModuleKind for Kind {
    const NAME: &'static str = MODULE_NAME;
    type Params = SwapParams;

    fn parse(data: &Map<String, Value>) -> Result<SwapParams, Vec<Problem>> {
        let mut problems = Vec::new();
        let device = data::string(data, "device_id", &mut problems);
        let owner = data::string(data, "owner_id", &mut problems);
        let target = device
            .map(SwapTarget::Device)
            .or(owner.map(SwapTarget::User));
        SwapParams::with_options(target, data, problems)
    }

    fn start(params: &SwapParams) -> Box<dyn Module> {
        Box::new(SwapIn::new(MODULE_NAME, "moved", params.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_device_wins_over_an_owner_and_both_may_be_absent() {
        let parse = |data: Value| Kind::parse(data.as_object().unwrap()).unwrap();
        assert_eq!(
            parse(json!({"device_id": "d1", "owner_id": "u1"})).target,
            Some(SwapTarget::Device("d1".into()))
        );
        assert_eq!(
            parse(json!({"owner_id": "u1"})).target,
            Some(SwapTarget::User("u1".into()))
        );
        assert_eq!(parse(json!({})).target, None);
        let problems = Kind::parse(json!({"auto_answer": 1}).as_object().unwrap()).unwrap_err();
        assert_eq!(problems[0].path, "data.auto_answer");
        assert!(parse(json!({})).simultaneous, "Kazoo's default strategy");
        assert!(!parse(json!({"dial_strategy": "single"})).simultaneous);
        let problems =
            Kind::parse(json!({"dial_strategy": "random"}).as_object().unwrap()).unwrap_err();
        assert_eq!(problems[0].path, "data.dial_strategy");
    }
}
