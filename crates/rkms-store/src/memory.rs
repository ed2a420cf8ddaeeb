//! [`MemoryStore`]: the client store kept in a hash map, for `--db none` and tests.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use uuid::Uuid;

use crate::{Activation, ClientFilter, ClientRecord, ClientStore, StoreError};

/// A client store that lives only as long as the process, with the same behaviour as
/// [`crate::SqliteStore`]. Never fails.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<(Uuid, Uuid), ClientRecord>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn records(&self) -> MutexGuard<'_, HashMap<(Uuid, Uuid), ClientRecord>> {
        // Updates cannot panic halfway, so a poisoned map is still consistent.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn upsert(records: &mut HashMap<(Uuid, Uuid), ClientRecord>, a: &Activation) {
    records
        .entry((a.cmid, a.application_id))
        .and_modify(|r| r.merge(a))
        .or_insert_with(|| ClientRecord::from_activation(a));
}

impl ClientStore for MemoryStore {
    fn record(&self, a: &Activation) -> Result<(), StoreError> {
        upsert(&mut self.records(), a);
        Ok(())
    }

    fn record_batch(&self, batch: &[Activation]) -> Result<(), StoreError> {
        let mut records = self.records();
        for a in batch {
            upsert(&mut records, a);
        }
        Ok(())
    }

    fn distinct_clients_since(&self, kms_id: &Uuid, since: i64) -> Result<u64, StoreError> {
        let records = self.records();
        let cmids: HashSet<Uuid> = records
            .values()
            .filter(|r| r.kms_id == *kms_id && r.last_seen >= since && r.last_hresult == 0)
            .map(|r| r.cmid)
            .collect();
        Ok(cmids.len() as u64)
    }

    fn list(&self, filter: &ClientFilter) -> Result<Vec<ClientRecord>, StoreError> {
        let mut out: Vec<ClientRecord> = self
            .records()
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
        let mut records = self.records();
        let before = records.len();
        records.retain(|_, r| r.last_seen >= cutoff);
        Ok((before - records.len()) as u64)
    }

    fn count(&self) -> Result<u64, StoreError> {
        Ok(self.records().len() as u64)
    }
}
