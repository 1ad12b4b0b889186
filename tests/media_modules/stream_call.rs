//! One call through a proxy with a given metaflow: the SIPp caller plays a phone-like stream to
//! a silent SIPp callee, and tshark captures what each party receives.

use std::time::Duration;

use serde_json::Value;

use super::common::calls::{
    MetaflowsProxy, assert_both_succeeded, callee, caller, named, wait_call, wait_for_events,
};
use super::common::capture::{Capture, RtpPacket, to_port};
use super::phone_stream::PhoneStream;

/// Limit for one SIPp run (the call lasts about 6.6 s).
const RUN_LIMIT: Duration = Duration::from_secs(20);
/// SIPp's own timeout.
const SIPP_TIMEOUT_SECS: u32 = 16;

/// What each party received during one call.
pub struct Received {
    /// At the callee (b-leg), in arrival order.
    pub callee: Vec<RtpPacket>,
    /// At the caller (a-leg).
    pub caller: Vec<RtpPacket>,
    /// The proxy's events once the call ended.
    pub events: Vec<Value>,
}

/// Plays `stream` from the caller to a silent callee through a proxy with `metaflows`.
pub fn run(metaflows: &str, stream: &PhoneStream) -> Received {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("phone.pcap");
    stream.write_pcap(&pcap);
    let proxy = MetaflowsProxy::start(metaflows);
    let ports = proxy.ports();
    let capture = Capture::start(&[ports.uas_media, ports.uac_media]);
    let callee = callee(&proxy, "uas_wait_bye.xml", SIPP_TIMEOUT_SECS).spawn();
    let caller = caller(&proxy, "suppress_uac_stream_bye.xml", SIPP_TIMEOUT_SECS)
        .key("rtp_pcap", pcap.to_str().unwrap())
        .spawn();
    let (caller, callee) = wait_call(caller, callee, RUN_LIMIT);
    let packets = capture.stop();
    assert_both_succeeded(&caller, &callee);
    let events = wait_for_events(&proxy, &["call_ended"], Duration::from_secs(3));
    Received {
        callee: to_port(&packets, ports.uas_media),
        caller: to_port(&packets, ports.uac_media),
        events,
    }
}

/// The outcomes module `module` reached, in order.
pub fn outcomes(events: &[Value], module: &str) -> Vec<String> {
    named(events, "module_outcome")
        .into_iter()
        .filter(|e| e["module"] == module)
        .map(|e| e["outcome"].as_str().unwrap_or_default().to_string())
        .collect()
}
