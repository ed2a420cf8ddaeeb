//! The genuine count: distinct client machines per KMS ID pool over the last 30 days
//! (PROTOCOL.md §9.1), kept in memory and seeded from the client store at start.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

/// How long a client counts after its last request: 30 days.
pub const WINDOW_SECS: i64 = 30 * 86_400;

/// Clients remembered per pool. No count exceeds 2 × 1000 (the largest threshold a request
/// may ask for), and the most recently seen 2,048 clients decide any count up to that, so
/// older ones can be forgotten: a flood of made-up client IDs cannot exhaust memory.
pub const POOL_LIMIT: usize = 2048;

/// Pools kept (one per KMS ID); made-up KMS IDs beyond it push out the least recently used.
pub const POOLS_LIMIT: usize = 1024;

/// Distinct CMIDs per pool, with when each was last seen.
#[derive(Debug, Default)]
pub struct Pools {
    pools: Mutex<HashMap<Uuid, HashMap<Uuid, i64>>>,
    /// Distinct clients per pool across every host sharing the database (refreshed).
    shared: Mutex<HashMap<Uuid, u64>>,
}

impl Pools {
    /// Empty pools.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a client seen at `time` (from the store at start, or a request).
    pub fn seed(&self, pool: Uuid, cmid: Uuid, time: i64) {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let clients = pool_entry(&mut pools, pool);
        let seen = clients.entry(cmid).or_insert(time);
        *seen = (*seen).max(time);
        trim(clients);
    }

    /// Records a request from `cmid` at `now` and returns the pool's distinct clients of the
    /// last 30 days, this one included. Clients older than the window are dropped.
    pub fn observe(&self, pool: Uuid, cmid: Uuid, now: i64) -> u64 {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let clients = pool_entry(&mut pools, pool);
        clients.insert(cmid, now);
        let cutoff = now - WINDOW_SECS;
        if clients.len() > 64 {
            clients.retain(|_, seen| *seen >= cutoff);
        }
        trim(clients);
        let local = clients.values().filter(|seen| **seen >= cutoff).count() as u64;
        drop(pools);
        local.max(self.shared_count(pool))
    }

    /// Replaces the counts of clients across all hosts sharing the database.
    pub fn set_shared(&self, counts: HashMap<Uuid, u64>) {
        *self.shared.lock().unwrap_or_else(|e| e.into_inner()) = counts;
    }

    fn shared_count(&self, pool: Uuid) -> u64 {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&pool)
            .copied()
            .unwrap_or(0)
    }

    /// The pool's distinct clients of the last 30 days, without recording anything.
    pub fn count(&self, pool: Uuid, now: i64) -> u64 {
        let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let cutoff = now - WINDOW_SECS;
        let local = pools
            .get(&pool)
            .map_or(0, |c| c.values().filter(|s| **s >= cutoff).count() as u64);
        drop(pools);
        local.max(self.shared_count(pool))
    }

    /// Every pool and its current count.
    pub fn counts(&self, now: i64) -> Vec<(Uuid, u64)> {
        let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let cutoff = now - WINDOW_SECS;
        let mut out: HashMap<Uuid, u64> = pools
            .iter()
            .map(|(k, c)| (*k, c.values().filter(|s| **s >= cutoff).count() as u64))
            .collect();
        drop(pools);
        for (k, n) in self.shared.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let e = out.entry(*k).or_default();
            *e = (*e).max(*n);
        }
        out.into_iter().collect()
    }
}

/// The pool's clients, making room for a new pool first when there are too many.
fn pool_entry(
    pools: &mut HashMap<Uuid, HashMap<Uuid, i64>>,
    pool: Uuid,
) -> &mut HashMap<Uuid, i64> {
    if pools.len() >= POOLS_LIMIT && !pools.contains_key(&pool) {
        let stalest = pools
            .iter()
            .map(|(k, c)| (*k, c.values().copied().max().unwrap_or(i64::MIN)))
            .min_by_key(|(_, newest)| *newest)
            .map(|(k, _)| k);
        if let Some(k) = stalest {
            pools.remove(&k);
        }
    }
    pools.entry(pool).or_default()
}

/// Keeps the pool's most recently seen [`POOL_LIMIT`] clients (amortised over 1/8 of it).
fn trim(clients: &mut HashMap<Uuid, i64>) {
    if clients.len() <= POOL_LIMIT + POOL_LIMIT / 8 {
        return;
    }
    let mut seen: Vec<i64> = clients.values().copied().collect();
    let drop = seen.len() - POOL_LIMIT;
    let (_, cutoff, _) = seen.select_nth_unstable(drop - 1);
    let cutoff = *cutoff;
    let mut removed = 0;
    clients.retain(|_, t| {
        if removed < drop && *t <= cutoff {
            removed += 1;
            false
        } else {
            true
        }
    });
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
        // Other hosts' clients raise the count; the local count wins when it is higher.
        p.set_shared([(pool, 7)].into_iter().collect());
        assert_eq!(p.count(pool, now + 10), 7);
        assert_eq!(p.observe(pool, Uuid::from_u128(13), now + 10), 7);
        p.set_shared([(pool, 1)].into_iter().collect());
        assert_eq!(p.count(pool, now + 10), 3);
    }

    #[test]
    fn floods_are_bounded_and_counts_stay_right() {
        let p = Pools::new();
        let now = 1_800_000_000;
        let pool = Uuid::from_u128(1);
        for i in 0..20_000u128 {
            p.observe(pool, Uuid::from_u128(i + 100), now + i as i64);
        }
        let kept = p.pools.lock().unwrap()[&pool].len();
        assert!(kept <= POOL_LIMIT + POOL_LIMIT / 8, "{kept}");
        assert!(
            p.count(pool, now + 20_000) >= 2000,
            "every count up to 2 x 1000 is still exact"
        );
        for i in 0..(POOLS_LIMIT as u128 + 50) {
            p.observe(
                Uuid::from_u128(1_000_000 + i),
                Uuid::from_u128(5),
                now + i as i64,
            );
        }
        assert!(p.pools.lock().unwrap().len() <= POOLS_LIMIT);
    }
}
