//! Fuzzes the SIP parser and the request checks the proxy runs on every datagram: no input may
//! panic, and whatever parses must serialise into something that parses to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metaflow_proxy::sip::SipMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = SipMessage::parse(data) {
        if let Err(rejection) = metaflow_proxy::sip::validate::check_request(&msg) {
            let _ = rejection.response_to(&msg, Some("fuzz")).to_bytes();
        }
        let _ = msg.validate_response();
        let _ = (msg.call_id(), msg.cseq(), msg.top_via(), msg.from_tag(), msg.to_tag());
        let bytes = msg.to_bytes();
        let again = SipMessage::parse(&bytes).expect("a serialised message parses");
        assert_eq!(again.to_bytes(), bytes, "serialisation is stable");
    }
    let _ = SipMessage::parse_stream(data);
});
