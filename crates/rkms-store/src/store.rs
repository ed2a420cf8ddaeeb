//! The [`ClientStore`] trait every backend (SQLite, memory) implements.

use uuid::Uuid;

use crate::{Activation, ClientFilter, ClientRecord, StoreError};

/// A durable (or, for `--db none`, in-memory) record of KMS clients. Calls are synchronous and
/// may touch the disk: the async server goes through [`crate::Writer`] for writes.
pub trait ClientStore: Send + Sync {
    /// Records one request: inserts the (`cmid`, `application_id`) record, or bumps `requests`,
    /// keeps the earliest `first_seen` and takes the latest `last_seen` and other fields (see
    /// [`ClientRecord::merge`]).
    fn record(&self, a: &Activation) -> Result<(), StoreError>;

    /// Records several requests, in order, as one transaction: all or none are written.
    fn record_batch(&self, batch: &[Activation]) -> Result<(), StoreError>;

    /// Number of distinct CMIDs recorded for `kms_id` whose latest request was at or after
    /// `since` and succeeded (`last_hresult == 0`) — the host's client count (PROTOCOL.md §9.1)
    /// before the caller caps it at twice the threshold.
    fn distinct_clients_since(&self, kms_id: &Uuid, since: i64) -> Result<u64, StoreError>;

    /// The records passing `filter`, newest `last_seen` first (see [`ClientFilter`]).
    fn list(&self, filter: &ClientFilter) -> Result<Vec<ClientRecord>, StoreError>;

    /// Deletes the records with `last_seen < cutoff`; returns how many were deleted.
    fn prune_older_than(&self, cutoff: i64) -> Result<u64, StoreError>;

    /// Number of records.
    fn count(&self) -> Result<u64, StoreError>;
}
