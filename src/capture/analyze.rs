//! Offline analysis behind `metaflow-proxy analyze`: find every RTP stream of a capture,
//! work out its telephone-event payload type (SDP, forced, or inferred), and decode its digits.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::audio::g711::Law;
use crate::base::Leg;
use crate::capture::CaptureError;
use crate::capture::infer::StreamStats;
use crate::capture::packet::{Segments, Transport, UdpDatagrams};
use crate::capture::report::DigitSource;
use crate::capture::report::{AnalyzeReport, ConfigSource, DigitRecord, StreamId, StreamReport};
use crate::capture::sdp_scan::{SdpAudio, scan_sip_sdp};
use crate::dtmf::{DtmfDecoder, DtmfEvent, EventConfig, InbandDetector, InbandEvent};
use crate::rtp::RtpView;

/// Choices the caller can impose on the analysis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnalyzeOptions {
    /// Telephone-event payload type (and optionally clock rate) to use on every stream,
    /// overriding SDP and inference (`--event-pt 101` or `101/48000`).
    pub event_pt: Option<(u8, Option<u32>)>,
}

/// An SDP audio endpoint with the dialog side that declared it.
#[derive(Debug, Clone)]
struct DeclaredEndpoint {
    audio: SdpAudio,
    owner: Option<Leg>,
}

/// First-pass knowledge about the capture.
#[derive(Debug, Default)]
struct CaptureIndex {
    start_us: Option<u64>,
    endpoints: Vec<DeclaredEndpoint>,
    /// Call-ID to the From tag of the side that sent the initial INVITE.
    dialog_a_tags: HashMap<String, String>,
    streams: Vec<(StreamId, StreamStats)>,
    stream_index: HashMap<StreamId, usize>,
    /// Dynamic payload types any SDP maps to PCMA or PCMU.
    g711_maps: Vec<(u8, Law)>,
    warnings: Vec<String>,
}

impl CaptureIndex {
    fn build(capture: &[u8]) -> Result<CaptureIndex, CaptureError> {
        let mut index = CaptureIndex::default();
        let mut segments = Segments::new(capture)?;
        for item in segments.by_ref() {
            let (transport, dgram) = match item {
                Ok(s) => (s.transport, s.datagram),
                Err(err) => {
                    index.warnings.push(format!("capture ends early: {err}"));
                    break;
                }
            };
            let rtp = match transport {
                Transport::Udp => RtpView::parse(dgram.payload).ok(),
                Transport::Tcp => None,
            };
            if let Some(pkt) = rtp {
                let id = StreamId {
                    src: dgram.src,
                    dst: dgram.dst,
                    ssrc: pkt.ssrc(),
                };
                let slot = *index.stream_index.entry(id).or_insert(index.streams.len());
                if slot == index.streams.len() {
                    index.streams.push((id, StreamStats::default()));
                }
                if let Some((_, stats)) = index.streams.get_mut(slot) {
                    stats.observe(&pkt, dgram.ts_us);
                }
            } else if let Some(msg) = scan_sip_sdp(dgram.payload) {
                let owner = index.owner_of(&msg);
                for audio in &msg.audio {
                    index.g711_maps.extend(audio.g711.iter().copied());
                }
                index.endpoints.extend(
                    msg.audio
                        .into_iter()
                        .filter(|a| !a.events.is_empty())
                        .map(|audio| DeclaredEndpoint { audio, owner }),
                );
            }
        }
        index.start_us = segments.first_frame_us();
        Ok(index)
    }

    /// Which side sent a SIP message: requests come from the From side, responses from the To
    /// side; the side whose From tag opened the dialog with INVITE is the a-leg.
    fn owner_of(&mut self, msg: &crate::capture::sdp_scan::SipSdp) -> Option<Leg> {
        let call_id = msg.call_id.clone()?;
        let tag = msg.from_tag.clone()?;
        if msg.cseq_method.as_deref() == Some("INVITE") {
            self.dialog_a_tags
                .entry(call_id.clone())
                .or_insert_with(|| tag.clone());
        }
        let from_is_a = *self.dialog_a_tags.get(&call_id)? == tag;
        let from_side = if from_is_a { Leg::A } else { Leg::B };
        Some(if msg.is_request {
            from_side
        } else {
            from_side.other()
        })
    }

    /// Event configuration of a stream and the dialog side that sent it.
    /// The G.711 law of an audio payload type: static 0 and 8, or an SDP `rtpmap`.
    fn law_of(&self, pt: u8) -> Option<Law> {
        match pt {
            0 => Some(Law::Mu),
            8 => Some(Law::A),
            _ => self
                .g711_maps
                .iter()
                .rev()
                .find(|(p, _)| *p == pt)
                .map(|(_, law)| *law),
        }
    }

    fn config_for(
        &self,
        id: &StreamId,
        stats: &StreamStats,
        opts: &AnalyzeOptions,
    ) -> Option<(EventConfig, ConfigSource, Option<Leg>)> {
        let matches = |addr: SocketAddr, e: &DeclaredEndpoint| {
            e.audio.port == addr.port() && e.audio.addr.is_none_or(|a| a == addr.ip())
        };
        // Receiver's SDP first, then the sender's own (symmetric RTP), then same port (NAT).
        let by_dst = self.endpoints.iter().rev().find(|e| matches(id.dst, e));
        let by_src = self.endpoints.iter().rev().find(|e| matches(id.src, e));
        let by_port = self
            .endpoints
            .iter()
            .rev()
            .find(|e| e.audio.port == id.dst.port());
        let (sdp_events, leg): (Vec<(u8, u32)>, Option<Leg>) = match (by_dst, by_src, by_port) {
            (Some(e), _, _) => (e.audio.events.clone(), e.owner.map(Leg::other)),
            (None, Some(e), _) => (e.audio.events.clone(), e.owner),
            (None, None, Some(e)) => (e.audio.events.clone(), e.owner.map(Leg::other)),
            // No endpoint matches: every telephone-event type declared anywhere applies.
            _ => (
                self.endpoints
                    .iter()
                    .flat_map(|e| e.audio.events.iter().copied())
                    .collect(),
                None,
            ),
        };
        let declared_rate = |pt: u8| sdp_events.iter().find(|(p, _)| *p == pt).map(|(_, r)| *r);
        if let Some((pt, rate)) = opts.event_pt {
            let rate = rate
                .or_else(|| declared_rate(pt))
                .unwrap_or_else(|| stats.inferred_clock_rate(pt));
            return Some((
                EventConfig {
                    payload_type: pt,
                    clock_rate: rate,
                },
                ConfigSource::Forced,
                leg,
            ));
        }
        let used = sdp_events
            .iter()
            .find(|(pt, _)| stats.uses_payload_type(*pt));
        if let Some(&(pt, rate)) = used.or_else(|| {
            if by_dst.or(by_src).is_some() {
                sdp_events.first()
            } else {
                None
            }
        }) {
            return Some((
                EventConfig {
                    payload_type: pt,
                    clock_rate: rate,
                },
                ConfigSource::Sdp,
                leg,
            ));
        }
        let pt = stats.inferred_event_pt()?;
        let cfg = EventConfig {
            payload_type: pt,
            clock_rate: stats.inferred_clock_rate(pt),
        };
        Some((cfg, ConfigSource::Inferred, leg))
    }
}

/// A stream being decoded in the second pass.
struct Decoding {
    report: StreamReport,
    decoder: DtmfDecoder,
    started_us: Option<u64>,
    inband: InbandDetector,
    /// Capture time, RTP timestamp, payload type and key of the in-band digit being heard.
    inband_started: Option<(u64, u32, u8, char)>,
}

impl Decoding {
    fn handle(&mut self, event: DtmfEvent, start_us: u64, digits: &mut Vec<DigitRecord>) {
        match event {
            DtmfEvent::Started { at_us, .. } => self.started_us = Some(at_us),
            DtmfEvent::Ended {
                digit,
                rtp_timestamp,
                duration_ms,
                at_us,
                timed_out,
                ..
            } => {
                let Some(cfg) = self.report.event_config else {
                    return;
                };
                let begun = self.started_us.take().unwrap_or(at_us);
                digits.push(DigitRecord {
                    stream: self.report.id,
                    sender_leg: self.report.sender_leg,
                    at_us: begun,
                    time_s: begun.saturating_sub(start_us) as f64 / 1e6,
                    digit,
                    duration_ms,
                    payload_type: cfg.payload_type,
                    clock_rate: cfg.clock_rate,
                    rtp_timestamp,
                    timed_out,
                    source: DigitSource::Rfc4733,
                });
            }
        }
    }

    /// Records an in-band event heard in a packet of payload type `pt` captured at `at_us`.
    fn handle_inband(
        &mut self,
        event: InbandEvent,
        (at_us, pt): (u64, u8),
        start_us: u64,
        digits: &mut Vec<DigitRecord>,
    ) {
        match event {
            InbandEvent::Started { digit, rtp_ts } => {
                self.inband_started = Some((at_us, rtp_ts, pt, digit));
            }
            InbandEvent::Ended { digit, duration_ms } => {
                self.push_inband(digit, duration_ms, false, start_us, digits);
            }
        }
    }

    fn push_inband(
        &mut self,
        digit: char,
        duration_ms: u32,
        timed_out: bool,
        start_us: u64,
        digits: &mut Vec<DigitRecord>,
    ) {
        let Some((begun, rtp_timestamp, payload_type, _)) = self.inband_started.take() else {
            return;
        };
        digits.push(DigitRecord {
            stream: self.report.id,
            sender_leg: self.report.sender_leg,
            at_us: begun,
            time_s: begun.saturating_sub(start_us) as f64 / 1e6,
            digit,
            duration_ms,
            payload_type,
            clock_rate: 8000,
            rtp_timestamp,
            timed_out,
            source: DigitSource::Inband,
        });
    }

    /// Fires every timer due at or before `now_us`, at its own due time.
    fn fire_due(&mut self, now_us: u64, start_us: u64, digits: &mut Vec<DigitRecord>) {
        while let Some(due) = self.decoder.poll_timeout().filter(|d| *d <= now_us) {
            let Some(event) = self.decoder.on_timeout(due) else {
                break;
            };
            self.handle(event, start_us, digits);
        }
    }
}

/// Reads a pcap/pcapng capture held in memory and reports every DTMF key press per RTP stream.
pub fn analyze(capture: &[u8], opts: &AnalyzeOptions) -> Result<AnalyzeReport, CaptureError> {
    let index = CaptureIndex::build(capture)?;
    let start_us = index.start_us.unwrap_or(0);
    let mut decoding: Vec<Decoding> = index
        .streams
        .iter()
        .map(|(id, stats)| {
            let found = index.config_for(id, stats, opts);
            let report = StreamReport {
                id: *id,
                packets: stats.packets,
                event_config: found.map(|f| f.0),
                config_source: found.map(|f| f.1),
                sender_leg: found.and_then(|f| f.2),
            };
            Decoding {
                decoder: DtmfDecoder::new(report.event_config),
                report,
                started_us: None,
                inband: InbandDetector::new(),
                inband_started: None,
            }
        })
        .collect();
    let mut digits = Vec::new();
    for dgram in UdpDatagrams::new(capture)?.map_while(Result::ok) {
        let Ok(pkt) = RtpView::parse(dgram.payload) else {
            continue;
        };
        let id = StreamId {
            src: dgram.src,
            dst: dgram.dst,
            ssrc: pkt.ssrc(),
        };
        let Some(stream) = index
            .stream_index
            .get(&id)
            .and_then(|i| decoding.get_mut(*i))
        else {
            continue;
        };
        stream.fire_due(dgram.ts_us, start_us, &mut digits);
        if let Some(event) = stream.decoder.on_packet(&pkt, dgram.ts_us) {
            stream.handle(event, start_us, &mut digits);
        }
        if let Some(law) = index.law_of(pkt.payload_type()) {
            let mut heard: [Option<InbandEvent>; 4] = [None; 4];
            let mut count = 0;
            stream
                .inband
                .feed(law, pkt.payload(), pkt.timestamp(), &mut |e| {
                    if let Some(slot) = heard.get_mut(count) {
                        *slot = Some(e);
                        count += 1;
                    }
                });
            for event in heard.into_iter().flatten() {
                let at = (dgram.ts_us, pkt.payload_type());
                stream.handle_inband(event, at, start_us, &mut digits);
            }
        }
        stream.fire_due(dgram.ts_us, start_us, &mut digits);
    }
    for stream in &mut decoding {
        stream.fire_due(u64::MAX, start_us, &mut digits);
        // A tone still heard when the capture ends: no end was seen.
        if let Some((.., digit)) = stream.inband_started {
            stream.push_inband(digit, 0, true, start_us, &mut digits);
        }
    }
    digits.sort_by_key(|d| d.at_us);
    Ok(AnalyzeReport {
        capture_start_us: start_us,
        streams: decoding.into_iter().map(|d| d.report).collect(),
        warnings: index.warnings,
        digits,
    })
}
