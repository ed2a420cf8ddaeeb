//! `find_product` and `search` over the built-in catalog.

mod common;

use common::*;
use rkms_catalog::{Catalog, FindError, MAX_CANDIDATES};

const PRO_SKU: &str = "2de67392-b7a7-462a-b1ca-108dd189f588";

fn cat() -> &'static Catalog {
    Catalog::builtin()
}

#[test]
fn by_guid_in_any_form() {
    for q in [
        PRO_SKU.to_owned(),
        PRO_SKU.to_uppercase(),
        format!("{{{PRO_SKU}}}"),
        format!("  {{{}}} ", PRO_SKU.to_uppercase()),
        PRO_SKU.replace('-', ""),
    ] {
        let sku = cat()
            .find_product(&q)
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(sku.id, guid(PRO_SKU), "{q}");
        assert_eq!(sku.display_name, "Windows 10/11 Pro");
    }
}

#[test]
fn unknown_guid_is_not_found() {
    // A KMS item's ID is not a SKU ID.
    let q = "58e2134f-8e11-4d17-9cb2-91069c151148";
    assert_eq!(
        cat().find_product(q),
        Err(FindError::NotFound {
            query: q.into(),
            suggestions: Vec::new()
        })
    );
}

#[test]
fn exact_name_wins_over_longer_names() {
    // "Windows 10/11 Pro" is also a prefix of five other names.
    let prefixed = cat()
        .skus()
        .filter(|s| s.display_name.starts_with("Windows 10/11 Pro"))
        .count();
    assert!(prefixed > 1);
    for q in [
        "Windows 10/11 Pro",
        "windows 10/11 PRO",
        " Windows 10/11 Pro\t",
    ] {
        assert_eq!(cat().find_product(q).unwrap().id, guid(PRO_SKU), "{q:?}");
    }
    assert_eq!(
        cat()
            .find_product("Office Professional Plus 2019")
            .unwrap()
            .id,
        guid("85dd8b5f-eaa4-4af3-a628-cce9e77c9a03")
    );
}

#[test]
fn unique_prefix() {
    let sku = cat().find_product("office mondo r").unwrap();
    assert_eq!(sku.display_name, "Office Mondo R 2016");
}

#[test]
fn unique_substring() {
    let sku = cat().find_product("pro workstation n").unwrap();
    assert_eq!(sku.display_name, "Windows 10/11 Pro Workstation N");
    let sku = cat().find_product("multi-session").unwrap();
    assert_eq!(sku.display_name, "Windows 10/11 Enterprise multi-session");
}

#[test]
fn ambiguous_prefix() {
    let err = cat().find_product("Windows").unwrap_err();
    let expected_total = cat()
        .skus()
        .filter(|s| s.display_name.to_lowercase().starts_with("windows"))
        .count();
    let FindError::Ambiguous {
        query,
        candidates,
        total,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(query, "Windows");
    assert_eq!(*total, expected_total);
    assert_eq!(candidates.len(), MAX_CANDIDATES);
    assert!(candidates.iter().all(|c| c.starts_with("Windows")));
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("\"Windows\" matches {expected_total} products: ")),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("and {} more", expected_total - MAX_CANDIDATES)),
        "{msg}"
    );
}

#[test]
fn ambiguous_substring_lists_all_when_few() {
    let err = cat().find_product("azure core").unwrap_err();
    let FindError::Ambiguous {
        candidates, total, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*total, 4);
    assert_eq!(candidates.len(), 4);
    assert!(!err.to_string().contains(" and "), "{err}");
}

#[test]
fn not_found() {
    for q in ["Frobnicator 3000", "", "   "] {
        let err = cat().find_product(q).unwrap_err();
        assert_eq!(
            err,
            FindError::NotFound {
                query: q.into(),
                suggestions: Vec::new()
            }
        );
        assert!(err.to_string().starts_with("no product matches"), "{err}");
        assert!(err.to_string().contains("`rkms products"), "{err}");
    }
}

#[test]
fn search_empty_returns_everything_in_file_order() {
    let all = cat().search("");
    assert_eq!(all.len(), cat().skus().len());
    assert!(all.iter().zip(cat().skus()).all(|(a, b)| a.id == b.id));
    assert_eq!(cat().search("  ").len(), all.len());
}

#[test]
fn search_matches_name_gvlk_kms_item_and_application() {
    let c = cat();
    // Display name, case-insensitive.
    let hits = c.search("PRO WORKSTATION");
    assert_eq!(hits.len(), 2);
    // GVLK.
    let hits = c.search("w269n-wfgwx");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, guid(PRO_SKU));
    // KMS item name only ("ServerRdsh" appears in no SKU name).
    let hits = c.search("serverrdsh");
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0].display_name,
        "Windows 10/11 Enterprise multi-session"
    );
    // Application name only.
    let office = guid(OFFICE2013_APP);
    let hits = c.search("office 2013+");
    assert_eq!(hits.len(), c.skus().filter(|s| s.app_id == office).count());
    assert!(hits.iter().all(|s| s.app_id == office));
    // Nothing.
    assert!(c.search("frobnicator").is_empty());
}

#[test]
fn search_keeps_file_order() {
    let c = cat();
    let position = |id| c.skus().position(|s| s.id == id).unwrap();
    let hits = c.search("2019");
    assert!(hits.len() > 10);
    let positions: Vec<usize> = hits.iter().map(|s| position(s.id)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn reference_implementation_names_and_words_find_products() {
    let c = rkms_catalog::Catalog::builtin();
    // Names vlmcs and py-kms clients use.
    for (query, expected) in [
        ("Windows 10 Enterprise", "Windows 10/11 Enterprise"),
        ("Windows 7 Professional", "Windows 7 Professional"),
        ("Windows 8 Professional", "Windows 8 Professional"),
        (
            "Office Professional Plus 2019",
            "Office Professional Plus 2019",
        ),
        (
            "Windows Server 2019 Datacenter",
            "Windows Server 2019 Datacenter",
        ),
        ("windows 11 pro", "Windows 10/11 Pro"),
        (
            "Windows 10 Enterprise LTSC 2019",
            "Windows 10/11 Enterprise LTSC 2019/2021/2024",
        ),
    ] {
        assert_eq!(
            c.find_product(query).map(|s| s.display_name.as_str()),
            Ok(expected),
            "{query}"
        );
    }
    // Every vlmcsd and py-kms name resolves to its SKU.
    let json: serde_json::Value =
        serde_json::from_str(&rkms_catalog::builtin_products_json()).unwrap();
    let mut checked = 0;
    for sku in json["sku_items"].as_array().unwrap() {
        for key in ["vlmcsd_name", "pykms_name", "display_name"] {
            if let Some(name) = sku[key].as_str() {
                let found = c
                    .find_product(name)
                    .unwrap_or_else(|e| panic!("{key} {name:?}: {e}"));
                // Another SKU's display name wins over an alias.
                assert!(
                    found.id.to_string() == sku["id"].as_str().unwrap()
                        || found.display_name.eq_ignore_ascii_case(name),
                    "{key} {name:?} resolved to {}",
                    found.display_name
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 700, "{checked}");
}

#[test]
fn obvious_product_by_words_rather_than_ambiguous_prefix() {
    // "Windows 10 Pro" starts "Windows 10 Professional Preview" and "… WMC Preview", but its
    // words name "Windows 10/11 Pro" with the fewest extra words.
    for q in ["Windows 10 Pro", "windows 11 pro", "WINDOWS 11 PRO"] {
        assert_eq!(
            cat().find_product(q).map(|s| s.display_name.as_str()),
            Ok("Windows 10/11 Pro"),
            "{q}"
        );
    }
    assert_eq!(
        cat()
            .find_product("Windows 11 IoT")
            .map(|s| s.display_name.as_str()),
        Ok("Windows 10/11 IoT Enterprise LTSC 2021-2024")
    );
}

#[test]
fn pykms_client_names_find_their_products() {
    for (mode, product) in rkms_catalog::PYKMS_CLIENT_MODES {
        for q in [mode.to_string(), mode.to_lowercase()] {
            assert_eq!(
                cat().find_product(&q).map(|s| s.display_name.as_str()),
                Ok(*product),
                "{q}"
            );
            let hits = cat().search(&q);
            assert!(hits.iter().any(|s| s.display_name == *product), "{q}");
        }
    }
}

#[test]
fn unknown_names_suggest_the_closest() {
    let err = cat().find_product("Windwos 11 Pro").unwrap_err();
    let FindError::NotFound { suggestions, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(suggestions[0], "Windows 10/11 Pro", "{suggestions:?}");
    assert!(suggestions.len() <= rkms_catalog::MAX_SUGGESTIONS);
    let msg = err.to_string();
    assert!(msg.contains("closest: Windows 10/11 Pro,"), "{msg}");
    assert!(msg.contains("`rkms products"), "{msg}");
    // A long text gets no suggestions and no long wait.
    let long = "frob ".repeat(10_000);
    assert!(matches!(
        cat().find_product(&long),
        Err(FindError::NotFound { suggestions, .. }) if suggestions.is_empty()
    ));
}

#[test]
fn search_matches_words_as_find_product_does() {
    let names = |q: &str| -> Vec<String> {
        cat()
            .search(q)
            .iter()
            .map(|s| s.display_name.clone())
            .collect()
    };
    let pro = names("windows 11 pro");
    assert!(pro.contains(&"Windows 10/11 Pro".to_string()), "{pro:?}");
    assert!(pro.iter().all(|n| n.contains("Pro")), "{pro:?}");
    let visio = names("visio 2024");
    assert!(
        visio.contains(&"Office Visio LTSC Pro 2024".to_string()),
        "{visio:?}"
    );
    assert!(
        visio.contains(&"Office Visio LTSC Standard 2024".to_string()),
        "{visio:?}"
    );
    assert_eq!(
        names("Windows 11 IoT"),
        ["Windows 10/11 IoT Enterprise LTSC 2021-2024"]
    );
    let ltsc = names("ltsc 2024");
    for n in [
        "Windows 10/11 Enterprise LTSC 2019/2021/2024",
        "Windows 10/11 IoT Enterprise LTSC 2021-2024",
        "Office LTSC Professional Plus 2024",
    ] {
        assert!(ltsc.contains(&n.to_string()), "{n}: {ltsc:?}");
    }
    // A SKU ID finds its product.
    assert_eq!(names(PRO_SKU), ["Windows 10/11 Pro"]);
    // Every product --product resolves a query to is among the search's hits.
    for q in [
        "office 2019",
        "windows 10 pro",
        "Office2019",
        "server 2022 datacenter",
    ] {
        if let Ok(sku) = cat().find_product(q) {
            assert!(cat().search(q).iter().any(|s| s.id == sku.id), "{q}");
        }
    }
    assert!(rkms_catalog::name_matches(
        "Office Access 2019",
        "office 2019"
    ));
    assert!(!rkms_catalog::name_matches(
        "Office Access 2016",
        "office 2019"
    ));
}
