//! [`WebState`]: everything the web server reads — policy (catalog, identity), client store,
//! metrics, health and the settings to show — built once by `rkms serve`.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rkms_store::{ClientStore, Writer};

use super::health::Health;
use crate::policy::Policy;
use crate::server::Metrics;

/// What the dashboard, the JSON API and the probes read. Nothing in it is written through
/// the web: the server only reads.
pub struct WebState {
    /// The host's policy — catalog, identity (ePIDs, HwId), count mode and client pools — as
    /// the server holds it (replaced on reload; every request reads the current one).
    pub policy: Arc<ArcSwap<Policy>>,
    /// The client store read for clients, history and statistics (`None`: no records kept).
    pub store: Option<Arc<dyn ClientStore>>,
    /// The background writer in front of `store`, for its write/error counters in `/metrics`
    /// and the readiness store check.
    pub writer: Option<Arc<Writer>>,
    /// The server's metrics, encoded by `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Unix time the host started (uptime).
    pub started_unix: i64,
    /// The KMS listeners' bound addresses.
    pub listeners: Vec<SocketAddr>,
    /// The effective configuration shown on the Settings page and in `/api/v1/config`: (key,
    /// value, origin) rows, e.g. `("listen", "[::]:1688", "default")`. Rows whose key names a
    /// token, password or secret are shown as `(set)`, never with their value.
    pub settings: Vec<(String, String, String)>,
    /// Where client records are kept: the database path, or `none` (memory only).
    pub db: String,
    /// Readiness inputs, updated by the server and [`super::self_check_loop`].
    pub health: Arc<Health>,
    /// The token every request except `/livez` and `/readyz` must present (bearer, or the
    /// password of HTTP basic auth), or `None` for no authentication.
    pub web_token: Option<String>,
    /// The fleet health counts computed last (reused for a few seconds by the overview,
    /// `/api/v1/fleet` and `/metrics`).
    pub fleet_cache: super::fleet::FleetCache,
}

impl WebState {
    /// The policy in use now (its catalog, identity and pools).
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// The port clients should use: the first KMS listener's (1688 when none is known).
    pub fn kms_port(&self) -> u16 {
        self.listeners
            .first()
            .map_or(crate::addr::DEFAULT_PORT, SocketAddr::port)
    }
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebState")
            .field("listeners", &self.listeners)
            .field("db", &self.db)
            .field("started_unix", &self.started_unix)
            .field("web_token", &self.web_token.as_ref().map(|_| "(set)"))
            .finish_non_exhaustive()
    }
}
