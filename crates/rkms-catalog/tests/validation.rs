//! Each load-time rule refuses a broken copy of the built-in file, naming section and entry.

mod common;

use common::*;
use rkms_catalog::{Catalog, CatalogError, Section};
use serde_json::{json, Value};

const UNKNOWN: &str = "12345678-1234-1234-1234-123456789abc";

/// The `id` (or other key field) of entry `i` of `key`, as written.
fn id_of(key: &str, i: usize, field: &str) -> String {
    let v = builtin_value();
    match &section(&v, key)[i][field] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn index_of_id(key: &str, id: &str) -> usize {
    let v = builtin_value();
    section(&v, key)
        .iter()
        .position(|e| e["id"].as_str() == Some(id))
        .unwrap()
}

#[test]
fn builtin_json_loads_unchanged() {
    let v = builtin_value();
    let c = Catalog::from_json_str(&v.to_string()).unwrap();
    assert_eq!(c.skus().len(), section(&v, "sku_items").len());
}

#[test]
fn sku_with_unknown_kms_id() {
    let err = broken(|v| v["sku_items"][12]["kms_id"] = json!(UNKNOWN));
    assert_entry(
        &err,
        Section::SkuItems,
        12,
        &id_of("sku_items", 12, "id"),
        &format!("kms_id {UNKNOWN} is not a known KMS item"),
    );
}

#[test]
fn sku_with_unknown_app_id() {
    let err = broken(|v| v["sku_items"][5]["app_id"] = json!(UNKNOWN));
    assert_entry(
        &err,
        Section::SkuItems,
        5,
        &id_of("sku_items", 5, "id"),
        &format!("app_id {UNKNOWN} is not a known application"),
    );
}

#[test]
fn kms_item_with_unknown_app_id() {
    let err = broken(|v| v["kms_items"][3]["app_id"] = json!(UNKNOWN));
    assert_entry(
        &err,
        Section::KmsItems,
        3,
        &id_of("kms_items", 3, "id"),
        "is not a known application",
    );
}

#[test]
fn kms_item_with_unknown_epid_profile() {
    let err = broken(|v| v["kms_items"][7]["epid_profile"] = json!("Office2099"));
    assert_entry(
        &err,
        Section::KmsItems,
        7,
        &id_of("kms_items", 7, "id"),
        "epid_profile \"Office2099\" is not a known ePID profile",
    );
}

#[test]
fn epid_profile_reference_is_case_insensitive() {
    let mut v = builtin_value();
    v["kms_items"][7]["epid_profile"] = json!("WINDOWS");
    v["applications"][0]["default_epid_profile"] = json!("windows");
    let c = Catalog::from_json_str(&v.to_string()).unwrap();
    let item = c.kms_items().nth(7).unwrap();
    assert_eq!(c.epid_profile(&item.epid_profile).unwrap().name, "Windows");
}

#[test]
fn alias_to_unknown_kms_item() {
    let i = index_of_id("kms_items", "4b83307d-7788-50ff-8d1f-1861915bdb9d");
    let err = broken(|v| v["kms_items"][i]["alias_of"] = json!(UNKNOWN));
    assert_entry(
        &err,
        Section::KmsItems,
        i,
        "4b83307d-7788-50ff-8d1f-1861915bdb9d",
        &format!("alias_of {UNKNOWN} is not a known KMS item"),
    );
}

#[test]
fn alias_to_an_alias() {
    let i = index_of_id("kms_items", "4b83307d-7788-50ff-8d1f-1861915bdb9d");
    let err =
        broken(|v| v["kms_items"][i]["alias_of"] = json!("1b4db7eb-4057-5ddf-91e0-36dec72071f5"));
    assert_entry(
        &err,
        Section::KmsItems,
        i,
        "4b83307d-7788-50ff-8d1f-1861915bdb9d",
        "alias_of 1b4db7eb-4057-5ddf-91e0-36dec72071f5 is itself an alias",
    );
}

#[test]
fn alias_to_itself() {
    let i = index_of_id("kms_items", "1b4db7eb-4057-5ddf-91e0-36dec72071f5");
    let err =
        broken(|v| v["kms_items"][i]["alias_of"] = json!("1b4db7eb-4057-5ddf-91e0-36dec72071f5"));
    assert_entry(
        &err,
        Section::KmsItems,
        i,
        "1b4db7eb-4057-5ddf-91e0-36dec72071f5",
        "is itself an alias",
    );
}

#[test]
fn application_with_unknown_default_profile() {
    let err = broken(|v| v["applications"][2]["default_epid_profile"] = json!("Nope"));
    assert_entry(
        &err,
        Section::Applications,
        2,
        "0ff1ce15-a989-479d-af46-f275c6370663",
        "default_epid_profile \"Nope\" is not a known ePID profile",
    );
}

#[test]
fn csvlk_with_unknown_epid_profile() {
    let err = broken(|v| v["csvlks"][0]["epid_profile"] = json!("Nope"));
    assert_entry(
        &err,
        Section::Csvlks,
        0,
        &id_of("csvlks", 0, "id"),
        "epid_profile \"Nope\" is not a known ePID profile",
    );
}

#[test]
fn malformed_gvlks() {
    for bad in [
        "w269n-wfgwx-yvc9b-4j6c9-t83gx",
        "W269N-WFGWX-YVC9B-4J6C9",
        "W269NWFGWXYVC9B4J6C9T83GX",
        "W269N-WFGWX-YVC9B-4J6C9-T83G!",
        "W269N-WFGWX-YVC9B-4J6C9-T83GX-",
    ] {
        let err = broken(|v| v["sku_items"][20]["gvlk"] = json!(bad));
        assert_entry(
            &err,
            Section::SkuItems,
            20,
            &id_of("sku_items", 20, "id"),
            &format!("gvlk {bad:?} is not a product key"),
        );
    }
}

#[test]
fn empty_or_null_gvlk_means_unknown() {
    let mut v = builtin_value();
    v["sku_items"][20]["gvlk"] = json!("");
    v["sku_items"][21]["gvlk"] = Value::Null;
    v["sku_items"][22].as_object_mut().unwrap().remove("gvlk");
    let c = Catalog::from_json_str(&v.to_string()).unwrap();
    let skus: Vec<_> = c.skus().skip(20).take(3).collect();
    assert!(skus.iter().all(|s| s.gvlk.is_none()));
}

#[test]
fn duplicate_sku_id_compared_as_guid() {
    // Same GUID written differently: upper case with braces.
    let first = id_of("sku_items", 3, "id");
    let err = broken(|v| {
        v["sku_items"][40]["id"] = json!(format!("{{{}}}", first.to_uppercase()));
    });
    let CatalogError::Entry {
        section,
        index,
        reason,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((*section, *index), (Section::SkuItems, 40));
    assert!(
        reason.contains("duplicate id: already used by sku_items[3]"),
        "{reason}"
    );
}

#[test]
fn duplicate_ids_in_other_sections() {
    for (key, section, a, b) in [
        ("applications", Section::Applications, 0, 2),
        ("kms_items", Section::KmsItems, 1, 30),
        ("csvlks", Section::Csvlks, 2, 10),
    ] {
        let id = id_of(key, a, "id");
        let err = broken(|v| v[key][b]["id"] = json!(id));
        assert_entry(
            &err,
            section,
            b,
            &id,
            &format!("duplicate id: already used by {key}[{a}]"),
        );
    }
}

#[test]
fn duplicate_host_build() {
    let err = broken(|v| v["host_builds"][5]["build"] = json!(20348));
    assert_entry(&err, Section::HostBuilds, 24, "20348", "duplicate build");
}

#[test]
fn duplicate_profile_name_case_insensitive() {
    let err = broken(|v| v["epid_profiles"][3]["name"] = json!("office2010"));
    assert_entry(
        &err,
        Section::EpidProfiles,
        3,
        "office2010",
        "duplicate name (compared case-insensitively): already used by epid_profiles[1]",
    );
}

#[test]
fn duplicate_lcid() {
    let err = broken(|v| v["lcids"][7] = json!(1033));
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            CatalogError::Entry {
                section: Section::Lcids,
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("duplicate LCID"), "{msg}");
}

#[test]
fn bad_dates() {
    let err = broken(|v| v["epid_profiles"][1]["release_date"] = json!("2010-02-30"));
    assert_entry(
        &err,
        Section::EpidProfiles,
        1,
        "Office2010",
        "release_date \"2010-02-30\" is not a valid YYYY-MM-DD date",
    );
    let err = broken(|v| v["host_builds"][0]["release_date"] = json!("1995-5-30"));
    assert_entry(
        &err,
        Section::HostBuilds,
        0,
        "1057",
        "is not a valid YYYY-MM-DD date",
    );
    let err = broken(|v| v["csvlks"][4]["release_date"] = json!("30.11.2006"));
    assert_entry(
        &err,
        Section::Csvlks,
        4,
        &id_of("csvlks", 4, "id"),
        "is not a valid YYYY-MM-DD date",
    );
}

#[test]
fn key_range_reversed() {
    let err = broken(|v| {
        v["epid_profiles"][2]["min_key_id"] = json!(300_000_000);
        v["epid_profiles"][2]["max_key_id"] = json!(200_000_000);
    });
    assert_entry(
        &err,
        Section::EpidProfiles,
        2,
        "Office2013",
        "min_key_id 300000000 is greater than max_key_id 200000000",
    );
    let err = broken(|v| v["csvlks"][1]["min_key_id"] = json!(4_000_000_000u32));
    assert_entry(
        &err,
        Section::Csvlks,
        1,
        &id_of("csvlks", 1, "id"),
        "is greater than max_key_id",
    );
}

#[test]
fn unknown_valid_host_build() {
    let err = broken(|v| v["epid_profiles"][4]["valid_host_builds"] = json!([17763, 12345]));
    assert_entry(
        &err,
        Section::EpidProfiles,
        4,
        &id_of("epid_profiles", 4, "name"),
        "valid_host_builds entry 12345 is not a known host build",
    );
    let err = broken(|v| v["csvlks"][6]["valid_host_builds"] = json!([54321]));
    assert_entry(
        &err,
        Section::Csvlks,
        6,
        &id_of("csvlks", 6, "id"),
        "valid_host_builds entry 54321 is not a known host build",
    );
}

#[test]
fn malformed_guid() {
    let err = broken(|v| v["sku_items"][0]["kms_id"] = json!("not-a-guid"));
    assert_entry(
        &err,
        Section::SkuItems,
        0,
        "7b51a46c-0c04-4e8f-9af4-8496cca90d5e",
        "kms_id \"not-a-guid\" is not a GUID",
    );
}

#[test]
fn missing_or_mistyped_field() {
    let err = broken(|v| {
        v["sku_items"][9].as_object_mut().unwrap().remove("kms_id");
    });
    assert_entry(
        &err,
        Section::SkuItems,
        9,
        &id_of("sku_items", 9, "id"),
        "missing field `kms_id`",
    );
    let err = broken(|v| v["host_builds"][3]["platform_id"] = json!("3612"));
    assert_entry(&err, Section::HostBuilds, 3, "2600", "invalid type");
    let err = broken(|v| v["lcids"][2] = json!(-1));
    assert!(err.to_string().starts_with("lcids[2]: "), "{err}");
}

#[test]
fn missing_section_and_wrong_section_type() {
    for key in [
        "applications",
        "epid_profiles",
        "csvlks",
        "kms_items",
        "sku_items",
        "host_builds",
        "lcids",
    ] {
        let err = broken(|v| {
            v.as_object_mut().unwrap().remove(key);
        });
        assert_eq!(err.to_string(), format!("section `{key}` is missing"));
        assert_eq!(err.section().map(|s| s.key()), Some(key));
    }
    let err = broken(|v| v["kms_items"] = json!({}));
    assert_eq!(
        err.to_string(),
        "section `kms_items`: must be an array, found an object"
    );
}

#[test]
fn empty_host_builds_and_lcids() {
    let err = broken(|v| {
        v["host_builds"] = json!([]);
        v["epid_profiles"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .for_each(|p| p["valid_host_builds"] = json!([]));
    });
    assert!(
        matches!(
            err,
            CatalogError::Section {
                section: Section::HostBuilds,
                ..
            }
        ),
        "{err}"
    );
    let err = broken(|v| v["lcids"] = json!([]));
    assert!(
        matches!(
            err,
            CatalogError::Section {
                section: Section::Lcids,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn windows_profile_required() {
    let err = broken(|v| v["epid_profiles"][0]["name"] = json!("Win"));
    assert!(
        matches!(
            err,
            CatalogError::Section {
                section: Section::EpidProfiles,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("no profile named `Windows`"),
        "{err}"
    );
}

#[test]
fn syntax_error_has_line_and_column() {
    let mut text = builtin_value().to_string();
    text.truncate(text.len() / 2);
    let err = Catalog::from_json_str(&text).unwrap_err();
    assert!(
        matches!(err, CatalogError::Syntax { line: 1, column, .. } if column > 1000),
        "{err:?}"
    );
    let err = Catalog::from_json_str("{\n\"lcids\": [1,\n2,,]}").unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::Syntax {
                line: 3,
                column: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .starts_with("invalid JSON at line 3, column 3: "));
}

#[test]
fn wrong_format_refused() {
    let err = broken(|v| v["format"] = json!("something-else"));
    assert!(matches!(err, CatalogError::Document { .. }), "{err}");
    assert!(err.to_string().contains("kms-products"), "{err}");
    let err = broken(|v| v["format_version"] = json!(2));
    assert!(err.to_string().contains("format_version"), "{err}");
}

#[test]
fn unknown_fields_are_ignored() {
    let mut v = builtin_value();
    v["sku_items"][0]["something_new"] = json!({"nested": [1, 2]});
    v["totally_new_section"] = json!([1, 2, 3]);
    let c = Catalog::from_json_str(&v.to_string()).unwrap();
    assert_eq!(
        c.skus().next().unwrap().display_name,
        "Windows 10 Enterprise 2015 LTSB"
    );
}
