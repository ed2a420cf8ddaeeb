//! The host's metrics in a build without the `web` feature: nothing reads them (there is no
//! `/metrics`), so nothing is counted but the open connections, and the Prometheus registry
//! is left out of the binary. Same interface as the full `metrics.rs`.

use std::sync::atomic::{AtomicI64, Ordering};

/// Kept by a connection for [`Metrics::activation`] (nothing to keep here).
#[derive(Debug, Clone)]
pub struct ActivationCounter;

/// The host's metrics: the open connections only.
#[derive(Debug, Default)]
pub struct Metrics {
    connections_open: AtomicI64,
}

#[allow(missing_docs)]
impl Metrics {
    /// Every count at zero.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn activation(
        &self,
        _cache: &mut Option<ActivationCounter>,
        _protocol: u16,
        _family: &'static str,
        _activated: bool,
    ) {
    }

    pub fn refusal(&self, _reason: &'static str) {}

    pub fn fault(&self, _status: u32) {}

    pub fn malformed(&self, _kind: &'static str) {}

    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn idle_timeout(&self) {}

    pub fn rate_limited(&self) {}

    pub fn limit_close(&self, _reason: &'static str) {}

    pub fn observe_duration(&self, _seconds: f64) {}

    /// Connections open now.
    pub fn open_connections(&self) -> i64 {
        self.connections_open.load(Ordering::Relaxed)
    }
}
