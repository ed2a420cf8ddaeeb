//! Client records end to end: the database the server writes, the genuine count it reports,
//! restarts, SIGKILL under load, start-up errors, `rkms clients` and the py-kms import.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{rkms_bin, Server};
use rkms::client::Session;
use rkms_proto::kms::{build_request, filetime_from_unix, BaseRequest, Version};
use rkms_proto::rpc::client::BindOffer;
use uuid::Uuid;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rkms-clients-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const OFFICE_2019_SKU: &str = "85dd8b5f-eaf4-4af3-a628-cce9e77c9a03";

fn base(cmid: Uuid, windows: bool) -> BaseRequest {
    let (app, sku, kms, n) = if windows {
        (
            "55c92734-d682-4d71-983e-d6ec3f16059f",
            "2de67392-b7a7-462a-b1ca-108dd189f588",
            "58e2134f-8e11-4d17-9cb2-91069c151148",
            25,
        )
    } else {
        (
            "0ff1ce15-a989-479d-af46-f275c6370663",
            OFFICE_2019_SKU,
            "617d9eb1-ef36-4f82-86e0-a65ae07b96c6",
            5,
        )
    };
    BaseRequest {
        version: Version::V6,
        is_client_vm: 1,
        license_status: 2,
        grace_time: 43200,
        application_id: Uuid::parse_str(app).unwrap(),
        sku_id: Uuid::parse_str(sku).unwrap(),
        kms_id: Uuid::parse_str(kms).unwrap(),
        cmid,
        required_client_count: n,
        request_time: filetime_from_unix(rkms::clock::now_unix() as u64),
        previous_cmid: Uuid::nil(),
        workstation: BaseRequest::workstation_field(&format!("ws-{}", &cmid.to_string()[..8])),
    }
}

/// One activation on a new connection; returns the reported count.
async fn activate(addr: std::net::SocketAddr, cmid: Uuid, windows: bool) -> u32 {
    let offer = BindOffer {
        ndr64: true,
        btfn: true,
        multiplex: true,
    };
    let mut s = Session::open(addr, offer, Duration::from_secs(10))
        .await
        .unwrap();
    let rq = build_request(Version::V6, &base(cmid, windows), &mut rand::rngs::OsRng);
    let (stub, _) = s.activate(&rq.bytes).await.unwrap();
    rq.verify_response(&stub.result.unwrap())
        .unwrap()
        .base
        .current_count
}

fn clients_json(db: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(rkms_bin())
        .args(["clients", "--json", "--db", db.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_activations_are_each_recorded() {
    let dir = temp_dir("concurrent");
    let db = dir.join("clients.db");
    // 200 clients at once from one address: above the default cap of 64 per address.
    let server = Server::start(&[
        "--db",
        db.to_str().unwrap(),
        "--max-connections-per-address",
        "256",
    ]);
    let cmids: Vec<Uuid> = (0..200).map(|_| Uuid::new_v4()).collect();
    let mut tasks = Vec::new();
    for cmid in cmids.clone() {
        let addr = server.addr;
        tasks.push(tokio::spawn(
            async move { activate(addr, cmid, true).await },
        ));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 50);
    }
    // A repeated CMID increments its request count.
    activate(server.addr, cmids[0], true).await;
    let records = clients_json(&db, &[]);
    assert_eq!(records.len(), 200);
    let seen: HashSet<String> = records
        .iter()
        .map(|r| r["cmid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen, cmids.iter().map(|c| c.to_string()).collect());
    for r in &records {
        let cmid = r["cmid"].as_str().unwrap();
        assert_eq!(r["workstation"], format!("ws-{}", &cmid[..8]));
        assert_eq!(r["product"], "Windows 10/11 Pro");
        assert_eq!(r["protocol"], "6.0");
        assert_eq!(r["is_vm"], true);
        assert_eq!(r["last_address"], "127.0.0.1");
        assert_eq!(r["last_hresult"], 0);
        assert_eq!(
            r["requests"],
            if cmid == cmids[0].to_string() { 2 } else { 1 }
        );
        assert!(!r["last_epid"].as_str().unwrap().is_empty());
    }
    // Filters.
    assert_eq!(
        clients_json(&db, &["--cmid", &cmids[5].to_string()]).len(),
        1
    );
    assert_eq!(clients_json(&db, &["--product", "office"]).len(), 0);
    assert_eq!(
        clients_json(&db, &["--since", "5m", "--limit", "7"]).len(),
        7
    );
    let out = Command::new(rkms_bin())
        .args(["clients", "--csv", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 201);
    let out = Command::new(rkms_bin())
        .args(["clients", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("200 clients"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_over_loopback_do_not_join_the_count() {
    let server = Server::start(&["--client-count", "auto", "--start", "empty"]);
    for _ in 0..3 {
        let out = Command::new(rkms_bin())
            .args(["healthcheck", &server.addr.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    // The first real Windows client is the pool's first.
    assert_eq!(activate(server.addr, Uuid::new_v4(), true).await, 1);
}

/// One activation from workstation `rkms-selfcheck` with `cmid`; returns the reported count.
async fn activate_named_selfcheck(addr: std::net::SocketAddr, cmid: Uuid) -> u32 {
    let offer = BindOffer {
        ndr64: false,
        btfn: true,
        multiplex: true,
    };
    let mut s = Session::open(addr, offer, Duration::from_secs(10))
        .await
        .unwrap();
    let mut rq = base(cmid, true);
    rq.workstation = BaseRequest::workstation_field("rkms-selfcheck");
    let rq = build_request(Version::V6, &rq, &mut rand::rngs::OsRng);
    let (stub, _) = s.activate(&rq.bytes).await.unwrap();
    rq.verify_response(&stub.result.unwrap())
        .unwrap()
        .base
        .current_count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_real_health_check_is_exempt_also_on_a_dual_stack_listener() {
    let dir = temp_dir("selfcheck");
    let db = dir.join("clients.db");
    // A dual-stack listener sees `rkms healthcheck 127.0.0.1:PORT` as ::ffff:127.0.0.1.
    let server = Server::start_on(
        "[::]:0",
        &[
            "--client-count",
            "auto",
            "--start",
            "empty",
            "--db",
            db.to_str().unwrap(),
        ],
    );
    let port = server.addr.port();
    for _ in 0..3 {
        let out = Command::new(rkms_bin())
            .args(["healthcheck", &format!("127.0.0.1:{port}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    // Named like the health check but with another CMID: a normal client, counted and kept.
    let impostor = Uuid::new_v4();
    assert_eq!(activate_named_selfcheck(v4, impostor).await, 1);
    assert_eq!(activate(v4, Uuid::new_v4(), true).await, 2);
    drop(server);
    let clients = clients_json(&db, &[]);
    assert_eq!(clients.len(), 2, "{clients:#?}");
    let text = serde_json::to_string(&clients).unwrap();
    assert!(text.contains(&impostor.to_string()), "{text}");
    assert!(
        !text.contains(&rkms::client::CHECK_CMID.to_string()),
        "the health check was recorded: {text}"
    );
    // On an IPv4 listener too, the name alone exempts nobody.
    let server = Server::start(&["--client-count", "auto", "--start", "empty"]);
    assert_eq!(
        activate_named_selfcheck(server.addr, Uuid::new_v4()).await,
        1
    );
    assert_eq!(activate(server.addr, Uuid::new_v4(), true).await, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_empty_counts_real_clients_across_restarts() {
    let dir = temp_dir("empty");
    let db = dir.join("clients.db");
    let args = [
        "--db",
        db.to_str().unwrap(),
        "--client-count",
        "auto",
        "--start",
        "empty",
    ];
    let first = Server::start(&args);
    // Office needs 5: the first four see counts below it.
    for expected in 1..=3 {
        assert_eq!(activate(first.addr, Uuid::new_v4(), false).await, expected);
    }
    let again = clients_json(&db, &[])[0]["cmid"]
        .as_str()
        .unwrap()
        .parse::<Uuid>()
        .unwrap();
    assert_eq!(
        activate(first.addr, again, false).await,
        3,
        "a known client does not add to the count"
    );
    drop(first);
    let second = Server::start(&args);
    second.wait_log("active clients of the last 30 days loaded");
    assert_eq!(
        activate(second.addr, Uuid::new_v4(), false).await,
        4,
        "the count survives a restart"
    );
    assert_eq!(
        activate(second.addr, Uuid::new_v4(), false).await,
        5,
        "threshold reached: activated"
    );
    for _ in 0..8 {
        activate(second.addr, Uuid::new_v4(), false).await;
    }
    assert_eq!(
        activate(second.addr, Uuid::new_v4(), false).await,
        10,
        "capped at twice the threshold"
    );
    // Windows clients have their own pool.
    assert_eq!(activate(second.addr, Uuid::new_v4(), true).await, 1);
    // `rkms activate --count` charges an empty host.
    drop(second);
    let third = Server::start(&args);
    let out = Command::new(rkms_bin())
        .args([
            "activate",
            &third.addr.to_string(),
            "--count",
            "25",
            "--json",
        ])
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["current_count"], 2);
    assert_eq!(lines[0]["activated"], false);
    assert_eq!(lines[23]["current_count"], 25);
    assert_eq!(lines[23]["activated"], true);
    assert!(out.status.success(), "charged by the last request");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_activation() {
    let dir = temp_dir("sigkill");
    let db = dir.join("clients.db");
    let mut server = Server::start(&["--db", db.to_str().unwrap()]);
    let addr = server.addr;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let load = {
        let acknowledged = acknowledged.clone();
        rt.spawn(async move {
            let mut tasks = Vec::new();
            for _ in 0..4 {
                let acknowledged = acknowledged.clone();
                tasks.push(tokio::spawn(async move {
                    let offer = BindOffer {
                        ndr64: true,
                        btfn: true,
                        multiplex: true,
                    };
                    let Ok(mut s) = Session::open(addr, offer, Duration::from_secs(5)).await else {
                        return;
                    };
                    for _ in 0..2000 {
                        let cmid = Uuid::new_v4();
                        let rq =
                            build_request(Version::V6, &base(cmid, true), &mut rand::rngs::OsRng);
                        match s.activate(&rq.bytes).await {
                            Ok((stub, _)) if stub.result.is_ok() => {
                                acknowledged.lock().unwrap().push(cmid)
                            }
                            _ => return,
                        }
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        })
    };
    // Let the load run, then kill the server hard.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while acknowledged.lock().unwrap().len() < 300 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.child().kill().unwrap();
    server.child().wait().unwrap();
    rt.block_on(load).unwrap();
    let acked: Vec<Uuid> = acknowledged.lock().unwrap().clone();
    assert!(
        acked.len() >= 300,
        "only {} activations before the kill",
        acked.len()
    );
    let records = clients_json(&db, &[]);
    let stored: HashSet<String> = records
        .iter()
        .map(|r| r["cmid"].as_str().unwrap().to_string())
        .collect();
    let lost: Vec<&Uuid> = acked
        .iter()
        .filter(|c| !stored.contains(&c.to_string()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged activations lost, e.g. {:?}",
        lost.len(),
        acked.len(),
        lost.first()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unusable_database_locations_are_refused_at_start() {
    let out = Command::new(rkms_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            "/nonexistent-dir/sub/clients.db",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent-dir/sub"), "{err}");
    let dir = temp_dir("garbage");
    let garbage = dir.join("garbage.db");
    std::fs::write(
        &garbage,
        b"this is not a database at all, not even close................",
    )
    .unwrap();
    let out = Command::new(rkms_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            garbage.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("garbage.db"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn prune_and_pykms_import() {
    let dir = temp_dir("import");
    let db = dir.join("clients.db");
    let pykms = dir.join("pykms_database.db");
    {
        let conn = rusqlite::Connection::open(&pykms).unwrap();
        conn.execute_batch(
            "CREATE TABLE clients(clientMachineId TEXT, machineName TEXT, applicationId TEXT, skuId TEXT, \
             licenseStatus TEXT, lastRequestTime INTEGER, kmsEpid TEXT, requestCount INTEGER);",
        )
        .unwrap();
        let now = rkms::clock::now_unix();
        for (cmid, name, sku, t) in [
            (
                "11111111-1111-4111-8111-111111111111",
                "PC1",
                "Windows 10 Professional",
                now - 3600,
            ),
            (
                "22222222-2222-4222-8222-222222222222",
                "PC2",
                "Office Professional Plus 2019",
                now - 40 * 86_400,
            ),
            (
                "33333333-3333-4333-8333-333333333333",
                "PC3",
                "Windows 99 Ultimate",
                now,
            ),
        ] {
            conn.execute(
                "INSERT INTO clients VALUES (?1, ?2, 'Windows', ?3, 'Activated', ?4, 'x', 3)",
                rusqlite::params![cmid, name, sku, t],
            )
            .unwrap();
        }
    }
    let out = Command::new(rkms_bin())
        .args([
            "clients",
            "import",
            pykms.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("imported 2 clients"), "{text}");
    assert!(text.contains("Windows 99 Ultimate"), "{text}");
    let records = clients_json(&db, &[]);
    assert_eq!(records.len(), 2);
    let pc1 = records.iter().find(|r| r["workstation"] == "PC1").unwrap();
    assert_eq!(pc1["product"], "Windows 10/11 Pro");
    let out = Command::new(rkms_bin())
        .args([
            "clients",
            "prune",
            "--older-than",
            "30d",
            "--db",
            db.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("pruned 1 client record not seen for 4 weeks 2 days"),
        "{text}"
    );
    assert_eq!(clients_json(&db, &[]).len(), 1);
    // The table's count line: one client, not "1 clients".
    let out = Command::new(rkms_bin())
        .args(["clients", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l == "1 client"), "{text}");
    // By workstation name (case-insensitive); a prune needs --older-than or --workstation.
    let prune = |extra: &[&str]| {
        Command::new(rkms_bin())
            .args(["clients", "prune", "--db", db.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = prune(&["--workstation", "pc9"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("pruned 0 client records"));
    assert_eq!(clients_json(&db, &[]).len(), 1);
    let out = prune(&["--workstation", "pc1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("pruned 1 client record and 1 history event"),
        "{text}"
    );
    assert!(clients_json(&db, &[]).is_empty());
    let out = prune(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--older-than"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_filter_matches_words_like_activate_product() {
    let dir = temp_dir("product-words");
    let db = dir.join("clients.db");
    let server = Server::start(&["--db", db.to_str().unwrap()]);
    activate(server.addr, Uuid::new_v4(), true).await;
    activate(server.addr, Uuid::new_v4(), false).await;
    let products = |q: &str| -> Vec<String> {
        clients_json(&db, &["--product", q])
            .iter()
            .map(|r| r["product"].as_str().unwrap().to_string())
            .collect()
    };
    // This test's Office SKU ID is not in the catalog: the record is named by its KMS group.
    for q in ["office 2019", "OFFICE 2019", "2019 office"] {
        assert_eq!(products(q), ["Office 2019"], "{q}");
    }
    for q in ["windows 11 pro", "Windows 10 Pro", "10/11 pro"] {
        assert_eq!(products(q), ["Windows 10/11 Pro"], "{q}");
    }
    assert!(products("office 2016").is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn clients_by_health_state() {
    use rkms_store::{Activation, ClientStore, SqliteStore};
    const DAY: i64 = 86_400;
    let dir = temp_dir("health-state");
    let db = dir.join("clients.db");
    let now = rkms::clock::now_unix();
    {
        let store = SqliteStore::open(&db).unwrap();
        let windows = base(Uuid::nil(), true);
        for (n, name, days_ago, hresult) in [
            (1u128, "HS-CURRENT", 1, 0),
            (2, "HS-OVERDUE", 20, 0),
            (3, "HS-RISK-LATER", 160, 0),
            (4, "HS-RISK-SOONER", 175, 0),
            (5, "HS-LAPSED", 190, 0),
            (6, "HS-FAILING", 2, 0xC004_F038),
        ] {
            store
                .record(&Activation {
                    cmid: Uuid::from_u128(n),
                    application_id: windows.application_id,
                    sku_id: windows.sku_id,
                    kms_id: windows.kms_id,
                    workstation: name.into(),
                    license_status: 1,
                    grace_minutes: 0,
                    is_vm: false,
                    protocol: "6.0".into(),
                    time: now - days_ago * DAY + 3600,
                    address: "192.0.2.1:5000".into(),
                    epid: String::new(),
                    hresult,
                })
                .unwrap();
        }
    }
    let names = |extra: &[&str]| -> Vec<String> {
        clients_json(&db, extra)
            .iter()
            .map(|r| r["workstation"].as_str().unwrap().to_string())
            .collect()
    };
    // Soonest to expire first.
    assert_eq!(
        names(&["--state", "at-risk"]),
        ["HS-RISK-SOONER", "HS-RISK-LATER"]
    );
    assert_eq!(names(&["--state", "lapsed"]), ["HS-LAPSED"]);
    assert_eq!(names(&["--state", "failing"]), ["HS-FAILING"]);
    assert_eq!(names(&["--state", "current"]), ["HS-CURRENT"]);
    // Twice a 30-day renewal interval: 20 days without renewal is still current.
    assert_eq!(
        names(&["--state", "current", "--renewal-interval", "30d"]),
        ["HS-OVERDUE", "HS-CURRENT"]
    );
    let records = clients_json(&db, &["--state", "at-risk", "--limit", "1"]);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["state"], "at-risk");
    let last = records[0]["last_activated"].as_i64().unwrap();
    assert_eq!(
        records[0]["expires"],
        rkms::clock::iso8601(last + 180 * DAY).as_str()
    );
    let failing = clients_json(&db, &["--state", "failing"]);
    assert!(failing[0]["last_activated"].is_null());
    assert!(failing[0]["expires"].is_null());
    // The table and CSV show them too.
    let out = Command::new(rkms_bin())
        .args([
            "clients",
            "--db",
            db.to_str().unwrap(),
            "--state",
            "at-risk",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("HEALTH") && text.contains("EXPIRES"),
        "{text}"
    );
    assert!(
        text.contains("at-risk") && text.contains("(in 5d)"),
        "{text}"
    );
    let out = Command::new(rkms_bin())
        .args([
            "clients",
            "--db",
            db.to_str().unwrap(),
            "--csv",
            "--state",
            "lapsed",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text
        .lines()
        .next()
        .unwrap()
        .ends_with(",state,last_activated,expires"));
    assert!(text.lines().nth(1).unwrap().contains(",lapsed,"), "{text}");
    // A state that does not exist is refused, naming the choices.
    let out = Command::new(rkms_bin())
        .args(["clients", "--db", db.to_str().unwrap(), "--state", "soon"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at-risk") && err.contains("--state"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
