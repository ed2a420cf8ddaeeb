//! The [`ClientStore`] trait every backend (SQLite, PostgreSQL, memory) implements.

use std::collections::{BTreeMap, HashSet};

use uuid::Uuid;

use crate::{
    Activation, ActivationEvent, ClientFilter, ClientRecord, ClientState, DailyCount, HealthCount,
    HealthThresholds, MatchCount, StoreError,
};

/// Where [`ClientStore::record_all`] takes its requests from: called once, it passes each
/// batch in order to the sink it is given, and stops at the first error (its own or the
/// sink's), which it returns.
pub type BatchSource<'a> = &'a mut dyn FnMut(&mut BatchSink<'_>) -> Result<(), StoreError>;

/// What a [`BatchSource`] passes its batches to.
pub type BatchSink<'a> = dyn FnMut(Vec<Activation>) -> Result<(), StoreError> + 'a;

/// A durable (or, for `--db none`, in-memory) record of KMS clients. Calls are synchronous and
/// may touch the disk: the async server goes through [`crate::Writer`] for writes.
pub trait ClientStore: Send + Sync {
    /// Records one request: inserts the (`cmid`, `application_id`) record, or bumps `requests`,
    /// keeps the earliest `first_seen` and takes the latest `last_seen` and other fields (see
    /// [`ClientRecord::merge`]); and adds its [`ActivationEvent`] to the history, atomically.
    fn record(&self, a: &Activation) -> Result<(), StoreError>;

    /// Records several requests, in order, as one transaction: all or none are written (client
    /// records and history events alike).
    fn record_batch(&self, batch: &[Activation]) -> Result<(), StoreError>;

    /// Records every request `source` hands over, in order, as one transaction like
    /// [`Self::record_batch`], where the requests come in batches (an import): `source` is
    /// called once and passes each batch to the sink it is given. `expected` is about how
    /// many requests there will be (a backend may prepare for a bulk write). Returns how many
    /// were recorded.
    ///
    /// The default implementation collects every batch, then calls [`Self::record_batch`];
    /// the SQLite and PostgreSQL stores write each batch as it comes, so that only one or two
    /// are held in memory.
    fn record_all(&self, source: BatchSource<'_>, expected: u64) -> Result<u64, StoreError> {
        let _ = expected;
        let mut all = Vec::new();
        source(&mut |batch| {
            all.extend(batch);
            Ok(())
        })?;
        self.record_batch(&all)?;
        Ok(all.len() as u64)
    }

    /// Number of distinct CMIDs recorded for `kms_id` whose latest request was at or after
    /// `since` and succeeded (`last_hresult == 0`) — the host's client count (PROTOCOL.md §9.1)
    /// before the caller caps it at twice the threshold.
    fn distinct_clients_since(&self, kms_id: &Uuid, since: i64) -> Result<u64, StoreError>;

    /// The records passing `filter`, in its order, `limit`/`offset` applied (see
    /// [`ClientFilter`]). The backends of this crate filter, sort and page in the database,
    /// with work proportional to the page for the default order.
    fn list(&self, filter: &ClientFilter) -> Result<Vec<ClientRecord>, StoreError>;

    /// How many records (and distinct machines, up to [`crate::MACHINES_COUNT_LIMIT`]) pass
    /// `filter`, `limit`/`offset` ignored: exactly for a filter that
    /// [selects every record](ClientFilter::selects_all), else up to
    /// [`crate::MATCH_COUNT_LIMIT`] (beyond it [`MatchCount::records_capped`] is set), so that
    /// a count never reads a whole large table.
    ///
    /// The default implementation reads them all through [`Self::list`]; the backends of
    /// this crate count in the database.
    fn count_matching(&self, filter: &ClientFilter) -> Result<MatchCount, StoreError> {
        let all = self.list(&ClientFilter {
            limit: None,
            offset: None,
            ..filter.clone()
        })?;
        let machines: HashSet<Uuid> = all.iter().map(|r| r.cmid).collect();
        let machines = (machines.len() as u64).min(crate::MACHINES_COUNT_LIMIT + 1);
        if filter.selects_all() {
            return Ok(MatchCount {
                records: all.len() as u64,
                machines,
                records_capped: false,
            });
        }
        Ok(MatchCount::capped(all.len() as u64, machines))
    }

    /// [`Self::list`] and [`Self::count_matching`] of one filter at once (a page and its
    /// count): a backend that looks a search's candidates up in an index does it once.
    fn list_and_count(
        &self,
        filter: &ClientFilter,
    ) -> Result<(Vec<ClientRecord>, MatchCount), StoreError> {
        Ok((self.list(filter)?, self.count_matching(filter)?))
    }

    /// Deferred work the store does when its writer has time ([`crate::Writer`] calls it):
    /// SQLite indexes the records whose searched text changed (see
    /// [`crate::schema::DEFERRED_SEARCH_VERSION`]). `idle`: no activation is waiting, so a
    /// batch may be done; otherwise (between two writes under load) work is done only when
    /// so much has piled up that it must not grow further. One batch at most, in one short
    /// transaction; returns whether work is left. None by default.
    fn upkeep(&self, idle: bool) -> Result<bool, StoreError> {
        let _ = idle;
        Ok(false)
    }

    /// Does all the deferred work of [`Self::upkeep`] now, in large batches (after a bulk
    /// write by a tool: an import, a copy).
    fn catch_up(&self) -> Result<(), StoreError> {
        while self.upkeep(true)? {}
        Ok(())
    }

    /// Conditions the operator should hear of, found when the store was opened (for example
    /// a search index PostgreSQL could not create): one sentence each. None by default.
    fn notices(&self) -> Vec<String> {
        Vec::new()
    }

    /// How many client records of each application and KMS ID are in each health state at
    /// `thresholds` (see [`crate::health`]); zero counts left out, ordered by application,
    /// KMS ID and state.
    ///
    /// The default implementation reads every record through [`Self::list`]; the database
    /// backends of this crate count in one grouped query.
    fn health_counts(&self, thresholds: &HealthThresholds) -> Result<Vec<HealthCount>, StoreError> {
        let mut counts: BTreeMap<(Uuid, Uuid), [u64; 5]> = BTreeMap::new();
        for r in self.list(&ClientFilter::default())? {
            let state = thresholds.state(&r);
            let i = ClientState::ALL
                .iter()
                .position(|s| *s == state)
                .unwrap_or_default();
            counts.entry((r.application_id, r.kms_id)).or_default()[i] += 1;
        }
        Ok(crate::health::counts_from_rows(
            counts.into_iter().map(|((a, k), n)| (a, k, n)).collect(),
        ))
    }

    /// Deletes at most `batch` history events with `time < cutoff`, oldest first, in one short
    /// transaction; returns how many were deleted (fewer than `batch`: none are left). The
    /// per-day counts ([`Self::daily_counts`]) keep them. For background retention, which
    /// calls it repeatedly so that writes never wait long.
    fn prune_history(&self, cutoff: i64, batch: u64) -> Result<u64, StoreError> {
        let _ = (cutoff, batch);
        Err(StoreError::Unsupported("pruning the history in batches"))
    }

    /// Deletes at most `batch` client records with `last_seen < cutoff`, least recently seen
    /// first; returns how many were deleted. Their history events are left to
    /// [`Self::prune_history`].
    fn prune_clients(&self, cutoff: i64, batch: u64) -> Result<u64, StoreError> {
        let _ = (cutoff, batch);
        Err(StoreError::Unsupported("pruning client records in batches"))
    }

    /// Deletes the client records and the history events of workstation `name` (ASCII
    /// case-insensitively, whole name), in one transaction; returns (records, events) deleted.
    fn prune_workstation(&self, name: &str) -> Result<(u64, u64), StoreError> {
        let _ = name;
        Err(StoreError::Unsupported("pruning by workstation name"))
    }

    /// The clients counting toward the genuine count: for every KMS ID, the (KMS ID, CMID,
    /// `last_seen`) of at most `per_kms` records whose latest request, at or after `since`,
    /// succeeded, the most recently seen first. Seeds the in-memory count at start without
    /// reading every record.
    fn active_clients(
        &self,
        since: i64,
        per_kms: u64,
    ) -> Result<Vec<(Uuid, Uuid, i64)>, StoreError> {
        let records = self.list(&ClientFilter {
            since: Some(since),
            activated: Some(true),
            ..ClientFilter::default()
        })?;
        let mut taken: BTreeMap<Uuid, u64> = BTreeMap::new();
        let mut out = Vec::new();
        for r in records {
            let n = taken.entry(r.kms_id).or_default();
            if *n < per_kms {
                *n += 1;
                out.push((r.kms_id, r.cmid, r.last_seen));
            }
        }
        Ok(out)
    }

    /// Deletes the records with `last_seen < cutoff` and the history events with
    /// `time < cutoff`; returns how many records were deleted.
    fn prune_older_than(&self, cutoff: i64) -> Result<u64, StoreError>;

    /// Number of records.
    fn count(&self) -> Result<u64, StoreError>;

    /// The history of client machine `cmid` (every application), newest first (ties: the later
    /// recorded first), at most `limit` events.
    fn history(&self, cmid: &Uuid, limit: u64) -> Result<Vec<ActivationEvent>, StoreError>;

    /// The latest `limit` events of every client, newest first (same order as [`Self::history`]).
    fn recent_activations(&self, limit: u64) -> Result<Vec<ActivationEvent>, StoreError>;

    /// Number of history events with `time >= since` (`i64::MIN` for all).
    fn activations_since(&self, since: i64) -> Result<u64, StoreError>;

    /// The requests recorded on the UTC day holding `since` and every later day, counted per
    /// day, application, KMS ID and outcome; ordered by day, then application ID, KMS ID,
    /// refused before activated. The database backends keep these counts in a table of their
    /// own, so they outlive the pruned history events.
    fn daily_counts(&self, since: i64) -> Result<Vec<DailyCount>, StoreError>;

    /// Checks that the store can take writes now (takes and releases the write lock; a
    /// read-only database fails), without changing anything.
    fn probe_writable(&self) -> Result<(), StoreError>;

    /// Number of distinct CMIDs per KMS counted ID whose latest request was at or after
    /// `since` and succeeded — [`Self::distinct_clients_since`] for every KMS ID at once, in
    /// one query (one round trip to a shared database), ordered by KMS ID. KMS IDs without such
    /// a client are left out.
    ///
    /// The default implementation reads every record seen since `since` through
    /// [`Self::list`]; the backends of this crate answer it with one `GROUP BY` query.
    fn client_counts_since(&self, since: i64) -> Result<Vec<(Uuid, u64)>, StoreError> {
        let records = self.list(&ClientFilter {
            since: Some(since),
            ..ClientFilter::default()
        })?;
        let mut per_kms: BTreeMap<Uuid, HashSet<Uuid>> = BTreeMap::new();
        for r in records.iter().filter(|r| r.last_hresult == 0) {
            per_kms.entry(r.kms_id).or_default().insert(r.cmid);
        }
        Ok(per_kms
            .into_iter()
            .map(|(kms, cmids)| (kms, cmids.len() as u64))
            .collect())
    }

    /// [`Self::client_counts_since`] with every count stopped at `cap` (a count may then
    /// fall short of `cap` by the machines recorded for two applications of one KMS ID): the
    /// work is proportional to the KMS IDs and `cap`, not to the records. A genuine host
    /// never counts beyond twice the largest threshold, so a `cap` of that loses nothing.
    fn client_counts_capped(&self, since: i64, cap: u64) -> Result<Vec<(Uuid, u64)>, StoreError> {
        Ok(self
            .client_counts_since(since)?
            .into_iter()
            .map(|(kms, n)| (kms, n.min(cap)))
            .collect())
    }

    /// A page of the whole activation history, oldest first (time ascending; events of the
    /// same time in the order they were recorded): the events `offset..offset + limit`. Paging
    /// through it while the store is written may skip or repeat events.
    ///
    /// The default implementation reads the whole history through
    /// [`Self::recent_activations`] for every page; the backends of this crate page in the
    /// database.
    fn events_page(&self, offset: u64, limit: u64) -> Result<Vec<ActivationEvent>, StoreError> {
        let mut all = self.recent_activations(u64::MAX)?;
        all.reverse();
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(all.into_iter().skip(offset).take(limit).collect())
    }

    /// Adds existing client records and history events, as one transaction: each record is
    /// folded into the stored record of its (`cmid`, `application_id`) with
    /// [`ClientRecord::absorb`] (inserted as it is when there is none: `first_seen`,
    /// `requests` … preserved), and the events are appended to the history in the order
    /// given, as recorded after every event already stored. Records and events are not
    /// derived from each other: importing a record adds no event and vice versa.
    ///
    /// For copying a store ([`crate::copy_all`]). The default implementation returns
    /// [`StoreError::Unsupported`].
    fn import(
        &self,
        records: &[ClientRecord],
        events: &[ActivationEvent],
    ) -> Result<(), StoreError> {
        let _ = (records, events);
        Err(StoreError::Unsupported("importing records and events"))
    }
}
