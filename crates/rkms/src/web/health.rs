//! [`Health`]: what `/readyz` decides on — listeners bound, client store writable, a recent
//! successful loopback self-check — shared between the server, the self-check loop and the web.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

/// The host's readiness inputs. Cheap to update from any task.
#[derive(Debug)]
pub struct Health {
    interval: Duration,
    listeners_bound: AtomicBool,
    /// The last store probe: `None` before the first one.
    store: Mutex<Option<Result<(), String>>>,
    /// Unix time of the last successful self-check, `i64::MIN` before the first.
    last_success: AtomicI64,
    /// The last failed self-check: its time and why.
    last_failure: Mutex<Option<(i64, String)>>,
    /// The state of DNS publishing (`--dns-publish`), shown but never a readiness condition.
    dns_publish: Mutex<Option<std::sync::Arc<crate::dns::PublishStatus>>>,
}

/// One readiness check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `listeners`, `store` or `self_check`.
    pub name: &'static str,
    /// Whether it passes.
    pub ok: bool,
    /// What was found, for humans.
    pub detail: String,
}

/// The verdict of [`Health::readiness`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// Every check passes.
    pub ready: bool,
    /// The checks, in a fixed order.
    pub checks: Vec<Check>,
}

impl Readiness {
    /// The failing checks' details joined, or `"ready"`.
    pub fn reason(&self) -> String {
        if self.ready {
            return "ready".into();
        }
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Health {
    /// Nothing known yet (not ready) for a self-check run every `self_check_interval`; a
    /// self-check counts as recent for two intervals.
    pub fn new(self_check_interval: Duration) -> Self {
        Health {
            interval: self_check_interval,
            listeners_bound: AtomicBool::new(false),
            store: Mutex::new(None),
            last_success: AtomicI64::new(i64::MIN),
            last_failure: Mutex::new(None),
            dns_publish: Mutex::new(None),
        }
    }

    /// The self-check interval given to [`Health::new`].
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Says whether the KMS listeners are bound (set it once they are).
    pub fn set_listeners_bound(&self, bound: bool) {
        self.listeners_bound.store(bound, Ordering::Relaxed);
    }

    /// Records the result of a client-store write probe.
    pub fn set_store(&self, result: Result<(), String>) {
        *self.store.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
    }

    /// Shows this DNS publishing state in `/readyz`, `/metrics` and the settings page.
    pub fn set_dns_publish(&self, status: std::sync::Arc<crate::dns::PublishStatus>) {
        *self
            .dns_publish
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(status);
    }

    /// The DNS publishing state, when the host publishes itself.
    pub fn dns_publish(&self) -> Option<std::sync::Arc<crate::dns::PublishStatus>> {
        self.dns_publish
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records a successful loopback activation at unix time `now`.
    pub fn self_check_succeeded(&self, now: i64) {
        self.last_success.fetch_max(now, Ordering::Relaxed);
    }

    /// Records a failed loopback activation at unix time `now`.
    pub fn self_check_failed(&self, now: i64, why: String) {
        *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((now, why));
    }

    /// Unix time of the last successful self-check.
    pub fn last_self_check(&self) -> Option<i64> {
        Some(self.last_success.load(Ordering::Relaxed)).filter(|t| *t != i64::MIN)
    }

    /// Whether the host is ready at unix time `now`: listeners bound, the last store probe
    /// passed and a self-check succeeded within the last two intervals.
    pub fn readiness(&self, now: i64) -> Readiness {
        let bound = self.listeners_bound.load(Ordering::Relaxed);
        let listeners = Check {
            name: "listeners",
            ok: bound,
            detail: if bound { "bound" } else { "not bound yet" }.into(),
        };
        let store = match &*self.store.lock().unwrap_or_else(PoisonError::into_inner) {
            None => Check {
                name: "store",
                ok: false,
                detail: "not probed yet".into(),
            },
            Some(Ok(())) => Check {
                name: "store",
                ok: true,
                detail: "writable".into(),
            },
            Some(Err(e)) => Check {
                name: "store",
                ok: false,
                detail: format!("not writable: {e}"),
            },
        };
        let window = i64::try_from(self.interval.as_secs().saturating_mul(2)).unwrap_or(i64::MAX);
        let failure = self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let self_check = match self.last_self_check() {
            Some(t) if now.saturating_sub(t) <= window => Check {
                name: "self_check",
                ok: true,
                detail: format!("loopback activation succeeded {}s ago", (now - t).max(0)),
            },
            last => {
                let mut detail = match last {
                    Some(t) => format!(
                        "no loopback activation succeeded in the last {window}s (last success {}s ago)",
                        now - t
                    ),
                    None => "no loopback activation has succeeded yet".into(),
                };
                if let Some((_, why)) = failure {
                    detail.push_str(&format!("; last attempt: {why}"));
                }
                Check {
                    name: "self_check",
                    ok: false,
                    detail,
                }
            }
        };
        let checks = vec![listeners, store, self_check];
        Readiness {
            ready: checks.iter().all(|c| c.ok),
            checks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_passes() {
        let h = Health::new(Duration::from_secs(30));
        let r = h.readiness(1000);
        assert!(!r.ready);
        assert_eq!(r.checks.iter().filter(|c| !c.ok).count(), 3);
        h.set_listeners_bound(true);
        h.set_store(Ok(()));
        h.self_check_failed(990, "connection refused".into());
        let r = h.readiness(1000);
        assert!(!r.ready);
        assert!(r.reason().contains("connection refused"), "{}", r.reason());
        h.self_check_succeeded(1000);
        assert!(h.readiness(1000).ready);
        assert!(h.readiness(1060).ready, "two intervals");
        assert!(!h.readiness(1061).ready, "more than two intervals");
        h.set_store(Err("disk full".into()));
        let r = h.readiness(1010);
        assert!(!r.ready);
        assert_eq!(r.reason(), "store: not writable: disk full");
    }
}
