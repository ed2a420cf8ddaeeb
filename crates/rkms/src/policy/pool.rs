//! The genuine count: distinct client machines per KMS ID pool over the last 30 days
//! (PROTOCOL.md §9.1), kept in memory and seeded from the client store at start.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

/// How long a client counts after its last request: 30 days.
pub const WINDOW_SECS: i64 = 30 * 86_400;

/// Distinct CMIDs per pool, with when each was last seen.
#[derive(Debug, Default)]
pub struct Pools {
    pools: Mutex<HashMap<Uuid, HashMap<Uuid, i64>>>,
}

impl Pools {
    /// Empty pools.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a client seen at `time` (from the store at start, or a request).
    pub fn seed(&self, pool: Uuid, cmid: Uuid, time: i64) {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let seen = pools.entry(pool).or_default().entry(cmid).or_insert(time);
        *seen = (*seen).max(time);
    }

    /// Records a request from `cmid` at `now` and returns the pool's distinct clients of the
    /// last 30 days, this one included. Clients older than the window are dropped.
    pub fn observe(&self, pool: Uuid, cmid: Uuid, now: i64) -> u64 {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let clients = pools.entry(pool).or_default();
        clients.insert(cmid, now);
        let cutoff = now - WINDOW_SECS;
        if clients.len() > 64 {
            clients.retain(|_, seen| *seen >= cutoff);
        }
        clients.values().filter(|seen| **seen >= cutoff).count() as u64
    }

    /// The pool's distinct clients of the last 30 days, without recording anything.
    pub fn count(&self, pool: Uuid, now: i64) -> u64 {
        let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let cutoff = now - WINDOW_SECS;
        pools
            .get(&pool)
            .map_or(0, |c| c.values().filter(|s| **s >= cutoff).count() as u64)
    }

    /// Every pool and its current count.
    pub fn counts(&self, now: i64) -> Vec<(Uuid, u64)> {
        let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let cutoff = now - WINDOW_SECS;
        pools
            .iter()
            .map(|(k, c)| (*k, c.values().filter(|s| **s >= cutoff).count() as u64))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_clients_in_window() {
        let p = Pools::new();
        let pool = Uuid::from_u128(1);
        let now = 1_800_000_000;
        assert_eq!(p.observe(pool, Uuid::from_u128(10), now), 1);
        assert_eq!(
            p.observe(pool, Uuid::from_u128(10), now + 5),
            1,
            "same machine counts once"
        );
        assert_eq!(p.observe(pool, Uuid::from_u128(11), now + 6), 2);
        assert_eq!(
            p.observe(Uuid::from_u128(2), Uuid::from_u128(10), now),
            1,
            "pools are separate"
        );
        p.seed(pool, Uuid::from_u128(12), now - WINDOW_SECS - 1);
        assert_eq!(p.count(pool, now), 2, "older than 30 days does not count");
        assert_eq!(p.count(pool, now + WINDOW_SECS + 10), 0);
    }
}
