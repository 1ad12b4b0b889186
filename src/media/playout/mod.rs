//! What the relay does to the media towards one leg besides forwarding it: play a sound into it
//! (replacing or mixed over what the other leg says), hold it (forward nothing), change its
//! volume, and keep it one RTP stream throughout ([`continuity`]).
//!
//! Sans-IO like the inspector: the stream's relay hands it every RTP packet it is about to forward
//! towards the leg, asks it when its next own packet is due, and has it write that packet into a
//! buffer. Nothing here allocates per packet; a direction that plays nothing, is not held and
//! keeps its volume only notes the packet's header.

pub(crate) mod continuity;
mod player;
#[cfg(test)]
mod tests;

use crate::audio::Clip;
use crate::audio::g711::Law;
use crate::base::{Gain, PlaybackEnd, PlaybackId};
use crate::rtp::RtpView;

use continuity::Continuity;
use player::Player;

use super::inspect::Verdict;

/// RTP header the proxy writes on its own packets (no CSRC, no extension).
const HEADER_LEN: usize = 12;
/// Microseconds per sample at 8 kHz.
const US_PER_SAMPLE: u64 = 125;
/// A player this late on its schedule (the task was starved) skips ahead instead of bursting.
const MAX_LATE_US: u64 = 100_000;
/// Largest payload the proxy writes (60 ms of G.711).
pub const MAX_PAYLOAD: usize = 480;
/// Buffer the relay passes to [`Outbound::poll_packet`].
pub const PACKET_BUFFER_LEN: usize = HEADER_LEN + MAX_PAYLOAD;

/// Which payload types carry G.711 on a stream, from both legs' SDP (static 0 and 8 unless the
/// SDP mapped them otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct G711Map {
    /// Payload type of PCMU.
    pub pcmu: Option<u8>,
    /// Payload type of PCMA.
    pub pcma: Option<u8>,
}

impl Default for G711Map {
    fn default() -> Self {
        Self {
            pcmu: Some(0),
            pcma: Some(8),
        }
    }
}

impl G711Map {
    /// The law of payload type `pt`, if it is G.711.
    pub fn law(&self, pt: u8) -> Option<Law> {
        if self.pcmu == Some(pt) {
            Some(Law::Mu)
        } else if self.pcma == Some(pt) {
            Some(Law::A)
        } else {
            None
        }
    }
}

/// How to speak to a leg before any of its audio was relayed (afterwards the relayed payload
/// type and packet size are followed): from the leg's SDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlayFormat {
    /// The G.711 payload types of the stream.
    pub map: G711Map,
    /// The first G.711 payload type the leg accepts, if any.
    pub preferred: Option<u8>,
    /// The leg's `a=ptime`, else 20.
    pub ptime_ms: u32,
}

/// A sound to play towards a leg.
#[derive(Clone, Debug)]
pub struct Playback {
    /// Reported when it ends.
    pub id: PlaybackId,
    /// What to play.
    pub clip: Clip,
    /// Start again at the end instead of ending (music on hold).
    pub looped: bool,
    /// Mix over the relayed audio instead of replacing it.
    pub mix: bool,
    /// How to encode it.
    pub format: PlayFormat,
}

/// The G.711 code-to-code maps of a volume change: scaling a companded sample is a lookup.
#[derive(Debug)]
struct GainTables {
    alaw: [u8; 256],
    ulaw: [u8; 256],
}

impl GainTables {
    fn new(gain: Gain) -> Option<Self> {
        let map = |law: Law| {
            let mut table = [0u8; 256];
            for (code, slot) in (0u8..=255).zip(table.iter_mut()) {
                *slot = match gain {
                    Gain::Unity => code,
                    Gain::Mute => law.silence(),
                    Gain::Factor(f) => {
                        let scaled = f32::from(law.decode(code)) * f;
                        law.encode(scaled.clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16)
                    }
                };
            }
            table
        };
        (gain != Gain::Unity).then(|| Self {
            alaw: map(Law::A),
            ulaw: map(Law::Mu),
        })
    }

    fn apply(&self, law: Law, payload: &mut [u8]) {
        let table = match law {
            Law::A => &self.alaw,
            Law::Mu => &self.ulaw,
        };
        for byte in payload {
            *byte = table[usize::from(*byte)];
        }
    }
}

/// The media towards one leg of one stream.
#[derive(Debug)]
pub struct Outbound {
    continuity: Continuity,
    map: G711Map,
    /// Payload type and samples per packet of the last relayed G.711 packet.
    learnt: Option<(u8, usize)>,
    /// Used when nothing was learnt.
    fallback: Option<PlayFormat>,
    player: Option<Player>,
    /// Forward nothing relayed towards the leg.
    held: bool,
    /// `None` at unity gain.
    gain: Option<Box<GainTables>>,
    /// Engine clock of the last relayed audio packet (a mixing player fills gaps after it).
    last_relayed_us: u64,
    /// Playbacks that ended by themselves, for the relay to report (kept until the report is
    /// taken: a full event queue must not lose the end a module waits for).
    ended: [Option<(PlaybackId, PlaybackEnd)>; ENDED_SLOTS],
}

/// Ends kept for the relay at most (a fifth, while four wait, replaces the oldest).
const ENDED_SLOTS: usize = 4;

impl Outbound {
    /// `random` seeds the stream the proxy would start if it spoke first.
    pub fn new(random: u64) -> Self {
        Self {
            continuity: Continuity::new(random),
            map: G711Map::default(),
            learnt: None,
            fallback: None,
            player: None,
            held: false,
            gain: None,
            last_relayed_us: 0,
            ended: [None; ENDED_SLOTS],
        }
    }

    /// Starts `playback` at `now_us`, replacing what played; returns the replaced one's id.
    pub fn play(&mut self, playback: Playback, now_us: u64) -> Option<PlaybackId> {
        self.map = playback.format.map;
        self.fallback = Some(playback.format);
        let looped = playback.looped || playback.clip.is_endless();
        let player = Player::new(playback.id, playback.clip, looped, playback.mix, now_us);
        self.player.replace(player).map(|p| p.id)
    }

    /// Stops what plays (only playback `id` when given); returns the stopped one's id.
    pub fn stop(&mut self, id: Option<PlaybackId>) -> Option<PlaybackId> {
        match (&self.player, id) {
            (Some(p), Some(id)) if p.id != id => None,
            _ => self.player.take().map(|p| p.id),
        }
    }

    /// Holds (forwards nothing relayed) or releases the direction.
    pub fn set_held(&mut self, held: bool) {
        self.held = held;
    }

    /// Changes the volume of everything sent towards the leg.
    pub fn set_gain(&mut self, gain: Gain, map: G711Map) {
        self.map = map;
        self.gain = GainTables::new(gain).map(Box::new);
    }

    /// Whether the kernel may forward relayed packets towards the leg, and with which rewrite:
    /// no sound plays, the leg is not held, its volume is unchanged, and the stream's numbering
    /// is settled (`Some(None)`: packets leave as they came; `Some(Some(shift))`: they continue
    /// the stream a sound played, see [`continuity::StreamShift`]).
    pub(crate) fn kernel_shift(&self) -> Option<Option<continuity::StreamShift>> {
        if self.player.is_some() || self.held || self.gain.is_some() {
            return None;
        }
        self.continuity.kernel_shift()
    }

    /// Relayed packets went towards the leg by the kernel path; the last one had `header`
    /// (SSRC, sequence number, timestamp) and went at `at_us`: what the proxy plays next
    /// continues it.
    pub fn relayed_elsewhere(&mut self, header: (u32, u16, u32), at_us: u64) {
        self.last_relayed_us = self.last_relayed_us.max(at_us);
        self.continuity.relayed_elsewhere(header, at_us);
    }

    /// A relayed RTP packet about to go towards the leg: dropped when held or replaced by a
    /// sound, mixed or volume-changed in place, renumbered to continue the stream.
    pub fn on_relayed(&mut self, packet: &mut [u8], now_us: u64) -> Verdict {
        let view = RtpView::parse(packet).ok();
        if view.is_some() {
            // Any RTP (audio, telephone-events, comfort noise) means the sender is talking: a
            // mixing sound does not fill gaps between its packets.
            self.last_relayed_us = now_us;
        }
        let audio = view.and_then(|view| {
            let law = self.map.law(view.payload_type())?;
            let start = view.header_len();
            Some((
                law,
                view.payload_type(),
                start,
                start + view.payload().len(),
            ))
        });
        if let Some((_, pt, start, end)) = audio {
            self.learnt = Some((pt, end - start));
        }
        if self.held || self.player.as_ref().is_some_and(|p| !p.mix) {
            return Verdict::Drop;
        }
        if let Some((law, _, start, end)) = audio
            && let Some(payload) = packet.get_mut(start..end)
        {
            if let Some(player) = self.player.as_mut()
                && player.mix_into(law, payload)
            {
                self.finish(PlaybackEnd::Finished);
            }
            if let Some(gain) = &self.gain {
                gain.apply(law, payload);
            }
        }
        self.continuity.relayed(packet, now_us);
        Verdict::Forward
    }

    /// A packet the relay synthesized itself towards the leg (a released DTMF digit): dropped
    /// like relayed audio while the leg is held or hears a sound instead, else renumbered.
    pub fn on_injected(&mut self, packet: &mut [u8], now_us: u64) -> Verdict {
        if self.held || self.player.as_ref().is_some_and(|p| !p.mix) {
            return Verdict::Drop;
        }
        self.last_relayed_us = now_us;
        self.continuity.relayed(packet, now_us);
        Verdict::Forward
    }

    /// When the next own packet is due (engine clock, µs).
    pub fn next_due_us(&self) -> Option<u64> {
        self.player.as_ref().map(|p| p.next_due_us)
    }

    /// Writes the own packet due by `now_us` into `buf`; `None` when none is due (or a mixing
    /// player has relayed audio to ride on, or the leg's codec cannot be encoded: the playback
    /// then ends as failed).
    pub fn poll_packet(&mut self, now_us: u64, buf: &mut [u8]) -> Option<usize> {
        let due = self.player.as_ref()?.next_due_us;
        if due > now_us {
            return None;
        }
        let Some((pt, law, samples)) = self.format() else {
            self.finish(PlaybackEnd::Failed("the leg's codec cannot be encoded"));
            return None;
        };
        let step = samples as u64 * US_PER_SAMPLE;
        let late = now_us.saturating_sub(due) > MAX_LATE_US;
        let relayed_recently = now_us.saturating_sub(self.last_relayed_us) < 2 * step;
        let player = self.player.as_mut()?;
        player.next_due_us = if late { now_us + step } else { due + step };
        if player.mix && relayed_recently {
            return None;
        }
        let len = HEADER_LEN + samples;
        let packet = buf.get_mut(..len)?;
        let (header, payload) = packet.split_at_mut(HEADER_LEN);
        let over = player.write(law, payload);
        if let Some(gain) = &self.gain {
            gain.apply(law, payload);
        }
        let (ssrc, seq, ts, marker) = self.continuity.own(now_us, samples as u32);
        header[0] = 0x80;
        header[1] = pt | if marker { 0x80 } else { 0 };
        header[2..4].copy_from_slice(&seq.to_be_bytes());
        header[4..8].copy_from_slice(&ts.to_be_bytes());
        header[8..12].copy_from_slice(&ssrc.to_be_bytes());
        if over {
            self.finish(PlaybackEnd::Finished);
        }
        Some(len)
    }

    /// The oldest playback end not yet reported, left in place until [`Outbound::ended_sent`].
    pub fn next_ended(&self) -> Option<(PlaybackId, PlaybackEnd)> {
        self.ended.iter().flatten().next().copied()
    }

    /// The end [`Outbound::next_ended`] returned was reported.
    pub fn ended_sent(&mut self) {
        if let Some(slot) = self.ended.iter_mut().find(|slot| slot.is_some()) {
            *slot = None;
        }
    }

    /// Takes the oldest playback end not yet reported.
    pub fn take_ended(&mut self) -> Option<(PlaybackId, PlaybackEnd)> {
        let next = self.next_ended();
        self.ended_sent();
        next
    }

    /// Payload type, law and packet size of the proxy's own packets.
    fn format(&self) -> Option<(u8, Law, usize)> {
        if let Some((pt, samples)) = self.learnt
            && let Some(law) = self.map.law(pt)
            && (1..=MAX_PAYLOAD).contains(&samples)
        {
            return Some((pt, law, samples));
        }
        let fallback = self.fallback?;
        let pt = fallback.preferred?;
        let law = self.map.law(pt)?;
        let samples = (fallback.ptime_ms.clamp(10, 60) * 8) as usize;
        Some((pt, law, samples))
    }

    fn finish(&mut self, end: PlaybackEnd) {
        let Some(player) = self.player.take() else {
            return;
        };
        let report = Some((player.id, end));
        match self.ended.iter_mut().find(|slot| slot.is_none()) {
            Some(free) => *free = report,
            None => {
                // Four ends unreported: the event queue has been full for a while. Keep the
                // newest; the oldest module waits for the call's end.
                self.ended.rotate_left(1);
                self.ended[ENDED_SLOTS - 1] = report;
            }
        }
    }
}
