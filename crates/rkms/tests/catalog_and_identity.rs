//! The catalog and host identity as users see them: `rkms products`, `guide`, `epid`,
//! `--products FILE`, `activate --all-products`, and the policy refusals end to end.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{rkms_bin, Server};
use rkms::client::Session;
use rkms_catalog::Catalog;
use rkms_proto::kms::{build_request, filetime_from_unix, BaseRequest, HResult, Version};
use rkms_proto::rpc::client::BindOffer;
use uuid::Uuid;

fn rkms(args: &[&str]) -> Output {
    Command::new(rkms_bin()).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn products_lists_every_sku_with_its_gvlk() {
    let out = rkms(&["products"]);
    assert!(out.status.success());
    let text = stdout(&out);
    let catalog = Catalog::builtin();
    for sku in catalog.skus() {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{}  ", sku.display_name)))
            .unwrap_or_else(|| panic!("{} missing", sku.display_name));
        assert!(
            line.contains(sku.gvlk.as_deref().unwrap_or("(none)")),
            "{line}"
        );
    }
    assert!(text
        .trim_end()
        .ends_with(&format!("{} products", catalog.skus().count())));
    // Filtered, and identical to the catalog's own rendering.
    let out = rkms(&["products", "LTSC 2024"]);
    let skus = catalog.search("LTSC 2024");
    assert_eq!(
        stdout(&out),
        rkms_catalog::render::products_table(catalog, &skus)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&rkms(&["products", "--json", "office 2010"]).stdout).unwrap();
    let arr = json.as_array().unwrap();
    assert!(
        !arr.is_empty()
            && arr
                .iter()
                .all(|p| p["kms_name"].as_str().unwrap().contains("2010"))
    );
    let out = rkms(&["products", "no such thing"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn guide_prints_client_commands() {
    let out = rkms(&["guide", "windows 11 pro", "--host", "kms.example.lan:1700"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text.contains("slmgr /ipk W269N-WFGWX-YVC9B-4J6C9-T83GX"),
        "{text}"
    );
    assert!(text.contains("slmgr /skms kms.example.lan:1700"));
    assert!(
        text.contains("0xC004F074") && text.contains("0xC004F038") && text.contains("0x8007000D")
    );
    let out = rkms(&[
        "guide",
        "Office LTSC Professional Plus 2024",
        "--host",
        "[::1]",
    ]);
    let text = stdout(&out);
    assert!(
        text.contains("ospp.vbs /inpkey:")
            && text.contains("Office16")
            && text.contains("/setprt:1688"),
        "{text}"
    );
    let out = rkms(&["guide", "Windows"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("matches"), "{}", stderr(&out));
}

#[test]
fn epid_command_and_check() {
    let out = rkms(&["epid", "--randomize", "fixed"]);
    let text = stdout(&out);
    for p in Catalog::builtin().epid_profiles() {
        assert!(text.contains(&p.default_epid), "{text}");
    }
    let out = rkms(&[
        "epid",
        "--host-build",
        "26100",
        "--lcid",
        "1031",
        "--hwid",
        "0011223344556677",
    ]);
    let text = stdout(&out);
    assert!(text.starts_with("host build 26100, LCID 1031"), "{text}");
    // The default, --randomize start: the printed ePIDs are an example.
    let note = stderr(&out);
    assert!(
        note.contains("draws new ePIDs at every start") && note.contains("--epid PROFILE=EPID"),
        "{note}"
    );
    let fixed = rkms(&["epid", "--randomize", "fixed"]);
    assert!(
        !stderr(&fixed).contains("draws new ePIDs"),
        "{}",
        stderr(&fixed)
    );
    let per_request = rkms(&["epid", "--randomize", "request"]);
    assert!(
        stderr(&per_request).contains("draws new ePIDs for every request"),
        "{}",
        stderr(&per_request)
    );
    assert_eq!(text.matches("-1031-26100.0000-").count(), 8);
    assert_eq!(text.matches("HwId 0011223344556677").count(), 8);
    // Every generated ePID passes the check.
    for line in text.lines().skip(1) {
        let epid = line.split_whitespace().nth(1).unwrap();
        let out = rkms(&["epid", "check", epid]);
        assert!(out.status.success(), "{epid}: {}", stdout(&out));
    }
    let out = rkms(&[
        "epid",
        "check",
        "03612-04919-018-914043-03-1033-9600.0000-1162026",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("FAIL platform"));
    let out = rkms(&["epid", "--epid", "Nope=1-2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown ePID profile"));
}

const EXTRA: &str = r#"{
  "kms_items": [{"id": "11111111-2222-3333-4444-555555555555", "display_name": "Contoso Server 2030",
    "app_id": "55c92734-d682-4d71-983e-d6ec3f16059f", "ncount_policy": 5, "default_protocol": 6,
    "is_retail": false, "is_preview": false, "epid_profile": "Windows"}],
  "sku_items": [{"id": "66666666-7777-8888-9999-000000000000", "display_name": "Contoso Server 2030 Datacenter",
    "app_id": "55c92734-d682-4d71-983e-d6ec3f16059f", "kms_id": "11111111-2222-3333-4444-555555555555",
    "gvlk": "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE", "is_retail": false, "is_preview": false,
    "default_protocol": 6, "ncount_policy": 5}]
}"#;

#[test]
fn products_file_extends_the_catalog_and_bad_files_are_refused() {
    let dir = std::env::temp_dir().join(format!("rkms-products-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.json");
    std::fs::write(&good, EXTRA).unwrap();
    let out = rkms(&["--products", good.to_str().unwrap(), "products", "contoso"]);
    assert!(
        stdout(&out).contains("AAAAA-BBBBB-CCCCC-DDDDD-EEEEE"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let server = Server::start(&["--products", good.to_str().unwrap(), "--allow", "known"]);
    let out = rkms(&[
        "--products",
        good.to_str().unwrap(),
        "activate",
        &server.addr.to_string(),
        "--product",
        "Contoso Server 2030 Datacenter",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stdout(&out));
    let line = server.wait_log("product=\"Contoso Server 2030 Datacenter\"");
    assert!(line.contains("activated"), "{line}");

    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        EXTRA.replace("\"kms_id\": \"11111111", "\"kms_id\": \"21111111"),
    )
    .unwrap();
    let out = rkms(&[
        "--products",
        bad.to_str().unwrap(),
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("bad.json") && err.contains("sku_items") && err.contains("66666666"),
        "{err}"
    );
    let missing = dir.join("missing.json");
    let out = rkms(&["--products", missing.to_str().unwrap(), "products"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.json"));
    std::fs::write(&bad, "{ not json").unwrap();
    let out = rkms(&["--products", bad.to_str().unwrap(), "products"]);
    assert!(stderr(&out).contains("line 1"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn all_products_are_activated_with_their_names_logged() {
    let server = Server::start(&[]);
    let out = rkms(&["activate", &server.addr.to_string(), "--all-products"]);
    let text = stdout(&out);
    let n = Catalog::builtin().skus().count();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("{n} of {n} products activated")),
        "{text}"
    );
    server.wait_log("product=\"Office LTSC Professional Plus 2024\"");
    server.wait_log("product=\"Windows Server 2025 Datacenter\"");
    // Every answer carries the ePID of the product's own profile. Lines logged in a burst are
    // written together, at most a few milliseconds after their answers.
    let logged = || {
        server
            .log()
            .iter()
            .filter(|l| l.contains("activated (count"))
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while logged() < n && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(logged() >= n, "{} of {n} logged", logged());
}

async fn request_with(server: &Server, f: impl FnOnce(&mut BaseRequest)) -> Result<u32, HResult> {
    let mut base = BaseRequest {
        version: Version::V6,
        is_client_vm: 0,
        license_status: 2,
        grace_time: 43200,
        application_id: Uuid::parse_str("55c92734-d682-4d71-983e-d6ec3f16059f").unwrap(),
        sku_id: Uuid::parse_str("2de67392-b7a7-462a-b1ca-108dd189f588").unwrap(),
        kms_id: Uuid::parse_str("58e2134f-8e11-4d17-9cb2-91069c151148").unwrap(),
        cmid: Uuid::new_v4(),
        required_client_count: 25,
        request_time: filetime_from_unix(rkms::clock::now_unix() as u64),
        previous_cmid: Uuid::nil(),
        workstation: BaseRequest::workstation_field("policy-test"),
    };
    f(&mut base);
    let offer = BindOffer {
        ndr64: true,
        btfn: true,
        multiplex: true,
    };
    let mut s = Session::open(server.addr, offer, Duration::from_secs(5))
        .await
        .unwrap();
    let rq = build_request(Version::V6, &base, &mut rand::rngs::OsRng);
    let (stub, _) = s.activate(&rq.bytes).await.unwrap();
    stub.result
        .map(|payload| rq.verify_response(&payload).unwrap().base.current_count)
}

#[tokio::test]
async fn policy_refusals_end_to_end() {
    let strict = Server::start(&["--allow", "known-volume", "--check-client-time"]);
    assert_eq!(request_with(&strict, |_| {}).await, Ok(50));
    // Unknown KMS ID.
    let r = request_with(&strict, |b| b.kms_id = Uuid::new_v4()).await;
    assert_eq!(r, Err(HResult::KMS_ID_MISMATCH));
    strict.wait_log("unknown KMS ID");
    // Retail KMS ID (Windows 10 2015 Retail? take the first retail item of the catalog).
    let retail = Catalog::builtin()
        .kms_items()
        .find(|k| k.is_retail && k.alias_of.is_none())
        .unwrap()
        .clone();
    let r = request_with(&strict, |b| {
        b.kms_id = retail.id;
        b.application_id = retail.app_id;
    })
    .await;
    assert_eq!(r, Err(HResult::KMS_ID_MISMATCH));
    strict.wait_log("retail KMS ID");
    // Known KMS ID sent with another application's ID.
    let r = request_with(&strict, |b| {
        b.application_id = Uuid::parse_str("0ff1ce15-a989-479d-af46-f275c6370663").unwrap()
    })
    .await;
    assert_eq!(r, Err(HResult::KMS_ID_MISMATCH));
    // Client clock 5 hours behind; 3 hours is fine.
    let now = rkms::clock::now_unix() as u64;
    let r = request_with(&strict, |b| {
        b.request_time = filetime_from_unix(now - 5 * 3600)
    })
    .await;
    assert_eq!(r, Err(HResult::INVALID_TIMESTAMP));
    strict.wait_log("client clock is 5h00m behind");
    assert_eq!(
        request_with(&strict, |b| b.request_time =
            filetime_from_unix(now - 3 * 3600))
        .await,
        Ok(50)
    );
    // Required count above 1000.
    assert_eq!(
        request_with(&strict, |b| b.required_client_count = 1001).await,
        Err(HResult::INVALID_DATA)
    );
    strict.wait_log("required client count 1001 is above 1000");
    // The lenient default serves the unknown ID with the Windows ePID and 2N.
    let open = Server::start(&["--client-count", "30"]);
    assert_eq!(
        request_with(&open, |b| b.kms_id = Uuid::new_v4()).await,
        Ok(30)
    );
    assert_eq!(
        request_with(&open, |b| b.required_client_count = 5).await,
        Ok(10)
    );
    open.wait_log("clients are told at most 10 (threshold 5)");
}

#[test]
fn products_and_activate_product_share_one_search() {
    let names = |q: &str| -> Vec<String> {
        let v: serde_json::Value =
            serde_json::from_slice(&rkms(&["products", "--json", q]).stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(names("windows 11 pro").contains(&"Windows 10/11 Pro".to_string()));
    assert!(names("visio 2024").contains(&"Office Visio LTSC Pro 2024".to_string()));
    assert_eq!(
        names("Windows 11 IoT"),
        ["Windows 10/11 IoT Enterprise LTSC 2021-2024"]
    );
    let ltsc = names("ltsc 2024");
    assert!(ltsc.contains(&"Windows 10/11 Enterprise LTSC 2019/2021/2024".to_string()));
    assert!(ltsc.contains(&"Office LTSC Professional Plus 2024".to_string()));
    assert_eq!(names("Office2019"), ["Office Professional Plus 2019"]);
    // Unknown: the closest names and where to look.
    let out = rkms(&["products", "windwos 11 pro"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("closest: Windows 10/11 Pro"),
        "{out:?}"
    );
    // --product: the obvious product for words, py-kms names; suggestions when unknown.
    let server = Server::start(&[]);
    for (q, expected) in [
        ("Windows 10 Pro", "Windows 10/11 Pro"),
        ("Windows10", "Windows 10/11 Enterprise"),
        ("office2019", "Office Professional Plus 2019"),
    ] {
        let out = rkms(&[
            "activate",
            &server.addr.to_string(),
            "--product",
            q,
            "--json",
        ]);
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{q}: {e}: {out:?}"));
        assert_eq!(v["product"], expected, "{q}");
    }
    let out = rkms(&[
        "activate",
        &server.addr.to_string(),
        "--product",
        "Windwos 11 Pro",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("closest: Windows 10/11 Pro"), "{err}");
    assert!(err.contains("`rkms products"), "{err}");
}
