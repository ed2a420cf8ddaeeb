//! [`MemoryStore`]: the client store kept in a hash map, for `--db none` and tests.

use std::collections::hash_map::Entry;
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
/// [`crate::SqliteStore`] except that it is bounded: it keeps at most [`MEMORY_CLIENT_LIMIT`]
/// client records (forgetting the least recently seen beyond it) and at most
/// [`MEMORY_HISTORY_LIMIT`] history events (forgetting the oldest recorded). Never fails.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

/// The client records by (CMID, application ID). Each record is boxed: a new client's record
/// (most often a forgotten one reused) moves in and out of the table as a pointer, not as
/// some 250 bytes.
type Records = HashMap<(Uuid, Uuid), Box<ClientRecord>>;

/// Forgotten records kept for reuse, boxed as in [`Records`]: a reused record goes into the
/// table as the box it is, without a new allocation.
#[allow(clippy::vec_box)]
type Spare = Vec<Box<ClientRecord>>;

#[derive(Debug)]
struct Inner {
    records: Records,
    /// History events in the order recorded.
    events: VecDeque<ActivationEvent>,
    /// Records the last eviction forgot (at most a tenth of the limit): a new client's record
    /// reuses one and its strings' memory instead of allocating its own.
    spare: Spare,
    /// The records' `last_seen` times gathered by an eviction, kept for the next one (a full
    /// table evicts once per tenth of its limit of new clients).
    seen: Vec<i64>,
}

impl Default for Inner {
    /// Both tables are sized for their limit once: a table that grows by doubling holds the
    /// old and the new copy at once, and leaves the allocator fragmented. Pages no record
    /// has touched yet take no memory.
    fn default() -> Self {
        Self {
            records: HashMap::with_capacity(MEMORY_CLIENT_LIMIT),
            events: VecDeque::with_capacity(MEMORY_HISTORY_LIMIT),
            spare: Vec::new(),
            seen: Vec::new(),
        }
    }
}

impl Inner {
    /// Makes room for the record under `key` if it is new and the table is full.
    fn make_room(&mut self, key: &(Uuid, Uuid)) {
        if !self.records.contains_key(key) {
            self.make_room_for_new();
        }
    }

    /// Makes room for a record not in the table if the table is full.
    fn make_room_for_new(&mut self) {
        if self.records.len() >= MEMORY_CLIENT_LIMIT {
            evict_oldest(
                &mut self.records,
                MEMORY_CLIENT_LIMIT / 10,
                &mut self.spare,
                &mut self.seen,
            );
        }
    }

    /// Appends a history event, forgetting the oldest recorded if the history is full.
    fn push_event(&mut self, e: ActivationEvent) {
        if self.events.len() >= MEMORY_HISTORY_LIMIT {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    /// Appends the history event of `a`; when the history is full the oldest event is
    /// forgotten and its memory reused for this one, in place (a full ring of events turns
    /// by one without moving any).
    fn push_event_of(&mut self, a: &Activation) {
        if self.events.len() >= MEMORY_HISTORY_LIMIT {
            if let Some(oldest) = self.events.front_mut() {
                oldest.reset_to(a);
                self.events.rotate_left(1);
                return;
            }
        }
        self.events.push_back(ActivationEvent::from_activation(a));
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
    let key = (a.cmid, a.application_id);
    let full = inner.records.len() >= MEMORY_CLIENT_LIMIT;
    // One look-up of the key (hashed once), unless a new client finds the table full.
    match inner.records.entry(key) {
        Entry::Occupied(mut r) => r.get_mut().merge(a),
        Entry::Vacant(place) if !full => {
            place.insert(new_record(&mut inner.spare, a));
        }
        Entry::Vacant(_) => {
            inner.make_room_for_new();
            let record = new_record(&mut inner.spare, a);
            inner.records.insert(key, record);
        }
    }
    inner.push_event_of(a);
}

/// The record of a new client: a forgotten one reused when there is one.
fn new_record(spare: &mut Spare, a: &Activation) -> Box<ClientRecord> {
    match spare.pop() {
        Some(mut r) => {
            r.reset_to(a);
            r
        }
        None => Box::new(ClientRecord::from_activation(a)),
    }
}

/// Removes the `n` least recently seen records (amortised: called once per `n` inserts):
/// every record seen before the `n`-th smallest `last_seen`, then records seen exactly then
/// (in no particular order) until `n` are gone. The removed records are kept in `spare`
/// (up to `n` of them) for new clients' records to reuse. `seen` is working space (its
/// contents do not matter).
fn evict_oldest(records: &mut Records, n: usize, spare: &mut Spare, seen: &mut Vec<i64>) {
    if n == 0 {
        return;
    }
    let room = n.saturating_sub(spare.len());
    seen.clear();
    seen.extend(records.values().map(|r| r.last_seen));
    if seen.len() <= n {
        spare.extend(records.drain().map(|(_, r)| r).take(room));
        return;
    }
    let (older, cutoff, _) = seen.select_nth_unstable(n - 1);
    let cutoff = *cutoff;
    // Everything seen before the cutoff sits in `older` (fewer than n); ties fill up to n.
    let mut ties = n - older.iter().filter(|&&t| t < cutoff).count();
    let removed = records.extract_if(|_, r| {
        if r.last_seen < cutoff {
            true
        } else if r.last_seen == cutoff && ties > 0 {
            ties -= 1;
            true
        } else {
            false
        }
    });
    // Every removal runs (the iterator is used up), only `room` records are kept.
    for (i, (_, r)) in removed.enumerate() {
        if i < room {
            spare.push(r);
        }
    }
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
            .map(|r| ClientRecord::clone(r))
            .collect();
        out.sort_by(|a, b| filter.compare(a, b));
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

    fn prune_history(&self, cutoff: i64, batch: u64) -> Result<u64, StoreError> {
        let mut inner = self.inner();
        let mut left = batch;
        inner.events.retain(|e| {
            if e.time < cutoff && left > 0 {
                left -= 1;
                false
            } else {
                true
            }
        });
        Ok(batch - left)
    }

    fn prune_clients(&self, cutoff: i64, batch: u64) -> Result<u64, StoreError> {
        let mut inner = self.inner();
        let mut left = batch;
        inner.records.retain(|_, r| {
            if r.last_seen < cutoff && left > 0 {
                left -= 1;
                false
            } else {
                true
            }
        });
        Ok(batch - left)
    }

    fn prune_workstation(&self, name: &str) -> Result<(u64, u64), StoreError> {
        let mut inner = self.inner();
        let (records, events) = (inner.records.len(), inner.events.len());
        inner
            .records
            .retain(|_, r| !r.workstation.eq_ignore_ascii_case(name));
        inner
            .events
            .retain(|e| !e.workstation.eq_ignore_ascii_case(name));
        Ok((
            (records - inner.records.len()) as u64,
            (events - inner.events.len()) as u64,
        ))
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
        let since_day = since.saturating_sub(since.rem_euclid(crate::SECONDS_PER_DAY));
        for e in self.inner().events.iter().filter(|e| e.time >= since_day) {
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
            inner.make_room(&key);
            inner
                .records
                .entry(key)
                .and_modify(|stored| stored.absorb(r))
                .or_insert_with(|| Box::new(r.clone()));
        }
        for e in events {
            inner.push_event(e.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(last_seen: i64) -> ClientRecord {
        ClientRecord::from_activation(&Activation {
            cmid: Uuid::new_v4(),
            application_id: Uuid::new_v4(),
            sku_id: Uuid::nil(),
            kms_id: Uuid::nil(),
            workstation: String::new(),
            license_status: 0,
            grace_minutes: 0,
            is_vm: false,
            protocol: "6.0".into(),
            time: last_seen,
            address: String::new(),
            epid: String::new(),
            hresult: 0,
        })
    }

    /// With whole-second ties, every record older than the ties goes before any tie does.
    #[test]
    fn eviction_removes_all_older_records_before_ties() {
        let mut records = HashMap::new();
        for last_seen in std::iter::repeat_n(0, 50).chain(std::iter::repeat_n(1, 950)) {
            let r = record(last_seen);
            records.insert((r.cmid, r.application_id), Box::new(r));
        }
        evict_oldest(&mut records, 100, &mut Vec::new(), &mut Vec::new());
        assert_eq!(records.len(), 900);
        assert!(records.values().all(|r| r.last_seen == 1));
    }

    #[test]
    fn eviction_removes_exactly_n() {
        let mut records = HashMap::new();
        for last_seen in [5, 3, 3, 3, 1, 2, 2, 9] {
            let r = record(last_seen);
            records.insert((r.cmid, r.application_id), Box::new(r));
        }
        let mut spare = Vec::new();
        evict_oldest(&mut records, 4, &mut spare, &mut vec![7; 3]);
        assert_eq!(spare.len(), 4);
        let mut left: Vec<i64> = records.values().map(|r| r.last_seen).collect();
        left.sort_unstable();
        assert_eq!(left, [3, 3, 5, 9]);
        evict_oldest(&mut records, 0, &mut spare, &mut Vec::new());
        assert_eq!(records.len(), 4);
        // The spare list is full: records are still removed, none more kept.
        evict_oldest(&mut records, 4, &mut spare, &mut Vec::new());
        assert!(records.is_empty());
        assert_eq!(spare.len(), 4);
    }

    /// Records and events that reuse forgotten ones hold exactly what the new activation
    /// gives, nothing of what they held before.
    #[test]
    fn recycled_records_and_events_hold_only_the_new_activation() {
        let store = MemoryStore::new();
        let activation = |i: u32| Activation {
            cmid: Uuid::from_u128(u128::from(i) + 1),
            application_id: Uuid::from_u128(7),
            sku_id: Uuid::from_u128(u128::from(i % 3)),
            kms_id: Uuid::from_u128(u128::from(i % 5)),
            workstation: "w".repeat(1 + (i % 40) as usize),
            license_status: i % 6,
            grace_minutes: i,
            is_vm: i.is_multiple_of(2),
            protocol: ["4.0", "5.0", "6.0"][(i % 3) as usize].into(),
            time: i64::from(i),
            address: format!("192.0.2.{}", i % 250),
            epid: if i.is_multiple_of(4) {
                String::new()
            } else {
                format!("epid-{i}")
            },
            hresult: if i.is_multiple_of(7) { 0xC004_F042 } else { 0 },
        };
        let total = 3 * MEMORY_CLIENT_LIMIT as u32;
        let all: Vec<Activation> = (0..total).map(activation).collect();
        for a in &all {
            store.record(a).unwrap();
        }
        let kept = store.list(&ClientFilter::default()).unwrap();
        assert!(kept.len() > MEMORY_CLIENT_LIMIT / 2);
        for r in &kept {
            let i = (r.cmid.as_u128() - 1) as usize;
            assert_eq!(*r, ClientRecord::from_activation(&all[i]));
        }
        // The newest clients are the ones kept.
        assert!(kept.iter().any(|r| r.cmid == all[all.len() - 1].cmid));
        let events = store
            .recent_activations(MEMORY_HISTORY_LIMIT as u64)
            .unwrap();
        assert_eq!(events.len(), MEMORY_HISTORY_LIMIT);
        for (e, a) in events.iter().zip(all.iter().rev()) {
            assert_eq!(*e, ActivationEvent::from_activation(a));
        }
        // A returning client is merged, not recycled.
        let mut again = all[all.len() - 1].clone();
        again.time += 1;
        store.record(&again).unwrap();
        let r = store
            .list(&ClientFilter::default())
            .unwrap()
            .into_iter()
            .find(|r| r.cmid == again.cmid)
            .unwrap();
        assert_eq!(
            (r.requests, r.first_seen, r.last_seen),
            (2, again.time - 1, again.time)
        );
    }

    /// A full store makes room for a new client by forgetting the least recently seen.
    #[test]
    fn a_full_store_forgets_the_oldest_clients_first() {
        let store = MemoryStore::new();
        let mut old = Vec::new();
        let mut records = Vec::new();
        for i in 0..MEMORY_CLIENT_LIMIT {
            let r = record(i64::from(i >= 10));
            if i < 10 {
                old.push(r.cmid);
            }
            records.push(r);
        }
        store.import(&records, &[]).unwrap();
        store.import(&[record(2)], &[]).unwrap();
        let left = store.list(&ClientFilter::default()).unwrap();
        assert_eq!(
            left.len(),
            MEMORY_CLIENT_LIMIT - MEMORY_CLIENT_LIMIT / 10 + 1
        );
        assert!(left.iter().all(|r| !old.contains(&r.cmid)));
    }
}
