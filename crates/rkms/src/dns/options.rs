//! The options of `rkms serve` for publishing the host in DNS, in every build: without the
//! `dns` feature, a zone, a name or a server given to them is refused by name.

use std::path::PathBuf;

use clap::Args;

use super::trim_domain;

/// Options of `rkms serve` for publishing the host in DNS.
#[derive(Debug, Clone, Args, Default)]
#[command(next_help_heading = "DNS publishing")]
pub struct DnsPublishArgs {
    /// Publish this host as a _vlmcs._tcp SRV record in this DNS zone by dynamic update
    /// (RFC 2136), refreshed every --dns-refresh, like a genuine KMS host. Repeatable.
    #[arg(long = "dns-publish", value_name = "ZONE", value_parser = parse_zone, env = "RKMS_DNS_PUBLISH", value_delimiter = ',')]
    pub zones: Vec<String>,
    /// The SRV target published: this host's DNS name (default: the machine's host name,
    /// qualified with the zone when it has no dot).
    #[arg(long = "dns-publish-name", value_name = "HOST", value_parser = parse_host_name, env = "RKMS_DNS_PUBLISH_NAME")]
    pub name: Option<String>,
    /// DNS server that takes the updates, ADDR[:PORT] (port 53 by default; a name is resolved).
    /// Default: the zone's primary name server (the MNAME of its SOA record).
    #[arg(long = "dns-update-server", value_name = "ADDR[:PORT]", value_parser = parse_update_server, env = "RKMS_DNS_UPDATE_SERVER")]
    pub update_server: Option<String>,
    /// TSIG key signing the updates: a BIND key file (key "NAME" { algorithm hmac-sha256;
    /// secret "BASE64"; };), as tsig-keygen writes it; hmac-sha256, hmac-sha384 and hmac-sha512.
    /// Default: unsigned updates.
    #[arg(long = "dns-tsig-key", value_name = "FILE", env = "RKMS_DNS_TSIG_KEY")]
    pub tsig_key: Option<PathBuf>,
    /// SRV priority published (lower is tried first).
    #[arg(
        long = "dns-priority",
        value_name = "N",
        default_value_t = 0,
        env = "RKMS_DNS_PRIORITY"
    )]
    pub priority: u16,
    /// SRV weight published (share among hosts of the same priority).
    #[arg(
        long = "dns-weight",
        value_name = "N",
        default_value_t = 0,
        env = "RKMS_DNS_WEIGHT"
    )]
    pub weight: u16,
    /// TTL of the published SRV record, in seconds.
    #[arg(long = "dns-ttl", value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u32).range(0..=2_147_483_647), env = "RKMS_DNS_TTL")]
    pub ttl: u32,
    /// Interval between refreshes of the published record, in minutes (or e.g. 24h, 90m).
    #[arg(long = "dns-refresh", value_name = "MIN", default_value = "24h", value_parser = crate::interval::parse_minutes, env = "RKMS_DNS_REFRESH")]
    pub refresh: u32,
    /// Remove this host's SRV record from the published zones on a clean stop.
    #[arg(long = "dns-unpublish-on-exit", env = "RKMS_DNS_UNPUBLISH_ON_EXIT")]
    pub unpublish_on_exit: bool,
}

/// A zone name as given, checked: a valid DNS name, stored without its trailing dot.
fn parse_zone(text: &str) -> Result<String, String> {
    built()?;
    let zone = trim_domain(text);
    if zone.is_empty() {
        return Err("empty zone".into());
    }
    check_name(zone).map_err(|e| format!("'{text}' is not a DNS zone name: {e}"))?;
    Ok(zone.to_string())
}

/// A host name as given, checked.
fn parse_host_name(text: &str) -> Result<String, String> {
    built()?;
    let host = text.trim();
    if trim_domain(host).is_empty() {
        return Err("empty host name".into());
    }
    check_name(trim_domain(host)).map_err(|e| format!("'{text}' is not a DNS name: {e}"))?;
    Ok(host.to_string())
}

/// `ADDR[:PORT]` checked for its form (a name is resolved when used).
fn parse_update_server(text: &str) -> Result<String, String> {
    built()?;
    crate::addr::split_host_port(text, 53)?;
    Ok(text.trim().to_string())
}

/// Without the `dns` feature nothing is published: every zone, name or server given to the
/// publishing options is refused.
fn built() -> Result<(), String> {
    if cfg!(feature = "dns") {
        Ok(())
    } else {
        Err(crate::features::unbuilt("dns", "publish this host in DNS"))
    }
}

/// Checks that `name` is a valid DNS name.
#[cfg(feature = "dns")]
fn check_name(name: &str) -> Result<(), String> {
    super::update::absolute(name).map(drop)
}

/// Never reached: [`built`] refuses first.
#[cfg(not(feature = "dns"))]
fn check_name(_: &str) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "dns")]
    #[test]
    fn option_parsers() {
        assert_eq!(parse_zone("Example.LAN.").unwrap(), "Example.LAN");
        assert!(parse_zone(" . ").is_err());
        assert!(parse_zone("a..b").is_err());
        assert!(parse_host_name("kms1").is_ok());
        assert!(parse_update_server("127.0.0.1:5353").is_ok());
        assert!(parse_update_server("ns1:notaport").is_err());
    }

    /// Without the `dns` feature the publishing options are refused, naming the feature.
    #[cfg(not(feature = "dns"))]
    #[test]
    fn publishing_options_are_refused_without_dns() {
        for e in [
            parse_zone("example.lan").unwrap_err(),
            parse_host_name("kms1").unwrap_err(),
            parse_update_server("127.0.0.1:5353").unwrap_err(),
        ] {
            assert!(
                e.starts_with("this rkms was built without the `dns` feature"),
                "{e}"
            );
        }
    }
}
