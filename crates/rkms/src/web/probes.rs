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
    let body = json!({
        "status": if r.ready { "ready" } else { "not ready" },
        "reason": r.reason(),
        "checks": r.checks,
    });
    (status, Json(body)).into_response()
}

/// `GET /metrics`: the host's metrics with the client store's counters.
pub async fn metrics(State(state): State<Arc<WebState>>) -> Response {
    let text = state.metrics.encode(state.writer.as_deref());
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
    response
}
