//! What a call the proxy places offers: the staying party's SDP, narrowed to the codecs the
//! session negotiated, so the new party cannot pick one the stayer never sends.

use serde_json::json;

use crate::base::Leg;

use super::expect::req;
use super::harness::{Side, Sim, SimConfig};
use super::sip::{ANSWER, body};

/// The phone offers PCMU, PCMA and telephone-event; the PBX answers PCMA.
const WIDE_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

/// `callflow` from the phone: the placed call offers the phone's SDP, but only PCMA (what the
/// PBX's answer chose) and telephone-event, not the PCMU the phone never sends on this call.
#[test]
fn the_offer_of_a_placed_call_keeps_only_the_negotiated_codecs() {
    let mut sim = Sim::with(SimConfig {
        seed: 100,
        metaflows: Some(
            json!({"binding_digit": "*", "patterns": {"^6(\\d+)$": {"module": "callflow"}}}),
        ),
        ..SimConfig::default()
    });
    let key = sim.answered_with(WIDE_OFFER, ANSWER);
    sim.dial(key, Leg::A, "*6555");
    let placed = sim.expect(Side::Pbx, req("INVITE"));
    let offer = body(&placed);
    let m_line = offer.lines().find(|l| l.starts_with("m=audio")).unwrap();
    assert!(m_line.ends_with("RTP/AVP 8 101"), "{offer}");
    assert!(!offer.contains("PCMU"), "{offer}");
    assert!(offer.contains("a=rtpmap:101 telephone-event/8000"));
}
