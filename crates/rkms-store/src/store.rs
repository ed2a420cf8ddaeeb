//! The [`ClientStore`] trait every backend (SQLite, memory) implements.

use uuid::Uuid;

use crate::{Activation, ActivationEvent, ClientFilter, ClientRecord, DailyCount, StoreError};

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

    /// Number of distinct CMIDs recorded for `kms_id` whose latest request was at or after
    /// `since` and succeeded (`last_hresult == 0`) — the host's client count (PROTOCOL.md §9.1)
    /// before the caller caps it at twice the threshold.
    fn distinct_clients_since(&self, kms_id: &Uuid, since: i64) -> Result<u64, StoreError>;

    /// The records passing `filter`, newest `last_seen` first (see [`ClientFilter`]).
    fn list(&self, filter: &ClientFilter) -> Result<Vec<ClientRecord>, StoreError>;

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

    /// The history events with `time >= since`, counted per UTC day, application, KMS ID and
    /// outcome; ordered by day, then application ID, KMS ID, refused before activated.
    fn daily_counts(&self, since: i64) -> Result<Vec<DailyCount>, StoreError>;

    /// Checks that the store can take writes now (takes and releases the write lock; a
    /// read-only database fails), without changing anything.
    fn probe_writable(&self) -> Result<(), StoreError>;
}
