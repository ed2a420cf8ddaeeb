//! Machine endpoints: `/livez` (the process answers), `/readyz` (listeners bound, store
//! writable, recent loopback self-check; 503 with the reason otherwise) and `/metrics`
//! (Prometheus / OpenMetrics text).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::blocking::blocking;
use super::fleet;
use super::state::WebState;
use crate::clock::now_unix;

/// The content type of the exposition `Metrics::encode` writes.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /livez`: 200 while the process serves HTTP.
pub async fn livez() -> Response {
    Json(json!({ "status": "alive" })).into_response()
}

/// `GET /readyz`: 200 when ready, else 503; the body names every check.
pub async fn readyz(State(state): State<Arc<WebState>>) -> Response {
    let r = state.health.readiness(now_unix());
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "status": if r.ready { "ready" } else { "not ready" },
        "reason": r.reason(),
        "checks": r.checks,
    });
    // DNS publishing is shown, not a readiness condition: the host activates without it.
    if let Some(dns) = state.health.dns_publish() {
        body["dns_publish"] = json!(dns.zones());
    }
    (status, Json(body)).into_response()
}

/// `GET /metrics`: the host's metrics with the client store's counters and the fleet's
/// health (`rkms_clients{state}`, `rkms_clients_by_family{family,state}`: counted by the
/// store, reused for [`fleet::FLEET_CACHE`]; left out while the store cannot be read).
pub async fn metrics(State(state): State<Arc<WebState>>) -> Response {
    let mut text = state.metrics.encode(state.writer.as_deref());
    let now = now_unix();
    let health = blocking(&state, move |s| fleet::of_host(s, now)).await;
    match health {
        Ok(Some(h)) => {
            let at = text.rfind("# EOF").unwrap_or(text.len());
            text.insert_str(at, &fleet::metrics_text(&h));
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("/metrics: fleet health left out: {}", e.message()),
    }
    if let Some(dns) = state.health.dns_publish() {
        // Before the exposition's closing "# EOF".
        let at = text.rfind("# EOF").unwrap_or(text.len());
        text.insert_str(at, &dns.metrics_text());
    }
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
    response
}
