//! The embedded catalog: it loads, and matches products.json entry by entry.

mod common;

use std::collections::HashSet;

use common::*;
use rkms_catalog::{is_product_key_format, Catalog};
use serde_json::Value;
use time::macros::{date, format_description};
use time::Date;
use uuid::Uuid;

fn cat() -> &'static Catalog {
    Catalog::builtin()
}

#[test]
fn builtin_is_parsed_once() {
    assert!(std::ptr::eq(Catalog::builtin(), Catalog::builtin()));
}

#[test]
fn builtin_shared_is_the_builtin_copy_not_a_clone() {
    let shared = Catalog::builtin_shared();
    assert!(std::ptr::eq(&*shared, Catalog::builtin()));
    assert!(std::ptr::eq(&*shared, &*Catalog::builtin_shared()));
}

#[test]
fn counts_equal_the_file() {
    let v = builtin_value();
    let c = cat();
    let count = |k: &str| section(&v, k).len();
    assert_eq!(c.applications().len(), count("applications"));
    assert_eq!(c.epid_profiles().len(), count("epid_profiles"));
    assert_eq!(c.csvlks().len(), count("csvlks"));
    assert_eq!(c.kms_items().len(), count("kms_items"));
    assert_eq!(c.skus().len(), count("sku_items"));
    assert_eq!(c.host_builds().len(), count("host_builds"));
    assert_eq!(c.lcids().len(), count("lcids"));
    // The counts the spec README documents.
    assert_eq!(
        [
            c.applications().len(),
            c.epid_profiles().len(),
            c.csvlks().len(),
            c.kms_items().len(),
            c.skus().len(),
            c.host_builds().len(),
            c.lcids().len()
        ],
        [3, 8, 46, 38, 262, 31, 158]
    );
}

#[test]
fn skus_match_the_file_entry_by_entry() {
    let v = builtin_value();
    let raw = section(&v, "sku_items");
    for (i, (sku, r)) in cat().skus().zip(raw).enumerate() {
        assert_eq!(sku.id, guid(r["id"].as_str().unwrap()), "sku_items[{i}]");
        assert_eq!(sku.display_name, r["display_name"].as_str().unwrap());
        assert_eq!(sku.app_id, guid(r["app_id"].as_str().unwrap()));
        assert_eq!(sku.kms_id, guid(r["kms_id"].as_str().unwrap()));
        assert_eq!(
            sku.gvlk.as_deref(),
            r["gvlk"].as_str().filter(|g| !g.is_empty())
        );
        assert_eq!(sku.is_retail, r["is_retail"].as_bool().unwrap());
        assert_eq!(sku.is_preview, r["is_preview"].as_bool().unwrap());
        assert_eq!(
            u64::from(sku.default_protocol),
            r["default_protocol"].as_u64().unwrap()
        );
        assert_eq!(
            u64::from(sku.ncount_policy),
            r["ncount_policy"].as_u64().unwrap()
        );
        assert_eq!(cat().sku(&sku.id), Some(sku));
    }
}

#[test]
fn every_sku_resolves_to_a_kms_item_and_an_application() {
    let c = cat();
    for sku in c.skus() {
        let kms = c
            .kms_item(&sku.kms_id)
            .unwrap_or_else(|| panic!("{}: KMS item {}", sku.display_name, sku.kms_id));
        assert!(!kms.is_alias(), "{} points at an alias", sku.display_name);
        let app = c
            .application(&sku.app_id)
            .unwrap_or_else(|| panic!("{}: application {}", sku.display_name, sku.app_id));
        assert_eq!(kms.app_id, app.id, "{}", sku.display_name);
    }
}

#[test]
fn every_kms_item_resolves_to_an_application_and_an_epid_profile() {
    let c = cat();
    let v = builtin_value();
    for (item, r) in c.kms_items().zip(section(&v, "kms_items")) {
        assert_eq!(item.id, guid(r["id"].as_str().unwrap()));
        assert_eq!(item.epid_profile, r["epid_profile"].as_str().unwrap());
        assert!(
            c.application(&item.app_id).is_some(),
            "{}",
            item.display_name
        );
        let profile = c
            .epid_profile(&item.epid_profile)
            .unwrap_or_else(|| panic!("{}: profile {}", item.display_name, item.epid_profile));
        assert_eq!(profile.name, item.epid_profile);
        assert_eq!(c.kms_item(&item.id), Some(item));
    }
}

#[test]
fn applications_resolve_to_their_default_profiles() {
    let c = cat();
    for app in c.applications() {
        assert!(
            c.epid_profile(&app.default_epid_profile).is_some(),
            "{}",
            app.name
        );
    }
    let office = c.application(&guid(OFFICE2013_APP)).unwrap();
    assert_eq!(office.name, "Office 2013+");
    assert_eq!(office.default_epid_profile, "Office2019");
    assert_eq!(office.vlmcsd_client_list_size, 10);
    let windows = c.application(&guid(WINDOWS_APP)).unwrap();
    assert_eq!(windows.vlmcsd_client_list_size, 50);
}

#[test]
fn every_present_gvlk_has_the_five_by_five_form() {
    let v = builtin_value();
    let raw_keys: Vec<&str> = section(&v, "sku_items")
        .iter()
        .filter_map(|s| s["gvlk"].as_str())
        .filter(|g| !g.is_empty())
        .collect();
    let shape = |g: &str| {
        let groups: Vec<&str> = g.split('-').collect();
        groups.len() == 5
            && groups.iter().all(|p| {
                p.len() == 5
                    && p.bytes()
                        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
            })
    };
    for g in &raw_keys {
        assert!(shape(g), "{g}");
        assert!(is_product_key_format(g), "{g}");
    }
    let known: Vec<&str> = cat().skus().filter_map(|s| s.gvlk.as_deref()).collect();
    assert_eq!(known, raw_keys);
    assert_eq!(known.len(), 261, "the README says 261 GVLKs are known");
}

#[test]
fn no_duplicate_guids_in_any_section() {
    let v = builtin_value();
    for key in ["applications", "csvlks", "kms_items", "sku_items"] {
        let ids: Vec<Uuid> = section(&v, key)
            .iter()
            .filter_map(|e| e["id"].as_str())
            .map(guid)
            .collect();
        let unique: HashSet<&Uuid> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "duplicate id in {key}");
    }
    let builds: HashSet<u32> = cat().host_builds().map(|h| h.build).collect();
    assert_eq!(builds.len(), cat().host_builds().len());
    let names: HashSet<String> = cat()
        .epid_profiles()
        .map(|p| p.name.to_lowercase())
        .collect();
    assert_eq!(names.len(), cat().epid_profiles().len());
}

/// Every string under a key ending in `date`, anywhere in the file.
fn date_strings<'a>(v: &'a Value, key: &str, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if let (true, Some(s)) = (k.ends_with("date"), x.as_str()) {
                    out.push((format!("{key}.{k}"), s));
                }
                date_strings(x, &format!("{key}.{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                date_strings(x, &format!("{key}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_date_parses() {
    let v = builtin_value();
    let mut dates = Vec::new();
    date_strings(&v, "", &mut dates);
    assert!(dates.len() > 100, "found only {} dates", dates.len());
    let fmt = format_description!("[year]-[month]-[day]");
    for (place, s) in &dates {
        Date::parse(s, &fmt).unwrap_or_else(|e| panic!("{place}: {s}: {e}"));
    }
    // The typed records carry the same dates.
    for (p, r) in cat().epid_profiles().zip(section(&v, "epid_profiles")) {
        let want = Date::parse(r["release_date"].as_str().unwrap(), &fmt).unwrap();
        assert_eq!(p.release_date, want, "{}", p.name);
    }
    for (c, r) in cat().csvlks().zip(section(&v, "csvlks")) {
        let want = r["release_date"]
            .as_str()
            .map(|s| Date::parse(s, &fmt).unwrap());
        assert_eq!(c.release_date, want, "{}", c.display_name);
    }
    for h in cat().host_builds() {
        let r = section(&v, "host_builds")
            .iter()
            .find(|r| r["build"].as_u64() == Some(u64::from(h.build)))
            .unwrap();
        let want = Date::parse(r["release_date"].as_str().unwrap(), &fmt).unwrap();
        assert_eq!(h.release_date, want, "build {}", h.build);
    }
}

#[test]
fn key_ranges_are_ordered() {
    for p in cat().epid_profiles() {
        assert!(p.min_key_id <= p.max_key_id, "{}", p.name);
    }
    for c in cat().csvlks() {
        if let (Some(lo), Some(hi)) = (c.min_key_id, c.max_key_id) {
            assert!(lo <= hi, "{}", c.display_name);
        }
    }
}

#[test]
fn valid_host_builds_are_known() {
    let c = cat();
    for p in c.epid_profiles() {
        for b in &p.valid_host_builds {
            assert!(c.host_build(*b).is_some(), "{}: {b}", p.name);
        }
    }
    for k in c.csvlks() {
        for b in &k.valid_host_builds {
            assert!(c.host_build(*b).is_some(), "{}: {b}", k.display_name);
        }
    }
    assert_eq!(
        c.epid_profile("Windows").unwrap().valid_host_builds,
        [17763, 20348, 26100]
    );
}

#[test]
fn the_two_aliases_resolve_to_the_genuine_ids() {
    let c = cat();
    let aliases: Vec<_> = c.kms_items().filter(|k| k.is_alias()).collect();
    assert_eq!(aliases.len(), 2);
    for (alias, genuine) in [
        (
            "4b83307d-7788-50ff-8d1f-1861915bdb9d",
            "907f1f65-adcd-4a2e-95bc-4bf500bc6e58",
        ),
        (
            "1b4db7eb-4057-5ddf-91e0-36dec72071f5",
            "a8973cb5-bf03-0a4c-9cef-703099645ab3",
        ),
    ] {
        let raw = c.kms_item(&guid(alias)).unwrap();
        assert_eq!(raw.id, guid(alias));
        assert_eq!(raw.alias_of, Some(guid(genuine)));
        let resolved = c.kms_item_resolved(&guid(alias)).unwrap();
        assert_eq!(resolved.id, guid(genuine));
        assert!(!resolved.is_alias());
        assert_eq!(resolved.epid_profile, raw.epid_profile);
        // A genuine item resolves to itself.
        assert_eq!(
            c.kms_item_resolved(&guid(genuine)).unwrap().id,
            guid(genuine)
        );
    }
    assert!(c.kms_item_resolved(&Uuid::nil()).is_none());
}

#[test]
fn csvlk_with_unknown_id_is_kept() {
    let c = cat();
    let missing: Vec<_> = c.csvlks().filter(|k| k.id.is_none()).collect();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].display_name, "Office 2013 VL [Pre-Release]");
    let main = c
        .csvlk(&guid("84e331f6-4279-48c4-ab10-b75139181351"))
        .unwrap();
    assert_eq!(main.group_id, Some(4919));
    assert_eq!(main.activates_kms_ids.len(), 22);
}

#[test]
fn profiles_match_the_spec_table() {
    let c = cat();
    let w = c.epid_profile("windows").unwrap();
    assert_eq!(w.name, "Windows");
    assert_eq!(w.group_id, 4919);
    assert_eq!((w.min_key_id, w.max_key_id), (0, 20_019_999));
    assert_eq!(w.release_date, date!(2024 - 11 - 01));
    assert_eq!(
        w.default_epid,
        "03612-04919-018-914043-03-1033-20348.0000-1162026"
    );
    let o = c.epid_profile("OFFICE2024").unwrap();
    assert_eq!(o.name, "Office2024");
    assert_eq!((o.min_key_id, o.max_key_id), (591_000_000, 610_999_999));
    assert!(c.epid_profile("Office2099").is_none());
}

#[test]
fn lcids_equal_the_file() {
    let v = builtin_value();
    let want: Vec<u32> = section(&v, "lcids")
        .iter()
        .map(|l| u32::try_from(l.as_u64().unwrap()).unwrap())
        .collect();
    assert_eq!(cat().lcids(), &want[..]);
    assert!(cat().lcids().contains(&1033));
}

/// The §8.2 rules written directly against the raw table.
fn reference_lookup(v: &Value, b: u32) -> (u32, String) {
    let mut rows: Vec<(u32, u32, String)> = section(v, "host_builds")
        .iter()
        .map(|r| {
            (
                r["build"].as_u64().unwrap() as u32,
                r["platform_id"].as_u64().unwrap() as u32,
                r["release_date"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    rows.sort();
    let platform = rows.iter().rev().find(|r| r.0 <= b).unwrap_or(&rows[0]).1;
    let date = rows
        .iter()
        .find(|r| r.0 >= b)
        .unwrap_or(rows.last().unwrap())
        .2
        .clone();
    (platform, date)
}

#[test]
fn platform_id_and_release_date_follow_section_8_2() {
    let c = cat();
    // Table builds.
    assert_eq!(c.platform_id(20348), 3612);
    assert_eq!(c.release_date(20348), date!(2021 - 08 - 18));
    assert_eq!(c.platform_id(7601), 55041);
    assert_eq!(c.release_date(7601), date!(2011 - 02 - 22));
    assert_eq!(c.platform_id(9200), 5426);
    assert_eq!(c.platform_id(9600), 6401);
    assert_eq!(c.release_date(26100), date!(2024 - 10 - 01));
    // Between table builds: platform of the build below, date of the build above.
    assert_eq!(c.platform_id(9500), 5426);
    assert_eq!(c.release_date(9500), date!(2013 - 10 - 18));
    assert_eq!(c.platform_id(10000), 6401);
    assert_eq!(c.release_date(10000), date!(2015 - 07 - 29));
    // Outside the table.
    assert_eq!(c.platform_id(0), 55041);
    assert_eq!(c.release_date(0), date!(1995 - 05 - 30));
    assert_eq!(c.platform_id(99_999), 3612);
    assert_eq!(c.release_date(99_999), date!(2025 - 09 - 30));
    assert_eq!(c.platform_id(u32::MAX), 3612);
    // Exhaustively against a direct reading of the rules.
    let v = builtin_value();
    let fmt = format_description!("[year]-[month]-[day]");
    for b in (0..30_000).step_by(7).chain([1057, 1056, 26200, 26201]) {
        let (platform, date) = reference_lookup(&v, b);
        assert_eq!(c.platform_id(b), platform, "platform of {b}");
        assert_eq!(
            c.release_date(b),
            Date::parse(&date, &fmt).unwrap(),
            "date of {b}"
        );
    }
}

#[test]
fn host_build_lookup_is_exact() {
    let c = cat();
    let h = c.host_build(20348).unwrap();
    assert_eq!(h.platform_id, 3612);
    assert!(h.may_be_server && h.uses_ndr64 && h.use_for_epid);
    assert!(!c.host_build(7601).unwrap().uses_ndr64);
    assert!(c.host_build(20000).is_none());
    let builds: Vec<u32> = c.host_builds().map(|h| h.build).collect();
    assert!(builds.windows(2).all(|w| w[0] < w[1]), "ascending order");
}

#[test]
fn epid_profile_for_follows_the_lookup_rules() {
    let c = cat();
    let office2019_kms = guid("617d9eb1-ef36-4f82-86e0-a65ae07b96c6");
    let office_app = guid(OFFICE2013_APP);
    let unknown = guid("01234567-89ab-cdef-0123-456789abcdef");
    // Known KMS item: its own profile.
    assert_eq!(
        c.epid_profile_for(&office2019_kms, &office_app).name,
        "Office2019"
    );
    assert_eq!(
        c.epid_profile_for(&guid("86d50b16-4808-41af-b83b-b338274318b2"), &office_app)
            .name,
        "Office2021"
    );
    // The KMS item decides even if the application does not match.
    assert_eq!(
        c.epid_profile_for(&guid("7ba0bf23-d0f5-4072-91d9-d55af5a481b6"), &office_app)
            .name,
        "WinChinaGov"
    );
    // Aliases answer like their genuine item.
    assert_eq!(
        c.epid_profile_for(&guid("1b4db7eb-4057-5ddf-91e0-36dec72071f5"), &office_app)
            .name,
        "Office2024"
    );
    // Unknown KMS ID: the application's default profile.
    let default = &c.application(&office_app).unwrap().default_epid_profile;
    assert_eq!(&c.epid_profile_for(&unknown, &office_app).name, default);
    assert_eq!(c.epid_profile_for(&unknown, &office_app).name, "Office2019");
    assert_eq!(
        c.epid_profile_for(&unknown, &guid(OFFICE2010_APP)).name,
        "Office2010"
    );
    // Unknown everything: Windows.
    assert_eq!(c.epid_profile_for(&unknown, &unknown).name, "Windows");
    assert_eq!(
        c.epid_profile_for(&Uuid::nil(), &Uuid::nil()).name,
        "Windows"
    );
}

#[test]
fn product_name_falls_back_sku_kms_app_unknown() {
    let c = cat();
    let sku = guid("2de67392-b7a7-462a-b1ca-108dd189f588");
    let kms = guid("58e2134f-8e11-4d17-9cb2-91069c151148");
    let app = guid(WINDOWS_APP);
    let unknown = guid("01234567-89ab-cdef-0123-456789abcdef");
    assert_eq!(c.product_name(&sku, &kms, &app), "Windows 10/11 Pro");
    assert_eq!(
        c.product_name(&unknown, &kms, &app),
        "Windows 10/11 2015 (Volume)"
    );
    assert_eq!(c.product_name(&unknown, &unknown, &app), "Windows");
    assert_eq!(
        c.product_name(&unknown, &unknown, &unknown),
        "unknown (01234567-89ab-cdef-0123-456789abcdef)"
    );
    // A known name is the catalog's own (a host logs one per request, without a copy).
    for (s, k, a) in [
        (sku, kms, app),
        (unknown, kms, app),
        (unknown, unknown, app),
    ] {
        assert!(matches!(
            c.product_name(&s, &k, &a),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}

#[test]
fn the_embedded_copy_is_products_json_without_white_space() {
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/data/products.json"))
        .unwrap();
    let embedded = rkms_catalog::builtin_products_json();
    assert!(embedded.len() < file.len() * 9 / 10, "{}", embedded.len());
    assert!(!embedded.contains('\n'));
    let file: Value = serde_json::from_str(&file).unwrap();
    assert_eq!(builtin_value(), file);
}
