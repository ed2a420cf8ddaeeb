//! Fleet health as the dashboard, `/api/v1/fleet` and `/metrics` show it: how many client
//! records are `current`, `overdue`, `at-risk`, `lapsed` or `failing` (see
//! [`rkms_store::health`]), in all and per product family, counted by the store in one grouped
//! query at the host's renewal interval.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rkms_catalog::Catalog;
use rkms_store::{ClientState, ClientStore, HealthThresholds};
use serde::Serialize;

use super::error::WebError;
use super::format;
use super::state::WebState;
use super::views::family;

/// How long the counts, once computed, are reused by `/metrics`, the overview and
/// `/api/v1/fleet` (scrapes from several Prometheus servers and reloads of the dashboard cost
/// one count of the whole store).
pub const FLEET_CACHE: Duration = Duration::from_secs(5);

/// The product families, in the order they are shown.
pub const FAMILIES: [&str; 4] = ["windows-client", "windows-server", "office", "unknown"];

/// The thresholds of the host now: its renewal interval at `now`.
pub fn thresholds(state: &WebState, now: i64) -> HealthThresholds {
    HealthThresholds::new(now, state.policy().config().renewal_interval)
}

/// Client records per state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    /// Renewed within twice the renewal interval.
    pub current: u64,
    /// Not renewed for longer than twice the renewal interval.
    pub overdue: u64,
    /// The activation runs out within 30 days.
    #[serde(rename = "at-risk")]
    pub at_risk: u64,
    /// More than 180 days since the last successful activation.
    pub lapsed: u64,
    /// The latest request was refused.
    pub failing: u64,
}

impl StateCounts {
    /// The count of `state`.
    pub fn get(&self, state: ClientState) -> u64 {
        match state {
            ClientState::Current => self.current,
            ClientState::Overdue => self.overdue,
            ClientState::AtRisk => self.at_risk,
            ClientState::Lapsed => self.lapsed,
            ClientState::Failing => self.failing,
        }
    }

    fn add(&mut self, state: ClientState, n: u64) {
        let slot = match state {
            ClientState::Current => &mut self.current,
            ClientState::Overdue => &mut self.overdue,
            ClientState::AtRisk => &mut self.at_risk,
            ClientState::Lapsed => &mut self.lapsed,
            ClientState::Failing => &mut self.failing,
        };
        *slot += n;
    }

    /// Every record.
    pub fn total(&self) -> u64 {
        ClientState::ALL.iter().map(|s| self.get(*s)).sum()
    }

    /// (state, count) in [`ClientState::ALL`] order, for templates.
    pub fn rows(&self) -> Vec<(&'static str, u64)> {
        ClientState::ALL
            .iter()
            .map(|s| (s.as_str(), self.get(*s)))
            .collect()
    }
}

/// The states of one product family's records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FamilyHealth {
    /// `windows-client`, `windows-server`, `office` or `unknown`.
    pub family: &'static str,
    /// The family for people.
    pub family_name: &'static str,
    /// Client records per state.
    pub states: StateCounts,
    /// Client records in all.
    pub total: u64,
}

/// The fleet's health at one time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetHealth {
    /// When the states were computed, RFC 3339.
    pub at: String,
    /// When, unix seconds.
    pub at_unix: i64,
    /// The host's renewal interval the states use (`overdue` after twice it).
    pub renewal_interval_minutes: u32,
    /// How long an activation lasts after its last successful request.
    pub validity_days: i64,
    /// An activation running out within this many days is `at-risk`.
    pub at_risk_days: i64,
    /// Client records per state.
    pub states: StateCounts,
    /// Client records in all.
    pub total: u64,
    /// Per product family (every family, in [`FAMILIES`] order).
    pub families: Vec<FamilyHealth>,
}

/// Counts the states of every record of `store` at `now` (blocking: one grouped query).
pub fn compute(
    store: &dyn ClientStore,
    catalog: &Catalog,
    now: i64,
    renewal_interval_minutes: u32,
) -> Result<FleetHealth, WebError> {
    let t = HealthThresholds::new(now, renewal_interval_minutes);
    let mut states = StateCounts::default();
    let mut per_family: BTreeMap<&'static str, StateCounts> = BTreeMap::new();
    for c in store.health_counts(&t)? {
        states.add(c.state, c.records);
        per_family
            .entry(family(catalog, &c.application_id, &c.kms_id))
            .or_default()
            .add(c.state, c.records);
    }
    let families = FAMILIES
        .iter()
        .map(|f| {
            let states = per_family.get(f).copied().unwrap_or_default();
            FamilyHealth {
                family: f,
                family_name: format::family_name(f),
                total: states.total(),
                states,
            }
        })
        .collect();
    Ok(FleetHealth {
        at: format::rfc3339(now),
        at_unix: now,
        renewal_interval_minutes,
        validity_days: rkms_store::ACTIVATION_VALIDITY_SECS / rkms_store::SECONDS_PER_DAY,
        at_risk_days: rkms_store::AT_RISK_WITHIN_SECS / rkms_store::SECONDS_PER_DAY,
        total: states.total(),
        states,
        families,
    })
}

/// The fleet's health for `state` at `now` (computed at most [`FLEET_CACHE`] ago), or
/// `None` without a store.
pub fn of_host(state: &WebState, now: i64) -> Result<Option<Arc<FleetHealth>>, WebError> {
    let Some(store) = &state.store else {
        return Ok(None);
    };
    let policy = state.policy();
    let renewal_interval = policy.config().renewal_interval;
    state
        .fleet_cache
        .get_or(FLEET_CACHE, renewal_interval, || {
            compute(store.as_ref(), policy.catalog(), now, renewal_interval)
        })
        .map(Some)
}

/// The counts last computed, reused for [`FLEET_CACHE`].
#[derive(Debug, Default)]
pub struct FleetCache {
    last: Mutex<Option<(Instant, Arc<FleetHealth>)>>,
}

impl FleetCache {
    /// The cached counts if younger than `max_age` and computed with the renewal interval
    /// in force (`renewal_interval_minutes`: a reload may have changed it), else
    /// `compute()`'s (then cached).
    pub fn get_or(
        &self,
        max_age: Duration,
        renewal_interval_minutes: u32,
        compute: impl FnOnce() -> Result<FleetHealth, WebError>,
    ) -> Result<Arc<FleetHealth>, WebError> {
        {
            let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((when, health)) = last.as_ref() {
                if when.elapsed() < max_age
                    && health.renewal_interval_minutes == renewal_interval_minutes
                {
                    return Ok(health.clone());
                }
            }
        }
        let health = Arc::new(compute()?);
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), health.clone()));
        Ok(health)
    }
}

/// The Prometheus gauges of `health`: `rkms_clients{state}` (every record) and
/// `rkms_clients_by_family{family,state}`, in OpenMetrics text (to insert before `# EOF`).
pub fn metrics_text(health: &FleetHealth) -> String {
    let mut out = String::new();
    out.push_str(
        "# HELP rkms_clients Client records (machine x application) per health state: current, \
         overdue, at-risk, lapsed, failing.\n# TYPE rkms_clients gauge\n",
    );
    for (state, n) in health.states.rows() {
        let _ = writeln!(out, "rkms_clients{{state=\"{state}\"}} {n}");
    }
    out.push_str(
        "# HELP rkms_clients_by_family Client records per product family and health state.\n\
         # TYPE rkms_clients_by_family gauge\n",
    );
    for f in &health.families {
        for (state, n) in f.states.rows() {
            let _ = writeln!(
                out,
                "rkms_clients_by_family{{family=\"{}\",state=\"{state}\"}} {n}",
                f.family
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_name_every_state_and_family() {
        let mut states = StateCounts::default();
        states.add(ClientState::AtRisk, 3);
        states.add(ClientState::Current, 5);
        let health = FleetHealth {
            at: String::new(),
            at_unix: 0,
            renewal_interval_minutes: 10080,
            validity_days: 180,
            at_risk_days: 30,
            total: states.total(),
            states,
            families: vec![FamilyHealth {
                family: "office",
                family_name: "Office",
                states,
                total: 8,
            }],
        };
        let text = metrics_text(&health);
        assert!(
            text.contains("rkms_clients{state=\"at-risk\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("rkms_clients{state=\"failing\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("rkms_clients_by_family{family=\"office\",state=\"current\"} 5\n"),
            "{text}"
        );
        assert_eq!(states.total(), 8);
    }

    #[test]
    fn the_cache_reuses_recent_counts_of_the_same_renewal_interval_only() {
        let cache = FleetCache::default();
        let make = |total, renewal_interval_minutes| {
            move || {
                Ok(FleetHealth {
                    at: String::new(),
                    at_unix: 0,
                    renewal_interval_minutes,
                    validity_days: 180,
                    at_risk_days: 30,
                    states: StateCounts::default(),
                    total,
                    families: Vec::new(),
                })
            }
        };
        assert_eq!(cache.get_or(FLEET_CACHE, 1, make(1, 1)).unwrap().total, 1);
        assert_eq!(cache.get_or(FLEET_CACHE, 1, make(2, 1)).unwrap().total, 1);
        assert_eq!(cache.get_or(Duration::ZERO, 1, make(3, 1)).unwrap().total, 3);
        // A reload changed the renewal interval: the states move, the counts are made again.
        assert_eq!(cache.get_or(FLEET_CACHE, 60, make(4, 60)).unwrap().total, 4);
        assert_eq!(cache.get_or(FLEET_CACHE, 60, make(5, 60)).unwrap().total, 4);
    }
}
