//! The catalog as the Products page and `/api/v1/products` show it: search, family, GVLK and
//! the client commands (`rkms guide`) for the address clients reach this host at.

use rkms_catalog::render::guide;
use rkms_catalog::{Catalog, Sku};
use serde_json::Value;

use super::error::WebError;
use super::format::family_name;
use super::query::Params;
use super::state::WebState;
use super::views::family;

/// Query parameters of the product list.
pub const PRODUCT_PARAMS: [&str; 3] = ["q", "family", "host"];

/// One catalog product for the Products page.
#[derive(Debug, Clone)]
pub struct ProductRow {
    /// Display name.
    pub name: String,
    /// Family key (`windows-client`, …).
    pub family: &'static str,
    /// Family for people.
    pub family_name: &'static str,
    /// A retail SKU.
    pub retail: bool,
    /// A preview SKU.
    pub preview: bool,
    /// The KMS client setup key, if known.
    pub gvlk: Option<String>,
    /// The KMS group (KMS item) name.
    pub kms_name: String,
    /// Clients the product needs.
    pub min_count: u32,
    /// Protocol version the product uses.
    pub protocol: u16,
    /// The client commands for this host (none without a GVLK or for other applications).
    pub guide: Option<String>,
    /// Lower-case text the page's instant filter searches.
    pub search: String,
}

/// The product list request, validated.
#[derive(Debug, Clone, Default)]
pub struct ProductQuery {
    /// Text searched (catalog search: name, GVLK, KMS group, application).
    pub q: String,
    /// Only this family.
    pub family: Option<&'static str>,
    /// The KMS host the commands name, when given.
    pub host: Option<String>,
}

impl ProductQuery {
    /// Reads [`PRODUCT_PARAMS`].
    pub fn parse(params: &Params) -> Result<Self, WebError> {
        // Only a host name or IP address ever reaches a command line.
        let host = match params.text("host") {
            None => None,
            Some(h) => Some(super::hosts::parse_web_host(h).map_err(|_| {
                WebError::BadRequest(format!(
                    "query parameter 'host' must be a host name or IP address, not '{h}'"
                ))
            })?),
        };
        Ok(ProductQuery {
            q: params.text("q").unwrap_or("").to_owned(),
            family: params.choice(
                "family",
                &["windows-client", "windows-server", "office", "unknown"],
            )?,
            host,
        })
    }
}

/// The SKUs matching `query`: volume products first, each group in catalog order.
pub fn matching<'a>(catalog: &'a Catalog, query: &ProductQuery) -> Vec<&'a Sku> {
    let mut skus: Vec<&Sku> = catalog
        .search(&query.q)
        .into_iter()
        .filter(|s| {
            query
                .family
                .is_none_or(|f| family(catalog, &s.app_id, &s.kms_id) == f)
        })
        .collect();
    // Volume products (what a KMS host is for) first, retail and preview ones after; the
    // catalog's order otherwise (stable sort).
    skus.sort_by_key(|s| s.is_retail || s.is_preview);
    skus
}

/// The host name clients should use for this KMS host: a specific (not wildcard, not loopback)
/// KMS listener address; else the name the browser reached the dashboard at, once checked
/// ([`super::VerifiedHost`]) and when it is not a loopback name; else, for a wildcard listener,
/// this machine's first address clients can reach ([`super::hosts::machine_address`]); else
/// the first listener's address (a loopback listener serves this machine only).
pub fn default_host(state: &WebState, verified: Option<&str>) -> String {
    if let Some(l) = state
        .listeners
        .iter()
        .find(|l| !l.ip().is_unspecified() && !l.ip().is_loopback())
    {
        return l.ip().to_string();
    }
    if let Some(h) = verified.filter(|h| !is_loopback_name(h)) {
        return h.to_owned();
    }
    let wildcard = state.listeners.iter().find(|l| l.ip().is_unspecified());
    if let Some(l) = wildcard {
        if let Some(ip) = super::hosts::machine_address(l.is_ipv6()) {
            return ip.to_string();
        }
    }
    state
        .listeners
        .iter()
        .find(|l| !l.ip().is_unspecified())
        .map_or_else(|| "KMS-HOST".to_owned(), |l| l.ip().to_string())
}

/// `localhost` or a loopback address: names only this machine can use.
fn is_loopback_name(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The Products page rows for `skus`, with commands for `host`:`port`.
pub fn rows(catalog: &Catalog, skus: &[&Sku], host: &str, port: u16) -> Vec<ProductRow> {
    skus.iter()
        .map(|sku| {
            let fam = family(catalog, &sku.app_id, &sku.kms_id);
            let kms = catalog.kms_item_resolved(&sku.kms_id);
            let kms_name = kms.map_or_else(|| "(unknown)".to_owned(), |k| k.display_name.clone());
            let search = format!(
                "{} {} {} {}",
                sku.display_name,
                sku.gvlk.as_deref().unwrap_or(""),
                kms_name,
                family_name(fam)
            )
            .to_lowercase();
            ProductRow {
                name: sku.display_name.clone(),
                family: fam,
                family_name: family_name(fam),
                retail: sku.is_retail,
                preview: sku.is_preview,
                gvlk: sku.gvlk.clone(),
                min_count: kms.map_or(sku.ncount_policy, |k| k.ncount_policy),
                kms_name,
                protocol: sku.default_protocol,
                guide: guide(catalog, sku, host, port).ok(),
                search,
            }
        })
        .collect()
}

/// `skus` as the API gives them: the `rkms products --json` objects plus `family` and `guide`
/// (the client commands for `host`, when one is given and the product has a GVLK).
pub fn json(catalog: &Catalog, skus: &[&Sku], host: Option<&str>, port: u16) -> Vec<Value> {
    let Value::Array(items) = rkms_catalog::render::products_json(catalog, skus) else {
        return Vec::new();
    };
    items
        .into_iter()
        .zip(skus)
        .map(|(mut item, sku)| {
            item["family"] = Value::from(family(catalog, &sku.app_id, &sku.kms_id));
            item["guide"] = host
                .and_then(|h| guide(catalog, sku, h, port).ok())
                .map_or(Value::Null, Value::from);
            item
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names() {
        for h in [
            "localhost",
            "app.localhost",
            "127.0.0.1",
            "127.3.2.1",
            "::1",
        ] {
            assert!(is_loopback_name(h), "{h}");
        }
        for h in ["kms.lan", "192.0.2.2", "fd00::2", "localhost.example"] {
            assert!(!is_loopback_name(h), "{h}");
        }
    }
}
