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

/// Parses a listen address `ADDR:PORT` / `[ADDR]:PORT` (an IP literal, not a name).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let (host, port) = split_host_port(text, DEFAULT_PORT)?;
    let ip = host
        .parse()
        .map_err(|_| format!("'{text}': '{host}' is not an IP address (use 0.0.0.0, [::] or an address of this machine)"))?;
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
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
        assert!(parse_listen("kms.lan:1688")
            .unwrap_err()
            .contains("not an IP address"));
    }
}
