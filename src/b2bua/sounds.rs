//! Sounds, hold and volume on a call, on behalf of its modules. A module asks for a sound by
//! reference; the shell produces the clip off the core ([`Output::ResolveSound`]) and hands it
//! back ([`Input::SoundReady`]); the core then has the relay play it in the receiving leg's
//! codec. Every end (played out, stopped, failed) goes back to the module that asked, after the
//! input that caused it is handled, so a module stopping another's sound never runs inside it.

use std::time::Instant;

use crate::audio::{Clip, SoundRef};
use crate::base::{CallEvent, CallKey, Gain, Leg, PlaybackEnd, PlaybackId};
use crate::media::playout::{G711Map, PlayFormat, Playback};
use crate::modules::PlayOptions;
use crate::modules::record::Codec;

use super::B2bua;
use super::host::ModuleId;
use super::io::Output;

/// The packet time a leg is spoken to in before any of its audio was relayed.
const DEFAULT_PTIME_MS: u32 = 20;

/// A sound a module asked for on a call, from the request until it ends.
#[derive(Debug)]
pub(super) struct ActivePlayback {
    /// Its name towards the relay.
    id: PlaybackId,
    /// The module that asked, which hears of its end.
    module: ModuleId,
    /// The leg that hears it.
    to: Leg,
    /// What plays, for events.
    sound: SoundRef,
    /// Start again at the end.
    looped: bool,
    /// Over the relayed audio rather than instead of it.
    mix: bool,
}

impl B2bua {
    /// Asks for `sound` towards `to` on behalf of `module`; what played towards `to` stops.
    pub(super) fn start_playback(
        &mut self,
        key: CallKey,
        module: ModuleId,
        to: Leg,
        sound: SoundRef,
        options: PlayOptions,
    ) -> PlaybackId {
        self.stop_playbacks(key, to);
        let id = self.next_playback_id;
        self.next_playback_id += 1;
        let Some(call) = self.calls.get_mut(&key) else {
            self.playback_ends.push_back((
                key,
                module,
                id,
                PlaybackEnd::Failed("the call is gone"),
            ));
            return id;
        };
        let playback = ActivePlayback {
            id,
            module,
            to,
            sound: sound.clone(),
            looped: options.looped,
            mix: options.mix,
        };
        // An account's uploads are its own: a metaflow plays its account's media and system
        // media, never another account's (`/OTHER/ID`).
        if let SoundRef::Media {
            account: Some(owner),
            ..
        } = &sound
            && call.account_id.as_deref() != Some(owner.as_str())
        {
            let refused = PlaybackEnd::Failed("the media belongs to another account");
            self.playback_over(key, playback, refused);
            return id;
        }
        call.playbacks.push(playback);
        self.actions.push_back(Output::ResolveSound {
            call: key,
            id,
            sound,
        });
        id
    }

    /// Stops every sound towards `to`; their modules hear `Stopped`.
    pub(super) fn stop_playbacks(&mut self, key: CallKey, to: Leg) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let (stopped, kept): (Vec<_>, Vec<_>) = call.playbacks.drain(..).partition(|p| p.to == to);
        call.playbacks = kept;
        if stopped.is_empty() {
            return;
        }
        self.media.stop_playback(key, to, None);
        for playback in stopped {
            self.playback_over(key, playback, PlaybackEnd::Stopped);
        }
    }

    /// Holds (or releases) the audio towards `to`.
    pub(super) fn hold_towards(&mut self, key: CallKey, to: Leg, held: bool) {
        if let Some(call) = self.calls.get_mut(&key) {
            match to {
                Leg::A => call.held[0] = held,
                Leg::B => call.held[1] = held,
            }
        }
        self.media.set_hold(key, to, held);
        let action = if held { "hold" } else { "unhold" };
        self.media_control_event(key, to, action, None);
    }

    /// Changes the volume of the audio towards `to`.
    pub(super) fn gain_towards(&mut self, key: CallKey, to: Leg, gain: Gain) {
        let map = self.g711_map(key);
        self.media.set_gain(key, to, gain, map);
        let (action, factor) = match gain {
            Gain::Unity => ("gain", Some(1.0)),
            Gain::Factor(f) => ("gain", Some(f)),
            Gain::Mute => ("mute", None),
        };
        self.media_control_event(key, to, action, factor);
    }

    /// The shell produced the clip of playback `id` (or could not).
    pub(super) fn sound_ready(
        &mut self,
        key: CallKey,
        id: PlaybackId,
        result: Result<Clip, String>,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        // A playback stopped while its sound was being made is no longer listed.
        let Some(at) = call.playbacks.iter().position(|p| p.id == id) else {
            return;
        };
        let clip = match result {
            Ok(clip) => clip,
            Err(error) => {
                let playback = call.playbacks.remove(at);
                self.playback_event(key, &playback, "failed", Some(error));
                self.playback_ends.push_back((
                    key,
                    playback.module,
                    id,
                    PlaybackEnd::Failed("the sound could not be produced"),
                ));
                return;
            }
        };
        let Some(playback) = call.playbacks.get(at) else {
            return;
        };
        let (to, looped, mix) = (playback.to, playback.looped, playback.mix);
        let format = self.play_format(key, to);
        let request = Playback {
            id,
            clip,
            looped,
            mix,
            format,
        };
        if !self.media.play(key, to, request) {
            // No relay will report an end: the module hears it now.
            if let Some(call) = self.calls.get_mut(&key)
                && let Some(at) = call.playbacks.iter().position(|p| p.id == id)
            {
                let playback = call.playbacks.remove(at);
                self.playback_over(key, playback, PlaybackEnd::Failed("the call has no media"));
            }
            return;
        }
        if let Some(playback) = self
            .calls
            .get(&key)
            .and_then(|c| c.playbacks.iter().find(|p| p.id == id))
        {
            let event = playback_call_event(playback, "started", None);
            self.emit_event(key, event);
        }
    }

    /// The relay reports that playback `id` ended by itself.
    pub(super) fn playback_ended(&mut self, key: CallKey, id: PlaybackId, end: PlaybackEnd) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(at) = call.playbacks.iter().position(|p| p.id == id) else {
            return;
        };
        let playback = call.playbacks.remove(at);
        self.playback_over(key, playback, end);
    }

    /// Tells the modules of the ends queued while the last input was handled.
    pub(super) fn deliver_playback_ends(&mut self, now: Instant) {
        while let Some((key, module, id, end)) = self.playback_ends.pop_front() {
            self.module_playback(key, module, id, end, now);
        }
    }

    fn playback_over(&mut self, key: CallKey, playback: ActivePlayback, end: PlaybackEnd) {
        let reason = match end {
            PlaybackEnd::Failed(reason) => Some(reason.to_string()),
            _ => None,
        };
        self.playback_event(key, &playback, end.as_str(), reason);
        self.playback_ends
            .push_back((key, playback.module, playback.id, end));
    }

    fn playback_event(
        &mut self,
        key: CallKey,
        playback: &ActivePlayback,
        state: &'static str,
        reason: Option<String>,
    ) {
        let event = playback_call_event(playback, state, reason);
        self.emit_event(key, event);
    }

    fn media_control_event(
        &mut self,
        key: CallKey,
        leg: Leg,
        action: &'static str,
        factor: Option<f32>,
    ) {
        let event = CallEvent::MediaControl {
            leg,
            action,
            factor,
        };
        self.emit_event(key, event);
    }

    fn emit_event(&mut self, key: CallKey, event: CallEvent) {
        if let Some(call_id) = self.call_id_of(key).map(str::to_string) {
            self.event(&call_id, event);
        }
    }

    /// The G.711 payload types of the call, from both legs' SDP.
    fn g711_map(&self, key: CallKey) -> G711Map {
        self.calls
            .get(&key)
            .map(|call| super::anchor::g711_map(&call.sdp_state.codecs))
            .unwrap_or_default()
    }

    /// How to speak to `to` before any of its audio was relayed: its first G.711 codec, at the
    /// packet time its SDP asks for.
    fn play_format(&self, key: CallKey, to: Leg) -> PlayFormat {
        let ptime_ms = self
            .calls
            .get(&key)
            .and_then(|call| match to {
                Leg::A => call.sdp_state.ptime_ms[0],
                Leg::B => call.sdp_state.ptime_ms[1],
            })
            .unwrap_or(DEFAULT_PTIME_MS);
        let preferred = self.calls.get(&key).and_then(|call| {
            let codecs = &call.sdp_state.codecs;
            let list = match to {
                Leg::A => &codecs.a,
                Leg::B => &codecs.b,
            };
            list.iter()
                .find(|(_, c)| matches!(c, Codec::Pcmu | Codec::Pcma))
                .map(|(pt, _)| *pt)
        });
        PlayFormat {
            map: self.g711_map(key),
            preferred,
            ptime_ms,
        }
    }
}

fn playback_call_event(
    playback: &ActivePlayback,
    state: &'static str,
    reason: Option<String>,
) -> CallEvent {
    CallEvent::Playback {
        leg: playback.to,
        source: playback.sound.kind(),
        sound: playback.sound.describe(),
        state,
        reason,
    }
}
