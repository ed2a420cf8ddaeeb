//! `rkms products` and `rkms guide`: the catalog for people.

use rkms_catalog::render::{guide, products_json, products_table};

use super::{load_catalog, usage};
use crate::addr::{split_host_port, DEFAULT_PORT};
use crate::cli::{GuideArgs, ProductsArgs};

/// Prints the (filtered) product table or JSON.
pub fn products(args: ProductsArgs, file: Option<&std::path::Path>) -> u8 {
    let catalog = match load_catalog(file) {
        Ok(c) => c,
        Err(e) => return usage(&e),
    };
    let skus = catalog.search(args.search.as_deref().unwrap_or(""));
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&products_json(&catalog, &skus))
                .expect("JSON values serialise")
        );
        return 0;
    }
    if skus.is_empty() {
        let search = args.search.unwrap_or_default();
        match catalog.find_product(&search) {
            Err(rkms_catalog::FindError::NotFound { suggestions, .. })
                if !suggestions.is_empty() =>
            {
                eprintln!(
                    "no product matches '{search}'; closest: {}",
                    suggestions.join(", ")
                )
            }
            _ => eprintln!("no product matches '{search}'; `rkms products` lists them all"),
        }
        return 1;
    }
    crate::out!("{}", products_table(&catalog, &skus));
    0
}

/// Prints the client-side commands for one product.
pub fn guide_cmd(args: GuideArgs, file: Option<&std::path::Path>) -> u8 {
    let catalog = match load_catalog(file) {
        Ok(c) => c,
        Err(e) => return usage(&e),
    };
    let sku = match catalog.find_product(&args.product) {
        Ok(s) => s,
        Err(e) => return usage(&e.to_string()),
    };
    let host = args.host.unwrap_or_else(local_host_name);
    let (name, port) = match split_host_port(&host, DEFAULT_PORT) {
        Ok(hp) => hp,
        Err(e) => return usage(&format!("--host: {e}")),
    };
    match guide(&catalog, sku, &name, port) {
        Ok(text) => {
            crate::out!("{text}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// This machine's host name, as clients would most likely reach it.
fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "kms-host".into())
}
