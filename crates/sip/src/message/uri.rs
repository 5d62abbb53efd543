//! SIP, SIPS (RFC 3261 §19.1) and tel (RFC 3966) URIs.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::ParseError;
use super::text::Params;

/// A URI scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:` (TLS to the target).
    Sips,
    /// `tel:` (a telephone number, RFC 3966).
    Tel,
}

impl Scheme {
    /// The scheme as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
        }
    }
}

/// The host of a URI or a Via.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A domain name, lower-cased.
    Name(String),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address (written in brackets).
    V6(Ipv6Addr),
}

impl Host {
    /// Parses a host: `[v6]`, a dotted IPv4 address, or a domain name.
    pub fn parse(s: &str) -> Result<Host, ParseError> {
        let s = s.trim();
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or_else(|| ParseError::new(format!("unclosed IPv6 reference {s:?}")))?;
            return inner.parse().map(Host::V6).map_err(|_| ParseError::new(format!("bad IPv6 address {s:?}")));
        }
        if let Ok(v4) = s.parse::<Ipv4Addr>() {
            return Ok(Host::V4(v4));
        }
        let valid = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if !valid {
            return Err(ParseError::new(format!("bad host {s:?}")));
        }
        Ok(Host::Name(s.to_ascii_lowercase()))
    }

    /// The address, when the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::V4(a) => Some(IpAddr::V4(*a)),
            Host::V6(a) => Some(IpAddr::V6(*a)),
            Host::Name(_) => None,
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Host {
        match ip {
            IpAddr::V4(a) => Host::V4(a),
            IpAddr::V6(a) => Host::V6(a),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Splits `host[:port]`, with the host possibly a bracketed IPv6 reference.
pub(crate) fn split_host_port(s: &str) -> Result<(Host, Option<u16>), ParseError> {
    let s = s.trim();
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']').ok_or_else(|| ParseError::new(format!("unclosed IPv6 reference {s:?}")))?;
        let rest = &s[end + 1..];
        let port = match rest.strip_prefix(':') {
            Some(p) => Some(p),
            None if rest.is_empty() => None,
            None => return Err(ParseError::new(format!("junk after IPv6 reference {s:?}"))),
        };
        (&s[..=end], port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.trim().parse::<u16>().map_err(|_| ParseError::new(format!("bad port in {s:?}")))?),
        None => None,
    };
    Ok((Host::parse(host)?, port))
}

/// A SIP, SIPS or tel URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri {
    /// The scheme.
    pub scheme: Scheme,
    /// The user part (for `tel:`, the number).
    pub user: Option<String>,
    /// A password in the user info (deprecated by RFC 3261, kept to print back).
    pub password: Option<String>,
    /// The host (none for `tel:`).
    pub host: Option<Host>,
    /// The port.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`).
    pub params: Params,
    /// Headers (`?subject=x`), kept as written.
    pub headers: Option<String>,
}

impl Uri {
    /// A `sip:` URI for `user@host:port`.
    pub fn sip(user: Option<&str>, host: Host, port: Option<u16>) -> Uri {
        Uri { scheme: Scheme::Sip, user: user.map(str::to_owned), password: None, host: Some(host), port, params: Params::new(), headers: None }
    }

    /// Parses a URI.
    pub fn parse(s: &str) -> Result<Uri, ParseError> {
        let s = s.trim();
        let (scheme, rest) = s.split_once(':').ok_or_else(|| ParseError::new(format!("URI without a scheme {s:?}")))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "sip" => Scheme::Sip,
            "sips" => Scheme::Sips,
            "tel" => Scheme::Tel,
            other => return Err(ParseError::new(format!("unsupported URI scheme {other:?}"))),
        };
        if scheme == Scheme::Tel {
            let (number, params) = rest.split_once(';').unwrap_or((rest, ""));
            let valid = !number.is_empty() && number.chars().all(|c| c.is_ascii_hexdigit() || "+-.()*#pPwW".contains(c));
            if !valid {
                return Err(ParseError::new(format!("bad telephone number {number:?}")));
            }
            return Ok(Uri { scheme, user: Some(number.to_owned()), password: None, host: None, port: None, params: Params::parse(params), headers: None });
        }
        let (rest, headers) = match rest.split_once('?') {
            Some((r, h)) => (r, Some(h.to_owned())),
            None => (rest, None),
        };
        // The user info ends at the last '@' (it may itself hold ';' and other reserved
        // characters, RFC 3261 §25.1 user-unreserved).
        let (userinfo, hostpart) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
                None => (Some(u.to_owned()), None),
            },
            None => (None, None),
        };
        if user.as_deref() == Some("") {
            return Err(ParseError::new(format!("empty user part in {s:?}")));
        }
        let (hostport, params) = hostpart.split_once(';').unwrap_or((hostpart, ""));
        let (host, port) = split_host_port(hostport)?;
        Ok(Uri { scheme, user, password, host: Some(host), port, params: Params::parse(params), headers })
    }

    /// The host's socket address when the host is an IP address (`default_port` when the URI
    /// has none).
    pub fn socket_addr(&self, default_port: u16) -> Option<SocketAddr> {
        let ip = self.host.as_ref()?.ip()?;
        Some(SocketAddr::new(ip, self.port.unwrap_or(default_port)))
    }

    /// The `transport` parameter, lower-cased.
    pub fn transport(&self) -> Option<String> {
        self.params.value("transport").map(str::to_ascii_lowercase)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme.as_str())?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            if self.host.is_some() {
                f.write_str("@")?;
            }
        }
        if let Some(host) = &self.host {
            write!(f, "{host}")?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uris() {
        let u = Uri::parse("sip:+380501234567@Sip.Provider.COM:5080;transport=TCP;lr?subject=hi").expect("valid");
        assert_eq!(u.user.as_deref(), Some("+380501234567"));
        assert_eq!(u.host, Some(Host::Name("sip.provider.com".into())));
        assert_eq!(u.port, Some(5080));
        assert_eq!(u.transport().as_deref(), Some("tcp"));
        assert!(u.params.has("lr"));
        assert_eq!(u.headers.as_deref(), Some("subject=hi"));
        assert_eq!(u.to_string(), "sip:+380501234567@sip.provider.com:5080;transport=TCP;lr?subject=hi");
    }

    #[test]
    fn ipv6_and_ipv4_hosts() {
        let u = Uri::parse("sip:alice@[2001:db8::10]:5070").expect("valid");
        assert_eq!(u.socket_addr(5060), Some("[2001:db8::10]:5070".parse().expect("addr")));
        assert_eq!(u.to_string(), "sip:alice@[2001:db8::10]:5070");
        let u = Uri::parse("sip:[::1]").expect("valid");
        assert_eq!(u.socket_addr(5060), Some("[::1]:5060".parse().expect("addr")));
        let u = Uri::parse("sips:10.0.0.1").expect("valid");
        assert_eq!((u.scheme, u.socket_addr(5061)), (Scheme::Sips, Some("10.0.0.1:5061".parse().expect("addr"))));
    }

    #[test]
    fn user_part_with_reserved_characters() {
        // RFC 4475 §3.1.1.1 style: parameters and escapes inside the user part.
        let u = Uri::parse("sip:vivekg;day=tuesday@chair-dnrc.example.com;maddr=1.2.3.4").expect("valid");
        assert_eq!(u.user.as_deref(), Some("vivekg;day=tuesday"));
        assert_eq!(u.params.value("maddr"), Some("1.2.3.4"));
        let u = Uri::parse("sip:user:secret@host").expect("valid");
        assert_eq!((u.user.as_deref(), u.password.as_deref()), (Some("user"), Some("secret")));
    }

    #[test]
    fn tel_uris() {
        let u = Uri::parse("tel:+380501234567;phone-context=example.com").expect("valid");
        assert_eq!((u.scheme, u.user.as_deref(), u.host.as_ref()), (Scheme::Tel, Some("+380501234567"), None));
        assert_eq!(u.to_string(), "tel:+380501234567;phone-context=example.com");
    }

    #[test]
    fn bad_uris() {
        for s in ["", "alice@host", "http://x", "sip:", "sip:@host", "sip:host:99999", "sip:[::1", "sip:a b", "tel:", "tel:abc@"] {
            assert!(Uri::parse(s).is_err(), "{s:?}");
        }
    }
}
