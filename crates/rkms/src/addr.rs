//! Host and listen-address parsing: `HOST`, `HOST:PORT`, `[IPv6]:PORT`, bare IPv6 addresses.

use std::net::SocketAddr;

/// The KMS port.
pub const DEFAULT_PORT: u16 = 1688;

/// Splits `HOST[:PORT]` into host and port; IPv6 literals go in brackets when a port is given.
pub fn split_host_port(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty host".into());
    }
    if let Some(rest) = t.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("'{text}': missing ']' after IPv6 address"))?;
        let port = match after {
            "" => default_port,
            p => parse_port(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("'{text}': expected ':PORT' after ']'"))?,
                text,
            )?,
        };
        return Ok((host.to_string(), port));
    }
    match t.matches(':').count() {
        0 => Ok((t.to_string(), default_port)),
        1 => {
            let (h, p) = t.split_once(':').expect("one colon");
            if h.is_empty() {
                return Err(format!("'{text}': missing host before ':'"));
            }
            Ok((h.to_string(), parse_port(p, text)?))
        }
        // Several colons and no brackets: a bare IPv6 address.
        _ => Ok((t.to_string(), default_port)),
    }
}

fn parse_port(p: &str, text: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .map_err(|_| format!("'{text}': '{p}' is not a port number (0-65535)"))
}

/// Parses a listen address `ADDR:PORT` / `[ADDR]:PORT`: an IP literal, or a host name resolved
/// once at start to its first address (as py-kms does). IPv6 link-local addresses take a scope:
/// `[fe80::1%eth0]:1688` or `[fe80::1%2]:1688`.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    parse_listen_or(text, DEFAULT_PORT)
}

/// [`parse_listen`] with `default_port` when the text names no port.
pub fn parse_listen_or(text: &str, default_port: u16) -> Result<SocketAddr, String> {
    // `::1:1688` is the address ::1:1688, not ::1 port 1688: ask for brackets.
    let t = text.trim();
    if !t.starts_with('[') && t.matches(':').count() > 1 {
        if let Some((ip, port)) = t.rsplit_once(':') {
            if ip.parse::<std::net::Ipv6Addr>().is_ok() && port.parse::<u16>().is_ok() {
                return Err(format!(
                    "'{text}': an IPv6 address with a port goes in brackets: [{ip}]:{port} \
                     (or [{t}] for the address {t} itself)"
                ));
            }
        }
    }
    let (host, port) = split_host_port(text, default_port)?;
    if let Some((ip, scope)) = host.split_once('%') {
        let ip: std::net::Ipv6Addr = ip.parse().map_err(|_| {
            format!("'{text}': '{ip}' is not an IPv6 address (a %scope goes with IPv6 only)")
        })?;
        let scope_id = scope_id(scope)
            .ok_or_else(|| format!("'{text}': '{scope}' is not a network interface here"))?;
        return Ok(SocketAddr::V6(std::net::SocketAddrV6::new(
            ip, port, 0, scope_id,
        )));
    }
    if let Ok(ip) = host.parse() {
        return Ok(SocketAddr::new(ip, port));
    }
    resolve_name(&host, port).map_err(|e| {
        format!("'{text}': '{host}' is not an IP address and cannot be resolved ({e}); use 0.0.0.0, [::], an address of this machine or a name that resolves to one")
    })
}

/// The first address a host name resolves to (names only: IP literals are parsed above).
fn resolve_name(host: &str, port: u16) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if host.is_empty() || host.len() > 253 || host.contains(['/', '%', ' ']) {
        return Err("not a host name".into());
    }
    let mut addrs = (host, port).to_socket_addrs().map_err(|e| e.to_string())?;
    addrs.next().ok_or_else(|| "no address".to_string())
}

/// The interface index of a scope: a number, or an interface name (Linux: from /sys).
fn scope_id(scope: &str) -> Option<u32> {
    if let Ok(n) = scope.parse() {
        return Some(n);
    }
    if scope.is_empty() || scope.contains(['/', '.']) {
        return None;
    }
    std::fs::read_to_string(format!("/sys/class/net/{scope}/ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn bare_ipv6_with_a_port_asks_for_brackets() {
        let err = super::parse_listen("::1:1688").unwrap_err();
        assert!(err.contains("[::1]:1688"), "{err}");
        assert!(super::parse_listen("[::1]:1688").is_ok());
        assert!(super::parse_listen("[::1:1688]").is_ok());
        // A bare IPv6 address ending in letters is no port.
        assert!(super::parse_listen("fe80::abcd").is_ok());
    }

    use super::*;

    #[test]
    fn forms() {
        assert_eq!(
            split_host_port("kms.lan", 1688),
            Ok(("kms.lan".into(), 1688))
        );
        assert_eq!(
            split_host_port("kms.lan:1700", 1688),
            Ok(("kms.lan".into(), 1700))
        );
        assert_eq!(
            split_host_port("[::1]:1700", 1688),
            Ok(("::1".into(), 1700))
        );
        assert_eq!(
            split_host_port("[fe80::1%eth0]", 1688),
            Ok(("fe80::1%eth0".into(), 1688))
        );
        assert_eq!(split_host_port("::1", 1688), Ok(("::1".into(), 1688)));
        assert_eq!(parse_listen("[::]:1688").unwrap().to_string(), "[::]:1688");
        assert_eq!(parse_listen("127.0.0.1:0").unwrap().port(), 0);
        assert_eq!(parse_listen("127.0.0.1").unwrap().port(), 1688);
        assert_eq!(parse_listen_or("127.0.0.1", 1689).unwrap().port(), 1689);
        assert_eq!(parse_listen_or("[::1]:7", 1689).unwrap().port(), 7);
        let scoped = parse_listen("[fe80::1%3]:1688").unwrap();
        assert!(matches!(scoped, SocketAddr::V6(v6) if v6.scope_id() == 3));
        if std::path::Path::new("/sys/class/net/lo/ifindex").exists() {
            assert!(
                matches!(parse_listen("[fe80::1%lo]:1688").unwrap(), SocketAddr::V6(v6) if v6.scope_id() > 0)
            );
        }
        assert!(parse_listen("[fe80::1%no-such-if0]:1688")
            .unwrap_err()
            .contains("not a network interface"));
        assert!(parse_listen("[10.0.0.1%2]:1688").is_err());
    }

    #[test]
    fn errors() {
        assert!(split_host_port("", 1).is_err());
        assert!(split_host_port("[::1", 1)
            .unwrap_err()
            .contains("missing ']'"));
        assert!(split_host_port("h:99999", 1)
            .unwrap_err()
            .contains("not a port"));
        assert!(split_host_port(":80", 1)
            .unwrap_err()
            .contains("missing host"));
        assert!(parse_listen("kms.invalid:1688")
            .unwrap_err()
            .contains("cannot be resolved"));
        // A host name is resolved, as py-kms does.
        let a = parse_listen("localhost:1700").unwrap();
        assert!(a.ip().is_loopback() && a.port() == 1700, "{a}");
    }
}
