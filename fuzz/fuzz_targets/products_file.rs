//! The products file reader on arbitrary text, as a whole catalog (`Catalog::from_json_str`)
//! and as a user extension of the built-in one (`extended_with`): neither panics, and every
//! catalog accepted is usable: each SKU, KMS item and application is found by its ID, and the
//! products table, its JSON and the search run over it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rkms_catalog::{render, Catalog};

fn check(catalog: &Catalog) {
    let skus: Vec<_> = catalog.skus().collect();
    for sku in &skus {
        assert_eq!(catalog.sku(&sku.id).map(|s| s.id), Some(sku.id));
        let _ = catalog.product_name(&sku.id, &sku.kms_id, &sku.app_id);
    }
    for item in catalog.kms_items() {
        assert!(catalog.kms_item(&item.id).is_some());
    }
    for app in catalog.applications() {
        assert!(catalog.application(&app.id).is_some());
    }
    let table = render::products_table(catalog, &skus);
    assert!(skus.is_empty() || !table.is_empty());
    let json = render::products_json(catalog, &skus);
    assert!(json.is_array() || json.is_object());
    let _ = catalog.search("windows");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(catalog) = Catalog::from_json_str(text) {
        check(&catalog);
    }
    if let Ok(catalog) = Catalog::builtin().extended_with(text) {
        check(&catalog);
    }
});
