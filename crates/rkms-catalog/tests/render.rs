//! Renderings for the command line: golden files for the guide and the table, and checks of the
//! full table and its JSON form.
//!
//! The expected outputs live in `tests/golden/`; run with `UPDATE_GOLDEN=1` to rewrite them
//! from the current code (then review the diff).

mod common;

use std::path::PathBuf;

use common::*;
use rkms_catalog::render::{
    guide, office_folder, products_json, products_table, GuideError, NO_KEY,
};
use rkms_catalog::{Catalog, Sku};

fn cat() -> &'static Catalog {
    Catalog::builtin()
}

/// Compares `actual` with `tests/golden/<name>`, or rewrites the file if `UPDATE_GOLDEN=1`.
fn golden(name: &str, actual: &str) {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "golden", name]
        .iter()
        .collect();
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the output, first at line {}:\n--- expected\n{}\n--- actual\n{}\n\
             (run with UPDATE_GOLDEN=1 to accept the new output)",
            path.display(),
            first + 1,
            expected.lines().nth(first).unwrap_or("<end>"),
            actual.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

fn sku(name: &str) -> &'static Sku {
    cat()
        .find_product(name)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn guide_windows_11_pro() {
    let text = guide(cat(), sku("Windows 10/11 Pro"), "kms.example.lan", 1688).unwrap();
    golden("guide-windows-11-pro.txt", &text);
    assert!(text.starts_with("Activate Windows 10/11 Pro with the KMS host"));
    for line in [
        "  slmgr /ipk W269N-WFGWX-YVC9B-4J6C9-T83GX\n",
        "  slmgr /skms kms.example.lan:1688\n",
        "  slmgr /ato\n",
        "  slmgr /dlv\n",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{text}");
    }
    assert!(text.contains("Test-NetConnection kms.example.lan -Port 1688"));
    assert!(text.contains("fewer active clients than this product needs (at least 25)"));
}

#[test]
fn guide_office_ltsc_2024_over_ipv6() {
    let s = sku("Office LTSC Professional Plus 2024");
    let text = guide(cat(), s, "::1", 1700).unwrap();
    golden("guide-office-ltsc-2024.txt", &text);
    for line in [
        "  cd /d \"C:\\Program Files\\Microsoft Office\\Office16\"\n",
        "  cd /d \"C:\\Program Files (x86)\\Microsoft Office\\Office16\"\n",
        "  cscript ospp.vbs /inpkey:XJ2XN-FW8RK-P4HMP-DKDBV-GCVGB\n",
        "  cscript ospp.vbs /sethst:[::1]\n",
        "  cscript ospp.vbs /setprt:1700\n",
        "  cscript ospp.vbs /act\n",
        "  cscript ospp.vbs /dstatus\n",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{text}");
    }
    assert!(text.contains("Test-NetConnection '::1' -Port 1700"));
    assert!(text.contains("TCP port 1700"));
    assert!(text.contains("needs (at least 5)"));
    // Brackets given by the user are not doubled.
    assert_eq!(guide(cat(), s, "[::1]", 1700).unwrap(), text);
}

#[test]
fn guide_office_2010() {
    let text = guide(
        cat(),
        sku("Office Professional Plus 2010"),
        "192.168.1.10",
        1688,
    )
    .unwrap();
    golden("guide-office-2010.txt", &text);
    assert!(text.contains("\\Microsoft Office\\Office14\""));
    assert!(text.contains("/inpkey:VYBBJ-TRJPB-QFQRF-QFT4D-H3GVB"));
    assert!(text.contains("/sethst:192.168.1.10\n"));
}

#[test]
fn guide_windows_ipv6_uses_brackets() {
    let text = guide(cat(), sku("Windows 10/11 Pro"), "::1", 1688).unwrap();
    assert!(text.contains("  slmgr /skms [::1]:1688\n"), "{text}");
    let text = guide(cat(), sku("Windows 10/11 Pro"), "[fd00::5]", 1700).unwrap();
    assert!(text.contains("  slmgr /skms [fd00::5]:1700\n"), "{text}");
    assert!(
        text.contains("Test-NetConnection 'fd00::5' -Port 1700"),
        "{text}"
    );
}

#[test]
fn guide_refuses_a_sku_without_key() {
    let s = cat().skus().find(|s| s.gvlk.is_none()).unwrap();
    let err = guide(cat(), s, "kms.example.lan", 1688).unwrap_err();
    assert_eq!(
        err,
        GuideError::NoKey {
            product: s.display_name.clone(),
            sku_id: s.id
        }
    );
    let msg = err.to_string();
    assert!(msg.contains("Windows 8.x Preview ARM"), "{msg}");
    assert!(
        msg.contains("no known KMS client setup key (GVLK)"),
        "{msg}"
    );
}

#[test]
fn guide_works_for_every_sku_with_a_key() {
    for s in cat().skus().filter(|s| s.gvlk.is_some()) {
        let text = guide(cat(), s, "h", 1).unwrap();
        assert!(text.contains(&s.display_name), "{}", s.display_name);
        assert!(text.contains(s.gvlk.as_deref().unwrap()));
        assert!(text.ends_with('\n') && !text.contains(" \n"), "{text}");
    }
}

#[test]
fn guide_refuses_other_applications() {
    let mut s = sku("Windows 10/11 Pro").clone();
    s.app_id = guid("00000000-0000-0000-0000-000000000001");
    assert!(matches!(
        guide(cat(), &s, "h", 1688),
        Err(GuideError::UnsupportedApplication { .. })
    ));
}

#[test]
fn office_folder_rule() {
    let mut seen = [0; 3];
    for s in cat().skus() {
        let folder = office_folder(cat(), s);
        let app = s.app_id.to_string();
        let name = &s.display_name;
        let want = if app == WINDOWS_APP {
            None
        } else if app == OFFICE2010_APP {
            Some("Office14")
        } else if name.contains("2013") {
            Some("Office15")
        } else {
            assert!(
                ["2016", "2019", "2021", "2024"]
                    .iter()
                    .any(|y| name.contains(y)),
                "{name}"
            );
            Some("Office16")
        };
        assert_eq!(folder, want, "{name}");
        match folder {
            Some("Office14") => seen[0] += 1,
            Some("Office15") => seen[1] += 1,
            Some("Office16") => seen[2] += 1,
            _ => {}
        }
    }
    assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
}

#[test]
fn table_of_search_ltsc() {
    let skus = cat().search("ltsc");
    let text = products_table(cat(), &skus);
    golden("products-search-ltsc.txt", &text);
    assert!(text.ends_with(&format!("\n{} products\n", skus.len())));
}

#[test]
fn full_table_lists_every_sku() {
    let skus: Vec<&Sku> = cat().skus().collect();
    assert_eq!(skus.len(), 262);
    let text = products_table(cat(), &skus);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 + 262 + 1);
    assert!(lines[0].starts_with("PRODUCT"), "{}", lines[0]);
    assert!(lines[0].ends_with("MIN COUNT  PROTOCOL"), "{}", lines[0]);
    assert!(lines[1].chars().all(|c| c == '-' || c == ' '));
    assert_eq!(lines[264], "262 products");
    // Fixed width: every GVLK column starts where the header's does.
    let gvlk_col = lines[0].find("GVLK").unwrap();
    let kms_col = lines[0].find("KMS GROUP").unwrap();
    for (row, s) in lines[2..264].iter().zip(&skus) {
        assert!(row.starts_with(&s.display_name), "{row}");
        let key = s.gvlk.as_deref().unwrap_or(NO_KEY);
        assert_eq!(&row[gvlk_col..gvlk_col + key.len()], key, "{row}");
        let kms = cat().kms_item_resolved(&s.kms_id).unwrap();
        assert_eq!(
            &row[kms_col..kms_col + kms.display_name.len()],
            kms.display_name
        );
        assert!(row.ends_with(&format!("V{}", s.default_protocol)), "{row}");
        assert!(row.contains(&format!(" {}  V", kms.ncount_policy)), "{row}");
        assert!(!row.ends_with(' '));
    }
    assert_eq!(lines.iter().filter(|l| l.contains("  (none)  ")).count(), 1);
    assert_eq!(products_table(cat(), &[]), "PRODUCT  GVLK  KMS GROUP  MIN COUNT  PROTOCOL\n-------  ----  ---------  ---------  --------\n0 products\n");
    assert!(products_table(cat(), &skus[..1]).ends_with("\n1 product\n"));
}

#[test]
fn json_has_every_sku_with_its_fields() {
    let skus: Vec<&Sku> = cat().skus().collect();
    let v = products_json(cat(), &skus);
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 262);
    for (o, s) in arr.iter().zip(&skus) {
        let obj = o.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "application",
                "application_id",
                "gvlk",
                "kms_id",
                "kms_name",
                "min_count",
                "name",
                "preview",
                "protocol",
                "retail",
                "sku_id"
            ]
        );
        let kms = cat().kms_item_resolved(&s.kms_id).unwrap();
        let app = cat().application(&s.app_id).unwrap();
        assert_eq!(o["name"], s.display_name.as_str());
        assert_eq!(o["sku_id"], s.id.to_string());
        assert_eq!(o["gvlk"].as_str(), s.gvlk.as_deref());
        assert_eq!(o["kms_id"], s.kms_id.to_string());
        assert_eq!(o["kms_name"], kms.display_name.as_str());
        assert_eq!(o["application_id"], s.app_id.to_string());
        assert_eq!(o["application"], app.name.as_str());
        assert_eq!(o["min_count"], kms.ncount_policy);
        assert_eq!(o["protocol"], s.default_protocol);
        assert_eq!(o["retail"], s.is_retail);
        assert_eq!(o["preview"], s.is_preview);
    }
    assert_eq!(arr.iter().filter(|o| o["gvlk"].is_null()).count(), 1);
    let pro = &arr[skus
        .iter()
        .position(|s| s.display_name == "Windows 10/11 Pro")
        .unwrap()];
    assert_eq!(pro["sku_id"], "2de67392-b7a7-462a-b1ca-108dd189f588");
    assert_eq!(pro["gvlk"], "W269N-WFGWX-YVC9B-4J6C9-T83GX");
    assert_eq!(pro["application"], "Windows");
    assert_eq!(pro["protocol"], 6);
    assert_eq!(pro["min_count"], 25);
}
