//! Our parser against rsip 0.4, the message model the issue named: on every message of the
//! corpus that rsip parses, the two agree on the fields a user agent routes by; and the valid
//! messages rsip rejects are exactly the kinds the README gives as the reason for parsing SIP
//! ourselves (tel: and IPv6 Request-URIs, folded header lines).

use happ_sip::message::{Message, parse};
use rsip::prelude::{HeadersExt, ToTypedHeader, UntypedHeader};

const CORPUS: &[(&str, &str)] = &[
    (
        "basic INVITE",
        "INVITE sip:+380501234567@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@127.0.0.1>;tag=abc\r\nTo: <sip:+380501234567@127.0.0.1>\r\nCall-ID: 1@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.1:5061>\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n",
    ),
    (
        "compact forms",
        "INVITE sip:bob@example.com SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nf: <sip:a@b>;tag=1\r\nt: <sip:bob@example.com>\r\ni: x@y\r\nCSeq: 1 INVITE\r\nm: <sip:a@10.0.0.1>\r\nl: 0\r\n\r\n",
    ),
    (
        "two Vias in one header",
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1, SIP/2.0/TCP 10.0.0.2:5070;branch=z9hG4bK2;received=1.2.3.4\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:bob@example.com>;tag=2\r\nCall-ID: x@y\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "lower case, spaces",
        "OPTIONS sip:x@y SIP/2.0\r\nvia:SIP/2.0/UDP   10.0.0.1:5060 ; branch=z9hG4bKa\r\nfrom:<sip:a@b>;tag=1\r\nto:<sip:x@y>\r\ncall-id:abc\r\ncseq:  7   OPTIONS\r\ncontent-length:0\r\n\r\n",
    ),
    (
        "digest challenge",
        "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: x@y\r\nCSeq: 1 REGISTER\r\nWWW-Authenticate: Digest realm=\"b\", nonce=\"abc\", qop=\"auth,auth-int\", algorithm=SHA-256, stale=TRUE\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "extension method and header",
        "SUBSCRIBE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: x@y\r\nCSeq: 1 SUBSCRIBE\r\nX-Custom: hello world\r\nEvent: presence\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "unquoted display name",
        "INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: Alice Smith <sip:a@b>;tag=1\r\nTo: sip:x@y\r\nCall-ID: x@y\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "routes, sips, params",
        "INVITE sips:bob@example.com;transport=tcp;lr SIP/2.0\r\nVia: SIP/2.0/TLS 10.0.0.1;branch=z9hG4bK1\r\nRoute: <sip:proxy.example.com;lr>, <sip:p2.example.com;lr>\r\nRecord-Route: <sip:rr@1.2.3.4;lr;ftag=abc>\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sips:bob@example.com>\r\nCall-ID: x@y\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "tel Request-URI",
        "INVITE tel:+380501234567 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <tel:+380501234567>\r\nCall-ID: x@y\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "IPv6 Request-URI",
        "OPTIONS sip:[2001:db8::10]:5070 SIP/2.0\r\nVia: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKa\r\nFrom: <sip:a@[2001:db8::1]>;tag=1\r\nTo: <sip:x@[2001:db8::10]>\r\nCall-ID: abc\r\nCSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    ),
    (
        "folded header",
        "OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nSubject: I know you're there,\r\n  pick up the phone\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: x@y\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    ),
];

/// The corpus entries rsip 0.4 rejects although they are valid.
const RSIP_REJECTS: &[&str] = &["tel Request-URI", "IPv6 Request-URI", "folded header"];
/// The entries rsip parses but misreads: it does not know compact header names (`i:` for
/// Call-ID, `v:` for Via...), so the mandatory headers are missing from its view.
const RSIP_MISREADS: &[&str] = &["compact forms"];
/// Fields rsip reads wrongly, with the right value (which we read): RFC 3261 allows whitespace
/// around the `;` of parameters (SEMI = SWS ";" SWS), which loses rsip the Via branch, and so
/// transaction matching.
const RSIP_WRONG_FIELDS: &[(&str, &str, &str)] = &[("lower case, spaces", "Via branch", "z9hG4bKa")];

#[test]
fn agree_with_rsip_where_it_parses() {
    let mut rejected = Vec::new();
    let mut misread = Vec::new();
    let mut wrong = Vec::new();
    for (name, text) in CORPUS {
        let ours = parse(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: we reject a valid message: {e}"));
        let theirs = match rsip::SipMessage::try_from(text.as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                rejected.push(*name);
                continue;
            }
        };
        let h = ours.headers();
        let Ok(call_id) = theirs.call_id_header() else {
            misread.push(*name);
            continue;
        };
        assert_eq!(h.call_id().expect("call-id"), call_id.value(), "{name}");
        let cseq = theirs.cseq_header().expect("cseq").typed().expect("typed cseq");
        assert_eq!(h.cseq().expect("cseq").seq, cseq.seq, "{name}");
        assert_eq!(h.cseq().expect("cseq").method.as_str(), cseq.method.to_string(), "{name}");
        let via = theirs.via_header().expect("via").typed().expect("typed via");
        let (our_branch, their_branch) = (h.top_via().expect("via").branch().map(str::to_owned), via.branch().map(|b| b.to_string()));
        if our_branch != their_branch {
            wrong.push((*name, "Via branch", our_branch.unwrap_or_default()));
        }
        let from = theirs.from_header().expect("from").typed().expect("typed from");
        assert_eq!(h.from().expect("from").tag(), from.tag().map(|t| t.to_string()).as_deref(), "{name}");
        let to = theirs.to_header().expect("to").typed().expect("typed to");
        assert_eq!(h.to().expect("to").tag(), to.tag().map(|t| t.to_string()).as_deref(), "{name}");
        match (&ours, &theirs) {
            (Message::Request(a), rsip::SipMessage::Request(b)) => {
                assert_eq!(a.method.as_str(), b.method.to_string(), "{name}");
                assert_eq!(a.uri.user.as_deref(), b.uri.auth.as_ref().map(|a| a.user.as_str()), "{name}");
            }
            (Message::Response(a), rsip::SipMessage::Response(b)) => {
                assert_eq!(a.status, u16::from(b.status_code.clone()), "{name}");
            }
            _ => panic!("{name}: request/response mismatch"),
        }
    }
    assert_eq!(rejected, RSIP_REJECTS);
    assert_eq!(misread, RSIP_MISREADS);
    let expected: Vec<(&str, &str, String)> = RSIP_WRONG_FIELDS.iter().map(|(n, f, v)| (*n, *f, (*v).to_owned())).collect();
    assert_eq!(wrong, expected);
}
