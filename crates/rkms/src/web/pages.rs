//! The dashboard's HTML pages: Overview, Clients, one client, Products and Settings, rendered
//! on the server from compile-time-checked templates.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::Extension;
use rkms_store::{day_start, ClientFilter};

use super::blocking::blocking;
use super::chart;
use super::error::{render, PageError, WebError};
use super::fleet::{self, FleetHealth};
use super::format;
use super::hosts::VerifiedHost;
use super::layout::Chrome;
use super::products::{self, ProductQuery, ProductRow, PRODUCT_PARAMS};
use super::query::{path_uuid, Params};
use super::state::WebState;
use super::stats::{self, Stats};
use super::views::{
    client_detail, list_clients, ClientPage, ClientQuery, ClientView, EventView, CLIENT_PARAMS,
};
use crate::clock::now_unix;
use crate::policy::CountMode;

/// Requests shown in a client's history.
pub const HISTORY_LIMIT: u64 = 200;

/// Activations listed live on the overview.
pub const RECENT_LIMIT: u64 = 20;

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    stats: Stats,
    ready: bool,
    ready_reason: String,
    uptime: String,
    started_iso: String,
    started_text: String,
    listeners: Vec<String>,
    db: String,
    self_check: String,
    chart: String,
    series: [(&'static str, &'static str); 5],
    recent: Vec<EventView>,
    fleet: Option<Arc<FleetHealth>>,
}

/// `GET /`: the overview.
pub async fn overview(State(state): State<Arc<WebState>>) -> Result<Response, PageError> {
    let now = now_unix();
    let (stats, recent, fleet) = blocking(&state, move |s| {
        let stats = stats::compute(s, now)?;
        let fleet = fleet::of_host(s, now)?;
        let policy = s.policy();
        let recent = match &s.store {
            Some(store) => store
                .recent_activations(RECENT_LIMIT)?
                .into_iter()
                .map(|e| EventView::new(policy.catalog(), e))
                .collect(),
            None => Vec::new(),
        };
        Ok((stats, recent, fleet))
    })
    .await?;
    let readiness = state.health.readiness(now);
    let self_check = match state.health.last_self_check() {
        Some(t) => format!(
            "loopback activation succeeded {} ({})",
            format::age(now - t),
            format::datetime(t)
        ),
        None => "no loopback activation has succeeded yet".into(),
    };
    Ok(render(&OverviewPage {
        chrome: Chrome::new("Overview", "overview"),
        chart: chart::svg(&stats.by_day, day_start(now)),
        ready: readiness.ready,
        ready_reason: readiness.reason(),
        uptime: format::duration(stats.uptime_seconds),
        started_iso: format::rfc3339(state.started_unix),
        started_text: format::datetime(state.started_unix),
        listeners: state.listeners.iter().map(ToString::to_string).collect(),
        db: state.db.clone(),
        self_check,
        series: chart::SERIES,
        recent,
        stats,
        fleet,
    }))
}

/// An `<option>` of a filter.
struct Opt {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

/// A sortable column header.
struct SortHeader {
    label: &'static str,
    href: String,
    arrow: &'static str,
    aria_sort: &'static str,
    numeric: bool,
}

#[derive(Template)]
#[template(path = "clients.html")]
struct ClientsPage {
    chrome: Chrome,
    q: String,
    sort: &'static str,
    order: &'static str,
    filtered: bool,
    summary: String,
    status_options: Vec<Opt>,
    state_options: Vec<Opt>,
    family_options: Vec<Opt>,
    headers: Vec<SortHeader>,
    page: ClientPage,
    page_number: u64,
    /// The number of pages, or "at least N" when the count stopped early.
    pages: String,
    prev: Option<String>,
    next: Option<String>,
}

/// `/clients?…` with the list's current parameters, `sort`/`order` and `page` replaced.
fn clients_href(raw: &Params, sort: &str, order: &str, page: u64) -> String {
    let mut url = form_urlencoded::Serializer::new(String::new());
    for name in [
        "q",
        "status",
        "state",
        "family",
        "kms_id",
        "sku_id",
        "application_id",
        "since",
        "limit",
    ] {
        if let Some(v) = raw.text(name) {
            url.append_pair(name, v);
        }
    }
    url.append_pair("sort", sort);
    url.append_pair("order", order);
    if page > 1 {
        url.append_pair("page", &page.to_string());
    }
    format!("/clients?{}", url.finish())
}

/// `GET /clients`: the searchable, sortable, paginated client list.
pub async fn clients(
    State(state): State<Arc<WebState>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let params = Params::parse(raw.as_deref(), &CLIENT_PARAMS)?;
    let query = ClientQuery::parse(&params)?;
    let q = query.clone();
    let health = fleet::thresholds(&state, now_unix());
    let page = blocking(&state, move |s| match &s.store {
        Some(store) => list_clients(store.as_ref(), s.policy().catalog(), &q, &health),
        None => Ok(ClientPage {
            total: 0,
            total_is_lower_bound: false,
            machines: 0,
            offset: q.offset,
            limit: q.limit,
            clients: Vec::new(),
        }),
    })
    .await?;
    let order = if query.descending { "desc" } else { "asc" };
    let columns: [(&str, &str, bool); 10] = [
        ("workstation", "Workstation", false),
        ("cmid", "CMID", false),
        ("product", "Product", false),
        ("status", "Status", false),
        ("expires", "Expires", false),
        ("first_seen", "First seen", false),
        ("last_seen", "Last seen", false),
        ("requests", "Requests", true),
        ("address", "Address", false),
        ("protocol", "Protocol", false),
    ];
    let headers = columns
        .iter()
        .map(|(key, label, numeric)| {
            let current = *key == query.sort;
            let next_order = match (current, query.descending) {
                (true, true) => "asc",
                (true, false) => "desc",
                // A new column starts in its natural order.
                (false, _) if matches!(*key, "first_seen" | "last_seen" | "requests") => "desc",
                (false, _) => "asc",
            };
            SortHeader {
                label,
                href: clients_href(&params, key, next_order, 1),
                arrow: match (current, query.descending) {
                    (true, true) => " ↓",
                    (true, false) => " ↑",
                    _ => "",
                },
                aria_sort: match (current, query.descending) {
                    (true, true) => "descending",
                    (true, false) => "ascending",
                    _ => "",
                },
                numeric: *numeric,
            }
        })
        .collect();
    let pages = page.total.div_ceil(query.limit.max(1)).max(1);
    let page_number = query.page();
    let prev = (page_number > 1)
        .then(|| clients_href(&params, query.sort, order, (page_number - 1).min(pages)));
    // When the count stopped early, a full page may have more after it.
    let pages_text = if page.total_is_lower_bound {
        format!("at least {pages}")
    } else {
        pages.to_string()
    };
    let more = page_number < pages
        || (page.total_is_lower_bound && page.clients.len() as u64 >= query.limit.max(1));
    let next = more.then(|| clients_href(&params, query.sort, order, page_number + 1));
    let prev = if page.total_is_lower_bound {
        (page_number > 1).then(|| clients_href(&params, query.sort, order, page_number - 1))
    } else {
        prev
    };
    let options =
        |selected: Option<&str>, all: &'static str, values: &[(&'static str, &'static str)]| {
            std::iter::once(Opt {
                value: "",
                label: all,
                selected: selected.is_none(),
            })
            .chain(values.iter().map(|(value, label)| Opt {
                value,
                label,
                selected: selected == Some(*value),
            }))
            .collect::<Vec<_>>()
        };
    let filtered = query.q.is_some()
        || query.status.is_some()
        || query.state.is_some()
        || query.family.is_some()
        || query.filter != ClientFilter::default();
    let shown = page.clients.len() as u64;
    let plural = |n: u64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let summary = match (page.total, shown) {
        (0, _) => "No clients.".to_owned(),
        (_, n) if page.total_is_lower_bound => format!(
            "More than {} client records (counting stopped there){}",
            rkms_store::MATCH_COUNT_LIMIT,
            if n == 0 {
                "; none on this page.".to_owned()
            } else {
                format!(" · showing {}–{}", page.offset + 1, page.offset + n)
            }
        ),
        (total, 0) => format!("{}; none on this page.", plural(total, "client record")),
        (total, n) => format!(
            "{} of {} · showing {}–{}",
            plural(total, "client record"),
            if page.machines > rkms_store::MACHINES_COUNT_LIMIT {
                format!("over {} machines", rkms_store::MACHINES_COUNT_LIMIT)
            } else {
                plural(page.machines, "machine")
            },
            page.offset + 1,
            page.offset + n
        ),
    };
    Ok(render(&ClientsPage {
        chrome: Chrome::new("Clients", "clients"),
        q: params.text("q").unwrap_or("").to_owned(),
        sort: query.sort,
        order,
        filtered,
        summary,
        status_options: options(
            query.status,
            "Any status",
            &[("activated", "Activated"), ("refused", "Refused")],
        ),
        state_options: options(
            query.state.map(|s| s.as_str()),
            "Any health",
            &[
                ("current", "Current"),
                ("overdue", "Overdue"),
                ("at-risk", "At risk"),
                ("lapsed", "Lapsed"),
                ("failing", "Failing"),
            ],
        ),
        family_options: options(
            query.family,
            "All products",
            &[
                ("windows-client", "Windows client"),
                ("windows-server", "Windows Server"),
                ("office", "Office"),
                ("unknown", "Other"),
            ],
        ),
        headers,
        page,
        page_number,
        pages: pages_text,
        prev,
        next,
    }))
}

#[derive(Template)]
#[template(path = "client.html")]
struct ClientDetailPage {
    chrome: Chrome,
    cmid: String,
    records: Vec<ClientView>,
    history: Vec<EventView>,
}

/// `GET /clients/{cmid}`: one machine's records (one per application) and its history.
pub async fn client(
    State(state): State<Arc<WebState>>,
    Path(cmid): Path<String>,
) -> Result<Response, PageError> {
    let id = path_uuid("CMID", &cmid)?;
    let (records, history) = client_detail(&state, id, HISTORY_LIMIT).await?;
    let latest = &records[0];
    Ok(render(&ClientDetailPage {
        chrome: Chrome::new(latest.record.workstation.clone(), "clients"),
        cmid: id.to_string(),
        records,
        history,
    }))
}

#[derive(Template)]
#[template(path = "products.html")]
struct ProductsPage {
    chrome: Chrome,
    q: String,
    host: String,
    endpoint: String,
    total: usize,
    products: Vec<ProductRow>,
}

/// `GET /products`: the catalog with GVLKs and the client commands for this host.
pub async fn products(
    State(state): State<Arc<WebState>>,
    RawQuery(raw): RawQuery,
    verified: Option<Extension<VerifiedHost>>,
) -> Result<Response, PageError> {
    let params = Params::parse(raw.as_deref(), &PRODUCT_PARAMS)?;
    let query = ProductQuery::parse(&params)?;
    let verified = verified.map(|Extension(VerifiedHost(h))| h);
    let host = query
        .host
        .clone()
        .unwrap_or_else(|| products::default_host(&state, verified.as_deref()));
    let port = state.kms_port();
    let policy = state.policy();
    let catalog = policy.catalog();
    let skus = products::matching(catalog, &query);
    let endpoint = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok(render(&ProductsPage {
        chrome: Chrome::new("Products", "products"),
        products: products::rows(catalog, &skus, &host, port),
        total: catalog.skus().len(),
        q: query.q,
        host,
        endpoint,
    }))
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    host_build: u32,
    lcid: u32,
    hwid: String,
    count_mode: String,
    activation_interval: u32,
    renewal_interval: u32,
    slots: Vec<(String, String, String)>,
    db: String,
    listeners: Vec<String>,
    access: &'static str,
    settings: Vec<(String, String, String)>,
    /// `--dns-publish` zones and how publishing goes: (zone, state).
    dns_publish: Vec<(String, String)>,
}

/// A count mode for people.
pub fn count_mode_text(mode: CountMode) -> String {
    match mode {
        CountMode::Auto => "twice each request's threshold (a fully charged host)".into(),
        CountMode::Fixed(n) => format!("fixed at {n} (adjusted to each product's threshold)"),
        CountMode::Genuine { start_empty } => format!(
            "distinct clients of the last 30 days, as a genuine host counts (start {})",
            if start_empty { "empty" } else { "charged" }
        ),
    }
}

/// The settings rows with secrets hidden: a key naming a token, password or secret shows
/// `(set)` instead of its value.
pub fn redacted_settings(state: &WebState) -> Vec<(String, String, String)> {
    state
        .settings
        .iter()
        .map(|(k, v, o)| {
            let key = k.to_ascii_lowercase();
            let secret = ["token", "password", "secret"]
                .iter()
                .any(|s| key.contains(s));
            let value = if secret && !v.is_empty() && v != "(not set)" {
                "(set)".to_owned()
            } else {
                v.clone()
            };
            (k.clone(), value, o.clone())
        })
        .collect()
}

/// `GET /settings`: the effective configuration, identity and storage.
pub async fn settings(State(state): State<Arc<WebState>>) -> Result<Response, PageError> {
    let policy = state.policy();
    let identity = policy.identity();
    let config = policy.config();
    Ok(render(&SettingsPage {
        chrome: Chrome::new("Settings", "settings"),
        host_build: identity.host_build(),
        lcid: identity.lcid(),
        hwid: hex::encode_upper(identity.hwid()),
        count_mode: count_mode_text(config.count),
        activation_interval: config.activation_interval,
        renewal_interval: config.renewal_interval,
        slots: identity
            .slots()
            .map(|(p, e, h)| (p.to_owned(), e.to_owned(), hex::encode_upper(h)))
            .collect(),
        db: state.db.clone(),
        listeners: state.listeners.iter().map(ToString::to_string).collect(),
        access: if state.web_token.is_some() {
            "token required (bearer, or HTTP basic auth with the token as password)"
        } else {
            "no authentication"
        },
        settings: redacted_settings(&state),
        dns_publish: state
            .health
            .dns_publish()
            .map(|d| d.summary())
            .unwrap_or_default(),
    }))
}

/// Any other address: a 404 page.
pub async fn not_found(uri: axum::http::Uri) -> PageError {
    WebError::NotFound(format!("nothing at {}", uri.path())).into()
}
