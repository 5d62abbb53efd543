//! Building our requests: Via, Contact and the headers every request carries.

use std::net::{IpAddr, SocketAddr};

use super::Endpoint;
use crate::message::{HeaderName, Headers, Host, Method, NameAddr, Request, Transport, Uri, Via};

/// The methods we accept (the Allow header).
pub(crate) const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE";

/// The extensions we support (the Supported header): session timers (RFC 4028).
pub(crate) const SUPPORTED: &str = "timer";

impl Endpoint {
    /// The address we advertise: the configured public address, or the local one.
    pub(crate) fn advertised(&self) -> SocketAddr {
        SocketAddr::new(self.config.public.unwrap_or(self.config.local.ip()), self.config.local.port())
    }

    /// A fresh Via for a request over `transport`, sent from `sent_by`, asking for `rport`.
    pub(crate) fn via(&mut self, transport: &Transport, sent_by: SocketAddr) -> Via {
        let mut via = Via { transport: transport.clone(), host: Host::from(sent_by.ip()), port: Some(sent_by.port()), params: Default::default() };
        via.params.set("branch", Some(&self.ids.branch()));
        via.params.set("rport", None);
        via
    }

    /// Our Contact for `user` at `at`.
    pub(crate) fn contact(&self, user: &str, at: SocketAddr, transport: &Transport) -> NameAddr {
        let mut uri = Uri::sip(Some(user), host_of(at.ip()), Some(at.port()));
        if *transport != Transport::Udp {
            uri.params.set("transport", Some(&transport.as_str().to_ascii_lowercase()));
        }
        NameAddr::new(uri)
    }

    /// A request with the headers every request has (RFC 3261 §8.1.1), in the usual order.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn request(&mut self, method: Method, uri: Uri, via: &Via, from: &NameAddr, to: &NameAddr, call_id: &str, cseq: u32) -> Request {
        let mut headers = Headers::new();
        headers.push(HeaderName::Via, via.to_string());
        headers.push(HeaderName::MaxForwards, "70");
        headers.push(HeaderName::From, from.to_string());
        headers.push(HeaderName::To, to.to_string());
        headers.push(HeaderName::CallId, call_id);
        headers.push(HeaderName::CSeq, format!("{cseq} {method}"));
        headers.push(HeaderName::UserAgent, self.config.user_agent.clone());
        Request { method, uri, headers, body: Vec::new() }
    }
}

/// The host of an address.
pub(crate) fn host_of(ip: IpAddr) -> Host {
    Host::from(ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::EndpointConfig;

    #[test]
    fn via_and_contact() {
        let mut ep = Endpoint::new(EndpointConfig {
            local: "10.0.0.5:5070".parse().expect("addr"),
            public: Some("203.0.113.7".parse().expect("ip")),
            ..Default::default()
        });
        let at = ep.advertised();
        assert_eq!(at.to_string(), "203.0.113.7:5070");
        let via = ep.via(&Transport::Udp, at);
        let text = via.to_string();
        assert!(text.starts_with("SIP/2.0/UDP 203.0.113.7:5070;branch=z9hG4bK") && text.ends_with(";rport"), "{text}");
        assert_eq!(ep.contact("1001", at, &Transport::Tcp).to_string(), "<sip:1001@203.0.113.7:5070;transport=tcp>");
    }
}
