//! Fleet health: the state of each client record — `current`, `overdue`, `at-risk`, `lapsed`
//! or `failing` — from the time of its last successful activation, the host's renewal
//! interval and a given `now` (no clock is read here), and the counts per state.
//!
//! A KMS activation lasts [`ACTIVATION_VALIDITY_SECS`] (180 days, fixed by the protocol) from
//! its last successful request; clients renew every renewal interval (`--renewal-interval`,
//! 7 days by default). With `age = now - last_activated`, the first rule that applies wins:
//!
//! 1. `failing`: the latest request was refused (`last_hresult != 0`);
//! 2. `lapsed`: `age > 180 days` (the activation has run out), or never activated;
//! 3. `at-risk`: `age > 180 - 30 days` (the activation runs out within 30 days);
//! 4. `overdue`: `age > 2 × renewal interval` (renewals stopped);
//! 5. `current`: otherwise.
//!
//! The database backends compute the state in SQL: each non-failing state is a range of
//! `last_activated` among the records whose latest request succeeded
//! ([`HealthThresholds::activated_range`]), so filters and counts are index range scans.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{ClientRecord, SECONDS_PER_DAY};

/// How long a KMS activation is valid after its last successful request: 180 days.
pub const ACTIVATION_VALIDITY_SECS: i64 = 180 * SECONDS_PER_DAY;

/// A record whose activation runs out within this time (30 days) is `at-risk`.
pub const AT_RISK_WITHIN_SECS: i64 = 30 * SECONDS_PER_DAY;

/// The health state of a client record (see the module documentation for the rules and
/// their precedence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientState {
    /// Renewed within twice the renewal interval.
    Current,
    /// Not renewed for longer than twice the renewal interval.
    Overdue,
    /// The activation runs out within 30 days.
    AtRisk,
    /// More than 180 days since the last successful activation (or never activated).
    Lapsed,
    /// The latest request was refused.
    Failing,
}

impl ClientState {
    /// Every state, healthiest first.
    pub const ALL: [ClientState; 5] = [
        Self::Current,
        Self::Overdue,
        Self::AtRisk,
        Self::Lapsed,
        Self::Failing,
    ];

    /// The state's name: `current`, `overdue`, `at-risk`, `lapsed` or `failing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Overdue => "overdue",
            Self::AtRisk => "at-risk",
            Self::Lapsed => "lapsed",
            Self::Failing => "failing",
        }
    }

    /// The state named `name` (as [`Self::as_str`] spells it).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The names of every state, for error messages and choices.
    pub fn names() -> [&'static str; 5] {
        Self::ALL.map(Self::as_str)
    }
}

impl std::fmt::Display for ClientState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The time and intervals the states are computed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthThresholds {
    /// The time the states are computed for (unix seconds).
    pub now: i64,
    /// The host's renewal interval, in seconds.
    pub renewal_interval_secs: i64,
}

/// A range of `last_activated` values: `from <= t < until` (`None`: unbounded);
/// `or_never` adds the records never activated (`last_activated` NULL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivatedRange {
    /// Lowest `last_activated` in the range.
    pub from: Option<i64>,
    /// First `last_activated` past the range.
    pub until: Option<i64>,
    /// Whether records never activated belong to the range.
    pub or_never: bool,
}

impl HealthThresholds {
    /// The thresholds at `now` for a host renewing every `renewal_interval_minutes`.
    pub fn new(now: i64, renewal_interval_minutes: u32) -> Self {
        Self {
            now,
            renewal_interval_secs: i64::from(renewal_interval_minutes) * 60,
        }
    }

    /// Activated before this: `lapsed`.
    pub fn lapsed_before(&self) -> i64 {
        self.now.saturating_sub(ACTIVATION_VALIDITY_SECS)
    }

    /// Activated before this (and not lapsed): `at-risk`.
    pub fn at_risk_before(&self) -> i64 {
        self.lapsed_before().saturating_add(AT_RISK_WITHIN_SECS)
    }

    /// Activated before this (and neither lapsed nor at risk): `overdue`.
    pub fn overdue_before(&self) -> i64 {
        self.now
            .saturating_sub(self.renewal_interval_secs.saturating_mul(2))
    }

    /// The state of a record whose latest request answered `last_hresult` and whose last
    /// successful activation was at `last_activated`.
    pub fn state_of(&self, last_hresult: u32, last_activated: Option<i64>) -> ClientState {
        if last_hresult != 0 {
            return ClientState::Failing;
        }
        match last_activated {
            None => ClientState::Lapsed,
            Some(t) if t < self.lapsed_before() => ClientState::Lapsed,
            Some(t) if t < self.at_risk_before() => ClientState::AtRisk,
            Some(t) if t < self.overdue_before() => ClientState::Overdue,
            Some(_) => ClientState::Current,
        }
    }

    /// The state of `r`.
    pub fn state(&self, r: &ClientRecord) -> ClientState {
        self.state_of(r.last_hresult, r.last_activated)
    }

    /// The records of a non-failing `state`, as a range of `last_activated` among the
    /// records whose latest request succeeded; `None` for [`ClientState::Failing`] (the
    /// records whose latest request was refused). Agrees with [`Self::state_of`].
    pub fn activated_range(&self, state: ClientState) -> Option<ActivatedRange> {
        let (lapsed, at_risk, overdue) = (
            self.lapsed_before(),
            self.at_risk_before(),
            self.overdue_before(),
        );
        let range = |from, until| ActivatedRange {
            from,
            until,
            or_never: false,
        };
        Some(match state {
            ClientState::Failing => return None,
            ClientState::Lapsed => ActivatedRange {
                from: None,
                until: Some(lapsed),
                or_never: true,
            },
            ClientState::AtRisk => range(Some(lapsed), Some(at_risk)),
            ClientState::Overdue => range(Some(at_risk.max(lapsed)), Some(overdue)),
            ClientState::Current => range(Some(at_risk.max(overdue).max(lapsed)), None),
        })
    }
}

/// When an activation made at `last_activated` runs out (unix seconds).
pub fn expires_at(last_activated: i64) -> i64 {
    last_activated.saturating_add(ACTIVATION_VALIDITY_SECS)
}

/// How many client records of one application and KMS ID are in one state
/// ([`crate::ClientStore::health_counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCount {
    /// Application ID.
    pub application_id: Uuid,
    /// KMS counted ID.
    pub kms_id: Uuid,
    /// The state.
    pub state: ClientState,
    /// Client records in it.
    pub records: u64,
}

/// Turns per-(application, KMS ID) rows of counts in [`ClientState::ALL`] order into
/// [`HealthCount`]s (zero counts left out), ordered by application, KMS ID and state.
pub(crate) fn counts_from_rows(rows: Vec<(Uuid, Uuid, [u64; 5])>) -> Vec<HealthCount> {
    let mut out: Vec<HealthCount> = rows
        .into_iter()
        .flat_map(|(application_id, kms_id, counts)| {
            ClientState::ALL
                .into_iter()
                .zip(counts)
                .filter(|(_, n)| *n > 0)
                .map(move |(state, records)| HealthCount {
                    application_id,
                    kms_id,
                    state,
                    records,
                })
        })
        .collect();
    out.sort_by_key(|c| (c.application_id, c.kms_id, c.state));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = SECONDS_PER_DAY;

    #[test]
    fn states_at_chosen_times_and_their_precedence() {
        let now = 1_800_000_000;
        let t = HealthThresholds::new(now, 7 * 24 * 60);
        let at = |age: i64| t.state_of(0, Some(now - age));
        assert_eq!(at(0), ClientState::Current);
        assert_eq!(at(-DAY), ClientState::Current, "a clock ahead is current");
        assert_eq!(
            at(14 * DAY),
            ClientState::Current,
            "exactly twice the interval"
        );
        assert_eq!(at(14 * DAY + 1), ClientState::Overdue);
        assert_eq!(
            at(150 * DAY),
            ClientState::Overdue,
            "lapses in exactly 30 days"
        );
        assert_eq!(at(150 * DAY + 1), ClientState::AtRisk);
        assert_eq!(at(180 * DAY), ClientState::AtRisk, "lapses now");
        assert_eq!(at(180 * DAY + 1), ClientState::Lapsed);
        assert_eq!(t.state_of(0, None), ClientState::Lapsed);
        // A refusal wins over everything, even a fresh activation.
        assert_eq!(t.state_of(0xC004_F038, Some(now)), ClientState::Failing);
        assert_eq!(t.state_of(0xC004_F038, None), ClientState::Failing);
        // A long renewal interval: overdue after 120 days, at-risk still from 150 days.
        let slow = HealthThresholds::new(now, 60 * 24 * 60);
        assert_eq!(slow.state_of(0, Some(now - 160 * DAY)), ClientState::AtRisk);
        assert_eq!(slow.state_of(0, Some(now - 199 * DAY)), ClientState::Lapsed);
        assert_eq!(
            slow.state_of(0, Some(now - 130 * DAY)),
            ClientState::Overdue
        );
        assert_eq!(
            slow.state_of(0, Some(now - 100 * DAY)),
            ClientState::Current
        );
        // Longer than the at-risk threshold: never overdue, at-risk and lapsed still apply.
        let slower = HealthThresholds::new(now, 100 * 24 * 60);
        assert_eq!(
            slower.state_of(0, Some(now - 149 * DAY)),
            ClientState::Current
        );
        assert_eq!(
            slower.state_of(0, Some(now - 151 * DAY)),
            ClientState::AtRisk
        );
    }

    #[test]
    fn ranges_agree_with_the_rules() {
        let now = 1_800_000_000;
        for minutes in [1, 60, 7 * 24 * 60, 80 * 24 * 60, 200 * 24 * 60] {
            let t = HealthThresholds::new(now, minutes);
            for age in (-2..400).map(|d| d * DAY / 2).chain([
                14 * DAY,
                14 * DAY + 1,
                150 * DAY,
                150 * DAY + 1,
                180 * DAY,
                180 * DAY + 1,
            ]) {
                let la = now - age;
                let expected = t.state_of(0, Some(la));
                for state in ClientState::ALL {
                    let inside = t.activated_range(state).is_some_and(|r| {
                        r.from.is_none_or(|f| la >= f) && r.until.is_none_or(|u| la < u)
                    });
                    assert_eq!(
                        inside,
                        state == expected,
                        "{minutes} min, age {age}: {state}"
                    );
                }
            }
            assert!(t.activated_range(ClientState::Lapsed).unwrap().or_never);
            assert!(t.activated_range(ClientState::Failing).is_none());
        }
    }

    #[test]
    fn names_round_trip() {
        for s in ClientState::ALL {
            assert_eq!(ClientState::parse(s.as_str()), Some(s));
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!(ClientState::parse("AtRisk"), None);
    }
}
