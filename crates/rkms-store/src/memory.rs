//! [`MemoryStore`]: the client store kept in a hash map, for `--db none` and tests.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use uuid::Uuid;

use crate::history::day_start;
use crate::{
    Activation, ActivationEvent, ClientFilter, ClientRecord, ClientStore, DailyCount, StoreError,
};

/// Most history events a [`MemoryStore`] keeps: beyond it the oldest recorded are forgotten, so
/// a long-running `--db none` host does not grow without bound.
pub const MEMORY_HISTORY_LIMIT: usize = 1_000;

/// Most client records an in-memory store keeps; beyond it the least recently seen tenth is
/// forgotten, so a flood of made-up client IDs cannot exhaust memory.
pub const MEMORY_CLIENT_LIMIT: usize = 1_000;

/// A client store that lives only as long as the process, with the same behaviour as
/// [`crate::SqliteStore`] (except that the history keeps at most [`MEMORY_HISTORY_LIMIT`]
/// events). Never fails.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    records: HashMap<(Uuid, Uuid), ClientRecord>,
    /// History events in the order recorded.
    events: VecDeque<ActivationEvent>,
}

impl Default for Inner {
    /// Both tables are sized for their limit once: a table that grows by doubling holds the
    /// old and the new copy at once, and leaves the allocator fragmented. Pages no record
    /// has touched yet take no memory.
    fn default() -> Self {
        Self {
            records: HashMap::with_capacity(MEMORY_CLIENT_LIMIT),
            events: VecDeque::with_capacity(MEMORY_HISTORY_LIMIT),
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Updates cannot panic halfway, so a poisoned map is still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Events passing `keep`, newest first (ties: the later recorded first), at most `limit`.
    fn newest(&self, limit: u64, keep: impl Fn(&ActivationEvent) -> bool) -> Vec<ActivationEvent> {
        let inner = self.inner();
        // Latest recorded first, then a stable sort by time keeps that order among ties.
        let mut out: Vec<ActivationEvent> = inner
            .events
            .iter()
            .rev()
            .filter(|e| keep(e))
            .cloned()
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.time));
        out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        out
    }
}

fn upsert(inner: &mut Inner, a: &Activation) {
    if inner.records.len() >= MEMORY_CLIENT_LIMIT
        && !inner.records.contains_key(&(a.cmid, a.application_id))
    {
        evict_oldest(&mut inner.records, MEMORY_CLIENT_LIMIT / 10);
    }
    inner
        .records
        .entry((a.cmid, a.application_id))
        .and_modify(|r| r.merge(a))
        .or_insert_with(|| ClientRecord::from_activation(a));
    if inner.events.len() >= MEMORY_HISTORY_LIMIT {
        inner.events.pop_front();
    }
    inner.events.push_back(ActivationEvent::from_activation(a));
}

/// Removes the `n` least recently seen records (amortised: called once per `n` inserts).
fn evict_oldest(records: &mut HashMap<(Uuid, Uuid), ClientRecord>, n: usize) {
    let mut seen: Vec<i64> = records.values().map(|r| r.last_seen).collect();
    if seen.len() <= n {
        records.clear();
        return;
    }
    let (_, cutoff, _) = seen.select_nth_unstable(n);
    let cutoff = *cutoff;
    let mut removed = 0;
    records.retain(|_, r| {
        if removed < n && r.last_seen <= cutoff {
            removed += 1;
            false
        } else {
            true
        }
    });
}

impl ClientStore for MemoryStore {
    fn record(&self, a: &Activation) -> Result<(), StoreError> {
        upsert(&mut self.inner(), a);
        Ok(())
    }

    fn record_batch(&self, batch: &[Activation]) -> Result<(), StoreError> {
        let mut inner = self.inner();
        for a in batch {
            upsert(&mut inner, a);
        }
        Ok(())
    }

    fn distinct_clients_since(&self, kms_id: &Uuid, since: i64) -> Result<u64, StoreError> {
        let inner = self.inner();
        let cmids: HashSet<Uuid> = inner
            .records
            .values()
            .filter(|r| r.kms_id == *kms_id && r.last_seen >= since && r.last_hresult == 0)
            .map(|r| r.cmid)
            .collect();
        Ok(cmids.len() as u64)
    }

    fn list(&self, filter: &ClientFilter) -> Result<Vec<ClientRecord>, StoreError> {
        let mut out: Vec<ClientRecord> = self
            .inner()
            .records
            .values()
            .filter(|r| filter.matches(r))
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            b.last_seen
                .cmp(&a.last_seen)
                .then(a.cmid.cmp(&b.cmid))
                .then(a.application_id.cmp(&b.application_id))
        });
        let offset = usize::try_from(filter.offset.unwrap_or(0)).unwrap_or(usize::MAX);
        let limit = filter
            .limit
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        Ok(out.into_iter().skip(offset).take(limit).collect())
    }

    fn prune_older_than(&self, cutoff: i64) -> Result<u64, StoreError> {
        let mut inner = self.inner();
        let before = inner.records.len();
        inner.records.retain(|_, r| r.last_seen >= cutoff);
        inner.events.retain(|e| e.time >= cutoff);
        Ok((before - inner.records.len()) as u64)
    }

    fn count(&self) -> Result<u64, StoreError> {
        Ok(self.inner().records.len() as u64)
    }

    fn history(&self, cmid: &Uuid, limit: u64) -> Result<Vec<ActivationEvent>, StoreError> {
        Ok(self.newest(limit, |e| e.cmid == *cmid))
    }

    fn recent_activations(&self, limit: u64) -> Result<Vec<ActivationEvent>, StoreError> {
        Ok(self.newest(limit, |_| true))
    }

    fn activations_since(&self, since: i64) -> Result<u64, StoreError> {
        Ok(self
            .inner()
            .events
            .iter()
            .filter(|e| e.time >= since)
            .count() as u64)
    }

    fn daily_counts(&self, since: i64) -> Result<Vec<DailyCount>, StoreError> {
        let mut counts: BTreeMap<(i64, Uuid, Uuid, bool), u64> = BTreeMap::new();
        for e in self.inner().events.iter().filter(|e| e.time >= since) {
            let key = (day_start(e.time), e.application_id, e.kms_id, e.succeeded());
            *counts.entry(key).or_default() += 1;
        }
        Ok(counts
            .into_iter()
            .map(
                |((day, application_id, kms_id, succeeded), count)| DailyCount {
                    day,
                    application_id,
                    kms_id,
                    succeeded,
                    count,
                },
            )
            .collect())
    }

    fn probe_writable(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn client_counts_since(&self, since: i64) -> Result<Vec<(Uuid, u64)>, StoreError> {
        let inner = self.inner();
        let mut per_kms: BTreeMap<Uuid, HashSet<Uuid>> = BTreeMap::new();
        for r in inner
            .records
            .values()
            .filter(|r| r.last_seen >= since && r.last_hresult == 0)
        {
            per_kms.entry(r.kms_id).or_default().insert(r.cmid);
        }
        Ok(per_kms
            .into_iter()
            .map(|(kms, cmids)| (kms, cmids.len() as u64))
            .collect())
    }

    fn events_page(&self, offset: u64, limit: u64) -> Result<Vec<ActivationEvent>, StoreError> {
        let inner = self.inner();
        // Recorded order, then a stable sort by time keeps that order among ties.
        let mut all: Vec<&ActivationEvent> = inner.events.iter().collect();
        all.sort_by_key(|e| e.time);
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(all.into_iter().skip(offset).take(limit).cloned().collect())
    }

    fn import(
        &self,
        records: &[ClientRecord],
        events: &[ActivationEvent],
    ) -> Result<(), StoreError> {
        let mut inner = self.inner();
        for r in records {
            let key = (r.cmid, r.application_id);
            if inner.records.len() >= MEMORY_CLIENT_LIMIT && !inner.records.contains_key(&key) {
                evict_oldest(&mut inner.records, MEMORY_CLIENT_LIMIT / 10);
            }
            inner
                .records
                .entry(key)
                .and_modify(|stored| stored.absorb(r))
                .or_insert_with(|| r.clone());
        }
        for e in events {
            if inner.events.len() >= MEMORY_HISTORY_LIMIT {
                inner.events.pop_front();
            }
            inner.events.push_back(e.clone());
        }
        Ok(())
    }
}
