//! Header names (with RFC 3261 §7.3.3 compact forms) and the ordered header list.

use std::fmt;

/// A header name. Known names are matched case-insensitively, compact forms included; others
/// are kept as received.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HeaderName {
    /// Via (compact `v`).
    Via,
    /// From (compact `f`).
    From,
    /// To (compact `t`).
    To,
    /// Call-ID (compact `i`).
    CallId,
    /// CSeq.
    CSeq,
    /// Contact (compact `m`).
    Contact,
    /// Max-Forwards.
    MaxForwards,
    /// Content-Length (compact `l`).
    ContentLength,
    /// Content-Type (compact `c`).
    ContentType,
    /// Route.
    Route,
    /// Record-Route.
    RecordRoute,
    /// Expires.
    Expires,
    /// Min-Expires.
    MinExpires,
    /// WWW-Authenticate.
    WwwAuthenticate,
    /// Proxy-Authenticate.
    ProxyAuthenticate,
    /// Authorization.
    Authorization,
    /// Proxy-Authorization.
    ProxyAuthorization,
    /// Allow.
    Allow,
    /// Supported (compact `k`).
    Supported,
    /// Require.
    Require,
    /// Unsupported.
    Unsupported,
    /// User-Agent.
    UserAgent,
    /// Server.
    Server,
    /// Accept.
    Accept,
    /// Retry-After.
    RetryAfter,
    /// Reason (RFC 3326).
    Reason,
    /// Session-Expires (RFC 4028, compact `x`).
    SessionExpires,
    /// Min-SE (RFC 4028).
    MinSe,
    /// Any other header.
    Other(String),
}

impl HeaderName {
    /// The name as we print it.
    pub fn as_str(&self) -> &str {
        match self {
            HeaderName::Via => "Via",
            HeaderName::From => "From",
            HeaderName::To => "To",
            HeaderName::CallId => "Call-ID",
            HeaderName::CSeq => "CSeq",
            HeaderName::Contact => "Contact",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::ContentType => "Content-Type",
            HeaderName::Route => "Route",
            HeaderName::RecordRoute => "Record-Route",
            HeaderName::Expires => "Expires",
            HeaderName::MinExpires => "Min-Expires",
            HeaderName::WwwAuthenticate => "WWW-Authenticate",
            HeaderName::ProxyAuthenticate => "Proxy-Authenticate",
            HeaderName::Authorization => "Authorization",
            HeaderName::ProxyAuthorization => "Proxy-Authorization",
            HeaderName::Allow => "Allow",
            HeaderName::Supported => "Supported",
            HeaderName::Require => "Require",
            HeaderName::Unsupported => "Unsupported",
            HeaderName::UserAgent => "User-Agent",
            HeaderName::Server => "Server",
            HeaderName::Accept => "Accept",
            HeaderName::RetryAfter => "Retry-After",
            HeaderName::Reason => "Reason",
            HeaderName::SessionExpires => "Session-Expires",
            HeaderName::MinSe => "Min-SE",
            HeaderName::Other(s) => s,
        }
    }

    /// The name of a received header line.
    pub fn parse(s: &str) -> HeaderName {
        let known = [
            HeaderName::Via,
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
            HeaderName::Contact,
            HeaderName::MaxForwards,
            HeaderName::ContentLength,
            HeaderName::ContentType,
            HeaderName::Route,
            HeaderName::RecordRoute,
            HeaderName::Expires,
            HeaderName::MinExpires,
            HeaderName::WwwAuthenticate,
            HeaderName::ProxyAuthenticate,
            HeaderName::Authorization,
            HeaderName::ProxyAuthorization,
            HeaderName::Allow,
            HeaderName::Supported,
            HeaderName::Require,
            HeaderName::Unsupported,
            HeaderName::UserAgent,
            HeaderName::Server,
            HeaderName::Accept,
            HeaderName::RetryAfter,
            HeaderName::Reason,
            HeaderName::SessionExpires,
            HeaderName::MinSe,
        ];
        if s.len() == 1 {
            let compact = match s.as_bytes()[0].to_ascii_lowercase() {
                b'v' => Some(HeaderName::Via),
                b'f' => Some(HeaderName::From),
                b't' => Some(HeaderName::To),
                b'i' => Some(HeaderName::CallId),
                b'm' => Some(HeaderName::Contact),
                b'l' => Some(HeaderName::ContentLength),
                b'c' => Some(HeaderName::ContentType),
                b'k' => Some(HeaderName::Supported),
                b'x' => Some(HeaderName::SessionExpires),
                _ => None,
            };
            if let Some(name) = compact {
                return name;
            }
        }
        known.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(s)).unwrap_or_else(|| HeaderName::Other(s.to_owned()))
    }

    /// Whether two names are the same header.
    pub fn matches(&self, other: &HeaderName) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Its name.
    pub name: HeaderName,
    /// Its value, trimmed, with line folding undone.
    pub value: String,
}

/// The headers of a message, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// The value of the first `name` header.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0.iter().find(|h| h.name.matches(name)).map(|h| h.value.as_str())
    }

    /// The values of every `name` header, in order.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |h| h.name.matches(name)).map(|h| h.value.as_str())
    }

    /// The first `name` header, to change in place.
    pub(crate) fn first_mut(&mut self, name: &HeaderName) -> Option<&mut Header> {
        self.0.iter_mut().find(|h| h.name.matches(name))
    }

    /// Whether a `name` header is present.
    pub fn has(&self, name: &HeaderName) -> bool {
        self.get(name).is_some()
    }

    /// Appends a header.
    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.push(Header { name, value: value.into() });
    }

    /// Inserts a header before all others (a Via added by a proxy, say).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.insert(0, Header { name, value: value.into() });
    }

    /// Replaces every `name` header by one with `value`, at the position of the first.
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter().position(|h| h.name.matches(&name)) {
            Some(i) => {
                self.0[i].value = value;
                let mut seen = false;
                self.0.retain(|h| {
                    if h.name.matches(&name) {
                        let keep = !seen;
                        seen = true;
                        keep
                    } else {
                        true
                    }
                });
            }
            None => self.push(name, value),
        }
    }

    /// Removes every `name` header.
    pub fn remove(&mut self, name: &HeaderName) {
        self.0.retain(|h| !h.name.matches(name));
    }

    /// Iterates the headers.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case_insensitive_names() {
        assert_eq!(HeaderName::parse("v"), HeaderName::Via);
        assert_eq!(HeaderName::parse("I"), HeaderName::CallId);
        assert_eq!(HeaderName::parse("call-id"), HeaderName::CallId);
        assert_eq!(HeaderName::parse("WWW-authenticate"), HeaderName::WwwAuthenticate);
        assert!(HeaderName::parse("X-Foo").matches(&HeaderName::Other("x-foo".into())));
        assert_eq!(HeaderName::parse("e"), HeaderName::Other("e".into()));
    }

    #[test]
    fn set_replaces_all_at_the_first_position() {
        let mut h = Headers::new();
        h.push(HeaderName::Via, "a");
        h.push(HeaderName::To, "t");
        h.push(HeaderName::Via, "b");
        h.set(HeaderName::Via, "c");
        assert_eq!(h.get_all(&HeaderName::Via).collect::<Vec<_>>(), vec!["c"]);
        assert_eq!(h.iter().next().map(|x| x.name.clone()), Some(HeaderName::Via));
        h.remove(&HeaderName::Via);
        assert_eq!(h.len(), 1);
    }
}
