//! The JSON API under `/api/v1/` (described by `openapi/rkms-v1.json`): clients, one client,
//! recent activations, products, statistics, configuration (never a secret).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::blocking::blocking;
use super::error::{json_error, ApiError};
use super::fleet;
use super::pages::{count_mode_text, redacted_settings};
use super::products::{self, ProductQuery, PRODUCT_PARAMS};
use super::query::{path_uuid, Params};
use super::state::WebState;
use super::stats;
use super::views::{
    client_detail, list_clients, ClientPage, ClientQuery, EventView, CLIENT_PARAMS,
};
use crate::clock::now_unix;

/// The OpenAPI document of this API, as checked in at `openapi/rkms-v1.json`.
pub const OPENAPI: &str = include_str!("../../../../openapi/rkms-v1.json");

/// `GET /api/v1/clients`: filter, search, sort, paginate.
pub async fn clients(
    State(state): State<Arc<WebState>>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ClientPage>, ApiError> {
    let query = ClientQuery::parse(&Params::parse(raw.as_deref(), &CLIENT_PARAMS)?)?;
    let health = fleet::thresholds(&state, now_unix());
    let page = blocking(&state, move |s| match &s.store {
        Some(store) => list_clients(store.as_ref(), s.policy().catalog(), &query, &health),
        None => Ok(ClientPage {
            total: 0,
            total_is_lower_bound: false,
            machines: 0,
            offset: query.offset,
            limit: query.limit,
            clients: Vec::new(),
        }),
    })
    .await?;
    Ok(Json(page))
}

/// `GET /api/v1/clients/{cmid}`: the machine's records and history (`history_limit`).
pub async fn client(
    State(state): State<Arc<WebState>>,
    Path(cmid): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let id = path_uuid("CMID", &cmid)?;
    let params = Params::parse(raw.as_deref(), &["history_limit"])?;
    let limit = params.integer("history_limit", 0, 10_000)?.unwrap_or(100);
    let (records, history) = client_detail(&state, id, limit.unsigned_abs()).await?;
    let latest = &records[0];
    Ok(Json(json!({
        "cmid": id.to_string(),
        "workstation": latest.record.workstation,
        "records": records,
        "history": history,
    })))
}

/// `GET /api/v1/activations`: the latest requests, newest first (`limit`, `cmid`).
pub async fn activations(
    State(state): State<Arc<WebState>>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(raw.as_deref(), &["limit", "cmid"])?;
    let limit = params
        .integer("limit", 1, 1000)?
        .unwrap_or(20)
        .unsigned_abs();
    let cmid = params.uuid("cmid")?;
    let events = blocking(&state, move |s| {
        let Some(store) = &s.store else {
            return Ok(Vec::new());
        };
        let policy = s.policy();
        let events = match cmid {
            Some(c) => store.history(&c, limit)?,
            None => store.recent_activations(limit)?,
        };
        Ok(events
            .into_iter()
            .map(|e| EventView::new(policy.catalog(), e))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(json!({ "activations": events })))
}

/// `GET /api/v1/products`: the catalog (`q`, `family`; `host` fills in `guide`).
pub async fn products(
    State(state): State<Arc<WebState>>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = ProductQuery::parse(&Params::parse(raw.as_deref(), &PRODUCT_PARAMS)?)?;
    let policy = state.policy();
    let catalog = policy.catalog();
    let skus = products::matching(catalog, &query);
    let items = products::json(catalog, &skus, query.host.as_deref(), state.kms_port());
    Ok(Json(json!({ "total": items.len(), "products": items })))
}

/// `GET /api/v1/stats`: counts, activations by day and product, pools.
pub async fn stats(
    State(state): State<Arc<WebState>>,
    RawQuery(raw): RawQuery,
) -> Result<Json<stats::Stats>, ApiError> {
    Params::parse(raw.as_deref(), &[])?;
    let now = now_unix();
    Ok(Json(
        blocking(&state, move |s| stats::compute(s, now)).await?,
    ))
}

/// `GET /api/v1/fleet`: client records per health state, in all and per product family.
pub async fn fleet(
    State(state): State<Arc<WebState>>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Params::parse(raw.as_deref(), &[])?;
    let now = now_unix();
    let health = blocking(&state, move |s| {
        Ok(match fleet::of_host(s, now)? {
            Some(h) => h,
            None => std::sync::Arc::new(fleet::compute(
                &rkms_store::MemoryStore::new(),
                s.policy().catalog(),
                now,
                s.policy().config().renewal_interval,
            )?),
        })
    })
    .await?;
    Ok(Json(serde_json::to_value(&*health).map_err(|e| {
        super::error::WebError::Store(format!("fleet health: {e}"))
    })?))
}

/// `GET /api/v1/config`: the effective configuration, without secrets.
pub async fn config(
    State(state): State<Arc<WebState>>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Params::parse(raw.as_deref(), &[])?;
    let policy = state.policy();
    let identity = policy.identity();
    let cfg = policy.config();
    let epids: Vec<Value> = identity
        .slots()
        .map(|(profile, epid, hwid)| {
            json!({ "profile": profile, "epid": epid, "hwid": hex::encode_upper(hwid) })
        })
        .collect();
    let settings: Vec<Value> = redacted_settings(&state)
        .into_iter()
        .map(|(key, value, origin)| json!({ "key": key, "value": value, "origin": origin }))
        .collect();
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "listeners": state.listeners.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "database": state.db,
        "identity": {
            "host_build": identity.host_build(),
            "lcid": identity.lcid(),
            "hwid": hex::encode_upper(identity.hwid()),
            "epids": epids,
        },
        "client_count": count_mode_text(cfg.count),
        "activation_interval_minutes": cfg.activation_interval,
        "renewal_interval_minutes": cfg.renewal_interval,
        "settings": settings,
        "web": {
            "authentication": if state.web_token.is_some() { "token" } else { "none" },
        },
    })))
}

/// `GET /api/v1/openapi.json`: the API description.
pub async fn openapi() -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    (headers, OPENAPI).into_response()
}

/// Any other `/api/…` address: 404 with a JSON body.
pub async fn not_found() -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "no such API endpoint (see /api/v1/openapi.json)",
    )
}
