//! A proxy behind 1:1 NAT (a cloud host: private address bound, public address advertised),
//! as rtpengine's `interface=internal/10.0.0.5!203.0.113.5` and Kamailio's `advertise` set it
//! up. On loopback the "public" address is 127.0.0.9: the sockets are bound to the wildcard,
//! so what is sent to the advertised address reaches them, as through the NAT.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::time::Duration;

use common::calls::{assert_both_succeeded, callee, wait_call};
use common::proxy::{Proxy, metric_sum};
use common::sipp::{Sipp, header, sdp_connection_ip};

const PUBLIC: &str = "127.0.0.9";

/// Every message and SDP the proxy writes names the advertised address, never the bound
/// wildcard; a caller that only knows the advertised address completes a call with media both
/// ways.
#[test]
fn messages_and_sdp_carry_the_advertised_addresses() {
    let proxy = Proxy::start_bound(
        "0.0.0.0",
        "0.0.0.0",
        &["--sip-advertise", PUBLIC, "--media-advertise", PUBLIC],
    );
    let ports = proxy.ports();
    let public_sip = format!("{PUBLIC}:{}", ports.proxy_sip);
    let callee = callee(&proxy, "uas_pcap.xml", 30).spawn();
    let caller = Sipp::uac("uac_pcap.xml", &public_sip)
        .local_port(ports.uac_sip)
        .media_port(ports.uac_media)
        .timeout_secs(30)
        .spawn();
    let (caller, callee) = wait_call(caller, callee, Duration::from_secs(40));
    assert_both_succeeded(&caller, &callee);

    let invite = callee
        .received()
        .into_iter()
        .find(|m| m.starts_with("INVITE "))
        .unwrap();
    let via = header(&invite, "Via").unwrap();
    assert!(
        via.contains(&public_sip),
        "Via names the advertised address: {via}"
    );
    let contact = header(&invite, "Contact").unwrap();
    assert!(contact.contains(&public_sip), "{contact}");
    assert_eq!(
        sdp_connection_ip(&invite).as_deref(),
        Some(PUBLIC),
        "{invite}"
    );
    let answer = caller
        .received()
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 200") && m.contains("INVITE"))
        .unwrap();
    assert_eq!(
        sdp_connection_ip(&answer).as_deref(),
        Some(PUBLIC),
        "{answer}"
    );
    assert!(!answer.contains("0.0.0.0"), "{answer}");

    let metrics = proxy.metrics();
    for direction in ["direction=\"a_to_b\"", "direction=\"b_to_a\""] {
        let packets = metric_sum(&metrics, "metaflow_proxy_rtp_packets_total", &[direction]);
        assert!(
            packets.unwrap_or(0.0) > 100.0,
            "RTP relayed {direction}: {packets:?}\n{metrics}"
        );
    }
}
