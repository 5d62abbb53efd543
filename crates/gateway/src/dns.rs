//! Finding a phone's registrar from its `telephonyUrl` (RFC 3263 §4, for UDP and TCP).
//!
//! An IP address is used as is. A host with a port is looked up with A/AAAA. A host without a
//! port is looked up with SRV first (`_sip._udp` or `_sip._tcp` for the transport; both, UDP
//! first, when none was given), targets ordered by priority and then weight, with the SRV port;
//! without SRV records, A/AAAA on port 5060.

use std::net::{IpAddr, SocketAddr};

use happ_sip::message::{Host, Transport};
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};

use crate::config::TelephonyUrl;

/// A resolved next hop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Address.
    pub addr: SocketAddr,
    /// Transport.
    pub transport: Transport,
}

/// Resolves telephony URLs.
pub struct Dns {
    resolver: TokioResolver,
}

impl Dns {
    /// A resolver using the system configuration, or the given servers (`ip:port`).
    pub fn new(servers: &[SocketAddr]) -> Result<Dns, String> {
        let builder = if servers.is_empty() {
            Resolver::builder_tokio().map_err(|e| format!("cannot read the system DNS configuration: {e}"))?
        } else {
            let name_servers = servers
                .iter()
                .map(|s| {
                    let mut ns = NameServerConfig::udp_and_tcp(s.ip());
                    for c in &mut ns.connections {
                        c.port = s.port();
                    }
                    ns
                })
                .collect();
            Resolver::builder_with_config(ResolverConfig::from_parts(None, vec![], name_servers), TokioRuntimeProvider::default())
        };
        let mut opts = ResolverOpts::default();
        opts.attempts = 2;
        opts.timeout = std::time::Duration::from_secs(3);
        let resolver = builder.with_options(opts).build().map_err(|e| format!("cannot build the DNS resolver: {e}"))?;
        Ok(Dns { resolver })
    }

    /// The addresses to try for `url`, in order.
    pub async fn resolve(&self, url: &TelephonyUrl) -> Result<Vec<Target>, String> {
        let name = match &url.host {
            Host::V4(ip) => return Ok(vec![Target { addr: SocketAddr::new(IpAddr::V4(*ip), url.port.unwrap_or(5060)), transport: url.transport.clone() }]),
            Host::V6(ip) => return Ok(vec![Target { addr: SocketAddr::new(IpAddr::V6(*ip), url.port.unwrap_or(5060)), transport: url.transport.clone() }]),
            Host::Name(n) => n.clone(),
        };
        if let Some(port) = url.port {
            let ips = self.ips(&name).await?;
            return Ok(ips.into_iter().map(|ip| Target { addr: SocketAddr::new(ip, port), transport: url.transport.clone() }).collect());
        }
        let transports = if url.explicit_transport { vec![url.transport.clone()] } else { vec![Transport::Udp, Transport::Tcp] };
        let mut targets = Vec::new();
        for transport in transports {
            let service = match transport {
                Transport::Tcp => format!("_sip._tcp.{name}."),
                _ => format!("_sip._udp.{name}."),
            };
            let Ok(srv) = self.resolver.srv_lookup(service.as_str()).await else { continue };
            let mut records: Vec<(u16, u16, u16, String)> = srv
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    hickory_resolver::proto::rr::RData::SRV(s) => Some((s.priority, s.weight, s.port, s.target.to_utf8())),
                    _ => None,
                })
                .collect();
            // Lowest priority first; among equals, the heavier first (a deterministic reading of
            // RFC 2782's weighted choice, so that logs and tests are repeatable).
            records.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            for (_, _, port, target) in records {
                for ip in self.ips(target.trim_end_matches('.')).await.unwrap_or_default() {
                    targets.push(Target { addr: SocketAddr::new(ip, port), transport: transport.clone() });
                }
            }
            if !targets.is_empty() {
                return Ok(targets);
            }
        }
        let ips = self.ips(&name).await?;
        Ok(ips.into_iter().map(|ip| Target { addr: SocketAddr::new(ip, 5060), transport: url.transport.clone() }).collect())
    }

    async fn ips(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        let lookup = self.resolver.lookup_ip(name).await.map_err(|e| format!("cannot resolve {name}: {e}"))?;
        let ips: Vec<IpAddr> = lookup.iter().collect();
        if ips.is_empty() {
            return Err(format!("{name} has no address"));
        }
        Ok(ips)
    }
}
