//! Where the client connects: the Engine.IO URL and the handshake headers.

use std::fmt::Write as _;

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::header::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::http::{Uri, uri::Scheme};

use super::ClientError;

/// The WebSocket URL and headers of every connection attempt, checked once.
#[derive(Clone)]
pub(crate) struct Target {
    /// `ws(s)://host[:port]/path/?EIO=4&transport=websocket[&k=v…]`.
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Whether the URL is `wss`.
    pub(crate) tls: bool,
    /// Host and path, for logs (the query may hold tokens).
    pub(crate) display: String,
}

impl Target {
    /// Builds the URL from a base (`ws://`, `wss://`, `http://` or `https://` and an authority,
    /// no path or query), the Engine.IO path and extra query parameters.
    pub(crate) fn new(base: &str, path: &str, query: &[(String, String)], headers: &[(String, String)]) -> Result<Target, ClientError> {
        let uri: Uri = base.parse().map_err(|e| ClientError::Url(format!("{base:?}: {e}")))?;
        let tls = match uri.scheme().map(Scheme::as_str) {
            Some("ws" | "http") => false,
            Some("wss" | "https") => true,
            _ => return Err(ClientError::Url(format!("{base:?}: the scheme must be ws, wss, http or https"))),
        };
        let authority = uri.authority().ok_or_else(|| ClientError::Url(format!("{base:?}: no host")))?;
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(ClientError::Url(format!("{base:?}: give the path in `path` and parameters in `query`")));
        }
        if !path.starts_with('/') || path.contains(['?', '#']) {
            return Err(ClientError::Url(format!("path {path:?} must start with '/' and hold no query")));
        }
        // Engine.IO servers match the path with a trailing slash (`/socket.io/`), as the
        // reference client sends it.
        let slash = if path.ends_with('/') { "" } else { "/" };
        let mut url = format!("{}://{authority}{path}{slash}?EIO=4&transport=websocket", if tls { "wss" } else { "ws" });
        for (k, v) in query {
            url.push('&');
            percent_encode(&mut url, k);
            url.push('=');
            percent_encode(&mut url, v);
        }
        let headers = headers
            .iter()
            .map(|(k, v)| {
                let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| ClientError::Header(k.clone()))?;
                let mut value = HeaderValue::from_str(v).map_err(|_| ClientError::Header(k.clone()))?;
                // Headers carry tokens: keep them out of Debug output.
                value.set_sensitive(true);
                Ok((name, value))
            })
            .collect::<Result<Vec<_>, ClientError>>()?;
        let target = Target { display: format!("{authority}{path}"), url, headers, tls };
        target.request()?;
        Ok(target)
    }

    /// The handshake request of one attempt.
    pub(crate) fn request(&self) -> Result<Request, ClientError> {
        let mut request = self.url.as_str().into_client_request().map_err(|e| ClientError::Url(e.to_string()))?;
        for (name, value) in &self.headers {
            request.headers_mut().append(name.clone(), value.clone());
        }
        Ok(request)
    }

    #[cfg(test)]
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent_encode(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn builds_the_engine_io_url() {
        let t = Target::new("wss://api.happ.tools", "/ws", &pairs(&[("token", "a b&c=d/é")]), &[]).unwrap();
        assert_eq!(t.url(), "wss://api.happ.tools/ws/?EIO=4&transport=websocket&token=a%20b%26c%3Dd%2F%C3%A9");
        assert!(t.tls);
        assert_eq!(t.display, "api.happ.tools/ws");
        let t = Target::new("http://127.0.0.1:8080/", "/socket.io/", &[], &[]).unwrap();
        assert_eq!(t.url(), "ws://127.0.0.1:8080/socket.io/?EIO=4&transport=websocket");
        assert!(!t.tls);
    }

    #[test]
    fn adds_headers_to_the_request() {
        let t = Target::new("ws://h", "/ws/", &[], &pairs(&[("Authorization", "Bearer x"), ("X-Tenant", "t")])).unwrap();
        let r = t.request().unwrap();
        assert_eq!(r.headers()["authorization"], "Bearer x");
        assert_eq!(r.headers()["x-tenant"], "t");
        assert!(!format!("{:?}", r.headers()).contains("Bearer x"));
    }

    #[test]
    fn refuses_bad_targets() {
        assert!(matches!(Target::new("ftp://h", "/ws", &[], &[]), Err(ClientError::Url(_))));
        assert!(matches!(Target::new("h", "/ws", &[], &[]), Err(ClientError::Url(_))));
        assert!(matches!(Target::new("ws://h/ws", "/ws", &[], &[]), Err(ClientError::Url(_))));
        assert!(matches!(Target::new("ws://h?a=1", "/ws", &[], &[]), Err(ClientError::Url(_))));
        assert!(matches!(Target::new("ws://h", "ws", &[], &[]), Err(ClientError::Url(_))));
        assert!(matches!(Target::new("ws://h", "/ws", &[], &pairs(&[("bad header", "v")])), Err(ClientError::Header(_))));
        assert!(matches!(Target::new("ws://h", "/ws", &[], &pairs(&[("x", "bad\nvalue")])), Err(ClientError::Header(_))));
    }
}
