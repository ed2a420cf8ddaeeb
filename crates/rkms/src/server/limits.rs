//! Protections against abuse: which client addresses are served, and how often.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Whether an address is private in the sense of PROTOCOL.md §2.12: 10/8, 172.16/12,
/// 192.168/16, 169.254/16, 127/8; for IPv6 anything outside 2000::/3 (global unicast).
/// IPv4-mapped IPv6 addresses are judged as IPv4. 100.64/10 (carrier-grade NAT) is public.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            o[0] == 10
                || (o[0] == 172 && (16..32).contains(&o[1]))
                || (o[0] == 192 && o[1] == 168)
                || (o[0] == 169 && o[1] == 254)
                || o[0] == 127
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private(IpAddr::V4(v4)),
            None => (v6.segments()[0] & 0xE000) != 0x2000,
        },
    }
}

/// Whether a request is the host's own health check (`rkms healthcheck`, `/readyz`), which is
/// answered but neither counted nor recorded: it comes from loopback (also IPv4-mapped, as a
/// dual-stack listener sees `127.0.0.1`) and carries both the check's workstation name and its
/// CMID. Anyone else named `rkms-selfcheck` is a normal client.
pub fn is_own_check(peer: IpAddr, workstation: &str, cmid: &uuid::Uuid) -> bool {
    peer.to_canonical().is_loopback()
        && workstation == crate::policy::SELF_CHECK_WORKSTATION
        && *cmid == crate::client::CHECK_CMID
}

/// Bad input on one connection: the first is logged, the rest counted and summed up in one
/// line when the connection closes (a client sending 1,000 bad PDUs makes 2 lines, not 1,000).
#[derive(Debug)]
pub struct BadInput {
    peer: SocketAddr,
    count: u64,
}

impl BadInput {
    /// Nothing bad from `peer` yet.
    pub fn new(peer: SocketAddr) -> Self {
        BadInput { peer, count: 0 }
    }

    /// Counts one; true for the first (log it).
    pub fn first(&mut self) -> bool {
        self.count += 1;
        self.count == 1
    }

    /// How many so far.
    pub fn count(&self) -> u64 {
        self.count
    }
}

impl Drop for BadInput {
    fn drop(&mut self) {
        if self.count > 1 {
            tracing::warn!(
                client = %self.peer,
                count = self.count,
                "connection closed after {} bad PDUs (only the first was logged)",
                self.count
            );
        }
    }
}

/// A token bucket per client address: at most `per_minute` requests a minute, in bursts of
/// up to `per_minute`.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
    /// When the limit last tripped for this address (to log once per minute, not per request).
    last_report: Option<Instant>,
}

/// What the limiter says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Serve it.
    Allow,
    /// Refuse it; `report` is true the first time in a minute (log it then).
    Refuse {
        /// Log this one.
        report: bool,
    },
}

/// Entries kept before idle ones are swept.
const SWEEP_AT: usize = 4096;

impl RateLimiter {
    /// A limiter allowing `per_minute` requests a minute per address (at least 1).
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip` at time `now`.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Verdict {
        let cap = f64::from(self.per_minute);
        let rate = cap / 60.0;
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= SWEEP_AT {
            // Forget addresses whose bucket has refilled: they are indistinguishable from new.
            map.retain(|_, b| b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < cap);
        }
        let b = map.entry(ip).or_insert(Bucket {
            tokens: cap,
            updated: now,
            last_report: None,
        });
        b.tokens = (b.tokens + now.duration_since(b.updated).as_secs_f64() * rate).min(cap);
        b.updated = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Verdict::Allow;
        }
        let report = b
            .last_report
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60));
        if report {
            b.last_report = Some(now);
        }
        Verdict::Refuse { report }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges() {
        for a in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.9.9",
            "127.0.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:192.168.1.1",
        ] {
            assert!(is_private(a.parse().unwrap()), "{a}");
        }
        for a in [
            "8.8.8.8",
            "172.32.0.1",
            "100.64.0.1",
            "203.0.113.5",
            "2001:db8::1",
            "2a00::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_private(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn own_check_needs_loopback_name_and_cmid() {
        let name = crate::policy::SELF_CHECK_WORKSTATION;
        let cmid = crate::client::CHECK_CMID;
        for a in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"] {
            assert!(is_own_check(a.parse().unwrap(), name, &cmid), "{a}");
        }
        for a in ["10.0.0.1", "::ffff:10.0.0.1", "fe80::1"] {
            assert!(!is_own_check(a.parse().unwrap(), name, &cmid), "{a}");
        }
        let lo = "127.0.0.1".parse().unwrap();
        assert!(!is_own_check(lo, name, &uuid::Uuid::from_u128(7)));
        assert!(!is_own_check(lo, "rkms-selfcheck2", &cmid));
    }

    #[test]
    fn bucket_refills_and_reports_once_a_minute() {
        let l = RateLimiter::new(3);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check(ip, t0), Verdict::Allow);
        }
        assert_eq!(l.check(ip, t0), Verdict::Refuse { report: true });
        assert_eq!(l.check(ip, t0), Verdict::Refuse { report: false });
        assert_eq!(
            l.check(other, t0),
            Verdict::Allow,
            "other addresses are unaffected"
        );
        // 20 s later one token (3 a minute) is back.
        assert_eq!(l.check(ip, t0 + Duration::from_secs(20)), Verdict::Allow);
        assert_eq!(
            l.check(ip, t0 + Duration::from_secs(21)),
            Verdict::Refuse { report: false }
        );
        // 40 s later two tokens are back; the next refusal is logged again (a minute passed).
        let t61 = t0 + Duration::from_secs(61);
        assert_eq!(l.check(ip, t61), Verdict::Allow);
        assert_eq!(l.check(ip, t61), Verdict::Allow);
        assert_eq!(l.check(ip, t61), Verdict::Refuse { report: true });
    }
}
