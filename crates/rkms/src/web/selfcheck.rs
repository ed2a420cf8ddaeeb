//! The readiness self-check: every interval, probe the client store for writes and activate
//! once through the real protocol path over loopback (workstation `rkms-selfcheck`, which the
//! server neither counts nor records), and report both to [`Health`].

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, warn};
use uuid::Uuid;

use super::health::Health;
use super::state::WebState;
use crate::clock::now_unix;

/// How often `rkms serve` runs the self-check; `/readyz` wants one within two intervals.
pub const SELF_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// The client machine ID every self-check sends (see [`crate::client::CHECK_CMID`]).
pub const SELF_CHECK_CMID: Uuid = crate::client::CHECK_CMID;

/// The address to reach a KMS listener bound to `listen` from this machine: its own address,
/// or loopback of the same family for a wildcard (`0.0.0.0` → `127.0.0.1`, `[::]` → `[::1]`,
/// so the server sees a loopback peer and does not count the check).
pub fn loopback_target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// One loopback activation of Windows 10/11 Pro against `kms_addr` ([`crate::client::check`]):
/// Ok when the host answers with a response that verifies; Err says what failed.
pub async fn self_check(kms_addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    crate::client::check(kms_addr, timeout).await.map(|_| ())
}

/// Probes the store for writes: the store takes its write lock, and the writer has not failed
/// more writes since the previous probe without also writing some.
fn probe_store(state: &WebState, previous: &mut (u64, u64)) -> Result<(), String> {
    // The writer's store: the dashboard may read through a read-only connection of its own.
    if let Some(store) = state
        .writer
        .as_ref()
        .map(|w| w.store())
        .or(state.store.as_ref())
    {
        store.probe_writable().map_err(|e| e.to_string())?;
    }
    if let Some(w) = &state.writer {
        let now = (w.written(), w.errors());
        let (written, errors) = std::mem::replace(previous, now);
        if now.1 > errors && now.0 == written {
            return Err(format!(
                "{} client record(s) failed to be written since the last check",
                now.1 - errors
            ));
        }
    }
    Ok(())
}

/// Runs the self-check against the KMS listener `kms_addr` (see [`loopback_target`]) now and
/// every `interval` until `shutdown` resolves, recording results in `state.health` (which
/// also watches `state.writer`'s record writes from now on).
pub async fn self_check_loop(
    kms_addr: SocketAddr,
    state: Arc<WebState>,
    interval: Duration,
    shutdown: impl Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    let health: Arc<Health> = state.health.clone();
    // Failed record writes count at once, not only at the next probe.
    if let Some(w) = &state.writer {
        health.watch_writes(w.clone());
    }
    let timeout = interval.clamp(Duration::from_secs(1), Duration::from_secs(10));
    let mut counters = state
        .writer
        .as_ref()
        .map_or((0, 0), |w| (w.written(), w.errors()));
    let mut was_ok = true;
    loop {
        let probe_state = state.clone();
        let probe = tokio::task::spawn_blocking(move || {
            let result = probe_store(&probe_state, &mut counters);
            (result, counters)
        })
        .await;
        match probe {
            Ok((result, c)) => {
                counters = c;
                if let Err(e) = &result {
                    warn!("readiness: client store is not writable: {e}");
                }
                health.set_store(result);
            }
            Err(e) => health.set_store(Err(format!("store probe failed: {e}"))),
        }
        match self_check(kms_addr, timeout).await {
            Ok(()) => {
                if !was_ok {
                    warn!(address = %kms_addr, "readiness: loopback self-check succeeds again");
                }
                debug!(address = %kms_addr, "readiness: loopback self-check succeeded");
                health.self_check_succeeded(now_unix());
                was_ok = true;
            }
            Err(e) => {
                warn!(address = %kms_addr, "readiness: loopback self-check failed: {e}");
                health.self_check_failed(now_unix(), e);
                was_ok = false;
            }
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_become_loopback_of_their_family() {
        let t = |s: &str| loopback_target(s.parse().unwrap()).to_string();
        assert_eq!(t("0.0.0.0:1688"), "127.0.0.1:1688");
        assert_eq!(t("[::]:1688"), "[::1]:1688");
        assert_eq!(t("192.0.2.4:1700"), "192.0.2.4:1700");
        assert_eq!(t("[::1]:1688"), "[::1]:1688");
    }
}
