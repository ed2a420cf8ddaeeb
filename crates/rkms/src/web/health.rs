//! [`Health`]: what `/readyz` decides on — listeners bound, client store writable (the write
//! probe passes, and the latest record write succeeded or none failed in the last
//! [`WRITE_FAILURE_WINDOW`] seconds), a recent successful loopback self-check — shared between
//! the server, the self-check loop and the web.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use rkms_store::{WriteStatus, Writer};
use serde::Serialize;

/// Seconds a failed client record write keeps the host not ready, unless a later write
/// succeeds.
pub const WRITE_FAILURE_WINDOW: i64 = 60;

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
    /// The writer whose record writes count (see [`Health::watch_writes`]).
    writer: OnceLock<Arc<Writer>>,
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
            writer: OnceLock::new(),
            dns_publish: Mutex::new(None),
        }
    }

    /// Makes the outcome of `writer`'s record writes part of the store check, at once (not
    /// only at the next probe). Only the first writer given counts.
    pub fn watch_writes(&self, writer: Arc<Writer>) {
        let _ = self.writer.set(writer);
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
        let probe = self
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let writes = self.writer.get().map(|w| w.write_status());
        let store = match &probe {
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
        let store = with_writes(store, writes.as_ref(), now);
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

/// The store check with the record writes taken into account: not ready when the latest write
/// failed less than [`WRITE_FAILURE_WINDOW`] seconds ago (saying which and why); a recent
/// failure followed by a success is mentioned while the check passes.
fn with_writes(mut store: Check, writes: Option<&WriteStatus>, now: i64) -> Check {
    let Some((when, why)) = writes.and_then(|w| w.last_failure.as_ref()) else {
        return store;
    };
    let ago = now.saturating_sub(*when).max(0);
    if ago >= WRITE_FAILURE_WINDOW {
        return store;
    }
    let latest_failed = writes.is_some_and(|w| w.latest_failed);
    if latest_failed {
        let failure = format!("the latest client record write failed {ago}s ago: {why}");
        store.detail = if store.ok {
            failure
        } else {
            format!("{}; {failure}", store.detail)
        };
        store.ok = false;
    } else if store.ok {
        store.detail = format!(
            "writable (a client record write failed {ago}s ago: {why}; later writes succeed)"
        );
    }
    store
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

    #[test]
    fn a_failed_write_counts_for_a_minute_unless_a_later_one_succeeds() {
        let probe_ok = || Check {
            name: "store",
            ok: true,
            detail: "writable".into(),
        };
        let failed = WriteStatus {
            latest_failed: true,
            last_success: Some(990),
            last_failure: Some((
                1000,
                "the record of client X: database disk image is malformed".into(),
            )),
            failed_attempts: 3,
        };
        let c = with_writes(probe_ok(), Some(&failed), 1035);
        assert!(!c.ok);
        assert_eq!(
            c.detail,
            "the latest client record write failed 35s ago: the record of client X: database \
             disk image is malformed"
        );
        assert!(with_writes(probe_ok(), Some(&failed), 1059)
            .detail
            .contains("59s ago"));
        assert!(
            with_writes(probe_ok(), Some(&failed), 1060).ok,
            "a minute later"
        );
        let recovered = WriteStatus {
            latest_failed: false,
            last_success: Some(1001),
            ..failed.clone()
        };
        let c = with_writes(probe_ok(), Some(&recovered), 1010);
        assert!(c.ok);
        assert!(c.detail.contains("later writes succeed"), "{}", c.detail);
        assert_eq!(with_writes(probe_ok(), None, 1010), probe_ok());
        let probe_failed = Check {
            ok: false,
            detail: "not writable: disk full".into(),
            ..probe_ok()
        };
        let c = with_writes(probe_failed, Some(&failed), 1010);
        assert!(!c.ok && c.detail.starts_with("not writable: disk full; the latest"));
    }
}
