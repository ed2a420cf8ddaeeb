//! The host's statistics: activations today / 7 days / total, per day and family, per product,
//! and each KMS ID's client count against its threshold — for the overview and `/api/v1/stats`.

use std::collections::{BTreeMap, HashMap};

use rkms_catalog::Catalog;
use rkms_store::{day_start, SECONDS_PER_DAY};
use serde::Serialize;
use uuid::Uuid;

use super::error::WebError;
use super::format;
use super::state::WebState;
use super::views::family;
use crate::policy::{current_count, genuine_count, CountMode, Policy, POOL_LIMIT, WINDOW_SECS};

/// Days the per-day series covers, today included.
pub const CHART_DAYS: i64 = 30;

/// Successful and refused requests over a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Requests answered with an activation.
    pub activated: u64,
    /// Requests refused.
    pub refused: u64,
}

impl Tally {
    fn add(&mut self, succeeded: bool, n: u64) {
        if succeeded {
            self.activated += n;
        } else {
            self.refused += n;
        }
    }
}

/// Requests today (UTC), in the last 7 days (today and the 6 before) and ever recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Since 00:00 UTC today.
    pub today: Tally,
    /// Since 00:00 UTC six days ago.
    pub last_7_days: Tally,
    /// Everything in the history.
    pub total: Tally,
}

/// Requests of one product family on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayFamily {
    /// The UTC date, `2026-05-01`.
    pub day: String,
    /// 00:00 UTC of that day, unix seconds.
    pub day_unix: i64,
    /// `windows-client`, `windows-server`, `office` or `unknown`.
    pub family: &'static str,
    /// Successful requests.
    pub activated: u64,
    /// Refused requests.
    pub refused: u64,
}

/// Requests of one product (KMS ID) over the whole history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductTally {
    /// KMS counted ID.
    pub kms_id: Uuid,
    /// Application ID.
    pub application_id: Uuid,
    /// The KMS item's name (or the application's, or the ID).
    pub name: String,
    /// Product family.
    pub family: &'static str,
    /// Successful requests.
    pub activated: u64,
    /// Refused requests.
    pub refused: u64,
}

/// A KMS ID pool's clients against its activation threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pool {
    /// The pool's KMS ID (aliases resolved).
    pub kms_id: Uuid,
    /// Its name in the catalog, or the ID.
    pub name: String,
    /// Distinct client machines activated in the last 30 days, counted up to 2,048 per KMS
    /// ID (beyond twice any threshold, where no count changes any more).
    pub clients: u64,
    /// Clients the product needs before it activates (`ncount_policy`; 0 if unknown).
    pub threshold: u32,
    /// The count this host reports to a client of this pool now.
    pub reported: u32,
}

/// Everything `/api/v1/stats` answers and the overview shows.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// rkms version.
    pub version: &'static str,
    /// When these numbers were taken (unix seconds).
    pub now: i64,
    /// When the host started (unix seconds).
    pub started: i64,
    /// Seconds since start.
    pub uptime_seconds: i64,
    /// Whether `/readyz` would answer 200.
    pub ready: bool,
    /// Client records (one per machine and application).
    pub clients: u64,
    /// Requests today, in 7 days and in all.
    pub activations: Totals,
    /// Requests per day and family over the last [`CHART_DAYS`] days (days without any are
    /// left out).
    pub by_day: Vec<DayFamily>,
    /// Requests per product over the whole history, most first.
    pub by_product: Vec<ProductTally>,
    /// Client count per KMS ID pool.
    pub pools: Vec<Pool>,
}

/// Computes the statistics at unix time `now` (blocking: reads the store).
pub fn compute(state: &WebState, now: i64) -> Result<Stats, WebError> {
    let policy = state.policy();
    let catalog = policy.catalog();
    let today = day_start(now);
    let week = today - 6 * SECONDS_PER_DAY;
    let chart_start = today - (CHART_DAYS - 1) * SECONDS_PER_DAY;
    let mut totals = Totals::default();
    let mut days: BTreeMap<(i64, &'static str), Tally> = BTreeMap::new();
    let mut products: HashMap<(Uuid, Uuid), Tally> = HashMap::new();
    let mut clients = 0;
    let mut pool_clients: HashMap<Uuid, u64> = HashMap::new();
    if let Some(store) = &state.store {
        clients = store.count()?;
        for c in store.daily_counts(i64::MIN)? {
            totals.total.add(c.succeeded, c.count);
            if c.day >= week {
                totals.last_7_days.add(c.succeeded, c.count);
            }
            if c.day >= today {
                totals.today.add(c.succeeded, c.count);
            }
            if c.day >= chart_start {
                let f = family(catalog, &c.application_id, &c.kms_id);
                days.entry((c.day, f))
                    .or_default()
                    .add(c.succeeded, c.count);
            }
            products
                .entry((c.kms_id, c.application_id))
                .or_default()
                .add(c.succeeded, c.count);
        }
        // Counted by the database per KMS ID (an index range, stopped where no count
        // matters any more), then summed per pool.
        for (kms_id, n) in store.client_counts_capped(now - WINDOW_SECS, POOL_LIMIT as u64)? {
            *pool_clients.entry(policy.pool_of(&kms_id)).or_default() += n;
        }
    }
    let by_day = days
        .into_iter()
        .map(|((day, family), t)| DayFamily {
            day: format::date(day),
            day_unix: day,
            family,
            activated: t.activated,
            refused: t.refused,
        })
        .collect();
    let mut by_product: Vec<ProductTally> = products
        .into_iter()
        .map(|((kms_id, application_id), t)| ProductTally {
            kms_id,
            application_id,
            name: pool_name(catalog, &kms_id, Some(&application_id)),
            family: family(catalog, &application_id, &kms_id),
            activated: t.activated,
            refused: t.refused,
        })
        .collect();
    by_product.sort_by(|a, b| {
        (b.activated + b.refused)
            .cmp(&(a.activated + a.refused))
            .then(a.name.cmp(&b.name))
    });
    Ok(Stats {
        version: env!("CARGO_PKG_VERSION"),
        now,
        started: state.started_unix,
        uptime_seconds: (now - state.started_unix).max(0),
        ready: state.health.readiness(now).ready,
        clients,
        activations: totals,
        by_day,
        by_product,
        pools: pools(&policy, now, state.store.is_some().then_some(pool_clients)),
    })
}

/// The pools: from the store's last 30 days when there is a store, else the policy's own
/// in-memory pools; in genuine count mode the policy's pools also give the count reported.
fn pools(policy: &Policy, now: i64, from_store: Option<HashMap<Uuid, u64>>) -> Vec<Pool> {
    let live: HashMap<Uuid, u64> = policy.pools().counts(now).into_iter().collect();
    let mut counts: BTreeMap<Uuid, u64> = match from_store {
        Some(counts) => counts.into_iter().collect(),
        None => live.iter().map(|(k, v)| (*k, *v)).collect(),
    };
    for k in live.keys() {
        counts.entry(*k).or_insert(0);
    }
    let mode = policy.config().count;
    let mut out: Vec<Pool> = counts
        .into_iter()
        .map(|(kms_id, clients)| {
            let threshold = policy
                .catalog()
                .kms_item_resolved(&kms_id)
                .map_or(0, |k| k.ncount_policy);
            let reported = match mode {
                CountMode::Genuine { start_empty } => genuine_count(
                    live.get(&kms_id).copied().unwrap_or(0),
                    threshold,
                    threshold,
                    start_empty,
                ),
                other => current_count(other, threshold),
            };
            Pool {
                kms_id,
                name: pool_name(policy.catalog(), &kms_id, None),
                clients,
                threshold,
                reported,
            }
        })
        .collect();
    out.sort_by(|a, b| b.clients.cmp(&a.clients).then(a.name.cmp(&b.name)));
    out
}

/// The KMS item's display name, else the application's name, else the KMS ID.
fn pool_name(catalog: &Catalog, kms_id: &Uuid, application_id: Option<&Uuid>) -> String {
    if let Some(k) = catalog.kms_item_resolved(kms_id) {
        return k.display_name.clone();
    }
    application_id
        .and_then(|a| catalog.application(a))
        .map_or_else(|| kms_id.to_string(), |a| format!("{} ({kms_id})", a.name))
}
