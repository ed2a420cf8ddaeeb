//! The SRV records an administrator publishes for a KMS host, in several servers' syntaxes.

use std::fmt::Write as _;
use std::net::IpAddr;

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

/// The address record that gives the name `host` (qualified with `domain` like an SRV target)
/// the address `ip`, in the same syntaxes as [`records`]: an SRV record must point at a name,
/// never at an address (RFC 2782), so a host known only by its address needs one.
pub fn address_records(host: &str, ip: IpAddr, domain: &str, ttl: u32) -> String {
    let domain = trim_domain(domain);
    let name = qualify(host, domain);
    let (kind, ps_kind, ps_option) = match ip {
        IpAddr::V4(_) => ("A", "A", "IPv4Address"),
        IpAddr::V6(_) => ("AAAA", "AAAA", "IPv6Address"),
    };
    // Windows DNS names are relative to the zone; a name outside it is given whole.
    let relative = name
        .strip_suffix(domain)
        .and_then(|r| r.strip_suffix('.'))
        .filter(|r| !domain.is_empty() && !r.is_empty())
        .unwrap_or(&name);
    format!(
        "\
; BIND zone file
{name}. {ttl} IN {kind} {ip}

# dnsmasq (dnsmasq.conf)
host-record={name},{ip}

# Windows DNS Server (PowerShell)
Add-DnsServerResourceRecord{ps_kind} -ZoneName \"{domain}\" -Name \"{relative}\" -{ps_option} \"{ip}\" \
-TimeToLive {timespan}

# OpenWrt (dnsmasq via uci)
uci add dhcp domain
uci set dhcp.@domain[-1].name='{name}'
uci set dhcp.@domain[-1].ip='{ip}'
uci commit dhcp
",
        timespan = timespan(ttl),
    )
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
    fn address_records_name_the_address() {
        let v4 = address_records("kms", "192.168.1.10".parse().unwrap(), "example.lan", 600);
        assert!(
            v4.contains("\nkms.example.lan. 600 IN A 192.168.1.10\n"),
            "{v4}"
        );
        assert!(
            v4.contains("host-record=kms.example.lan,192.168.1.10\n"),
            "{v4}"
        );
        assert!(
            v4.contains(
                "Add-DnsServerResourceRecordA -ZoneName \"example.lan\" -Name \"kms\" \
                 -IPv4Address \"192.168.1.10\" -TimeToLive 00:10:00"
            ),
            "{v4}"
        );
        assert!(
            v4.contains("uci set dhcp.@domain[-1].ip='192.168.1.10'"),
            "{v4}"
        );
        let v6 = address_records(
            "kms.other.lan.",
            "fd00::10".parse().unwrap(),
            "example.lan",
            60,
        );
        assert!(
            v6.contains("\nkms.other.lan. 60 IN AAAA fd00::10\n"),
            "{v6}"
        );
        assert!(
            v6.contains("Add-DnsServerResourceRecordAAAA -ZoneName \"example.lan\" -Name \"kms.other.lan\" -IPv6Address \"fd00::10\""),
            "{v6}"
        );
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
