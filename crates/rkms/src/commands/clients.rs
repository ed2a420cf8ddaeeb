//! `rkms clients`: list, prune and import client records.

use std::path::Path;

use rkms_catalog::Catalog;
use rkms_store::{
    copy_all, describe_spec, expires_at, import_pykms, open_store, open_store_read_only,
    ClientFilter, ClientRecord, ClientSort, ClientState, ClientStore, HealthThresholds, StoreError,
    StoreKind,
};
use serde_json::json;

use super::serve::default_db_path;
use super::{load_catalog, now_unix, usage};
use crate::cli::{ClientsArgs, ClientsCommand};
use crate::clock::iso8601;
use crate::escape::{canonical_address_text, csv_cell, terminal};

fn db_spec(args: &ClientsArgs) -> Result<String, String> {
    match &args.db {
        Some(p) if p == rkms_store::NO_DATABASE => Err("--db none keeps no records to read".into()),
        Some(p) => Ok(p.clone()),
        None => Ok(default_db_path()?.to_string_lossy().into_owned()),
    }
}

/// Opens the database: read-only for listing, writable (and migrated) for changes. A SQLite
/// file must exist already (a typo must not create an empty database).
fn open(spec: &str, write: bool) -> Result<Box<dyn ClientStore>, String> {
    let shown = describe_spec(spec);
    // A store this build cannot open is refused first, by name.
    StoreKind::parse(spec)
        .check_built()
        .map_err(|e| format!("--db {shown}: {e}"))?;
    if let StoreKind::Sqlite(path) = StoreKind::parse(spec) {
        if !path.exists() {
            return Err(format!(
                "no client database at {} (has `rkms serve` run with this --db?)",
                path.display()
            ));
        }
    }
    let store = if write {
        open_store(spec)
    } else {
        open_store_read_only(spec)
    };
    store.map_err(|e| match e {
        StoreError::NeedsMigration { .. } => format!("{e}; start `rkms serve` once to upgrade it"),
        e => format!("{shown}: {e}"),
    })
}

/// Runs `rkms clients`; returns the exit code.
pub fn run(args: ClientsArgs, products: Option<&Path>) -> u8 {
    let catalog = match load_catalog(products) {
        Ok(c) => c,
        Err(e) => return usage(&e),
    };
    let path = match db_spec(&args) {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    match &args.command {
        Some(ClientsCommand::Prune {
            older_than,
            workstation,
        }) => {
            let store = match open(&path, true) {
                Ok(s) => s,
                Err(e) => return fail(&e),
            };
            if let Some(name) = workstation {
                if name.trim().is_empty() {
                    return usage("--workstation needs a name");
                }
                match store.prune_workstation(name) {
                    Ok((records, events)) => crate::outln!(
                        "pruned {} and {} of workstation {name}",
                        crate::interval::count(records, "client record"),
                        crate::interval::count(events, "history event")
                    ),
                    Err(e) => return fail(&e.to_string()),
                }
            }
            if let Some(older_than) = older_than {
                let cutoff = now_unix() - i64::from(*older_than) * 60;
                match store.prune_older_than(cutoff) {
                    Ok(n) => {
                        crate::outln!(
                            "pruned {} not seen for {}",
                            crate::interval::count(n, "client record"),
                            crate::interval::describe_minutes(*older_than)
                        )
                    }
                    Err(e) => return fail(&e.to_string()),
                }
            }
            0
        }
        Some(ClientsCommand::Import { path: source }) => {
            // Importing may create the database.
            let store = open_store(&path).map_err(|e| format!("{}: {e}", describe_spec(&path)));
            let store = match store {
                Ok(s) => s,
                Err(e) => return fail(&e),
            };
            let resolve = |name: &str| {
                catalog
                    .find_product(name)
                    .ok()
                    .map(|s| (s.app_id, s.id, s.kms_id))
            };
            match import_pykms(store.as_ref(), source, &resolve) {
                Ok(report) => {
                    crate::outln!(
                        "imported {} from {}",
                        crate::interval::count(report.imported, "client"),
                        source.display()
                    );
                    for (cmid, name) in &report.unmapped {
                        crate::outln!(
                            "not imported: {cmid}: unknown product \"{}\"",
                            terminal(name)
                        );
                    }
                    for why in &report.invalid {
                        crate::outln!("not imported: {}", terminal(why));
                    }
                    if report.impossible_times > 0 {
                        crate::outln!(
                            "not imported: {} clients with an impossible lastRequestTime \
                             (before 2006 or in the future)",
                            report.impossible_times
                        );
                    }
                    0
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        Some(ClientsCommand::Migrate { from, to }) => {
            let source = match open(from, false) {
                Ok(s) => s,
                Err(e) => return fail(&format!("--from {e}")),
            };
            let target = match open_store(to) {
                Ok(s) => s,
                Err(e) => return fail(&format!("--to {}: {e}", describe_spec(to))),
            };
            match copy_all(source.as_ref(), target.as_ref()) {
                Ok(r) => {
                    crate::outln!(
                        "copied {} client records and {} history events from {} to {}",
                        r.records,
                        r.events,
                        describe_spec(from),
                        describe_spec(to)
                    );
                    0
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        None => list(&args, &catalog, &path),
    }
}

/// Records read at a time when filtering by product name.
const PRODUCT_PAGE: u64 = 5_000;

fn fail(msg: &str) -> u8 {
    eprintln!("error: {msg}");
    1
}

fn product_name<'a>(catalog: &'a Catalog, r: &ClientRecord) -> std::borrow::Cow<'a, str> {
    catalog.product_name(&r.sku_id, &r.kms_id, &r.application_id)
}

fn list(args: &ClientsArgs, catalog: &Catalog, path: &str) -> u8 {
    let store = match open(path, false) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let now = now_unix();
    let health = HealthThresholds::new(now, args.renewal_interval);
    let state = args.state.as_deref().and_then(ClientState::parse);
    let filter = ClientFilter {
        cmid: args.cmid,
        since: args.since.map(|m| now.saturating_sub(i64::from(m) * 60)),
        limit: args.limit,
        state: state.map(|s| (s, health)),
        // A list of one state: soonest to run out first.
        sort: if state.is_some() {
            ClientSort::Expiry
        } else {
            ClientSort::LastSeen
        },
        ascending: state.is_some(),
        ..Default::default()
    };
    let records = match &args.product {
        None => store.list(&filter),
        // The product filter works on names (the catalog's): read page by page until enough.
        Some(p) => {
            let mut out = Vec::new();
            let want = args.limit.unwrap_or(u64::MAX);
            let mut offset = 0;
            loop {
                let page = match store.list(&ClientFilter {
                    limit: Some(PRODUCT_PAGE),
                    offset: Some(offset),
                    ..filter.clone()
                }) {
                    Ok(page) => page,
                    Err(e) => return fail(&e.to_string()),
                };
                let done = (page.len() as u64) < PRODUCT_PAGE;
                offset += PRODUCT_PAGE;
                out.extend(
                    page.into_iter()
                        .filter(|r| rkms_catalog::name_matches(&product_name(catalog, r), p)),
                );
                if done || out.len() as u64 >= want {
                    break;
                }
            }
            out.truncate(usize::try_from(want).unwrap_or(usize::MAX));
            Ok(out)
        }
    };
    let mut records = match records {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    for r in &mut records {
        if let std::borrow::Cow::Owned(a) = canonical_address_text(&r.last_address) {
            r.last_address = a;
        }
    }
    if args.json {
        let items: Vec<_> = records
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).expect("records serialise");
                v["product"] = json!(product_name(catalog, r));
                v["state"] = json!(health.state(r).as_str());
                v["expires"] = json!(r.last_activated.map(|t| iso8601(expires_at(t))));
                v
            })
            .collect();
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&items).expect("JSON values serialise")
        );
        return 0;
    }
    if args.csv {
        crate::outln!("cmid,application_id,sku_id,kms_id,product,workstation,license_status,is_vm,protocol,first_seen,last_seen,requests,last_address,last_epid,last_hresult,state,last_activated,expires");
        for r in &records {
            let fields = [
                r.cmid.to_string(),
                r.application_id.to_string(),
                r.sku_id.to_string(),
                r.kms_id.to_string(),
                product_name(catalog, r).into_owned(),
                r.workstation.clone(),
                r.license_status.to_string(),
                r.is_vm.to_string(),
                r.protocol.clone(),
                iso8601(r.first_seen),
                iso8601(r.last_seen),
                r.requests.to_string(),
                r.last_address.clone(),
                r.last_epid.clone(),
                format!("0x{:08X}", r.last_hresult),
                health.state(r).as_str().to_owned(),
                r.last_activated.map(iso8601).unwrap_or_default(),
                r.last_activated
                    .map(|t| iso8601(expires_at(t)))
                    .unwrap_or_default(),
            ];
            crate::outln!(
                "{}",
                fields
                    .iter()
                    .map(|f| csv_cell(f))
                    .collect::<Vec<_>>()
                    .join(",")
            );
        }
        return 0;
    }
    let header = [
        "WORKSTATION",
        "PRODUCT",
        "CMID",
        "LAST SEEN",
        "REQUESTS",
        "ADDRESS",
        "PROTOCOL",
        "RESULT",
        "HEALTH",
        "EXPIRES",
    ];
    let rows: Vec<[String; 10]> = records
        .iter()
        .map(|r| {
            [
                terminal(&r.workstation).into_owned(),
                terminal(&product_name(catalog, r)).into_owned(),
                r.cmid.to_string(),
                age(now.saturating_sub(r.last_seen)),
                r.requests.to_string(),
                terminal(&r.last_address).into_owned(),
                terminal(&r.protocol).into_owned(),
                if r.last_hresult == 0 {
                    "activated".into()
                } else {
                    format!("0x{:08X}", r.last_hresult)
                },
                health.state(r).as_str().to_owned(),
                r.last_activated
                    .map_or_else(|| "never activated".into(), |t| expiry(now, t)),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    crate::outln!("{}", line(header.iter().map(|h| h.to_string()).collect()));
    crate::outln!("{}", line(widths.iter().map(|w| "-".repeat(*w)).collect()));
    for row in rows {
        crate::outln!("{}", line(row.to_vec()));
    }
    crate::outln!("{}", crate::interval::count(records.len() as u64, "client"));
    0
}

/// When an activation made at `activated` runs out: "2026-05-01 (in 12d)", "… (3d ago)".
fn expiry(now: i64, activated: i64) -> String {
    let at = expires_at(activated);
    let date = iso8601(at).get(..10).unwrap_or_default().to_owned();
    let days = at.saturating_sub(now).div_euclid(86_400);
    if days >= 0 {
        format!("{date} (in {days}d)")
    } else {
        format!("{date} ({}d ago)", -days)
    }
}

/// "3m ago", "5h ago", "2d ago".
fn age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86_399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}
