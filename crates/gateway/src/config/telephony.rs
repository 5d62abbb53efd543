//! The `telephonyUrl` of a phone: where its registrar or proxy is.

use std::fmt;

use happ_sip::message::{Host, Transport};

/// A parsed `telephonyUrl`: `[sip:]host[:port][;transport=udp|tcp]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelephonyUrl {
    /// Host name or address.
    pub host: Host,
    /// Port; when absent, DNS SRV decides (RFC 3263), else 5060.
    pub port: Option<u16>,
    /// Transport; UDP unless given.
    pub transport: Transport,
    /// Whether the transport was given (RFC 3263: then SRV is looked up for it only).
    pub explicit_transport: bool,
}

impl TelephonyUrl {
    /// Parses a `telephonyUrl`.
    pub fn parse(s: &str) -> Result<TelephonyUrl, String> {
        let text = s.trim();
        let text = text.strip_prefix("sip:").unwrap_or(text);
        if text.starts_with("sips:") {
            return Err("sips: (TLS) is not supported yet; use sip: with UDP or TCP".into());
        }
        let mut parts = text.split(';');
        let hostport = parts.next().unwrap_or_default();
        let mut transport = Transport::Udp;
        let mut explicit = false;
        for param in parts {
            match param.split_once('=') {
                Some((k, v)) if k.trim().eq_ignore_ascii_case("transport") => {
                    transport = match v.trim().to_ascii_lowercase().as_str() {
                        "udp" => Transport::Udp,
                        "tcp" => Transport::Tcp,
                        other => return Err(format!("transport {other:?} is not supported (udp or tcp)")),
                    };
                    explicit = true;
                }
                _ => return Err(format!("unknown parameter {param:?} (only transport=udp|tcp)")),
            }
        }
        if hostport.is_empty() || hostport.contains('@') || hostport.contains('/') {
            return Err(format!("{s:?} is not host[:port][;transport=udp|tcp]"));
        }
        let uri = happ_sip::message::Uri::parse(&format!("sip:{hostport}")).map_err(|e| format!("{s:?}: {e}"))?;
        let host = uri.host.ok_or_else(|| format!("{s:?} has no host"))?;
        Ok(TelephonyUrl { host, port: uri.port, transport, explicit_transport: explicit })
    }
}

impl fmt::Display for TelephonyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, ";transport={}", self.transport.as_str().to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let t = TelephonyUrl::parse("sip.provider.com").expect("valid");
        assert_eq!((t.port, &t.transport, t.explicit_transport), (None, &Transport::Udp, false));
        let t = TelephonyUrl::parse("sip:10.0.0.1:5080;transport=TCP").expect("valid");
        assert_eq!((t.host.to_string().as_str(), t.port, &t.transport), ("10.0.0.1", Some(5080), &Transport::Tcp));
        let t = TelephonyUrl::parse("[2001:db8::1]:5060").expect("valid");
        assert_eq!(t.to_string(), "[2001:db8::1]:5060;transport=udp");
        for bad in ["", "user@host", "host;transport=tls", "host;foo=bar", "sips:host", "host:99999", "http://x"] {
            assert!(TelephonyUrl::parse(bad).is_err(), "{bad:?}");
        }
    }
}
