//! SRV lookup of `_vlmcs._tcp.<domain>` with hickory-resolver, and the default DNS domain.
//! A build without the `dns` feature refuses the lookup by name ([`DnsError::NotBuilt`]).

use std::net::SocketAddr;
use std::path::Path;

use super::{trim_domain, SrvTarget, DNS_NAME_NOT_FOUND};
#[cfg(feature = "dns")]
use {
    super::{order_targets, srv_name},
    hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts},
    hickory_resolver::net::runtime::TokioRuntimeProvider,
    hickory_resolver::net::NetError,
    hickory_resolver::proto::rr::{Name, RData},
    hickory_resolver::TokioResolver,
    std::net::IpAddr,
    std::time::Duration,
};

/// The system resolver configuration read for the default domain.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Per-query timeout when a specific DNS server is used.
#[cfg(feature = "dns")]
const SERVER_TIMEOUT: Duration = Duration::from_secs(2);

/// Which DNS servers [`discover`] asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResolverChoice {
    /// The system's resolvers (`/etc/resolv.conf` on Unix, the registry on Windows).
    #[default]
    System,
    /// One DNS server at this address, over UDP (TCP for truncated answers).
    Server(SocketAddr),
}

/// Why [`discover`] found no KMS host.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// No domain was given and the system configuration names none.
    #[error("no DNS domain: give --domain")]
    NoDomain,
    /// The domain is not a valid DNS name.
    #[error("invalid DNS domain '{domain}': {reason}")]
    InvalidDomain {
        /// The domain as given.
        domain: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The resolver could not be set up (e.g. an unreadable system configuration).
    #[error("cannot set up the DNS resolver: {reason}")]
    Config {
        /// The underlying error.
        reason: String,
    },
    /// The name does not exist or has no usable SRV records (what Windows reports as 0x8007232B).
    #[error(
        "no KMS host in DNS: no SRV records for {name} (0x{code:08X}, DNS name does not exist)",
        code = DNS_NAME_NOT_FOUND
    )]
    NoRecords {
        /// The SRV name queried, without a trailing dot.
        name: String,
    },
    /// Any other failure: timeout, refused, server failure, malformed answer.
    #[error("DNS SRV lookup of {name} failed: {reason}")]
    Lookup {
        /// The SRV name queried, without a trailing dot.
        name: String,
        /// The underlying error.
        reason: String,
    },
    /// This build has no DNS lookups (Cargo feature `dns`).
    #[error("this rkms was built without the `dns` feature, so it cannot look up KMS hosts in DNS (--domain, --dns-server, vlmcs' .DOMAIN); give the host as HOST[:PORT], or use a build with it (the default build has every feature)")]
    NotBuilt,
}

/// [`discover`] and [`discover_addrs`] in a build without the `dns` feature: refused.
#[cfg(not(feature = "dns"))]
pub async fn discover(_: Option<&str>, _: ResolverChoice) -> Result<Vec<SrvTarget>, DnsError> {
    Err(DnsError::NotBuilt)
}

/// See [`discover`].
#[cfg(not(feature = "dns"))]
pub async fn discover_addrs(
    _: Option<&str>,
    _: ResolverChoice,
) -> Result<Vec<(SrvTarget, Result<Vec<SocketAddr>, String>)>, DnsError> {
    Err(DnsError::NotBuilt)
}

/// Finds the KMS hosts published as `_vlmcs._tcp.<domain>` SRV records, in RFC 2782 order.
///
/// `domain` defaults to [`system_domain`]. Targets of `.` ("service not available") are dropped.
/// The order comes from [`order_targets`] with the operating system's random generator.
#[cfg(feature = "dns")]
pub async fn discover(
    domain: Option<&str>,
    resolver_cfg: ResolverChoice,
) -> Result<Vec<SrvTarget>, DnsError> {
    Ok(lookup_targets(domain, resolver_cfg).await?.0)
}

/// [`discover`] with every target's addresses: from the answer's additional section, else asked
/// of the same DNS server (with [`ResolverChoice::Server`]) or of the system (which also reads
/// the hosts file). A target whose name has no address comes with the reason instead.
#[cfg(feature = "dns")]
pub async fn discover_addrs(
    domain: Option<&str>,
    resolver_cfg: ResolverChoice,
) -> Result<Vec<(SrvTarget, Result<Vec<SocketAddr>, String>)>, DnsError> {
    let (targets, additionals, resolver) = lookup_targets(domain, resolver_cfg).await?;
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        let name = t.host.to_ascii_lowercase();
        let mut addrs: Vec<SocketAddr> = additionals
            .iter()
            .filter(|(owner, _)| *owner == name)
            .map(|(_, ip)| SocketAddr::new(*ip, t.port))
            .collect();
        let found = if let Ok(ip) = t.host.parse::<IpAddr>() {
            Ok(vec![SocketAddr::new(ip, t.port)])
        } else if !addrs.is_empty() {
            addrs.dedup();
            Ok(addrs)
        } else {
            match resolver_cfg {
                ResolverChoice::Server(server) => {
                    match resolver.lookup_ip(format!("{}.", t.host)).await {
                        Ok(ips) => {
                            let a: Vec<SocketAddr> =
                                ips.iter().map(|ip| SocketAddr::new(ip, t.port)).collect();
                            if a.is_empty() {
                                Err(format!("'{}' has no address at {server}", t.host))
                            } else {
                                Ok(a)
                            }
                        }
                        Err(e) => Err(format!("cannot resolve '{}' at {server}: {e}", t.host)),
                    }
                }
                ResolverChoice::System => {
                    match tokio::net::lookup_host((t.host.as_str(), t.port)).await {
                        Ok(a) => {
                            let a: Vec<SocketAddr> = a.collect();
                            if a.is_empty() {
                                Err(format!("'{}' has no address", t.host))
                            } else {
                                Ok(a)
                            }
                        }
                        Err(e) => Err(format!("cannot resolve '{}': {e}", t.host)),
                    }
                }
            }
        };
        out.push((t, found));
    }
    Ok(out)
}

/// The SRV lookup behind [`discover`]: the ordered targets, the A/AAAA records of the additional
/// section as (lower-case name without trailing dot, address), and the resolver used.
#[cfg(feature = "dns")]
async fn lookup_targets(
    domain: Option<&str>,
    resolver_cfg: ResolverChoice,
) -> Result<(Vec<SrvTarget>, Vec<(String, IpAddr)>, TokioResolver), DnsError> {
    let domain = match domain.map(trim_domain).filter(|d| !d.is_empty()) {
        Some(d) => d.to_string(),
        None => system_domain()?,
    };
    let name = srv_name(&domain);
    let query =
        Name::from_str_relaxed(format!("{name}.")).map_err(|e| DnsError::InvalidDomain {
            domain: domain.clone(),
            reason: e.to_string(),
        })?;
    let resolver = build_resolver(resolver_cfg)?;
    let lookup = resolver
        .srv_lookup(query)
        .await
        .map_err(|e| lookup_error(&name, &e))?;
    let targets: Vec<SrvTarget> = lookup
        .answers()
        .iter()
        .filter_map(|record| match &record.data {
            RData::SRV(srv) if !srv.target.is_root() => Some(SrvTarget {
                priority: srv.priority,
                weight: srv.weight,
                port: srv.port,
                host: srv.target.to_ascii().trim_end_matches('.').to_string(),
            }),
            _ => None,
        })
        .collect();
    let additionals = lookup
        .additionals()
        .iter()
        .filter_map(|record| {
            let owner = record
                .name
                .to_ascii()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            match &record.data {
                RData::A(a) => Some((owner, IpAddr::V4(a.0))),
                RData::AAAA(a) => Some((owner, IpAddr::V6(a.0))),
                _ => None,
            }
        })
        .collect();
    if targets.is_empty() {
        return Err(DnsError::NoRecords { name });
    }
    Ok((
        order_targets(targets, &mut rand::rngs::OsRng),
        additionals,
        resolver,
    ))
}

/// The system's DNS domain: the first word of the `LOCALDOMAIN` environment variable when it is
/// set (as the C library does; set and empty: none), else from `/etc/resolv.conf` (see
/// [`domain_from_resolv_conf`]).
pub fn system_domain() -> Result<String, DnsError> {
    if let Some(local) = std::env::var_os("LOCALDOMAIN") {
        return local
            .to_str()
            .and_then(|l| {
                l.split_whitespace()
                    .map(trim_domain)
                    .find(|d| !d.is_empty())
            })
            .map(str::to_string)
            .ok_or(DnsError::NoDomain);
    }
    read_domain(Path::new(RESOLV_CONF)).ok_or(DnsError::NoDomain)
}

/// The domain in resolv.conf text: the first entry of the `search` line, else the `domain` line.
///
/// Comments (`#`, `;`) are ignored; when a keyword repeats, its last line counts (as in glibc).
/// The root (`.`) is no domain. The result has no trailing dot.
pub fn domain_from_resolv_conf(text: &str) -> Option<String> {
    let (mut search, mut domain) = (None, None);
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("search") => search = Some(words.next()),
            Some("domain") => domain = Some(words.next()),
            _ => {}
        }
    }
    [search, domain]
        .into_iter()
        .flatten()
        .flatten()
        .map(trim_domain)
        .find(|d| !d.is_empty())
        .map(str::to_string)
}

/// The domain in the resolv.conf file at `path`, if it is readable and names one.
fn read_domain(path: &Path) -> Option<String> {
    domain_from_resolv_conf(&std::fs::read_to_string(path).ok()?)
}

/// A resolver for the chosen servers.
#[cfg(feature = "dns")]
fn build_resolver(choice: ResolverChoice) -> Result<TokioResolver, DnsError> {
    let config_error = |e: NetError| DnsError::Config {
        reason: e.to_string(),
    };
    match choice {
        ResolverChoice::System => TokioResolver::builder_tokio()
            .map_err(config_error)?
            .build()
            .map_err(config_error),
        ResolverChoice::Server(addr) => {
            let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                .into_iter()
                .map(|mut c| {
                    c.port = addr.port();
                    c
                })
                .collect();
            let server = NameServerConfig::new(addr.ip(), true, connections);
            let mut options = ResolverOpts::default();
            options.timeout = SERVER_TIMEOUT;
            let config = ResolverConfig::from_name_servers(vec![server]);
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
                .with_options(options)
                .build()
                .map_err(config_error)
        }
    }
}

/// Maps a resolver error: "no such name / no records" apart from everything else.
#[cfg(feature = "dns")]
fn lookup_error(name: &str, error: &NetError) -> DnsError {
    if error.is_nx_domain() || error.is_no_records_found() {
        DnsError::NoRecords {
            name: name.to_string(),
        }
    } else {
        DnsError::Lookup {
            name: name.to_string(),
            reason: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_first_entry_wins_over_domain() {
        let conf =
            "# generated\nnameserver 10.0.0.1\ndomain corp.lan\nsearch site.corp.lan corp.lan\n";
        assert_eq!(
            domain_from_resolv_conf(conf).as_deref(),
            Some("site.corp.lan")
        );
    }

    #[test]
    fn domain_line_when_no_search() {
        let conf = "nameserver 10.0.0.1\ndomain example.lan.  ; trailing comment\n";
        assert_eq!(
            domain_from_resolv_conf(conf).as_deref(),
            Some("example.lan")
        );
    }

    #[test]
    fn last_search_line_counts_and_root_is_no_domain() {
        assert_eq!(
            domain_from_resolv_conf("search old.lan\nsearch new.lan\n").as_deref(),
            Some("new.lan")
        );
        assert_eq!(domain_from_resolv_conf("search .\n"), None);
        assert_eq!(
            domain_from_resolv_conf("search .\ndomain d.lan\n").as_deref(),
            Some("d.lan")
        );
        assert_eq!(
            domain_from_resolv_conf("#search a.lan\nnameserver ::1\n"),
            None
        );
        assert_eq!(domain_from_resolv_conf("search\n"), None);
        assert_eq!(domain_from_resolv_conf(""), None);
    }

    #[test]
    fn missing_file_is_no_domain() {
        assert_eq!(read_domain(Path::new("/nonexistent/resolv.conf")), None);
        assert_eq!(
            DnsError::NoDomain.to_string(),
            "no DNS domain: give --domain"
        );
    }

    #[test]
    fn no_records_message_carries_the_windows_code() {
        let e = DnsError::NoRecords {
            name: "_vlmcs._tcp.x.lan".into(),
        };
        assert!(e.to_string().contains("0x8007232B"), "{e}");
        assert!(e.to_string().contains("_vlmcs._tcp.x.lan"), "{e}");
    }
}
