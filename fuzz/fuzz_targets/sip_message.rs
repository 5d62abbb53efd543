//! Any bytes parsed as a SIP message: no panic; a message that parses prints to bytes that
//! parse to the same message, and the header accessors and validation never panic.
#![no_main]

use happ_sip::message::{Message, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let message = match parse(data) {
        Ok(m) => m,
        Err(e) => {
            // A request kept for a 400 still has a head that prints.
            if let Some(head) = e.request_head() {
                let _ = head.encode();
            }
            return;
        }
    };
    let h = message.headers();
    let _ = (h.vias(), h.top_via(), h.from(), h.to(), h.call_id(), h.cseq(), h.content_type());
    if let Message::Request(r) = &message {
        let _ = r.validate();
    }
    let printed = message.encode();
    let again = parse(&printed).expect("a printed message parses");
    assert_eq!(again.encode(), printed, "printing is stable");
});
