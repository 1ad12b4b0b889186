//! Fuzzes the SDP parser and the anchoring rewrite: no input may panic, and a rewritten SDP
//! parses again with the anchored ports.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use metaflow_proxy::sdp::{Anchor, Sdp, rewrite};

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = Sdp::parse(data) else {
        return;
    };
    let anchors: Vec<Option<Anchor>> = sdp
        .media()
        .iter()
        .enumerate()
        .map(|(i, _)| {
            (i % 2 == 0).then(|| Anchor {
                addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                rtp_port: 40000 + 2 * i as u16,
                rtcp_port: 40001 + 2 * i as u16,
            })
        })
        .collect();
    if let Ok(out) = rewrite(data, &anchors) {
        let _ = Sdp::parse(&out);
    }
});
