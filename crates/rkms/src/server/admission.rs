//! Which accepted connections are kept: a cap per client address, a deadline for the first
//! complete PDU (the handshake), and, at the global connection limit, eviction of the oldest
//! connection that has not sent a complete PDU yet. Limit events are logged at most once a
//! minute, with counts, and counted in the metrics.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tracing::warn;

use super::Metrics;

/// How often limit events are logged at most.
pub const REPORT_EVERY: Duration = Duration::from_secs(60);

/// Limit events since the last report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Closed right after accept: the address had `--max-connections-per-address` open.
    pub per_address: u64,
    /// Closed at the global limit to make room: the oldest without a complete PDU.
    pub evicted: u64,
    /// Closed for not sending a complete PDU within `--handshake-timeout`.
    pub handshake_timeouts: u64,
    /// Times new connections had to wait at the limit (every connection had sent a PDU).
    pub waited: u64,
}

impl Counts {
    fn is_zero(&self) -> bool {
        *self == Counts::default()
    }
}

/// Connection admission shared by every accept loop and connection.
#[derive(Debug)]
pub struct Admission {
    per_address: usize,
    handshake_timeout: Duration,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Open connections per (canonical) client address.
    per_ip: HashMap<IpAddr, usize>,
    /// Connections without a complete PDU yet, oldest first, with what wakes them to close.
    pending: BTreeMap<u64, Arc<Notify>>,
    next: u64,
    counts: Counts,
    last_report: Option<Instant>,
}

/// Why a connection was closed by [`Ticket::closed_by_limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Evicted at the global limit.
    Evicted,
    /// No complete PDU within the handshake timeout.
    HandshakeTimeout,
}

impl Admission {
    /// Admission with at most `per_address` connections per client address and the first
    /// complete PDU due within `handshake_timeout`.
    pub fn new(per_address: usize, handshake_timeout: Duration, metrics: Arc<Metrics>) -> Self {
        Admission {
            per_address: per_address.max(1),
            handshake_timeout,
            metrics,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a new connection from `ip`, or None when that address already has its share
    /// (the caller closes it at once).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Ticket> {
        // A dual-stack listener's IPv4 clients count under their IPv4 address.
        let ip = ip.to_canonical();
        let mut st = self.lock();
        let open = st.per_ip.entry(ip).or_insert(0);
        if *open >= self.per_address {
            st.counts.per_address += 1;
            self.report(&mut st, Instant::now());
            drop(st);
            self.metrics.limit_close("per_address");
            return None;
        }
        *open += 1;
        let seq = st.next;
        st.next += 1;
        let wake = Arc::new(Notify::new());
        st.pending.insert(seq, wake.clone());
        Some(Ticket {
            admission: self.clone(),
            ip,
            seq,
            wake,
            deadline: tokio::time::Instant::now() + self.handshake_timeout,
        })
    }

    /// Whether some open connection has not sent a complete PDU yet (one could be evicted).
    pub fn has_pending(&self) -> bool {
        !self.lock().pending.is_empty()
    }

    /// Closes the oldest connection that has not sent a complete PDU and was admitted before
    /// `newcomer` (the connection that needs the room); false if there is none.
    pub fn evict_for(&self, newcomer: &Ticket) -> bool {
        let mut st = self.lock();
        match st.pending.first_key_value() {
            Some((&seq, _)) if seq < newcomer.seq => {}
            _ => return false,
        }
        let Some((_, wake)) = st.pending.pop_first() else {
            return false;
        };
        wake.notify_one();
        st.counts.evicted += 1;
        self.report(&mut st, Instant::now());
        drop(st);
        self.metrics.limit_close("evicted");
        true
    }

    /// New connections wait at the global limit (every open connection has sent a PDU).
    pub fn note_wait(&self) {
        let mut st = self.lock();
        st.counts.waited += 1;
        self.report(&mut st, Instant::now());
    }

    /// Logs the counts gathered since the last report if a minute has passed (called by a
    /// timer, so the last events of an episode are reported too).
    pub fn flush(&self) {
        let mut st = self.lock();
        self.report(&mut st, Instant::now());
    }

    /// Logs and resets the counts, at most once every [`REPORT_EVERY`].
    fn report(&self, st: &mut State, now: Instant) {
        if st.counts.is_zero()
            || st
                .last_report
                .is_some_and(|t| now.duration_since(t) < REPORT_EVERY)
        {
            return;
        }
        let c = std::mem::take(&mut st.counts);
        st.last_report = Some(now);
        warn!(
            closed_per_address = c.per_address,
            evicted = c.evicted,
            handshake_timeouts = c.handshake_timeouts,
            waited_at_limit = c.waited,
            per_address_limit = self.per_address,
            handshake_timeout = ?self.handshake_timeout,
            open_addresses = st.per_ip.len(),
            "connection limits at work (counts since the last report; logged at most once a minute)"
        );
    }

    /// The counts not reported yet (for tests).
    #[cfg(test)]
    fn unreported(&self) -> Counts {
        self.lock().counts
    }
}

/// One admitted connection; dropping it gives back its place.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    ip: IpAddr,
    seq: u64,
    wake: Arc<Notify>,
    deadline: tokio::time::Instant,
}

impl Ticket {
    /// The connection sent its first complete PDU: it can no longer be evicted nor timed out
    /// by the handshake deadline.
    pub fn established(&self) {
        self.admission.lock().pending.remove(&self.seq);
    }

    /// Resolves when the limits close this connection: evicted, or no complete PDU by the
    /// handshake deadline. Never resolves once the connection is established.
    pub async fn closed_by_limits(&self) -> Closed {
        tokio::select! {
            _ = self.wake.notified() => Closed::Evicted,
            _ = tokio::time::sleep_until(self.deadline) => {
                if self.expire() {
                    return Closed::HandshakeTimeout;
                }
                // Established in time, or evicted at the same moment.
                self.wake.notified().await;
                Closed::Evicted
            }
        }
    }

    /// At the handshake deadline: true (and counted) if no complete PDU came.
    fn expire(&self) -> bool {
        let admission = &self.admission;
        let mut st = admission.lock();
        if st.pending.remove(&self.seq).is_none() {
            return false;
        }
        st.counts.handshake_timeouts += 1;
        admission.report(&mut st, Instant::now());
        drop(st);
        admission.metrics.limit_close("handshake_timeout");
        true
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut st = self.admission.lock();
        st.pending.remove(&self.seq);
        if let Some(n) = st.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                st.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(per_address: usize) -> Arc<Admission> {
        admission_with(per_address, Duration::from_secs(5))
    }

    fn admission_with(per_address: usize, handshake: Duration) -> Arc<Admission> {
        Arc::new(Admission::new(
            per_address,
            handshake,
            Arc::new(Metrics::new()),
        ))
    }

    #[test]
    fn per_address_cap_counts_ipv4_mapped_as_ipv4() {
        let a = admission(2);
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let t1 = a.admit(v4).unwrap();
        let t2 = a.admit(mapped).unwrap();
        assert!(a.admit(v4).is_none(), "third from 127.0.0.1");
        assert!(a.admit(mapped).is_none(), "third as ::ffff:127.0.0.1");
        let t3 = a.admit(other).unwrap();
        drop(t1);
        let t4 = a.admit(mapped).expect("a place was given back");
        // The first refusal was reported at once, the second waits for the next report.
        assert_eq!(a.unreported().per_address, 1);
        drop((t2, t3, t4));
        assert!(a.lock().per_ip.is_empty());
        assert!(a.lock().pending.is_empty());
    }

    #[tokio::test]
    async fn eviction_takes_the_oldest_without_a_complete_pdu() {
        let a = admission(100);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let oldest = a.admit(ip).unwrap();
        let second = a.admit(ip).unwrap();
        let third = a.admit(ip).unwrap();
        let newcomer = a.admit(ip).unwrap();
        oldest.established();
        assert!(a.evict_for(&newcomer));
        // `second` is the oldest still without a PDU: it is told to close, the others are not.
        assert_eq!(second.closed_by_limits().await, Closed::Evicted);
        let wait = tokio::time::timeout(Duration::from_millis(100), oldest.closed_by_limits());
        assert!(
            wait.await.is_err(),
            "an established connection is never evicted"
        );
        assert!(a.evict_for(&newcomer));
        assert_eq!(third.closed_by_limits().await, Closed::Evicted);
        assert!(!a.evict_for(&newcomer), "the newcomer never evicts itself");
        assert!(a.has_pending());
        newcomer.established();
        assert!(!a.has_pending());
    }

    #[tokio::test]
    async fn handshake_deadline_applies_until_the_first_pdu() {
        let a = admission_with(100, Duration::from_millis(200));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let silent = a.admit(ip).unwrap();
        let talker = a.admit(ip).unwrap();
        talker.established();
        let start = tokio::time::Instant::now();
        assert_eq!(silent.closed_by_limits().await, Closed::HandshakeTimeout);
        assert!(start.elapsed() >= Duration::from_millis(200));
        assert!(!a.has_pending());
        let wait = tokio::time::timeout(Duration::from_millis(400), talker.closed_by_limits());
        assert!(wait.await.is_err(), "no deadline after the first PDU");
    }

    #[test]
    fn limit_events_are_reported_once_a_minute_with_counts() {
        let a = admission(1);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let _t = a.admit(ip).unwrap();
        let t0 = Instant::now();
        let mut st = a.lock();
        st.counts.per_address = 1;
        a.report(&mut st, t0);
        assert!(st.counts.is_zero(), "the first event is reported at once");
        st.counts.per_address = 500;
        st.counts.evicted = 7;
        a.report(&mut st, t0 + Duration::from_secs(59));
        assert_eq!(st.counts.per_address, 500, "not again within the minute");
        a.report(&mut st, t0 + Duration::from_secs(60));
        assert!(
            st.counts.is_zero(),
            "reported with its counts after a minute"
        );
        assert_eq!(st.last_report, Some(t0 + Duration::from_secs(60)));
    }
}
