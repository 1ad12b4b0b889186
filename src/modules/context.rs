//! The narrow door between a running module and the call it runs on. The call core implements
//! [`CallContext`]; a module implements [`Module`] and reaches the call only through the context,
//! so modules never see the core's dialogs, transactions or tables, and the core never knows what
//! a module does with them.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::audio::SoundRef;
use crate::base::{CallEvent, Gain, Leg, PlaybackEnd, PlaybackId};
use crate::sip::{Method, SipMessage};

use super::record::{LegCodecs, RecordingInfo, StopReason};

/// What the call core offers a module acting on one call.
pub trait CallContext {
    /// The caller's Call-ID, for logs.
    fn call_id(&self) -> &str;
    /// The current time of the core's clock.
    fn now(&self) -> Instant;
    /// Whether both dialogs are confirmed (answered and acknowledged) and no teardown started.
    fn is_confirmed(&self) -> bool;
    /// Whether the call is being torn down (a BYE or CANCEL is under way).
    fn is_ending(&self) -> bool;
    /// The URI of the party on `leg` (From of the caller, To of the callee), without tag.
    fn remote_uri(&self, leg: Leg) -> String;
    /// The account the call belongs to, when one was resolved (recordings are filed under it).
    fn account_id(&self) -> Option<String>;
    /// The PBX's host as configured, with its port unless it is SIP's default, for URIs the
    /// module builds (e.g. a transfer target): `pbx.example.com`, `127.0.0.10:21070`.
    fn upstream_host(&self) -> String;
    /// Whether another, unfinished instance of the module named `module` runs on this call.
    fn is_running(&self, module: &str) -> bool;
    /// Sends a request of the module's own inside the dialog of `leg`, with extra headers; its
    /// responses (or a 408 on timeout) come back through [`Module::on_response`].
    fn send_in_dialog(&mut self, leg: Leg, method: Method, headers: Vec<(&'static str, String)>);
    /// Hangs up `leg` with a BYE of the proxy's own; `reason` goes to the log.
    fn hang_up(&mut self, leg: Leg, reason: &str);
    /// Whether a media fork (recording) of the call is running.
    fn is_forked(&self) -> bool;
    /// The codecs each leg's SDP declared, for a fork that decodes audio.
    fn codecs(&self) -> LegCodecs;
    /// Starts a media fork: every packet of the call is copied to a recorder described by
    /// `info`, which stops by itself after `time_limit`.
    fn start_fork(&mut self, info: RecordingInfo, time_limit: Duration);
    /// Stops the call's media fork and finishes its file.
    fn stop_fork(&mut self, reason: StopReason);
    /// Writes an event of the call to the event log and the live-call view.
    fn emit(&mut self, event: CallEvent);
    /// Asks for [`Module::on_timer`] at `at` (a later call replaces an earlier deadline).
    fn set_timer(&mut self, at: Instant);
    /// Plays `sound` towards `to`, replacing what played there (whose module hears
    /// `Stopped`); its end comes back through [`Module::on_playback`] with the id returned.
    fn play(&mut self, to: Leg, sound: SoundRef, options: PlayOptions) -> PlaybackId;
    /// Stops every sound towards `to` (`break`); their modules hear `Stopped`.
    fn stop_playback(&mut self, to: Leg);
    /// Forwards nothing of the other leg's audio towards `to` (hold), or forwards it again.
    fn set_held(&mut self, to: Leg, held: bool);
    /// Whether the audio towards `to` is held.
    fn is_held(&self, to: Leg) -> bool;
    /// Changes the volume of the audio towards `to`.
    fn set_gain(&mut self, to: Leg, gain: Gain);
    /// Like [`CallContext::start_fork`], but on a call not answered yet the fork starts when it
    /// is answered (`record_on_answer`); [`CallContext::is_forked`] is true meanwhile, and
    /// [`CallContext::stop_fork`] cancels it. Returns whether it started now.
    fn start_fork_on_answer(&mut self, info: RecordingInfo, time_limit: Duration) -> bool;
    /// Starts (`masked`) or ends the PCI masking of `leg` in the running fork: what the leg
    /// says is written as silence. Returns whether a fork is running (without one, nothing is
    /// masked).
    fn mask_fork(&mut self, leg: Leg, masked: bool) -> bool;
    /// Places a call of the proxy's own to every destination of `to` at once (a SIP URI at
    /// the PBX, from [`CallContext::upstream_host`], or a device) to take `slot`'s place: it
    /// offers the other party's SDP on the sockets `slot` used; the first to answer wins (the
    /// others are cancelled), `slot` gets a BYE and the new call becomes that leg (no re-INVITE
    /// of the other party). The outcome comes back once through [`Module::on_originated`]: the
    /// 2xx, or when every destination failed the most telling failure (a busy before a
    /// cancellation). Err says why no call was placed.
    fn originate(
        &mut self,
        slot: Leg,
        to: &[Destination<'_>],
        options: PlaceOptions,
    ) -> Result<(), String>;
    /// The first number of the account's callflow document `id`, if it exists.
    fn callflow_number(&self, id: &str) -> Option<String>;
    /// The SIP username of the account's device `device_id`, if it exists and has one.
    fn device_sip_user(&self, device_id: &str) -> Option<String>;
    /// The SIP usernames of the account's devices owned by user `owner_id`, in id order.
    fn owner_sip_users(&self, owner_id: &str) -> Vec<String>;
    /// Gives up the call being placed (CANCEL); the module still hears its final response.
    fn cancel_origination(&mut self);
    /// Places a call to `to` that first talks with `talker` while the other party is parked
    /// (it hears only what the module plays to it): an attended transfer's consultation. The
    /// final response comes back through [`Module::on_originated`]; on a 2xx the new party
    /// talks with `talker`, unless a party hung up while it rang ([`Module::on_leg_left`]):
    /// then it already took that party's place. Err says why no call was placed.
    fn consult(
        &mut self,
        talker: Leg,
        to: Destination<'_>,
        options: PlaceOptions,
    ) -> Result<(), String>;
    /// Ends the consultation without its party: a call still ringing is cancelled (the final
    /// response still comes), an answered one hung up; the two legs hear each other again.
    fn end_consult(&mut self);
    /// The consulted party takes `leg`'s place: `leg`'s party gets a BYE unless it hung up
    /// already, and the call goes on with the consulted party in that leg. False when no
    /// consultation is answered.
    fn complete_consult(&mut self, leg: Leg) -> bool;
}

/// Where a call the proxy places goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination<'a> {
    /// A SIP URI at the PBX (`sip:2000@pbx.example.com`).
    Pbx(&'a str),
    /// A device by its SIP username: straight to it over its own flow when it registered through
    /// the proxy, else to the URI `fallback` at the PBX.
    Device {
        /// The device's SIP username (the user part of its AOR).
        sip_user: &'a str,
        /// Where to call it through the PBX when it is not registered through the proxy.
        fallback: &'a str,
    },
}

/// How a call the proxy places is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaceOptions {
    /// Why the leaving party is hung up (its BYE's Reason text).
    pub reason: &'static str,
    /// Ask the phone to answer by itself (`Call-Info: ;answer-after=0`, `Alert-Info:
    /// info=alert-autoanswer`).
    pub auto_answer: bool,
}

/// How a module wants a sound played.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlayOptions {
    /// Start again at the end (music on hold) until stopped.
    pub looped: bool,
    /// Mix over what the other leg says instead of replacing it.
    pub mix: bool,
}

/// Where a module stands after an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Still at work: more inputs will come (responses, requests, digits, a timer).
    Pending,
    /// Finished with `outcome`; the node's child for that outcome runs next.
    Done(&'static str),
    /// Finished with `outcome`, and the module already hung up the legs it had to: the call is
    /// over once the child for that outcome has run.
    DoneCallOver(&'static str),
    /// Nothing may follow: the outcome `success` is logged and the core ends the call, sending
    /// BYE on both legs, with `reason` in the log.
    EndCall {
        /// Why, for the log.
        reason: &'static str,
    },
}

/// What a module is started with: the dialing leg and the node's data with the code's additions
/// (`captures`, `collected`, `dtmf_leg`, `dtmf_party`).
#[derive(Debug, Clone, Copy)]
pub struct RunInfo<'a> {
    /// The leg that dialed the code; modules act relative to it.
    pub leg: Leg,
    /// The node's `data` plus the code's additions.
    pub data: &'a Map<String, Value>,
}

impl RunInfo<'_> {
    /// A string member of the data, `""` when absent.
    pub fn text(&self, key: &str) -> &str {
        self.data
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The pattern's capture groups (`[]` for `numbers` codes).
    pub fn captures(&self) -> Vec<String> {
        self.data
            .get("captures")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One module running on one call. Every method returns at once: a module is a state machine
/// fed by the core, never a task.
pub trait Module: Send + std::fmt::Debug {
    /// The module's name in metaflow nodes.
    fn name(&self) -> &'static str;
    /// Starts on the call.
    fn start(&mut self, ctx: &mut dyn CallContext, run: RunInfo<'_>) -> Progress;
    /// A response to the module's request (or 408 when it timed out).
    fn on_response(&mut self, ctx: &mut dyn CallContext, status: u16) -> Progress {
        let _ = (ctx, status);
        Progress::Pending
    }
    /// Whether an in-dialog request from `leg` belongs to this module (e.g. a NOTIFY of its
    /// REFER): then the core answers it 200, never relays it, and hands it to
    /// [`Module::on_request`]. Asked even after the module finished, so late requests are
    /// absorbed.
    fn claims(&self, leg: Leg, request: &SipMessage) -> bool {
        let _ = (leg, request);
        false
    }
    /// A request the module claimed.
    fn on_request(
        &mut self,
        ctx: &mut dyn CallContext,
        leg: Leg,
        request: &SipMessage,
    ) -> Progress {
        let _ = (ctx, leg, request);
        Progress::Pending
    }
    /// A key press on `leg` while the module runs.
    fn on_digit(&mut self, ctx: &mut dyn CallContext, leg: Leg, digit: char) -> Progress {
        let _ = (ctx, leg, digit);
        Progress::Pending
    }
    /// A sound the module asked for ended (played out, stopped by anyone, or failed).
    fn on_playback(
        &mut self,
        ctx: &mut dyn CallContext,
        id: PlaybackId,
        end: PlaybackEnd,
    ) -> Progress {
        let _ = (ctx, id, end);
        Progress::Pending
    }
    /// The final response to the call placed with [`CallContext::originate`] (408 when none
    /// came): on a 2xx the new call already stands in the leg's place.
    fn on_originated(&mut self, ctx: &mut dyn CallContext, status: u16) -> Progress {
        let _ = (ctx, status);
        Progress::Pending
    }
    /// The party of `leg` hung up while the call placed to take its place rings (the other
    /// party now waits for that call alone), or during a consultation (the call waits for the
    /// module to complete or end it).
    fn on_leg_left(&mut self, ctx: &mut dyn CallContext, leg: Leg) -> Progress {
        let _ = (ctx, leg);
        Progress::Pending
    }
    /// The party a call the proxy places rings sent early media (a 183 with SDP) and someone
    /// hears it: a consultation's talker, or the party that stays once the leaving party is
    /// gone; unless the module plays something over it.
    fn on_early_media(&mut self, ctx: &mut dyn CallContext) -> Progress {
        let _ = ctx;
        Progress::Pending
    }
    /// The consulted party hung up after answering: the two legs hear each other again.
    fn on_consult_left(&mut self, ctx: &mut dyn CallContext) -> Progress {
        let _ = ctx;
        Progress::Pending
    }
    /// The deadline the module set with [`CallContext::set_timer`] passed.
    fn on_timer(&mut self, ctx: &mut dyn CallContext) -> Progress {
        let _ = ctx;
        Progress::Pending
    }
}
