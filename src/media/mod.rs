//! RTP/RTCP anchoring: the proxy's own UDP ports stand between the two legs of each call.
//!
//! For every SDP media stream the engine binds two RTP/RTCP port pairs, one advertised to each
//! leg, and a relay worker thread moves packets between them with symmetric latching (the SDP address
//! first, a NATed source only after a learning window: `latch`),
//! hands every RTP packet to an optional inspector (telephone-event decoding), counts traffic
//! and reports calls whose media went silent. The synchronous SIP core drives it through
//! [`MediaControl`].

mod activity;
pub mod config;
pub mod engine;
pub mod fastpath;
pub mod inspect;
pub mod latch;
pub mod playout;
pub mod ports;
mod prefetch;
mod relay;
mod sockets;
pub mod stats;
mod tap;

use std::net::SocketAddr;

use crate::base::Leg;
pub use crate::sdp::Direction as SdpDirection;

pub use config::{MediaConfig, MediaError};
pub use engine::MediaEngine;
pub use inspect::{
    Injection, InspectorConfig, InspectorEvent, InspectorFactory, PacketInspector, Verdict,
};
pub use latch::{LatchMode, LatchPolicy, SourceMatch};
pub use ports::PortPair;
pub use sockets::register_readable;
pub use stats::{MediaStats, PacketKind};
pub use tap::{PacketTap, SharedTap};

/// Identifies a call towards the media engine; chosen by the SIP core.
pub type CallKey = u64;

/// The proxy ports of one media stream, as written into the rewritten SDP of each leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamPorts {
    /// Advertised to the a-leg: it sends its media here and receives the b-leg's from here.
    pub a: PortPair,
    /// Advertised to the b-leg: it sends its media here and receives the a-leg's from here.
    pub b: PortPair,
}

/// Something the media plane tells the application without being asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaEvent {
    /// No RTP or RTCP arrived on any stream of the confirmed call for the configured media
    /// timeout (the on-hold one while every stream is on hold).
    Timeout {
        /// The silent call.
        call: CallKey,
    },
    /// A sound played towards `to` ended by itself (played out, or could not play).
    Playback {
        /// The call.
        call: CallKey,
        /// The leg it played to.
        to: Leg,
        /// The playback, as the core named it.
        id: crate::base::PlaybackId,
        /// How it ended.
        end: crate::base::PlaybackEnd,
    },
    /// The packet inspector of a stream noticed something (e.g. a DTMF digit).
    Inspector {
        /// The call of the stream.
        call: CallKey,
        /// The stream's m= line index.
        stream: usize,
        /// What was noticed.
        event: InspectorEvent,
    },
}

/// The media operations the synchronous SIP core needs; implemented by [`MediaEngine`] and by
/// test doubles. Every method returns at once (it never waits for a relay worker).
pub trait MediaControl {
    /// Binds the ports of stream `index` of `call` (or returns those already bound for it).
    fn allocate_stream(&mut self, call: CallKey, index: usize) -> Result<StreamPorts, MediaError>;
    /// Sets where media towards `leg` goes, from that leg's SDP, until the leg's own packets
    /// latch its real source, and which sources may latch (see [`latch`]); a different address
    /// later (re-INVITE) re-points, un-latches and starts learning again.
    fn set_remote(
        &mut self,
        call: CallKey,
        index: usize,
        leg: Leg,
        rtp: SocketAddr,
        rtcp: SocketAddr,
    );
    /// Another party takes `leg` of every stream of `call` (a call the proxy placed): the source
    /// latched so far is refused from now on; the new party's address follows with
    /// [`MediaControl::set_remote`].
    fn leg_replaced(&mut self, call: CallKey, leg: Leg);
    /// Passes the inspector its settings for packets sent by `from`.
    fn configure_inspector(&mut self, call: CallKey, index: usize, from: Leg, cfg: InspectorConfig);
    /// Suppression mode: the code `leg` dialed matched. Every stream of `call` forgets the
    /// telephone-events it withheld from `leg` since the binding digit and stops withholding.
    fn discard_held(&mut self, call: CallKey, leg: Leg);
    /// Suppression mode: what `leg` dialed was not a code. Every stream of `call` stops
    /// withholding `leg`'s telephone-events, and each stream that carries telephone-events
    /// delivers `digits` (binding digit first) to the other leg as RFC 4733 events of `leg`'s
    /// stream.
    fn release_held(&mut self, call: CallKey, leg: Leg, digits: &str);
    /// Tells stream `index` of `call` the direction `leg`'s latest SDP declared for it (with
    /// `c=0.0.0.0` hold already folded in: see `b2bua::anchor`). While every stream has a leg
    /// that is not `sendrecv` the call is on hold and the on-hold timeout replaces the normal
    /// one; each change of hold state restarts the silence count.
    fn set_direction(&mut self, call: CallKey, index: usize, leg: Leg, direction: SdpDirection);
    /// Starts the media timeout of `call`, once the call is confirmed (the caller's ACK for
    /// the 2xx): before that, a slow ACK or a caller that never sends one must not be mistaken
    /// for dead media.
    fn arm_timeout(&mut self, call: CallKey);
    /// Copies every packet of the call's streams (both legs, RTP and RTCP) to `tap`, or stops
    /// copying (`None`). The copy leaves the relay through the tap's bounded queue.
    fn set_tap(&mut self, call: CallKey, tap: Option<SharedTap>);
    /// Names the call's first audio stream: sounds, hold and volume act on it (video or a fax
    /// stream may come first in the SDP).
    fn set_audio_stream(&mut self, call: CallKey, index: usize);
    /// Plays a sound towards `to` on the call's audio stream, replacing what played there; its
    /// end comes back as [`MediaEvent::Playback`] unless it is stopped first. Returns false when
    /// no relay can take it (the call has no media, or its relay stopped): no end will come.
    fn play(&mut self, call: CallKey, to: Leg, playback: playout::Playback) -> bool;
    /// Stops what plays towards `to` (only playback `id` when given); no event follows.
    fn stop_playback(&mut self, call: CallKey, to: Leg, id: Option<crate::base::PlaybackId>);
    /// Forwards nothing of the other leg's media towards `to` (hold), or forwards it again.
    fn set_hold(&mut self, call: CallKey, to: Leg, held: bool);
    /// Changes the volume of the audio towards `to` (G.711 payload types from `map`).
    fn set_gain(&mut self, call: CallKey, to: Leg, gain: crate::base::Gain, map: playout::G711Map);
    /// Starts an attended transfer's consultation on the call's audio stream: binds a port pair
    /// for a third party and returns it (to offer it in the SDP of the call placed to that
    /// party). From now on `talker` and the third party hear each other and the other leg is
    /// parked: it hears only what is played to it and nobody hears it.
    fn open_consult(&mut self, call: CallKey, talker: Leg) -> Result<PortPair, MediaError>;
    /// Where the consulted party receives RTP and RTCP (from its SDP).
    fn set_consult_remote(&mut self, call: CallKey, rtp: SocketAddr, rtcp: SocketAddr);
    /// Ends the consultation without the third party (it hung up, failed or was given up): its
    /// ports close and the two legs hear each other again.
    fn close_consult(&mut self, call: CallKey);
    /// The consulted party takes `leg`'s place (the transfer completes): the consultation's
    /// ports become that leg's, the leg's own close, and the stream has two parties again.
    fn consult_takes(&mut self, call: CallKey, leg: Leg);
    /// Stops the call's streams' relays, closes their sockets and returns the ports to the pool.
    fn release_call(&mut self, call: CallKey);
    /// UDP ports currently held (four per stream: RTP and RTCP for each leg; two more while an
    /// attended transfer consults).
    fn ports_in_use(&self) -> usize;
}
