//! Two rkms hosts share one PostgreSQL over verified TLS (`sslmode=verify-full` with the
//! database's CA), as they do without TLS (two_hosts.rs): they report the combined count,
//! `rkms clients` and `rkms clients migrate` use the same connection settings, the dashboard's
//! configuration and `/readyz` work, and no password shows anywhere. Client-certificate
//! authentication works for a host too.
//!
//! The test starts its own throw-away PostgreSQL with `ssl = on` and certificates made here
//! (crates/rkms-store/tests/tls_server/mod.rs). Needs PostgreSQL's server binaries (CI
//! installs them through scripts/with-postgres.sh); without them the test is reported as
//! ignored, not passed.

mod common;
#[path = "../../rkms-store/tests/tls_server/mod.rs"]
mod tls_server;

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{rkms_bin, Server};
use libtest_mimic::{Arguments, Failed, Trial};
use tls_server::{find_bindir, Certs, PgServer};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET over plain HTTP/1.1; returns (status, body).
fn get(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
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

fn start(bindir: &std::path::Path, certs: &Certs) -> PgServer {
    PgServer::start(bindir, Some(certs)).unwrap_or_else(|e| panic!("{e}"))
}

fn two_hosts_share_the_count_over_verified_tls() -> Result<(), Failed> {
    let bindir = find_bindir().ok_or("PostgreSQL server binaries not found")?;
    let certs = Certs::new();
    let pg = start(&bindir, &certs);
    pg.schema("shared");
    let url = pg.url(
        "localhost",
        &format!(
            "?sslmode=verify-full&sslrootcert={}&application_name=rkms_tls_hosts\
             &options=-csearch_path%3Dshared",
            certs.ca.display()
        ),
    );
    let web = free_port();
    let web_addr = format!("127.0.0.1:{web}");
    let common = [
        "--db",
        url.as_str(),
        "--client-count",
        "auto",
        "--start",
        "empty",
        "--count-refresh",
        "1",
    ];
    let mut with_web = common.to_vec();
    with_web.extend(["--web", &web_addr, "--web-token", "t0ken"]);
    let a = Server::start(&with_web);
    let b = Server::start(&common);

    // Office needs 5: charge alternately from both hosts, 3 on A and 2 on B.
    let product = "Office Professional Plus 2019";
    for i in 0..5 {
        let host = if i % 2 == 0 { a.addr } else { b.addr };
        activate_json(host, product);
    }
    // After a refresh, each host reports the combined count for the next new client.
    let deadline = Instant::now() + Duration::from_secs(15);
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
        if Instant::now() >= deadline {
            return Err(format!("hosts do not see each other's clients: {ca}, {cb}").into());
        }
    }
    // Every connection the hosts hold is encrypted.
    let tls = pg.tls_in_use("rkms_tls_hosts");
    if tls.len() < 2 || !tls.iter().all(|t| *t) {
        return Err(format!("connections without TLS: {tls:?}").into());
    }

    // `rkms clients` reads the same database with the same settings.
    let out = Command::new(rkms_bin())
        .args(["clients", "--json", "--db", &url])
        .output()?;
    let list: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out.stderr)))?;
    if list.as_array().map_or(0, Vec::len) < 7 {
        return Err(format!("rkms clients: {list}").into());
    }

    // /readyz (store writable over TLS) and the dashboard's configuration.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = get(web, "/readyz", None);
        if status == 200 {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!("not ready: {body}").into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, config) = get(web, "/api/v1/config", Some("t0ken"));
    let (_, settings) = get(web, "/settings", Some("t0ken"));
    let shown = format!(
        "postgres://rkms_test@localhost:{}/rkms_test?sslmode=verify-full",
        pg.port
    );
    if status != 200 || !config.contains(&shown) || !settings.contains(&shown) {
        return Err(format!("dashboard database: {status} {config}").into());
    }
    // The password shows nowhere.
    for (what, text) in [
        ("config", config),
        ("settings", settings),
        ("log A", a.log().join("\n")),
        ("log B", b.log().join("\n")),
        ("clients", String::from_utf8_lossy(&out.stderr).into_owned()),
    ] {
        if text.contains(&pg.password) {
            return Err(format!("password in {what}").into());
        }
    }
    Ok(())
}

fn migrate_and_client_certificate_login() -> Result<(), Failed> {
    let bindir = find_bindir().ok_or("PostgreSQL server binaries not found")?;
    let certs = Certs::new();
    let pg = start(&bindir, &certs);
    let dir = std::env::temp_dir().join(format!("rkms-tls-migrate-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("clients.db");
    let server = Server::start(&["--db", db.to_str().unwrap()]);
    for _ in 0..4 {
        activate_json(server.addr, "Windows 10/11 Pro");
    }
    drop(server);
    // Role rkms_cert logs in with its client certificate only (pg_hba.conf: `hostssl … cert`).
    let url = pg.cert_url(
        "127.0.0.1",
        &format!(
            "?sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
            certs.ca.display(),
            certs.client_cert.display(),
            certs.client_key.display()
        ),
    );
    let out = Command::new(rkms_bin())
        .args([
            "clients",
            "migrate",
            "--from",
            db.to_str().unwrap(),
            "--to",
            &url,
        ])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains("copied 4 client records") {
        return Err(format!("migrate: {stdout} {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    // A host serves from it, and `rkms clients` lists the records.
    let host = Server::start(&["--db", &url]);
    activate_json(host.addr, "Windows 10/11 Pro");
    drop(host);
    let out = Command::new(rkms_bin())
        .args(["clients", "--json", "--db", &url])
        .output()?;
    let list: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out.stderr)))?;
    if list.as_array().map_or(0, Vec::len) != 5 {
        return Err(format!("rkms clients: {list}").into());
    }
    // A host whose CA is not the server's does not start, and says why.
    let bad = pg.cert_url(
        "127.0.0.1",
        &format!(
            "?sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}&connect_timeout=5",
            certs.other_ca.display(),
            certs.client_cert.display(),
            certs.client_key.display()
        ),
    );
    let out = Command::new(rkms_bin())
        .args(["clients", "--db", &bad])
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || !stderr.contains("the server's certificate is not trusted") {
        return Err(format!("wrong CA: {stderr}").into());
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

type TestFn = fn() -> Result<(), Failed>;

fn main() {
    let args = Arguments::from_args();
    let tests: [(&str, TestFn); 2] = [
        (
            "two_hosts_share_the_count_over_verified_tls",
            two_hosts_share_the_count_over_verified_tls,
        ),
        (
            "migrate_and_client_certificate_login",
            migrate_and_client_certificate_login,
        ),
    ];
    let missing = find_bindir().is_none();
    if missing {
        eprintln!(
            "PostgreSQL server binaries (initdb, pg_ctl, psql) not found: the TLS tests are \
             ignored (install PostgreSQL, e.g. through scripts/with-postgres.sh)"
        );
    }
    let trials = tests
        .into_iter()
        .map(|(name, f)| Trial::test(name, f).with_ignored_flag(missing))
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
