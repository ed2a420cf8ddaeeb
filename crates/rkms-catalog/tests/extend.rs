//! `Catalog::extended_with`: merging user files into a catalog.

mod common;

use common::*;
use rkms_catalog::{Catalog, CatalogError, Section};
use serde_json::json;

const NEW_KMS: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const NEW_SKU: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const PRO_SKU: &str = "2de67392-b7a7-462a-b1ca-108dd189f588";

fn new_kms_item() -> serde_json::Value {
    json!({
        "id": NEW_KMS,
        "display_name": "Windows Test Product (Volume)",
        "app_id": WINDOWS_APP,
        "ncount_policy": 25,
        "default_protocol": 6,
        "is_retail": false,
        "is_preview": false,
        "epid_profile": "Windows",
        "note": "extra fields are ignored"
    })
}

fn new_sku() -> serde_json::Value {
    json!({
        "id": NEW_SKU,
        "display_name": "Windows Test Edition",
        "app_id": WINDOWS_APP,
        "kms_id": NEW_KMS,
        "gvlk": "ABCDE-12345-FGHIJ-67890-KLMNO",
        "is_retail": false,
        "is_preview": false,
        "default_protocol": 6,
        "ncount_policy": 25
    })
}

#[test]
fn adds_a_new_sku_and_kms_item() {
    let base = Catalog::builtin();
    let ext = json!({ "kms_items": [new_kms_item()], "sku_items": [new_sku()] });
    let c = base.extended_with(&ext.to_string()).unwrap();

    assert_eq!(c.skus().len(), base.skus().len() + 1);
    assert_eq!(c.kms_items().len(), base.kms_items().len() + 1);
    assert_eq!(c.applications().len(), base.applications().len());
    assert_eq!(c.lcids(), base.lcids());

    let sku = c.sku(&guid(NEW_SKU)).unwrap();
    assert_eq!(sku.display_name, "Windows Test Edition");
    assert_eq!(sku.gvlk.as_deref(), Some("ABCDE-12345-FGHIJ-67890-KLMNO"));
    assert_eq!(c.skus().last().unwrap().id, sku.id, "new entries come last");
    let kms = c.kms_item_resolved(&sku.kms_id).unwrap();
    assert_eq!(kms.display_name, "Windows Test Product (Volume)");
    assert_eq!(
        c.epid_profile_for(&kms.id, &guid(WINDOWS_APP)).name,
        "Windows"
    );
    assert_eq!(
        c.find_product("windows test edition").unwrap().id,
        guid(NEW_SKU)
    );
    assert_eq!(c.search("abcde-12345").len(), 1);

    // The base catalog is untouched.
    assert!(base.sku(&guid(NEW_SKU)).is_none());
    assert!(Catalog::builtin().kms_item(&guid(NEW_KMS)).is_none());
}

#[test]
fn replaces_an_existing_skus_name_in_place() {
    let base = Catalog::builtin();
    let mut pro = builtin_value()["sku_items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == PRO_SKU)
        .unwrap()
        .clone();
    pro["display_name"] = json!("Windows Pro (renamed)");
    // Same GUID, written in upper case: still the same entry.
    pro["id"] = json!(PRO_SKU.to_uppercase());
    let c = base
        .extended_with(&json!({ "sku_items": [pro] }).to_string())
        .unwrap();

    assert_eq!(c.skus().len(), base.skus().len());
    assert_eq!(
        c.sku(&guid(PRO_SKU)).unwrap().display_name,
        "Windows Pro (renamed)"
    );
    let pos = |cat: &Catalog| cat.skus().position(|s| s.id == guid(PRO_SKU)).unwrap();
    assert_eq!(pos(&c), pos(base), "a replaced entry keeps its place");
    assert_eq!(
        base.sku(&guid(PRO_SKU)).unwrap().display_name,
        "Windows 10/11 Pro"
    );
    assert_eq!(
        c.product_name(&guid(PRO_SKU), &guid(PRO_SKU), &guid(PRO_SKU)),
        "Windows Pro (renamed)"
    );
}

#[test]
fn replaces_a_profile_by_case_insensitive_name_and_merges_lcids_and_builds() {
    let base = Catalog::builtin();
    let mut profile = builtin_value()["epid_profiles"][5].clone();
    assert_eq!(profile["name"], "Office2019");
    profile["name"] = json!("OFFICE2019");
    profile["default_epid"] = json!("03612-00206-670-000000-03-1033-20348.0000-0012025");
    let ext = json!({
        "epid_profiles": [profile],
        "lcids": [1033, 9999],
        "host_builds": [{
            "build": 27000, "display_name": "Future", "platform_id": 3612,
            "release_date": "2027-01-01", "use_for_epid": false, "may_be_server": true,
            "uses_ndr64": true
        }]
    });
    let c = base.extended_with(&ext.to_string()).unwrap();
    assert_eq!(c.epid_profiles().len(), base.epid_profiles().len());
    let p = c.epid_profile("office2019").unwrap();
    assert_eq!(p.name, "OFFICE2019");
    assert_eq!(
        p.default_epid,
        "03612-00206-670-000000-03-1033-20348.0000-0012025"
    );
    assert_eq!(c.lcids().len(), base.lcids().len() + 1);
    assert_eq!(c.lcids().last(), Some(&9999));
    assert_eq!(c.host_builds().len(), base.host_builds().len() + 1);
    assert_eq!(c.host_builds().last().unwrap().build, 27000);
    assert_eq!(c.release_date(26201).to_string(), "2027-01-01");
}

#[test]
fn extension_may_reference_base_and_be_extended_again() {
    let base = Catalog::builtin();
    let first = base
        .extended_with(&json!({ "kms_items": [new_kms_item()] }).to_string())
        .unwrap();
    let second = first
        .extended_with(&json!({ "sku_items": [new_sku()] }).to_string())
        .unwrap();
    assert_eq!(second.sku(&guid(NEW_SKU)).unwrap().kms_id, guid(NEW_KMS));
    // Without the first step the SKU's KMS item is unknown.
    assert!(base
        .extended_with(&json!({ "sku_items": [new_sku()] }).to_string())
        .is_err());
}

#[test]
fn broken_extension_is_refused_with_its_own_index() {
    let base = Catalog::builtin();
    let mut bad = new_sku();
    bad["kms_id"] = json!("12345678-1234-1234-1234-123456789abc");
    let ext = json!({ "sku_items": [new_sku(), bad.clone()], "kms_items": [new_kms_item()] });
    // Duplicate inside the extension file.
    let err = base.extended_with(&ext.to_string()).unwrap_err();
    assert_entry(
        &err,
        Section::SkuItems,
        1,
        NEW_SKU,
        "duplicate id: already used by sku_items[0]",
    );

    // Unknown KMS item: index 0 of the extension, not the merged position.
    let ext = json!({ "sku_items": [bad] });
    let err = base.extended_with(&ext.to_string()).unwrap_err();
    assert_entry(
        &err,
        Section::SkuItems,
        0,
        NEW_SKU,
        "kms_id 12345678-1234-1234-1234-123456789abc is not a known KMS item",
    );

    // Malformed GVLK.
    let mut bad = new_sku();
    bad["gvlk"] = json!("ABCDE-12345");
    let ext = json!({ "kms_items": [new_kms_item()], "sku_items": [bad] });
    let err = base.extended_with(&ext.to_string()).unwrap_err();
    assert_entry(&err, Section::SkuItems, 0, NEW_SKU, "is not a product key");
}

#[test]
fn extension_breaking_a_base_entry_says_so() {
    // Turning the genuine Server 2025 item into an alias breaks the base alias pointing at it.
    let mut genuine = builtin_value()["kms_items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == "907f1f65-adcd-4a2e-95bc-4bf500bc6e58")
        .unwrap()
        .clone();
    genuine["alias_of"] = json!("b74263e4-0f92-46c6-bcf8-c11d5efe2959");
    let err = Catalog::builtin()
        .extended_with(&json!({ "kms_items": [genuine] }).to_string())
        .unwrap_err();
    let CatalogError::Entry {
        section,
        id,
        reason,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*section, Section::KmsItems);
    assert_eq!(id.as_deref(), Some("4b83307d-7788-50ff-8d1f-1861915bdb9d"));
    assert!(reason.contains("is itself an alias"), "{reason}");
    assert!(reason.contains("base catalog"), "{reason}");
}

#[test]
fn extension_documents_that_are_not_extensions() {
    let base = Catalog::builtin();
    let err = base.extended_with("{}").unwrap_err();
    assert!(matches!(err, CatalogError::Document { .. }), "{err}");
    assert!(err.to_string().contains("none of the sections"), "{err}");
    let err = base.extended_with(r#"{"sku_items": {}}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "section `sku_items`: must be an array, found an object"
    );
    let err = base.extended_with("{\"sku_items\": [").unwrap_err();
    assert!(
        matches!(err, CatalogError::Syntax { line: 1, .. }),
        "{err:?}"
    );
    let err = base.extended_with("[]").unwrap_err();
    assert!(matches!(err, CatalogError::Document { .. }), "{err}");
}

#[test]
fn full_builtin_as_extension_is_a_no_op() {
    let base = Catalog::builtin();
    let c = base
        .extended_with(&rkms_catalog::builtin_products_json())
        .unwrap();
    assert_eq!(c.skus().len(), base.skus().len());
    assert_eq!(
        c.csvlks().len(),
        base.csvlks().len() + 1,
        "the id-less CSVLK is appended"
    );
    assert!(c.skus().zip(base.skus()).all(|(a, b)| a == b));
    assert_eq!(c.lcids(), base.lcids());
}
