//! The 30-day client-count window of a KMS host (PROTOCOL.md §9.1) on top of a store.

use uuid::Uuid;

use crate::{ClientStore, StoreError};

/// Seconds a client keeps counting after its last successful request: 30 days (the licence
/// policy's CMID expiration, 43 200 minutes).
pub const COUNT_WINDOW_SECS: i64 = 30 * 24 * 60 * 60;

/// The earliest `last_seen` still inside the counting window at unix time `now`.
pub fn window_start(now: i64) -> i64 {
    now.saturating_sub(COUNT_WINDOW_SECS)
}

/// The number of distinct clients of KMS counted ID `kms_id` (already alias-resolved) that
/// activated during the 30 days up to `now`, uncapped: the caller caps it at twice the
/// product's threshold.
pub fn active_clients(store: &dyn ClientStore, kms_id: &Uuid, now: i64) -> Result<u64, StoreError> {
    store.distinct_clients_since(kms_id, window_start(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_thirty_days_and_saturates() {
        assert_eq!(COUNT_WINDOW_SECS, 2_592_000);
        assert_eq!(window_start(3_000_000), 408_000);
        assert_eq!(window_start(i64::MIN + 5), i64::MIN);
    }
}
