//! Several hosts, one truth: two `rkms serve` processes sharing one PostgreSQL database report
//! the combined count, and `rkms clients` on either database URL lists every client; SQLite
//! records migrate to PostgreSQL. Runs when RKMS_TEST_POSTGRES names a database (CI starts
//! one with scripts/with-postgres.sh); skipped otherwise.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{rkms_bin, Server};

/// A fresh schema in the test database, dropped afterwards.
struct Schema {
    base: String,
    name: String,
    url: String,
}

impl Schema {
    fn new(label: &str) -> Option<Schema> {
        let Ok(base) = std::env::var("RKMS_TEST_POSTGRES") else {
            eprintln!("RKMS_TEST_POSTGRES not set: PostgreSQL tests skipped");
            return None;
        };
        let name = format!(
            "t_{label}_{}_{}",
            std::process::id(),
            Instant::now().elapsed().subsec_nanos()
        );
        let mut admin = postgres::Client::connect(&base, postgres::NoTls)
            .expect("connect to RKMS_TEST_POSTGRES");
        admin
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{name}");
        Some(Schema { base, name, url })
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

fn activate_json(addr: std::net::SocketAddr, product: &str) -> serde_json::Value {
    let out = Command::new(rkms_bin())
        .args([
            "activate",
            &addr.to_string(),
            "--product",
            product,
            "--json",
        ])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[cfg_attr(
    not(rkms_test_postgres),
    ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
)]
#[test]
fn two_hosts_share_clients_and_count() {
    let Some(schema) = Schema::new("two_hosts") else {
        return;
    };
    let args = [
        "--db",
        schema.url.as_str(),
        "--client-count",
        "auto",
        "--start",
        "empty",
        "--count-refresh",
        "1",
    ];
    let a = Server::start(&args);
    let b = Server::start(&args);
    // Office needs 5: charge alternately from both hosts, 3 on A and 2 on B.
    let product = "Office Professional Plus 2019";
    for i in 0..5 {
        let host = if i % 2 == 0 { a.addr } else { b.addr };
        activate_json(host, product);
    }
    // After a refresh, each host reports the combined count for the next new client.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(1200));
        let va = activate_json(a.addr, product);
        let vb = activate_json(b.addr, product);
        let (ca, cb) = (
            va["current_count"].as_u64().unwrap(),
            vb["current_count"].as_u64().unwrap(),
        );
        if ca >= 6 && cb >= 7 {
            assert_eq!(vb["activated"], true);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "hosts do not see each other's clients: {ca}, {cb}"
        );
    }
    let out = Command::new(rkms_bin())
        .args(["clients", "--json", "--db", &schema.url])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(list.as_array().unwrap().len() >= 7, "{list}");
    // The password never shows in the logs.
    assert!(
        a.log()
            .iter()
            .all(|l| !l.contains("password=") && !l.contains(":rkms@"))
            || !schema.url.contains('@')
    );
}

#[cfg_attr(
    not(rkms_test_postgres),
    ignore = "needs PostgreSQL: set RKMS_TEST_POSTGRES (scripts/with-postgres.sh does)"
)]
#[test]
fn sqlite_records_migrate_to_postgres() {
    let Some(schema) = Schema::new("migrate") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("rkms-migrate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("clients.db");
    let server = Server::start(&["--db", db.to_str().unwrap()]);
    for _ in 0..4 {
        activate_json(server.addr, "Windows 10/11 Pro");
    }
    drop(server);
    let out = Command::new(rkms_bin())
        .args([
            "clients",
            "migrate",
            "--from",
            db.to_str().unwrap(),
            "--to",
            &schema.url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("copied 4 client records"));
    let out = Command::new(rkms_bin())
        .args(["clients", "--json", "--db", &schema.url])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 4);
    let _ = std::fs::remove_dir_all(&dir);
}
