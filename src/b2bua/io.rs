//! The core's only doors: everything that happens to it is one [`Input`] given to
//! [`B2bua::handle`] with the current time, and everything it wants done leaves as an [`Output`]
//! from [`B2bua::poll_output`]. The shell, the tests and the simulation harness drive it the same
//! way, so a behaviour proven at unit speed is the behaviour the process runs.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::audio::{Clip, SoundRef};
use crate::base::{CallEvent, CallKey, Leg, PlaybackEnd, PlaybackId};
use crate::media::SharedTap;
use crate::modules::record::{RecordingInfo, StopReason};
use crate::sip::transport::Peer;

use super::B2bua;
use super::codes::DigitSource;

/// Something that happened to the core.
#[derive(Debug)]
pub enum Input<'a> {
    /// A SIP message arrived (a UDP datagram, or one framed message from a TCP connection).
    Datagram {
        /// Who sent it, and over which transport.
        from: Peer,
        /// The raw message.
        data: &'a [u8],
    },
    /// Time passed: run every timer due (asked for by [`B2bua::poll_timeout`]).
    Timeout,
    /// The network refused a message sent to `to`: ICMP port or host unreachable for UDP
    /// (nobody listens there), or a TCP flow that closed and may not be dialled back. The
    /// client transactions towards it that have no response yet fail now, as if their Timer
    /// B/F had fired, instead of waiting 32 s.
    Unreachable {
        /// The destination that refused, with its transport.
        to: Peer,
    },
    /// A key press began on a leg of a call (RFC 4733 from the relay; SIP INFO arrives as a
    /// datagram).
    Digit {
        /// The call.
        call: CallKey,
        /// The leg that pressed it.
        leg: Leg,
        /// The digit.
        digit: char,
    },
    /// A DTMF tone pair was recognised in a leg's audio (in-band).
    InbandDigit {
        /// The call.
        call: CallKey,
        /// The leg that sent it.
        leg: Leg,
        /// The digit.
        digit: char,
    },
    /// An RFC 4733 key press (or an in-band tone) ended (for the event log).
    DigitEnded {
        /// The call.
        call: CallKey,
        /// The leg that pressed it.
        leg: Leg,
        /// The digit.
        digit: char,
        /// How long it was held.
        duration_ms: u32,
    },
    /// No media flowed on the answered call for the media timeout.
    MediaTimeout {
        /// The silent call.
        call: CallKey,
    },
    /// A recording the core asked for ([`Output::StartRecording`]) is ready to receive packets:
    /// the core attaches its tap to the call's relay.
    RecordingReady {
        /// The call.
        call: CallKey,
        /// Where the relay copies the call's packets.
        tap: SharedTap,
    },
    /// A call's recording ended on its own (time limit, write error) or could not start.
    RecordingEnded {
        /// The call.
        call: CallKey,
    },
    /// The sound the core asked for ([`Output::ResolveSound`]) is ready, or could not be made.
    SoundReady {
        /// The call.
        call: CallKey,
        /// The playback it is for.
        id: PlaybackId,
        /// The clip, or why there is none.
        result: Result<Clip, String>,
    },
    /// A sound the relay played ended by itself (played out, or its leg's codec cannot be
    /// encoded).
    PlaybackEnded {
        /// The call.
        call: CallKey,
        /// The playback.
        id: PlaybackId,
        /// How it ended.
        end: PlaybackEnd,
    },
    /// Run a metaflow node on a call as if its code had been dialed (the API's channel action).
    RunNode {
        /// The caller's Call-ID.
        call_id: String,
        /// The node (`{"module": .., "data": .., "children": ..}`).
        node: Value,
    },
    /// Stop taking new calls: INVITEs are answered 503 from now on.
    BeginShutdown,
    /// Hang up every call now.
    TerminateAll,
    /// New settings (SIGHUP): the core takes the ones that can change while it runs and
    /// keeps the rest; calls in progress are not touched. See [`B2bua::reconfigure`].
    Reconfigure(Box<super::CoreConfig>),
}

/// Something the core asks the world to do.
#[derive(Debug, Clone)]
pub enum Output {
    /// Send bytes to a peer.
    Send {
        /// Destination.
        to: Peer,
        /// The serialised SIP message.
        data: Vec<u8>,
        /// Whether the shell may open a new TCP connection to reach `to`. Only the PBX is
        /// dialled: every other TCP peer (a phone, a proxy in front of us) is reached over the
        /// connection it opened, its flow (RFC 5626 §5.3), because the address it connected
        /// from is not one anybody listens on. When that flow is gone the shell answers
        /// [`Input::Unreachable`] instead, and the transactions towards it fail at once.
        /// Ignored for UDP.
        connect: bool,
    },
    /// Something happened to a call: write it to the event log and the live-call view.
    Event {
        /// The caller's Call-ID.
        call_id: String,
        /// What happened.
        event: CallEvent,
    },
    /// Start recording a call; answer with [`Input::RecordingReady`] (or
    /// [`Input::RecordingEnded`] if it cannot start).
    StartRecording {
        /// The call.
        call: CallKey,
        /// What the recording describes.
        info: Box<RecordingInfo>,
        /// When it stops by itself.
        time_limit: Duration,
    },
    /// Produce the clip of a sound a module asked for, off the core; answer with
    /// [`Input::SoundReady`].
    ResolveSound {
        /// The call.
        call: CallKey,
        /// The playback it is for.
        id: PlaybackId,
        /// What to produce.
        sound: SoundRef,
    },
    /// Stop a call's recording and finish its file (the core has already detached the tap).
    StopRecording {
        /// The call.
        call: CallKey,
        /// Why.
        reason: StopReason,
    },
    /// Start (`masked`) or end the PCI masking of `leg` in the call's running recording: what
    /// the leg says from now on is written as silence.
    MaskRecording {
        /// The call.
        call: CallKey,
        /// The masked leg.
        leg: Leg,
        /// Whether masking begins or ends.
        masked: bool,
    },
}

impl B2bua {
    /// Feeds one input at `now`. What the core wants done is then read with
    /// [`B2bua::poll_output`], and the next deadline with [`B2bua::poll_timeout`].
    pub fn handle(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Datagram { from, data } => self.handle_datagram(from, data, now),
            Input::Timeout => self.handle_timers(now),
            Input::Unreachable { to } => self.on_unreachable(to, now),
            Input::Digit { call, leg, digit } => {
                self.on_digit(call, leg, digit, DigitSource::Rtp, now)
            }
            Input::InbandDigit { call, leg, digit } => {
                self.on_digit(call, leg, digit, DigitSource::Inband, now)
            }
            Input::DigitEnded {
                call,
                leg,
                digit,
                duration_ms,
            } => {
                if let Some(call_id) = self.call_id_of(call).map(str::to_string) {
                    let event = CallEvent::DigitEnded {
                        leg,
                        digit,
                        duration_ms,
                    };
                    self.event(&call_id, event);
                }
            }
            Input::MediaTimeout { call } => self.on_media_timeout(call, now),
            Input::RecordingReady { call, tap } => {
                if self.calls.get(&call).is_some_and(|c| c.recording) {
                    self.media.set_tap(call, Some(tap));
                }
            }
            Input::RecordingEnded { call } => self.recording_ended(call),
            Input::SoundReady { call, id, result } => self.sound_ready(call, id, result),
            Input::PlaybackEnded { call, id, end } => self.playback_ended(call, id, end),
            Input::RunNode { call_id, node } => self.run_node_by_api(&call_id, &node, now),
            Input::BeginShutdown => self.shutting_down = true,
            Input::TerminateAll => self.terminate_all(now),
            Input::Reconfigure(cfg) => self.reconfigure(*cfg),
        }
        self.deliver_playback_ends(now);
        self.publish_sizes();
    }

    /// The next thing the core wants done, in the order it decided them.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.actions.pop_front()
    }
}
