//! Feeds arbitrary bytes through RtpView and DtmfDecoder: first as one packet, then split into
//! a packet sequence (1 length byte + packet), with the decoder's timers driven in between.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metaflow_proxy::dtmf::{DtmfDecoder, EventConfig, TelephoneEvent};
use metaflow_proxy::rtp::RtpView;

fuzz_target!(|data: &[u8]| {
    let _ = TelephoneEvent::parse(data);
    let mut decoder = DtmfDecoder::new(Some(EventConfig { payload_type: 101, clock_rate: 8000 }));
    if let Ok(pkt) = RtpView::parse(data) {
        assert!(pkt.header_len() + pkt.payload().len() <= data.len());
        decoder.set_config(Some(EventConfig { payload_type: pkt.payload_type(), clock_rate: 8000 }));
        let _ = decoder.on_packet(&pkt, 0);
    }
    let mut rest = data;
    let mut now = 0u64;
    while let Some((&len, tail)) = rest.split_first() {
        let (packet, next) = tail.split_at(usize::from(len).min(tail.len()));
        rest = next;
        now += u64::from(len) * 1000;
        if let Ok(pkt) = RtpView::parse(packet) {
            let _ = decoder.on_packet(&pkt, now);
        }
        while let Some(due) = decoder.poll_timeout().filter(|d| *d <= now) {
            if decoder.on_timeout(due).is_none() {
                break;
            }
        }
    }
});
