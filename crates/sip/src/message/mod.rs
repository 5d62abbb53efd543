//! SIP messages (RFC 3261 §7): parsing, typed header access and printing.
//!
//! We parse and print messages ourselves rather than with `rsip` 0.4, because rsip rejects
//! valid messages at its core: any request whose Request-URI is a `tel:` URI or has an IPv6
//! host, and any message with a folded header line, fails to parse at all; and it does not know
//! the compact header names (`i:`, `v:`...), so a compact message loses its Call-ID and Vias.
//! See the README and the differential test `tests/rsip_differential.rs`, which checks that we
//! agree with rsip on everything rsip does read.
//!
//! Parsing is lenient where RFC 3261 asks for robustness (compact header names, any case,
//! whitespace around separators, folded lines, CRLFs before the start line, LF-only line
//! endings) and strict where a wrong guess would misroute a call (the start line, Content-Length
//! against the bytes received).

mod addr;
mod headers;
mod text;
mod uri;

use std::fmt;

pub use addr::{CSeq, Method, NameAddr, Transport, Via};
pub use headers::{Header, HeaderName, Headers};
pub use text::Params;
pub use uri::{Host, Scheme, Uri};

/// Why bytes are not a valid SIP message, in words fit for a 400 reason phrase and a log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    reason: String,
    /// A request whose head parsed but whose body did not (shorter than its Content-Length,
    /// or a bad Content-Length), without the body: enough to answer it with a 400, as
    /// RFC 3261 §18.3 asks for requests (a bad response is discarded).
    head: Option<Box<Request>>,
}

impl ParseError {
    pub(crate) fn new(reason: impl Into<String>) -> ParseError {
        ParseError { reason: reason.into(), head: None }
    }

    /// The reason.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The request without its body, when only the body was at fault.
    pub fn request_head(&self) -> Option<&Request> {
        self.head.as_deref()
    }
}

/// Largest message accepted (a UDP datagram cannot be larger; over TCP this bounds memory).
pub const MAX_MESSAGE: usize = 65_535;

/// A SIP request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI.
    pub uri: Uri,
    /// The headers.
    pub headers: Headers,
    /// The body.
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code (100-699).
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The headers.
    pub headers: Headers,
    /// The body.
    pub body: Vec<u8>,
}

/// A request or a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// The headers.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    /// The message as bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.encode(),
            Message::Response(r) => r.encode(),
        }
    }
}

/// Where the header block of `bytes` ends: the offset of the body.
pub(crate) fn header_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Parses a whole message (a datagram, or a message already framed off a stream).
///
/// The body is as long as Content-Length says; bytes beyond it are discarded (RFC 3261 §18.3),
/// and a body shorter than it is an error. Without Content-Length, the body is the rest.
pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(ParseError::new("message too large"));
    }
    // CRLFs before the start line are ignored (RFC 3261 §7.5).
    let skip = bytes.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
    let bytes = &bytes[skip..];
    let end = header_end(bytes).ok_or_else(|| ParseError::new("no end of headers (truncated message?)"))?;
    let head = std::str::from_utf8(&bytes[..end]).map_err(|_| ParseError::new("headers are not UTF-8"))?;
    let mut lines: Vec<String> = Vec::new();
    for raw in head.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.starts_with(' ') || line.starts_with('\t') {
            // A folded continuation (RFC 3261 §7.3.1) joins the previous line.
            let prev = lines.last_mut().ok_or_else(|| ParseError::new("continuation before the start line"))?;
            prev.push(' ');
            prev.push_str(line.trim());
        } else if !line.is_empty() {
            lines.push(line.to_owned());
        }
    }
    let (start, header_lines) = lines.split_first().ok_or_else(|| ParseError::new("empty message"))?;
    let mut headers = Headers::new();
    for line in header_lines {
        let (name, value) = line.split_once(':').ok_or_else(|| ParseError::new(format!("header line without ':' {line:?}")))?;
        let name = name.trim_end();
        if !text::is_token(name) {
            return Err(ParseError::new(format!("bad header name {name:?}")));
        }
        headers.push(HeaderName::parse(name), value.trim());
    }
    let rest = &bytes[end..];
    let body = match headers.get(&HeaderName::ContentLength) {
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n <= rest.len() => Ok(rest[..n].to_vec()),
            Ok(n) => Err(format!("body shorter than Content-Length ({} < {n})", rest.len())),
            Err(_) => Err(format!("bad Content-Length {v:?}")),
        },
        None => Ok(rest.to_vec()),
    };
    match body {
        Ok(body) => parse_start(start, headers, body),
        Err(reason) => {
            let head = match parse_start(start, headers, Vec::new()) {
                Ok(Message::Request(r)) => Some(Box::new(r)),
                _ => None,
            };
            Err(ParseError { reason, head })
        }
    }
}

fn parse_start(start: &str, headers: Headers, body: Vec<u8>) -> Result<Message, ParseError> {
    if let Some(rest) = start.strip_prefix("SIP/") {
        let (version, rest) = rest.split_once(' ').ok_or_else(|| ParseError::new(format!("bad status line {start:?}")))?;
        if version != "2.0" {
            return Err(ParseError::new(format!("unsupported SIP version {version:?}")));
        }
        let rest = rest.trim_start();
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let status: u16 = code.parse().map_err(|_| ParseError::new(format!("bad status code {code:?}")))?;
        if !(100..=699).contains(&status) {
            return Err(ParseError::new(format!("status code {status} out of range")));
        }
        return Ok(Message::Response(Response { status, reason: reason.trim().to_owned(), headers, body }));
    }
    let mut parts = start.split(' ').filter(|p| !p.is_empty());
    let (Some(method), Some(uri), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(ParseError::new(format!("bad request line {start:?}")));
    };
    if version != "SIP/2.0" {
        return Err(ParseError::new(format!("unsupported SIP version {version:?}")));
    }
    let method = Method::parse(method)?;
    let uri = Uri::parse(uri)?;
    Ok(Message::Request(Request { method, uri, headers, body }))
}

fn write_headers(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    for h in headers.iter().filter(|h| h.name != HeaderName::ContentLength) {
        out.extend_from_slice(h.name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
}

impl Request {
    /// The request as bytes; Content-Length is set from the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(format!("{} {} SIP/2.0\r\n", self.method, self.uri).as_bytes());
        write_headers(&mut out, &self.headers, &self.body);
        out
    }

    /// Checks the headers every request must have (RFC 3261 §8.1.1): To, From, CSeq (matching
    /// the method), Call-ID, Max-Forwards (tolerated when absent) and Via.
    pub fn validate(&self) -> Result<(), ParseError> {
        let h = &self.headers;
        h.from()?;
        h.to()?;
        h.call_id()?;
        let cseq = h.cseq()?;
        if cseq.method != self.method && !(self.method == Method::Ack && cseq.method == Method::Invite) {
            return Err(ParseError::new(format!("CSeq method {} does not match {}", cseq.method, self.method)));
        }
        h.top_via()?;
        Ok(())
    }
}

impl Response {
    /// The response as bytes; Content-Length is set from the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(format!("SIP/2.0 {} {}\r\n", self.status, self.reason).as_bytes());
        write_headers(&mut out, &self.headers, &self.body);
        out
    }

    /// Whether this is a provisional (1xx) response.
    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }

    /// A response to `req` (RFC 3261 §8.2.6.2): its Vias, From, To, Call-ID and CSeq, with a
    /// To tag added when one is given and the request had none.
    pub fn for_request(req: &Request, status: u16, reason: &str, to_tag: Option<&str>) -> Response {
        let mut headers = Headers::new();
        for v in req.headers.get_all(&HeaderName::Via) {
            headers.push(HeaderName::Via, v);
        }
        for name in [HeaderName::From, HeaderName::To, HeaderName::CallId, HeaderName::CSeq] {
            if let Some(v) = req.headers.get(&name) {
                let mut value = v.to_owned();
                if name == HeaderName::To
                    && let Some(tag) = to_tag
                    && status > 100
                    && req.headers.to().is_ok_and(|t| t.tag().is_none())
                {
                    value.push_str(";tag=");
                    value.push_str(tag);
                }
                headers.push(name, value);
            }
        }
        Response { status, reason: reason.to_owned(), headers, body: Vec::new() }
    }
}

/// The default reason phrase of a status code (RFC 3261 §21 and extensions).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Unknown",
    }
}

impl Headers {
    /// Every Via entry, top first.
    pub fn vias(&self) -> Result<Vec<Via>, ParseError> {
        self.get_all(&HeaderName::Via).flat_map(text::split_list).map(Via::parse).collect()
    }

    /// Replaces the top Via entry (the first entry of the first Via header), keeping the others.
    pub fn set_top_via(&mut self, via: &Via) {
        if let Some(first) = self.first_mut(&HeaderName::Via) {
            let rest: Vec<String> = text::split_list(&first.value).skip(1).map(str::to_owned).collect();
            first.value = std::iter::once(via.to_string()).chain(rest).collect::<Vec<_>>().join(", ");
        }
    }

    /// The top Via entry.
    pub fn top_via(&self) -> Result<Via, ParseError> {
        let first = self.get(&HeaderName::Via).ok_or_else(|| ParseError::new("missing Via"))?;
        let entry = text::split_list(first).next().ok_or_else(|| ParseError::new("empty Via"))?;
        Via::parse(entry)
    }

    /// The From header.
    pub fn from(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.get(&HeaderName::From).ok_or_else(|| ParseError::new("missing From"))?)
    }

    /// The To header.
    pub fn to(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.get(&HeaderName::To).ok_or_else(|| ParseError::new("missing To"))?)
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Result<&str, ParseError> {
        self.get(&HeaderName::CallId).filter(|v| !v.is_empty()).ok_or_else(|| ParseError::new("missing Call-ID"))
    }

    /// The CSeq.
    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        CSeq::parse(self.get(&HeaderName::CSeq).ok_or_else(|| ParseError::new("missing CSeq"))?)
    }

    /// Entries of a list of name-addrs (Contact, Route, Record-Route), in order. A Contact of
    /// `*` gives no entries.
    pub fn name_addrs(&self, name: &HeaderName) -> Result<Vec<NameAddr>, ParseError> {
        self.get_all(name).flat_map(text::split_list).filter(|e| *e != "*").map(NameAddr::parse).collect()
    }

    /// Max-Forwards, when present and numeric.
    pub fn max_forwards(&self) -> Option<u32> {
        self.get(&HeaderName::MaxForwards)?.trim().parse().ok()
    }

    /// A numeric header (Expires, Min-Expires, Retry-After's first number).
    pub fn number(&self, name: &HeaderName) -> Option<u32> {
        let v = self.get(name)?;
        v.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    }

    /// The media type of the body, lower-cased, without parameters.
    pub fn content_type(&self) -> Option<String> {
        let v = self.get(&HeaderName::ContentType)?;
        Some(v.split(';').next().unwrap_or(v).trim().to_ascii_lowercase())
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.encode()))
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.encode()))
    }
}

#[cfg(test)]
mod tests;
