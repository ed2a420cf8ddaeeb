//! The SRV records an administrator publishes for a KMS host, in several servers' syntaxes.

use std::fmt::Write as _;

use super::{srv_name, trim_domain, SRV_SERVICE};

/// The text a user publishes so that clients in `domain` find the KMS host `host:port`.
///
/// Sections: a BIND zone-file line (absolute names), dnsmasq `srv-host=`, Windows DNS Server
/// PowerShell (`Add-DnsServerResourceRecord -Srv`, TTL as a TimeSpan) and OpenWrt `uci`
/// commands (`dhcp` `srvhost` section; `class` is the priority). Each section starts with a
/// comment line in its own syntax. A `host` without a dot is qualified with `domain`; trailing
/// dots on either are ignored. dnsmasq and OpenWrt take no per-record TTL.
pub fn records(
    host: &str,
    port: u16,
    domain: &str,
    ttl: u32,
    priority: u16,
    weight: u16,
) -> String {
    let domain = trim_domain(domain);
    let target = qualify(host, domain);
    let name = srv_name(domain);
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "\
; BIND zone file
{name}. {ttl} IN SRV {priority} {weight} {port} {target}.

# dnsmasq (dnsmasq.conf)
srv-host={name},{target},{port},{priority},{weight}

# Windows DNS Server (PowerShell)
Add-DnsServerResourceRecord -ZoneName \"{domain}\" -Srv -Name \"{SRV_SERVICE}\" -DomainName \"{target}\" \
-Priority {priority} -Weight {weight} -Port {port} -TimeToLive {timespan}

# OpenWrt (dnsmasq via uci)
uci add dhcp srvhost
uci set dhcp.@srvhost[-1].srv='{name}'
uci set dhcp.@srvhost[-1].target='{target}'
uci set dhcp.@srvhost[-1].port='{port}'
uci set dhcp.@srvhost[-1].class='{priority}'
uci set dhcp.@srvhost[-1].weight='{weight}'
uci commit dhcp
/etc/init.d/dnsmasq restart
",
        timespan = timespan(ttl),
    );
    out
}

/// `host` as a name in `domain` when it has no dot; otherwise `host` without its trailing dot.
fn qualify(host: &str, domain: &str) -> String {
    let host = host.trim();
    match host.strip_suffix('.') {
        Some(absolute) => absolute.to_string(),
        None if host.contains('.') || domain.is_empty() => host.to_string(),
        None => format!("{host}.{domain}"),
    }
}

/// Seconds as a .NET TimeSpan literal: `hh:mm:ss`, or `d.hh:mm:ss` from one day on.
fn timespan(seconds: u32) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let hms = format!(
        "{:02}:{:02}:{:02}",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    );
    if days == 0 {
        hms
    } else {
        format!("{days}.{hms}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans() {
        assert_eq!(timespan(0), "00:00:00");
        assert_eq!(timespan(10_800), "03:00:00");
        assert_eq!(timespan(3_661), "01:01:01");
        assert_eq!(timespan(86_399), "23:59:59");
        assert_eq!(timespan(86_400), "1.00:00:00");
        assert_eq!(timespan(u32::MAX), "49710.06:28:15");
    }

    #[test]
    fn qualification() {
        assert_eq!(qualify("kms1", "example.lan"), "kms1.example.lan");
        assert_eq!(qualify("kms1.other.lan", "example.lan"), "kms1.other.lan");
        assert_eq!(qualify("kms1.other.lan.", "example.lan"), "kms1.other.lan");
        assert_eq!(qualify("kms1.", "example.lan"), "kms1");
    }

    #[test]
    fn golden_example_lan() {
        let expected = "\
; BIND zone file
_vlmcs._tcp.example.lan. 10800 IN SRV 0 0 1688 kms1.example.lan.

# dnsmasq (dnsmasq.conf)
srv-host=_vlmcs._tcp.example.lan,kms1.example.lan,1688,0,0

# Windows DNS Server (PowerShell)
Add-DnsServerResourceRecord -ZoneName \"example.lan\" -Srv -Name \"_vlmcs._tcp\" -DomainName \"kms1.example.lan\" -Priority 0 -Weight 0 -Port 1688 -TimeToLive 03:00:00

# OpenWrt (dnsmasq via uci)
uci add dhcp srvhost
uci set dhcp.@srvhost[-1].srv='_vlmcs._tcp.example.lan'
uci set dhcp.@srvhost[-1].target='kms1.example.lan'
uci set dhcp.@srvhost[-1].port='1688'
uci set dhcp.@srvhost[-1].class='0'
uci set dhcp.@srvhost[-1].weight='0'
uci commit dhcp
/etc/init.d/dnsmasq restart
";
        assert_eq!(records("kms1", 1688, "example.lan", 10_800, 0, 0), expected);
        assert_eq!(
            records("kms1.example.lan.", 1688, "example.lan.", 10_800, 0, 0),
            expected
        );
    }
}
