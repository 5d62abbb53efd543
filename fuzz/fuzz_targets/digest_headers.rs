//! Any text parsed as a digest challenge or credentials: no panic; what parses prints to a
//! header value that parses to the same thing, and a challenge can be answered or refused.
#![no_main]

use happ_sip::digest::{Challenge, Credentials, DigestClient, Login, RequestParts};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(c) = Challenge::parse(text) {
        assert_eq!(Challenge::parse(&c.to_string()).as_ref(), Ok(&c), "challenge round trip");
        let request = RequestParts { method: "REGISTER", uri: "sip:example.test", body: b"" };
        let _ = DigestClient::new().respond(&c, &request, &Login { username: "u", password: "p" }, "cnonce");
    }
    if let Ok(c) = Credentials::parse(text) {
        assert_eq!(Credentials::parse(&c.to_string()).as_ref(), Ok(&c), "credentials round trip");
    }
    let _ = Challenge::select(text.split('\n'));
});
