//! The `hold` metaflow module, as FreeSWITCH's `soft_hold` that Kazoo's Konami sends: the other
//! party hears music on hold and nothing of the dialing party, the dialing party hears music
//! too (and nothing of the other), until the dialing party presses the unhold key or `resume`
//! runs. Kazoo's keys: `moh_aleg` (what the dialing leg hears), `moh_bleg` (what the other leg
//! hears, defaulting to `moh_aleg`), `unhold_key` (default `1`); a missing music is the proxy's
//! built-in one, `silence` is none, as in FreeSWITCH.

use serde_json::{Map, Value};

use crate::audio::SoundRef;
use crate::base::{Leg, PlaybackEnd, PlaybackId, Problem};

use super::catalog::ModuleKind;
use super::context::{CallContext, Module, PlayOptions, Progress, RunInfo};
use super::data;

/// The name of this module in a metaflow node.
pub const MODULE_NAME: &str = "hold";

/// The catalog entry of `hold`.
#[derive(Debug)]
pub struct Kind;

/// `hold`'s checked data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldParams {
    /// What the dialing leg hears (`moh_aleg`).
    pub moh_own: Option<String>,
    /// What the other leg hears (`moh_bleg`, else `moh_aleg`).
    pub moh_peer: Option<String>,
    /// The key that ends the hold.
    pub unhold_key: char,
}

impl ModuleKind for Kind {
    const NAME: &'static str = MODULE_NAME;
    type Params = HoldParams;

    fn parse(data: &Map<String, Value>) -> Result<HoldParams, Vec<Problem>> {
        let mut problems = Vec::new();
        let moh_own = data::string(data, "moh_aleg", &mut problems);
        let moh_peer = data::string(data, "moh_bleg", &mut problems).or_else(|| moh_own.clone());
        let key = data::string(data, "unhold_key", &mut problems).unwrap_or_else(|| "1".into());
        let mut chars = key.chars();
        let unhold_key = match (chars.next(), chars.next()) {
            (Some(c), None) if "0123456789*#ABCD".contains(c) => c,
            _ => {
                let message = "must be one key: 0-9, *, # or A-D";
                problems.push(Problem::in_data("unhold_key", "pattern", message));
                '1'
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(HoldParams {
            moh_own,
            moh_peer,
            unhold_key,
        })
    }

    fn start(params: &HoldParams) -> Box<dyn Module> {
        Box::new(Hold {
            params: params.clone(),
            dialing: Leg::A,
            peer_music: None,
        })
    }
}

/// A hold on one call.
#[derive(Debug)]
struct Hold {
    params: HoldParams,
    /// The leg that put the other on hold.
    dialing: Leg,
    /// The music the held party hears: when something else stops it (`resume`), the hold is
    /// over.
    peer_music: Option<PlaybackId>,
}

/// The sound a `moh_*` value names (`silence` is silence, still sent as a stream); also an
/// attended transfer's `moh`.
pub(crate) fn music(value: Option<&str>, account: Option<&str>) -> SoundRef {
    match value {
        None => SoundRef::DefaultMoh,
        Some(v) if v.trim().is_empty() => SoundRef::DefaultMoh,
        Some(v) if v.eq_ignore_ascii_case("silence") => SoundRef::Silence,
        Some(v) => SoundRef::from_media_id(v, account),
    }
}

impl Module for Hold {
    fn name(&self) -> &'static str {
        MODULE_NAME
    }

    fn start(&mut self, ctx: &mut dyn CallContext, run: RunInfo<'_>) -> Progress {
        self.dialing = run.leg;
        let peer = run.leg.other();
        let account = ctx.account_id();
        let looped = PlayOptions {
            looped: true,
            mix: false,
        };
        ctx.set_held(peer, true);
        ctx.set_held(self.dialing, true);
        let peer_music = music(self.params.moh_peer.as_deref(), account.as_deref());
        self.peer_music = Some(ctx.play(peer, peer_music, looped));
        let own_music = music(self.params.moh_own.as_deref(), account.as_deref());
        ctx.play(self.dialing, own_music, looped);
        Progress::Pending
    }

    fn on_digit(&mut self, ctx: &mut dyn CallContext, leg: Leg, digit: char) -> Progress {
        if leg != self.dialing || digit != self.params.unhold_key {
            return Progress::Pending;
        }
        for to in [Leg::A, Leg::B] {
            ctx.set_held(to, false);
            ctx.stop_playback(to);
        }
        Progress::Done("success")
    }

    fn on_playback(
        &mut self,
        ctx: &mut dyn CallContext,
        id: PlaybackId,
        end: PlaybackEnd,
    ) -> Progress {
        // The held party's music stopped: by `resume` (the leg is no longer held) the hold is
        // over; by a sound played over it or a `break` the hold goes on, in silence. Music that
        // cannot play leaves the held party in silence too, still on hold.
        let peer = self.dialing.other();
        if Some(id) == self.peer_music && end == PlaybackEnd::Stopped && !ctx.is_held(peer) {
            return Progress::Done("success");
        }
        Progress::Pending
    }
}
