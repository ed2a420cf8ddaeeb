//! DNS SRV auto-discovery of KMS hosts (`_vlmcs._tcp.<domain>`, PROTOCOL.md §11).
//!
//! * [`discover`] finds the hosts published in a domain, in the order a client should try them;
//! * [`order_targets`] is the RFC 2782 ordering it applies (pure, seedable);
//! * [`records`] prints the records an administrator publishes for a host;
//! * [`Publisher`] publishes the host itself by dynamic update (RFC 2136, TSIG).
//!
//! Lookups and publishing need the `dns` feature (hickory); [`records`] and the ordering are
//! always there. Without it, [`discover`] and the publishing options are refused by name.

mod options;
mod order;
mod publish;
mod resolve;
// Publishing by dynamic update needs the `dns` feature; without it a [`Publisher`] is never
// made (its options are refused when given).
#[cfg(feature = "dns")]
mod update;
#[cfg(not(feature = "dns"))]
#[path = "update_unbuilt.rs"]
mod update;

pub use options::DnsPublishArgs;
pub use order::order_targets;
pub use publish::{address_records, records};
pub use resolve::{
    discover, discover_addrs, domain_from_resolv_conf, system_domain, DnsError, ResolverChoice,
};
pub use update::{PublishStatus, Publisher};
#[cfg(feature = "dns")]
pub use update::{TsigKey, UpdateError, ZoneStatus};

use std::fmt;

/// The SRV service and protocol labels of the KMS service.
pub const SRV_SERVICE: &str = "_vlmcs._tcp";

/// The Windows error reported when the KMS SRV name does not exist (DNS_ERROR_RCODE_NAME_ERROR).
pub const DNS_NAME_NOT_FOUND: u32 = 0x8007_232B;

/// One SRV answer: a KMS host and the RFC 2782 fields that rank it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SrvTarget {
    /// Lower is tried first.
    pub priority: u16,
    /// Relative share of first places among targets of the same priority; 0 = last resort.
    pub weight: u16,
    /// The TCP port of the KMS host.
    pub port: u16,
    /// The host name, without a trailing dot.
    pub host: String,
}

impl fmt::Display for SrvTarget {
    /// Formats as `host:port`, ready for a connection attempt.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The SRV owner name for a domain: `_vlmcs._tcp.<domain>` (no trailing dot).
pub fn srv_name(domain: &str) -> String {
    format!("{SRV_SERVICE}.{}", trim_domain(domain))
}

/// A domain without surrounding blanks and without its trailing dot.
fn trim_domain(domain: &str) -> &str {
    let d = domain.trim();
    d.strip_suffix('.').unwrap_or(d)
}
