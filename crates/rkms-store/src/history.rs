//! The activation history: one [`ActivationEvent`] per request (schema v3), and the per-day
//! aggregate ([`DailyCount`]) dashboards chart.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Activation;

/// Seconds in a day: history is aggregated per UTC day.
pub const SECONDS_PER_DAY: i64 = 86_400;

/// The start (00:00 UTC, unix seconds) of the UTC day holding unix time `time`.
pub fn day_start(time: i64) -> i64 {
    // Total: the days before the first whole day `i64` holds count as that day.
    time.max(EARLIEST_DAY) - time.max(EARLIEST_DAY).rem_euclid(SECONDS_PER_DAY)
}

/// The earliest day start an `i64` holds (the stores' SQL clamps to it as [`day_start`] does).
pub const EARLIEST_DAY: i64 = -9_223_372_036_854_720_000;

/// One request as the history keeps it: every request the store records adds one event, in
/// the same transaction as its client record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationEvent {
    /// Unix time (seconds) of the request.
    pub time: i64,
    /// Client machine ID (CMID).
    pub cmid: Uuid,
    /// Application ID of the request.
    pub application_id: Uuid,
    /// SKU ID of the request.
    pub sku_id: Uuid,
    /// KMS counted ID of the request (alias-resolved by the server).
    pub kms_id: Uuid,
    /// Workstation name the client sent.
    pub workstation: String,
    /// Licence status the client sent.
    pub license_status: u32,
    /// Protocol version, e.g. `"6.0"`.
    pub protocol: String,
    /// Peer address.
    pub address: String,
    /// HRESULT answered: 0 for an activation.
    pub hresult: u32,
}

impl ActivationEvent {
    /// The event a reported activation adds to the history.
    pub fn from_activation(a: &Activation) -> Self {
        Self {
            time: a.time,
            cmid: a.cmid,
            application_id: a.application_id,
            sku_id: a.sku_id,
            kms_id: a.kms_id,
            workstation: a.workstation.clone(),
            license_status: a.license_status,
            protocol: a.protocol.clone(),
            address: a.address.clone(),
            hresult: a.hresult,
        }
    }

    /// Makes this event the one [`Self::from_activation`] gives for `a`, reusing the memory of
    /// its strings (an in-memory store recycles the oldest event this way).
    pub fn reset_to(&mut self, a: &Activation) {
        // Every field named, so that a new field cannot be forgotten here.
        let Self {
            time,
            cmid,
            application_id,
            sku_id,
            kms_id,
            workstation,
            license_status,
            protocol,
            address,
            hresult,
        } = self;
        *time = a.time;
        *cmid = a.cmid;
        *application_id = a.application_id;
        *sku_id = a.sku_id;
        *kms_id = a.kms_id;
        workstation.clone_from(&a.workstation);
        *license_status = a.license_status;
        protocol.clone_from(&a.protocol);
        address.clone_from(&a.address);
        *hresult = a.hresult;
    }

    /// Whether the host activated the client (HRESULT 0).
    pub fn succeeded(&self) -> bool {
        self.hresult == 0
    }
}

/// How many requests of one (day, application, KMS ID, outcome) the history holds: the rows of
/// [`crate::ClientStore::daily_counts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyCount {
    /// Start of the UTC day (unix seconds, a multiple of [`SECONDS_PER_DAY`]).
    pub day: i64,
    /// Application ID.
    pub application_id: Uuid,
    /// KMS counted ID.
    pub kms_id: Uuid,
    /// Whether these requests were activated (HRESULT 0) or refused.
    pub succeeded: bool,
    /// Number of requests.
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event reset to an activation is the event that activation gives, whatever it held.
    #[test]
    fn reset_to_gives_the_event_from_activation() {
        let a = Activation {
            cmid: Uuid::from_u128(1),
            application_id: Uuid::from_u128(2),
            sku_id: Uuid::from_u128(3),
            kms_id: Uuid::from_u128(4),
            workstation: "a rather long workstation name".into(),
            license_status: 1,
            grace_minutes: 0,
            is_vm: false,
            protocol: "6.0".into(),
            time: 100,
            address: "192.0.2.1".into(),
            epid: "ePID".into(),
            hresult: 0,
        };
        let b = Activation {
            cmid: Uuid::from_u128(5),
            application_id: Uuid::from_u128(6),
            sku_id: Uuid::from_u128(7),
            kms_id: Uuid::from_u128(8),
            workstation: "PC".into(),
            license_status: 3,
            grace_minutes: 9,
            is_vm: true,
            protocol: "4.0".into(),
            time: 50,
            address: "2001:db8::1".into(),
            epid: String::new(),
            hresult: 0xC004_F042,
        };
        let mut e = ActivationEvent::from_activation(&a);
        e.reset_to(&b);
        assert_eq!(e, ActivationEvent::from_activation(&b));
        e.reset_to(&a);
        assert_eq!(e, ActivationEvent::from_activation(&a));
    }

    #[test]
    fn days_start_at_utc_midnight() {
        assert_eq!(day_start(0), 0);
        assert_eq!(day_start(86_399), 0);
        assert_eq!(day_start(86_400), 86_400);
        assert_eq!(day_start(1_800_000_123), 1_799_971_200);
        assert_eq!(day_start(-1), -86_400);
        assert_eq!(day_start(i64::MIN), EARLIEST_DAY);
        assert_eq!(EARLIEST_DAY % SECONDS_PER_DAY, 0);
        assert!(EARLIEST_DAY.checked_sub(SECONDS_PER_DAY).is_none());
        assert_eq!(day_start(i64::MAX), i64::MAX - i64::MAX % SECONDS_PER_DAY);
    }
}
