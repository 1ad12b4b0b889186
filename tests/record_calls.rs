//! End-to-end call recording through metaflow-proxy: a party dials `*9`, a metaflow code that
//! runs the `record_call` module, and the proxy must write the call's audio to
//! `DATA_DIR/recordings/YYYY/MM/DD/` (a stereo WAV, left = a-leg, or a pcap of the raw RTP) with
//! a JSON sidecar, and log `recording_started` / `recording_stopped` in `events.jsonl`. The audio
//! is checked against SIPp's `g711a.pcap` decoded independently. Scenarios:
//! `tests/sipp/record_*.xml` (plus `uas_wait_bye.xml`, `uas_pcap.xml`). Needs `sipp`, `tshark`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::calls::{
    MetaflowsProxy, assert_both_succeeded, caller_call_id, named, spawn_call, wait_call,
    wait_for_events,
};
use common::capture::{G711A_PCAP, RtpPacket, assert_same_stream, g711a_reference, read_rtp};
use common::sipp::SippResult;
use metaflow_proxy::modules::record::g711::alaw_to_linear;
use serde_json::Value;

/// Limit for one SIPp run (the longest scenario lasts about 10 s).
const RUN_LIMIT: Duration = Duration::from_secs(20);
/// SIPp's own timeout: a message that never comes fails the run before [`RUN_LIMIT`].
const SIPP_TIMEOUT_SECS: u32 = 18;
/// How long the event log may take to show the end of the call and of its recording.
const EVENT_WAIT: Duration = Duration::from_secs(5);
/// Sample rate of every recording and of G.711.
const RATE: f64 = 8000.0;
/// Playing time of `g711a.pcap`: 236 packets of 240 samples.
const G711A_SECS: f64 = 236.0 * 240.0 / RATE;
/// How far (in samples) the recorded audio may sit from where its first loud sample says.
const ALIGN_SEARCH: i64 = 400;
/// A sample louder than this is not silence.
const LOUD: i32 = 200;
/// Normalized cross-correlation the recorded channel must reach against the decoded pcap.
const MIN_CORRELATION: f64 = 0.95;

/// `*9` toggles the recording (the default action), dialed by the caller.
const RECORD_ON_9: &str = r#"{"numbers":{"9":{"module":"record_call"}}}"#;

/// A proxy started with a `--metaflows` file (kept outside its data directory).
struct RecordProxy {
    proxy: MetaflowsProxy,
}

/// What one call through the proxy left behind.
struct Call {
    caller: SippResult,
    callee: SippResult,
    /// From the first SIPp start to the last SIPp exit.
    elapsed: Duration,
    events: Vec<Value>,
}

impl RecordProxy {
    fn start(metaflows: &str) -> RecordProxy {
        RecordProxy {
            proxy: MetaflowsProxy::start(metaflows),
        }
    }

    /// Runs the callee then the caller scenario, requires both to exit 0, and waits until the
    /// event log shows both the end of the call and the end of its recording.
    fn call(&self, uas: &str, uac: &str) -> Call {
        let begun = Instant::now();
        let (caller, callee) = spawn_call(&self.proxy, uas, uac, SIPP_TIMEOUT_SECS);
        let (caller, callee) = wait_call(caller, callee, RUN_LIMIT);
        let elapsed = begun.elapsed();
        assert_both_succeeded(&caller, &callee);
        let events = wait_for_events(
            &self.proxy,
            &["call_ended", "recording_stopped"],
            EVENT_WAIT,
        );
        Call {
            caller,
            callee,
            elapsed,
            events,
        }
    }

    /// The single recording of the call: checks that `recordings/` holds exactly one recording
    /// file with extension `ext` and one sidecar in a `YYYY/MM/DD` folder matching the sidecar's
    /// start date, and nothing else (no temporary file).
    fn only_recording(&self, ext: &str) -> (PathBuf, Value) {
        let root = self.proxy.data_dir().join("recordings");
        let mut files = Vec::new();
        list_files(&root, &mut files);
        files.sort();
        let with_ext = |wanted: &str| -> Vec<&PathBuf> {
            files
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e == wanted))
                .collect()
        };
        let (media, sidecars) = (with_ext(ext), with_ext("json"));
        assert!(
            files.len() == 2 && media.len() == 1 && sidecars.len() == 1,
            "expected one .{ext} and one .json under {}: {files:#?}",
            root.display()
        );
        assert_eq!(
            media[0].with_extension("json"),
            *sidecars[0],
            "the sidecar must sit beside the recording"
        );
        let sidecar: Value =
            serde_json::from_str(&std::fs::read_to_string(sidecars[0]).unwrap()).unwrap();
        let started = sidecar["started_at"].as_str().unwrap_or_default();
        let date_dir = media[0].parent().unwrap().strip_prefix(&root).unwrap();
        let expected: PathBuf = [&started[0..4], &started[5..7], &started[8..10]]
            .iter()
            .collect();
        assert_eq!(date_dir, expected, "folder of {started}: {sidecar:#}");
        (media[0].clone(), sidecar)
    }
}

fn list_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            list_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Position of the only event named `name`; panics unless there is exactly one.
fn only_position(events: &[Value], name: &str) -> usize {
    let found: Vec<usize> = (0..events.len())
        .filter(|&i| events[i]["event"] == name)
        .collect();
    assert_eq!(found.len(), 1, "expected one {name}: {events:#?}");
    found[0]
}

/// Checks the recording events against the file: started, then stopped with `reason`, both
/// naming `path`, stopped before `call_ended` when `before_call_end`; returns the stop event.
fn assert_recording_events(
    events: &[Value],
    path: &Path,
    reason: &str,
    before_call_end: bool,
) -> Value {
    let started = only_position(events, "recording_started");
    let stopped = only_position(events, "recording_stopped");
    let ended = only_position(events, "call_ended");
    assert!(named(events, "recording_failed").is_empty(), "{events:#?}");
    assert!(started < stopped, "{events:#?}");
    assert_eq!(before_call_end, stopped < ended, "{events:#?}");
    let path = path.display().to_string();
    assert_eq!(events[started]["path"], path.as_str(), "{events:#?}");
    let stop = &events[stopped];
    assert_eq!(stop["path"], path.as_str(), "{stop}");
    let sidecar = Path::new(&path).with_extension("json");
    assert_eq!(stop["sidecar"], sidecar.display().to_string().as_str());
    assert_eq!(stop["reason"], reason, "{stop}");
    assert_eq!(stop["dropped"], 0, "{stop}");
    stop.clone()
}

/// A decoded 16-bit PCM WAV file.
struct Wav {
    channels: u16,
    sample_rate: u32,
    bits: u16,
    left: Vec<i16>,
    right: Vec<i16>,
}

impl Wav {
    /// Parses a RIFF/WAVE file chunk by chunk; panics on anything malformed.
    fn read(path: &Path) -> Wav {
        let bytes = std::fs::read(path).unwrap();
        assert!(bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE");
        let riff_size = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        assert_eq!(riff_size + 8, bytes.len(), "RIFF size must match the file");
        let (mut at, mut fmt, mut data) = (12, None, None);
        while at + 8 <= bytes.len() {
            let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            let body = &bytes[at + 8..at + 8 + size];
            match &bytes[at..at + 4] {
                b"fmt " => fmt = Some(body),
                b"data" => data = Some(body),
                _ => {}
            }
            at += 8 + size + size % 2;
        }
        let (fmt, data) = (fmt.expect("no fmt chunk"), data.expect("no data chunk"));
        let u16_at = |i: usize| u16::from_le_bytes([fmt[i], fmt[i + 1]]);
        assert_eq!(u16_at(0), 1, "PCM format tag");
        let channels = u16_at(2);
        let mut left = Vec::new();
        let mut right = Vec::new();
        for frame in data.chunks_exact(4) {
            left.push(i16::from_le_bytes([frame[0], frame[1]]));
            right.push(i16::from_le_bytes([frame[2], frame[3]]));
        }
        Wav {
            channels,
            sample_rate: u32::from_le_bytes(fmt[4..8].try_into().unwrap()),
            bits: u16_at(14),
            left,
            right,
        }
    }

    fn seconds(&self) -> f64 {
        self.left.len() as f64 / RATE
    }

    fn assert_format(&self) {
        assert_eq!(
            (self.sample_rate, self.channels, self.bits),
            (8000, 2, 16),
            "WAV must be 8 kHz, stereo, 16-bit"
        );
    }
}

/// The audio of `g711a.pcap` decoded with the product's A-law table, each packet placed at its
/// RTP timestamp.
fn g711a_audio() -> Vec<i16> {
    let packets: Vec<RtpPacket> = g711a_reference()
        .into_iter()
        .filter(|p| p.pt == 8)
        .collect();
    assert_eq!(packets.len(), 236, "{G711A_PCAP} changed");
    let first_ts = packets[0].ts;
    let mut audio = vec![0i16; 236 * 240];
    for packet in &packets {
        let at = packet.ts.wrapping_sub(first_ts) as usize;
        for (i, code) in packet.payload.iter().enumerate() {
            audio[at + i] = alaw_to_linear(*code);
        }
    }
    audio
}

fn first_loud(samples: &[i16]) -> Option<usize> {
    samples.iter().position(|s| i32::from(*s).abs() > LOUD)
}

/// Best normalized cross-correlation of `reference` with `recorded`, trying offsets within
/// [`ALIGN_SEARCH`] of where the first loud samples line up. Recorded samples missing at either
/// end count as silence, so a truncated recording scores low. Returns (correlation, offset).
fn best_correlation(recorded: &[i16], reference: &[i16]) -> (f64, i64) {
    let (Some(rec_first), Some(ref_first)) = (first_loud(recorded), first_loud(reference)) else {
        return (0.0, 0);
    };
    let base = rec_first as i64 - ref_first as i64;
    let ref_energy: f64 = reference.iter().map(|&x| f64::from(x).powi(2)).sum();
    let mut best = (f64::MIN, 0);
    for offset in base - ALIGN_SEARCH..=base + ALIGN_SEARCH {
        let (mut cross, mut rec_energy) = (0.0, 0.0);
        for (i, &x) in reference.iter().enumerate() {
            let Some(&y) = usize::try_from(i as i64 + offset)
                .ok()
                .and_then(|j| recorded.get(j))
            else {
                continue;
            };
            cross += f64::from(x) * f64::from(y);
            rec_energy += f64::from(y).powi(2);
        }
        let score = cross / (ref_energy * rec_energy).sqrt().max(1.0);
        if score > best.0 {
            best = (score, offset);
        }
    }
    best
}

/// `recorded` holds `reference` (correlation above [`MIN_CORRELATION`]).
fn assert_carries(recorded: &[i16], reference: &[i16], what: &str) {
    let (score, offset) = best_correlation(recorded, reference);
    assert!(
        score > MIN_CORRELATION,
        "{what}: best correlation with g711a.pcap {score:.4} at offset {offset} samples \
         ({} recorded samples, {} reference)",
        recorded.len(),
        reference.len()
    );
}

fn peak(samples: &[i16]) -> i32 {
    samples
        .iter()
        .map(|s| i32::from(*s).abs())
        .max()
        .unwrap_or(0)
}

#[test]
fn star_9_records_the_call_to_a_stereo_wav_with_the_callers_audio_on_the_left() {
    let proxy = RecordProxy::start(RECORD_ON_9);
    let call = proxy.call("uas_wait_bye.xml", "record_uac_star9_pcap.xml");
    let (path, sidecar) = proxy.only_recording("wav");
    let stop = assert_recording_events(&call.events, &path, "call_ended", false);
    let wav = Wav::read(&path);
    wav.assert_format();
    assert!(
        wav.seconds() >= G711A_SECS - 0.03 && wav.seconds() <= call.elapsed.as_secs_f64(),
        "WAV lasts {:.3} s: the audio lasts {G711A_SECS} s, the call {:?}",
        wav.seconds(),
        call.elapsed
    );
    assert_eq!(stop["frames"], wav.left.len() as u64, "{stop}");
    assert_carries(&wav.left, &g711a_audio(), "left channel (a-leg)");
    assert!(peak(&wav.right) < LOUD, "the silent callee's channel");
    assert_eq!(sidecar["call_id"], caller_call_id(&call.caller).as_str());
    assert_eq!(sidecar["format"], "wav", "{sidecar:#}");
    assert_eq!(sidecar["codec"]["a"], "PCMA", "{sidecar:#}");
    assert_eq!(sidecar["stop_reason"], "call_ended", "{sidecar:#}");
    assert_eq!(sidecar["frames_written"], wav.left.len() as u64);
    assert!(
        sidecar["started_by"]
            .as_str()
            .is_some_and(|by| by.contains("a-leg")),
        "{sidecar:#}"
    );
}

#[test]
fn star_5_masks_the_caller_so_the_recording_keeps_its_length_but_not_its_words() {
    let proxy = RecordProxy::start(
        r#"{"numbers":{"9":{"module":"record_call","data":{"action":"start"}},
            "5":{"module":"record_call","data":{"action":"mask"}}}}"#,
    );
    let call = proxy.call("uas_wait_bye.xml", "record_uac_star9_star5_pcap.xml");
    let (path, sidecar) = proxy.only_recording("wav");
    assert_recording_events(&call.events, &path, "call_ended", false);
    let masked = named(&call.events, "recording_masked");
    assert_eq!(masked.len(), 1, "{:#?}", call.events);
    assert_eq!(masked[0]["leg"], "a");
    assert_eq!(masked[0]["recording"], true);
    let wav = Wav::read(&path);
    wav.assert_format();
    assert!(
        wav.seconds() >= G711A_SECS - 0.03,
        "the masked audio keeps its length: {:.3} s",
        wav.seconds()
    );
    assert_eq!(peak(&wav.left), 0, "nothing the caller said is in the file");
    let spans = sidecar["masked"].as_array().expect("masked spans");
    assert_eq!(spans.len(), 1, "{sidecar:#}");
    assert_eq!(spans[0]["leg"], "a");
    let (start, end) = (
        spans[0]["start_s"].as_f64().unwrap(),
        spans[0]["end_s"].as_f64().unwrap(),
    );
    assert!(
        start < 2.0 && end - start >= G711A_SECS,
        "open until the end: {start}..{end}"
    );
    assert!(
        sidecar["packets_masked"].as_u64().unwrap() >= 236,
        "{sidecar:#}"
    );
}

#[test]
fn pcap_format_keeps_every_packet_of_the_caller_unchanged() {
    let proxy = RecordProxy::start(
        r#"{"numbers":{"9":{"module":"record_call","data":{"format":"pcap"}}}}"#,
    );
    let call = proxy.call("uas_wait_bye.xml", "record_uac_star9_pcap.xml");
    let (path, sidecar) = proxy.only_recording("pcap");
    let stop = assert_recording_events(&call.events, &path, "call_ended", false);
    assert_eq!(sidecar["format"], "pcap", "{sidecar:#}");
    let uac_media = proxy.proxy.ports().uac_media;
    let decode = [
        "-o".to_owned(),
        "rtp.heuristic_rtp:TRUE".to_owned(),
        "-d".to_owned(),
        format!("udp.port=={uac_media},rtp"),
    ];
    let packets = read_rtp(&path, &decode);
    let from_caller: Vec<RtpPacket> = packets
        .iter()
        .filter(|p| p.src_port == uac_media)
        .cloned()
        .collect();
    let (audio, other): (Vec<RtpPacket>, Vec<RtpPacket>) =
        from_caller.into_iter().partition(|p| p.pt == 8);
    let reference: Vec<RtpPacket> = g711a_reference()
        .into_iter()
        .filter(|p| p.pt == 8)
        .collect();
    assert_same_stream(&audio, &reference, "caller's audio in the recorded pcap");
    // At most the rest of the `9` key press: 10 telephone-event packets.
    assert!(
        other.len() <= 10 && other.iter().all(|p| p.pt == 101),
        "unexpected caller packets: {other:#?}"
    );
    assert!(
        stop["frames"].as_u64().unwrap() >= packets.len() as u64,
        "{stop} for {} packets read back",
        packets.len()
    );
}

#[test]
fn a_second_star_9_stops_the_recording_while_the_call_goes_on() {
    let proxy = RecordProxy::start(RECORD_ON_9);
    let call = proxy.call("uas_wait_bye.xml", "record_uac_star9_toggle.xml");
    let (path, sidecar) = proxy.only_recording("wav");
    assert_recording_events(&call.events, &path, "stopped", true);
    assert_eq!(sidecar["stop_reason"], "stopped", "{sidecar:#}");
    assert!(
        sidecar["stopped_by"]
            .as_str()
            .is_some_and(|by| by.contains("a-leg")),
        "{sidecar:#}"
    );
    let wav = Wav::read(&path);
    wav.assert_format();
    // The caller talks 3 s between the two codes; the call lasts about 8 s.
    let call_secs = call.elapsed.as_secs_f64();
    assert!(
        wav.seconds() > 2.5 && wav.seconds() < call_secs - 3.0,
        "WAV lasts {:.3} s, the call {call_secs:.3} s",
        wav.seconds()
    );
    let recorded_ms = sidecar["duration_ms"].as_u64().unwrap();
    assert!(
        recorded_ms > 2500 && (recorded_ms as f64) < (call_secs - 3.0) * 1000.0,
        "{sidecar:#}"
    );
    // The first 2.5 s of the caller's audio are all in the recording.
    let audio = g711a_audio();
    assert_carries(&wav.left, &audio[..20_000], "left channel (a-leg)");
}

#[test]
fn time_limit_ends_the_recording_but_not_the_call() {
    let proxy =
        RecordProxy::start(r#"{"numbers":{"9":{"module":"record_call","data":{"time_limit":2}}}}"#);
    let call = proxy.call("uas_pcap.xml", "record_uac_star9_bye.xml");
    let (path, sidecar) = proxy.only_recording("wav");
    assert_recording_events(&call.events, &path, "time_limit", true);
    assert_eq!(sidecar["stop_reason"], "time_limit", "{sidecar:#}");
    assert_eq!(sidecar["time_limit_s"], 2, "{sidecar:#}");
    let wav = Wav::read(&path);
    wav.assert_format();
    assert!(
        (1.5..=3.0).contains(&wav.seconds()),
        "WAV lasts {:.3} s for a 2 s limit",
        wav.seconds()
    );
    assert!(peak(&wav.right) > 1000, "the callee talks all along");
    assert!(peak(&wav.left) < LOUD, "the caller only dialed");
    let got_bye = |party: &SippResult| party.received().iter().any(|m| m.starts_with("BYE "));
    assert!(
        !got_bye(&call.caller) && got_bye(&call.callee),
        "only the caller's own BYE may end the call"
    );
}

#[test]
fn the_callee_can_start_the_recording_with_listen_on_peer() {
    let proxy =
        RecordProxy::start(r#"{"listen_on":"peer","numbers":{"9":{"module":"record_call"}}}"#);
    let call = proxy.call("record_uas_star9.xml", "record_uac_pcap_late.xml");
    let (path, sidecar) = proxy.only_recording("wav");
    assert_recording_events(&call.events, &path, "call_ended", false);
    assert!(
        sidecar["started_by"]
            .as_str()
            .is_some_and(|by| by.contains("b-leg")),
        "{sidecar:#}"
    );
    let wav = Wav::read(&path);
    wav.assert_format();
    assert_carries(&wav.left, &g711a_audio(), "left channel (a-leg)");
    assert!(peak(&wav.right) < LOUD, "the callee only dialed");
    assert!(!call.callee.sent().iter().any(|m| m.starts_with("BYE ")));
}
