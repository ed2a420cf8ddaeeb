//! Client records and history events as the pages and the API show them (product name,
//! family, status added), and the client list query: search, filters, sort, pagination.

use std::borrow::Cow;

use rkms_catalog::Catalog;
use rkms_store::{ActivationEvent, ClientFilter, ClientRecord, ClientStore};
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
}

impl ClientView {
    /// Adds the catalog's names to `record` (an IPv4-mapped address is shown as IPv4).
    pub fn new(catalog: &Catalog, mut record: ClientRecord) -> Self {
        if let Cow::Owned(a) = canonical_address_text(&record.last_address) {
            record.last_address = a;
        }
        ClientView {
            product: catalog.product_name(&record.sku_id, &record.kms_id, &record.application_id),
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

    /// The CMID's first group, for narrow tables (the full CMID is on the client's page).
    pub fn short_cmid(&self) -> String {
        self.record.cmid.to_string()[..8].to_owned()
    }

    /// Whether the text `needle` (lower case) occurs in the workstation, CMID, product,
    /// address, ePID or family.
    fn contains(&self, needle: &str) -> bool {
        [
            self.record.workstation.as_str(),
            &self.record.cmid.to_string(),
            &self.product,
            &self.record.last_address,
            &self.record.last_epid,
            self.family,
        ]
        .iter()
        .any(|h| h.to_lowercase().contains(needle))
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
            product: catalog.product_name(&event.sku_id, &event.kms_id, &event.application_id),
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
pub const SORT_KEYS: [&str; 9] = [
    "workstation",
    "cmid",
    "product",
    "status",
    "first_seen",
    "last_seen",
    "requests",
    "address",
    "protocol",
];

/// Query parameters of the client list (page and API alike).
pub const CLIENT_PARAMS: [&str; 12] = [
    "q",
    "sort",
    "order",
    "limit",
    "offset",
    "page",
    "status",
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
    /// Only this product family.
    pub family: Option<&'static str>,
    /// Store filter: KMS ID, SKU, application, `last_seen >= since`.
    pub filter: ClientFilter,
}

impl ClientQuery {
    /// Reads [`CLIENT_PARAMS`] from `params`. `page` (1-based) is another way to give `offset`.
    pub fn parse(params: &Params) -> Result<Self, WebError> {
        let sort = params.choice("sort", &SORT_KEYS)?.unwrap_or("last_seen");
        let order = params.choice("order", &["asc", "desc"])?;
        let descending = match order {
            Some(o) => o == "desc",
            // Times and counts read best newest/largest first; names alphabetically.
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
    /// Client records (machine × application) matching the query, before pagination.
    pub total: u64,
    /// Distinct machines (CMIDs) among them.
    pub machines: u64,
    /// Records skipped.
    pub offset: u64,
    /// Page size asked for.
    pub limit: u64,
    /// This page.
    pub clients: Vec<ClientView>,
}

/// Runs `query` against `store` (blocking: call it off the async threads).
pub fn list_clients(
    store: &dyn ClientStore,
    catalog: &Catalog,
    query: &ClientQuery,
) -> Result<ClientPage, WebError> {
    let mut rows: Vec<ClientView> = store
        .list(&query.filter)?
        .into_iter()
        .map(|r| ClientView::new(catalog, r))
        .filter(|c| query.status.is_none_or(|s| c.status == s))
        .filter(|c| query.family.is_none_or(|f| c.family == f))
        .filter(|c| query.q.as_deref().is_none_or(|q| c.contains(q)))
        .collect();
    let key = query.sort;
    rows.sort_by(|a, b| {
        let (x, y) = (&a.record, &b.record);
        let primary = match key {
            "workstation" => x
                .workstation
                .to_lowercase()
                .cmp(&y.workstation.to_lowercase()),
            "cmid" => x.cmid.cmp(&y.cmid),
            "product" => a.product.cmp(&b.product),
            "status" => a.status.cmp(b.status),
            "first_seen" => x.first_seen.cmp(&y.first_seen),
            "requests" => x.requests.cmp(&y.requests),
            "address" => x.last_address.cmp(&y.last_address),
            "protocol" => x.protocol.cmp(&y.protocol),
            _ => x.last_seen.cmp(&y.last_seen),
        };
        let primary = if query.descending {
            primary.reverse()
        } else {
            primary
        };
        // Stable pages: ties by latest request, then identity.
        primary
            .then(y.last_seen.cmp(&x.last_seen))
            .then(x.cmid.cmp(&y.cmid))
            .then(x.application_id.cmp(&y.application_id))
    });
    let total = rows.len() as u64;
    let machines = rows
        .iter()
        .map(|c| c.record.cmid)
        .collect::<std::collections::HashSet<_>>()
        .len() as u64;
    let clients = rows
        .into_iter()
        .skip(usize::try_from(query.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(query.limit).unwrap_or(usize::MAX))
        .collect();
    Ok(ClientPage {
        total,
        machines,
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
        let records: Vec<ClientView> = store
            .list(&ClientFilter {
                cmid: Some(id),
                ..Default::default()
            })?
            .into_iter()
            .map(|r| ClientView::new(policy.catalog(), r))
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
}
