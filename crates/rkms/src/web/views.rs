//! Client records and history events as the pages and the API show them (product name,
//! family, status added), and the client list query: search, filters, sort, pagination.

use std::borrow::Cow;

use rkms_catalog::Catalog;
use rkms_store::{
    expires_at, ActivationEvent, ClientFilter, ClientRecord, ClientSort, ClientState, ClientStore,
    HealthThresholds, IdSet, Search, SECONDS_PER_DAY,
};
use serde::Serialize;
use uuid::Uuid;

use super::error::WebError;
use super::format;
use super::query::Params;
use crate::escape::canonical_address_text;
use crate::policy::family_of;

/// The product family (`windows-client`, `windows-server`, `office`, `unknown`) of a request.
pub fn family(catalog: &Catalog, application_id: &Uuid, kms_id: &Uuid) -> &'static str {
    let kms_name = catalog
        .kms_item_resolved(kms_id)
        .map(|k| k.display_name.as_str());
    family_of(application_id, kms_name)
}

/// A client record with what the store does not know: its product's name, family and status.
#[derive(Debug, Clone, Serialize)]
pub struct ClientView {
    /// The stored record (its fields appear at the top level in JSON).
    #[serde(flatten)]
    pub record: ClientRecord,
    /// Product name (SKU, else KMS item, else application).
    pub product: String,
    /// Product family.
    pub family: &'static str,
    /// `activated` or `refused`: the outcome of the latest request.
    pub status: &'static str,
    /// The licence status in words.
    pub license_status_name: &'static str,
    /// Fleet health: `current`, `overdue`, `at-risk`, `lapsed` or `failing` (at the time of
    /// the request, with the host's renewal interval).
    pub state: ClientState,
    /// When the activation runs out (180 days after `last_activated`), RFC 3339; `null` when
    /// the record was never activated.
    pub expires: Option<String>,
    /// Whole days until the activation runs out (negative: ran out that long ago); `null` when
    /// never activated.
    pub days_to_expiry: Option<i64>,
}

impl ClientView {
    /// Adds the catalog's names and the health state at `health` to `record` (an
    /// IPv4-mapped address is shown as IPv4).
    pub fn new(catalog: &Catalog, mut record: ClientRecord, health: &HealthThresholds) -> Self {
        if let Cow::Owned(a) = canonical_address_text(&record.last_address) {
            record.last_address = a;
        }
        let expires = record.last_activated.map(expires_at);
        ClientView {
            state: health.state(&record),
            expires: expires.map(format::rfc3339),
            days_to_expiry: expires
                .map(|e| e.saturating_sub(health.now).div_euclid(SECONDS_PER_DAY)),
            product: catalog
                .product_name(&record.sku_id, &record.kms_id, &record.application_id)
                .into_owned(),
            family: family(catalog, &record.application_id, &record.kms_id),
            status: if record.last_hresult == 0 {
                "activated"
            } else {
                "refused"
            },
            license_status_name: format::license_status(record.license_status),
            record,
        }
    }

    /// First request, for people.
    pub fn first_seen_text(&self) -> String {
        format::datetime(self.record.first_seen)
    }

    /// Latest request, for people.
    pub fn last_seen_text(&self) -> String {
        format::datetime(self.record.last_seen)
    }

    /// First request, RFC 3339.
    pub fn first_seen_iso(&self) -> String {
        format::rfc3339(self.record.first_seen)
    }

    /// Latest request, RFC 3339.
    pub fn last_seen_iso(&self) -> String {
        format::rfc3339(self.record.last_seen)
    }

    /// The latest HRESULT as `0x…`.
    pub fn hresult_text(&self) -> String {
        format::hresult(self.record.last_hresult)
    }

    /// When the activation runs out, for people (`never activated` without one).
    pub fn expires_text(&self) -> String {
        match self.record.last_activated {
            Some(t) => format::date(expires_at(t)),
            None => "never activated".into(),
        }
    }

    /// Days to expiry, for people: `in 12 days`, `today`, `5 days ago`, or empty.
    pub fn days_to_expiry_text(&self) -> String {
        match self.days_to_expiry {
            None => String::new(),
            Some(0) => "today".into(),
            Some(1) => "in 1 day".into(),
            Some(-1) => "1 day ago".into(),
            Some(d) if d > 0 => format!("in {d} days"),
            Some(d) => format!("{} days ago", -d),
        }
    }

    /// The last successful activation, for people.
    pub fn last_activated_text(&self) -> String {
        self.record
            .last_activated
            .map_or_else(|| "never".into(), format::datetime)
    }

    /// The CMID's first group, for narrow tables (the full CMID is on the client's page).
    pub fn short_cmid(&self) -> String {
        self.record.cmid.to_string()[..8].to_owned()
    }
}

/// A history event with its product's name, family and status.
#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    /// The stored event (its fields appear at the top level in JSON).
    #[serde(flatten)]
    pub event: ActivationEvent,
    /// Product name.
    pub product: String,
    /// Product family.
    pub family: &'static str,
    /// `activated` or `refused`.
    pub status: &'static str,
}

impl EventView {
    /// Adds the catalog's names to `event` (an IPv4-mapped address is shown as IPv4).
    pub fn new(catalog: &Catalog, mut event: ActivationEvent) -> Self {
        if let Cow::Owned(a) = canonical_address_text(&event.address) {
            event.address = a;
        }
        EventView {
            product: catalog
                .product_name(&event.sku_id, &event.kms_id, &event.application_id)
                .into_owned(),
            family: family(catalog, &event.application_id, &event.kms_id),
            status: if event.succeeded() {
                "activated"
            } else {
                "refused"
            },
            event,
        }
    }

    /// When, for people.
    pub fn time_text(&self) -> String {
        format::datetime(self.event.time)
    }

    /// When, RFC 3339.
    pub fn time_iso(&self) -> String {
        format::rfc3339(self.event.time)
    }

    /// The HRESULT as `0x…`.
    pub fn hresult_text(&self) -> String {
        format::hresult(self.event.hresult)
    }

    /// The licence status in words.
    pub fn license_status_name(&self) -> &'static str {
        format::license_status(self.event.license_status)
    }
}

/// Columns the client list sorts by.
pub const SORT_KEYS: [&str; 10] = [
    "workstation",
    "cmid",
    "product",
    "status",
    "first_seen",
    "last_seen",
    "requests",
    "address",
    "protocol",
    "expires",
];

/// Query parameters of the client list (page and API alike).
pub const CLIENT_PARAMS: [&str; 13] = [
    "q",
    "sort",
    "order",
    "limit",
    "offset",
    "page",
    "status",
    "state",
    "family",
    "kms_id",
    "sku_id",
    "application_id",
    "since",
];

/// Most clients one page or API call returns.
pub const MAX_LIMIT: i64 = 1000;

/// Clients per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: i64 = 50;

/// A client list request, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientQuery {
    /// Text searched (lower case) in workstation, CMID, product, address, ePID, family.
    pub q: Option<String>,
    /// One of [`SORT_KEYS`].
    pub sort: &'static str,
    /// Descending order.
    pub descending: bool,
    /// Page size.
    pub limit: u64,
    /// Records skipped.
    pub offset: u64,
    /// Only `activated` or `refused` clients.
    pub status: Option<&'static str>,
    /// Only clients in this health state.
    pub state: Option<ClientState>,
    /// Only this product family.
    pub family: Option<&'static str>,
    /// Store filter: KMS ID, SKU, application, `last_seen >= since`.
    pub filter: ClientFilter,
}

impl ClientQuery {
    /// Reads [`CLIENT_PARAMS`] from `params`. `page` (1-based) is another way to give `offset`.
    pub fn parse(params: &Params) -> Result<Self, WebError> {
        let state = params
            .choice("state", &ClientState::names())?
            .and_then(ClientState::parse);
        // A list of one state reads best soonest to run out first.
        let default_sort = if state.is_some() {
            "expires"
        } else {
            "last_seen"
        };
        let sort = params.choice("sort", &SORT_KEYS)?.unwrap_or(default_sort);
        let order = params.choice("order", &["asc", "desc"])?;
        let descending = match order {
            Some(o) => o == "desc",
            // Times and counts read best newest/largest first; names alphabetically; expiry
            // soonest first.
            None => matches!(sort, "first_seen" | "last_seen" | "requests"),
        };
        let limit = params
            .integer("limit", 1, MAX_LIMIT)?
            .unwrap_or(DEFAULT_LIMIT);
        let offset = params.integer("offset", 0, i64::MAX)?;
        let page = params.integer("page", 1, 1_000_000_000)?;
        let offset = match (offset, page) {
            (Some(_), Some(_)) => {
                return Err(WebError::BadRequest(
                    "give either 'offset' or 'page', not both".into(),
                ))
            }
            (Some(o), None) => o,
            (None, Some(p)) => (p - 1).saturating_mul(limit),
            (None, None) => 0,
        };
        Ok(ClientQuery {
            q: params.text("q").map(str::to_lowercase),
            sort,
            descending,
            limit: limit.unsigned_abs(),
            offset: offset.unsigned_abs(),
            status: params.choice("status", &["activated", "refused"])?,
            state,
            family: params.choice(
                "family",
                &["windows-client", "windows-server", "office", "unknown"],
            )?,
            filter: ClientFilter {
                kms_id: params.uuid("kms_id")?,
                sku_id: params.uuid("sku_id")?,
                application_id: params.uuid("application_id")?,
                since: params.integer("since", i64::MIN, i64::MAX)?,
                ..ClientFilter::default()
            },
        })
    }

    /// The 1-based page `offset` falls on.
    pub fn page(&self) -> u64 {
        self.offset / self.limit.max(1) + 1
    }
}

/// One page of the client list and how many clients match in all.
#[derive(Debug, Clone, Serialize)]
pub struct ClientPage {
    /// Client records (machine × application) matching the query, before pagination; for a
    /// filtered query, counted up to 10,000 (10,001 with `total_is_lower_bound`: more).
    pub total: u64,
    /// Whether counting stopped early: more than 10,000 records match a filtered query, and
    /// `total` (10,001) and `machines` are lower bounds.
    pub total_is_lower_bound: bool,
    /// Distinct machines (CMIDs) among them, counted up to 100,000 (100,001: more).
    pub machines: u64,
    /// Records skipped.
    pub offset: u64,
    /// Page size asked for.
    pub limit: u64,
    /// This page.
    pub clients: Vec<ClientView>,
}

const WINDOWS_APP: Uuid = Uuid::from_u128(0x55c92734_d682_4d71_983e_d6ec3f16059f);
const OFFICE_2010_APP: Uuid = Uuid::from_u128(0x59a52881_a989_479d_af46_f275c6370663);
const OFFICE_APP: Uuid = Uuid::from_u128(0x0ff1ce15_a989_479d_af46_f275c6370663);

/// The KMS IDs (aliases included) whose product is a Windows Server.
fn server_kms_ids(catalog: &Catalog) -> Vec<Uuid> {
    catalog
        .kms_items()
        .filter(|k| {
            catalog
                .kms_item_resolved(&k.id)
                .is_some_and(|r| r.display_name.contains("Server"))
        })
        .map(|k| k.id)
        .collect()
}

/// The store filter of `query`: the family becomes sets of application and KMS IDs, the
/// search text the IDs whose names match, the product sort the SKUs ranked by name (names
/// live in the catalog, the records in the store).
pub fn store_filter(
    catalog: &Catalog,
    query: &ClientQuery,
    health: &HealthThresholds,
) -> ClientFilter {
    let mut filter = ClientFilter {
        activated: query.status.map(|s| s == "activated"),
        state: query.state.map(|s| (s, *health)),
        ascending: !query.descending,
        limit: Some(query.limit),
        offset: Some(query.offset),
        ..query.filter.clone()
    };
    match query.family {
        Some("office") => filter.applications = IdSet::In(vec![OFFICE_APP, OFFICE_2010_APP]),
        Some("windows-server") => {
            filter.applications = IdSet::In(vec![WINDOWS_APP]);
            filter.kms_ids = IdSet::In(server_kms_ids(catalog));
        }
        Some("windows-client") => {
            filter.applications = IdSet::In(vec![WINDOWS_APP]);
            filter.kms_ids = IdSet::NotIn(server_kms_ids(catalog));
        }
        Some(_) => {
            filter.applications = IdSet::NotIn(vec![WINDOWS_APP, OFFICE_APP, OFFICE_2010_APP]);
        }
        None => {}
    }
    if let Some(q) = &query.q {
        let has = |name: &str| name.to_lowercase().contains(q.as_str());
        let mut application_ids: Vec<Uuid> = catalog
            .applications()
            .filter(|a| has(&a.name))
            .map(|a| a.id)
            .collect();
        for (family, apps) in [
            ("office", &[OFFICE_APP, OFFICE_2010_APP][..]),
            ("windows-client windows-server", &[WINDOWS_APP][..]),
        ] {
            if family.contains(q.as_str()) {
                application_ids.extend_from_slice(apps);
            }
        }
        filter.search = Some(Search {
            text: q.clone(),
            sku_ids: catalog
                .skus()
                .filter(|s| has(&s.display_name))
                .map(|s| s.id)
                .collect(),
            kms_ids: catalog
                .kms_items()
                .filter(|k| has(&k.display_name))
                .map(|k| k.id)
                .collect(),
            application_ids,
        });
    }
    filter.sort = match query.sort {
        "workstation" => ClientSort::Workstation,
        "cmid" => ClientSort::Cmid,
        "product" => {
            let mut skus: Vec<(&str, Uuid)> = catalog
                .skus()
                .map(|s| (s.display_name.as_str(), s.id))
                .collect();
            skus.sort();
            ClientSort::Sku(skus.into_iter().map(|(_, id)| id).collect())
        }
        "status" => ClientSort::Status,
        "first_seen" => ClientSort::FirstSeen,
        "requests" => ClientSort::Requests,
        "address" => ClientSort::Address,
        "protocol" => ClientSort::Protocol,
        "expires" => ClientSort::Expiry,
        _ => ClientSort::LastSeen,
    };
    filter
}

/// Runs `query` against `store` (blocking: call it off the async threads): the database
/// filters, sorts, pages and counts; only the page is read.
pub fn list_clients(
    store: &dyn ClientStore,
    catalog: &Catalog,
    query: &ClientQuery,
    health: &HealthThresholds,
) -> Result<ClientPage, WebError> {
    let filter = store_filter(catalog, query, health);
    let (records, count) = store.list_and_count(&filter)?;
    let clients = records
        .into_iter()
        .map(|r| ClientView::new(catalog, r, health))
        .collect();
    Ok(ClientPage {
        total: count.records,
        total_is_lower_bound: count.records_capped,
        machines: count.machines,
        offset: query.offset,
        limit: query.limit,
        clients,
    })
}

/// One machine's records (one per application, newest first, never empty) and its history,
/// for the client page and `GET /api/v1/clients/{cmid}`.
pub async fn client_detail(
    state: &std::sync::Arc<super::state::WebState>,
    id: Uuid,
    history_limit: u64,
) -> Result<(Vec<ClientView>, Vec<EventView>), WebError> {
    let (records, history) = super::blocking::blocking(state, move |s| {
        let Some(store) = &s.store else {
            return Ok((Vec::new(), Vec::new()));
        };
        let policy = s.policy();
        let health = super::fleet::thresholds(s, crate::clock::now_unix());
        let records: Vec<ClientView> = store
            .list(&ClientFilter {
                cmid: Some(id),
                ..Default::default()
            })?
            .into_iter()
            .map(|r| ClientView::new(policy.catalog(), r, &health))
            .collect();
        let history: Vec<EventView> = store
            .history(&id, history_limit)?
            .into_iter()
            .map(|e| EventView::new(policy.catalog(), e))
            .collect();
        Ok((records, history))
    })
    .await?;
    if records.is_empty() {
        return Err(WebError::NotFound(format!(
            "no client with CMID {id} is recorded"
        )));
    }
    Ok((records, history))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_defaults_and_pages() {
        let q = ClientQuery::parse(&Params::default()).unwrap();
        assert_eq!(
            (q.sort, q.descending, q.limit, q.offset),
            ("last_seen", true, 50, 0)
        );
        let p = Params::parse(Some("sort=workstation&page=3&limit=10"), &CLIENT_PARAMS).unwrap();
        let q = ClientQuery::parse(&p).unwrap();
        assert_eq!(
            (q.sort, q.descending, q.offset, q.page()),
            ("workstation", false, 20, 3)
        );
        let p = Params::parse(Some("page=2&offset=1"), &CLIENT_PARAMS).unwrap();
        assert!(ClientQuery::parse(&p).is_err());
        let p = Params::parse(Some("limit=0"), &CLIENT_PARAMS).unwrap();
        assert!(ClientQuery::parse(&p).is_err());
        let p = Params::parse(Some("sort=nope"), &CLIENT_PARAMS).unwrap();
        assert!(ClientQuery::parse(&p).is_err());
    }

    #[test]
    fn a_state_lists_soonest_to_expire_first() {
        let p = Params::parse(Some("state=at-risk"), &CLIENT_PARAMS).unwrap();
        let q = ClientQuery::parse(&p).unwrap();
        assert_eq!(
            (q.state, q.sort, q.descending),
            (Some(ClientState::AtRisk), "expires", false)
        );
        let p = Params::parse(Some("state=lapsed&sort=workstation"), &CLIENT_PARAMS).unwrap();
        assert_eq!(ClientQuery::parse(&p).unwrap().sort, "workstation");
        let p = Params::parse(Some("state=soon"), &CLIENT_PARAMS).unwrap();
        let e = ClientQuery::parse(&p).unwrap_err().message().to_owned();
        assert!(e.contains("at-risk"), "{e}");
    }
}
