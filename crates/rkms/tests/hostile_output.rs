//! Output that clients (or a foreign KMS host) control: text logs, `rkms clients` tables and
//! CSV, `rkms activate`; closed pipes; files (pid file, database permissions); stored times
//! no page can show; masked secrets; small start-up messages.

mod common;
mod web_common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{rkms_bin, Server};
use rkms_store::{Activation, ClientStore, SqliteStore};
use uuid::Uuid;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rkms-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Characters no output may carry raw (see `rkms::escape::is_unsafe`), except the line end.
fn has_unsafe(text: &str) -> bool {
    text.chars()
        .any(|c| c != '\n' && rkms::escape::is_unsafe(c))
}

/// A workstation name that tries everything within the 64 characters the protocol carries: a
/// forged line, forged fields, a window title, clearing the screen, a C1 control, a bidi
/// override.
const HOSTILE_NAME: &str =
    "PC01 cmid=x product=y\nZ INFO XFORGEDX\u{1b}]0;t\u{7}\u{1b}[2J\u{9b}1m\u{202e}\r";

/// The `key=value` tokens of a text log line (spaces inside quotes do not split).
fn fields(line: &str) -> Vec<(String, String)> {
    let mut tokens = vec![String::new()];
    let (mut quoted, mut escaped) = (false, false);
    for c in line.chars() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == ' ' && !quoted {
            tokens.push(String::new());
            continue;
        }
        tokens.last_mut().unwrap().push(c);
    }
    tokens
        .into_iter()
        .filter_map(|t| {
            let (k, v) = t.split_once('=')?;
            (!k.is_empty() && !k.contains('"')).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

#[test]
fn a_forged_workstation_name_is_one_log_line_with_one_of_each_field() {
    let server = Server::start(&[]);
    let cmid = "0c63a4d6-6a3c-4a2e-9a4c-1b2d3e4f5a61";
    let out = Command::new(rkms_bin())
        .args(["activate", &server.addr.to_string(), "--cmid", cmid])
        .args(["--name", HOSTILE_NAME])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let line = server.wait_log(cmid);
    // Give a forged second line the time to arrive, were there one.
    std::thread::sleep(Duration::from_millis(200));
    let log = server.log();
    assert!(
        log.iter().all(|l| !has_unsafe(l)),
        "raw control characters in the log: {log:#?}"
    );
    let forged: Vec<&String> = log.iter().filter(|l| l.contains("XFORGEDX")).collect();
    assert_eq!(forged, [&line], "one request, one line: {log:#?}");
    let keys: Vec<String> = fields(&line).into_iter().map(|f| f.0).collect();
    for key in [
        "client",
        "workstation",
        "cmid",
        "product",
        "sku",
        "kms_id",
        "protocol",
    ] {
        assert_eq!(
            keys.iter().filter(|k| *k == key).count(),
            1,
            "field {key} in {line}"
        );
    }
    assert!(line.contains(&format!(" cmid={cmid} ")), "{line}");
    assert!(
        line.contains("workstation=\"PC01 cmid=x product=y\\nZ INFO XFORGEDX\\u{1b}]0;t\\u{7}"),
        "{line}"
    );
    // JSON logs escape in their own way: still one line.
    let json = Server::start(&["--log-format", "json"]);
    let out = Command::new(rkms_bin())
        .args(["activate", &json.addr.to_string(), "--cmid", cmid])
        .args(["--name", HOSTILE_NAME])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let line = json.wait_log(cmid);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["workstation"], HOSTILE_NAME);
}

fn activation(cmid: u128, workstation: &str, address: &str, time: i64) -> Activation {
    Activation {
        cmid: Uuid::from_u128(cmid),
        application_id: "55c92734-d682-4d71-983e-d6ec3f16059f".parse().unwrap(),
        sku_id: "2de67392-b7a7-462a-b1ca-108dd189f588".parse().unwrap(),
        kms_id: "58e2134f-8e11-4d17-9cb2-91069c151148".parse().unwrap(),
        workstation: workstation.into(),
        license_status: 2,
        grace_minutes: 0,
        is_vm: false,
        protocol: "6.0".into(),
        time,
        address: address.into(),
        epid: "03612-00206-471-452343-03-1033-17763.0000-2692019".into(),
        hresult: 0,
    }
}

/// Hostile names a spreadsheet would run or a terminal obey.
const NAMES: &[&str] = &[
    "=HYPERLINK(\"http://evil.example/\",\"click\")",
    "+SUM(1,2)",
    "-2+3",
    "@SUM(A1)",
    "\t=1+1",
    "one\rtwo",
    "line\nbreak",
    "\u{1b}]0;pwned\u{7}\u{1b}[2J",
    "plain, \"quoted\"",
    "PC-NORMAL",
];

fn hostile_db(dir: &Path) -> PathBuf {
    let path = dir.join("clients.db");
    let store = SqliteStore::open(&path).unwrap();
    let now = rkms::clock::now_unix();
    for (i, name) in NAMES.iter().enumerate() {
        store
            .record(&activation(
                i as u128 + 1,
                name,
                "::ffff:127.0.0.1",
                now - i as i64,
            ))
            .unwrap();
    }
    path
}

fn clients(db: &Path, extra: &[&str]) -> String {
    let out = Command::new(rkms_bin())
        .args(["clients", "--db", db.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Parses CSV as RFC 4180 does: quoted fields may hold commas, quotes (doubled) and line breaks.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = vec![vec![String::new()]];
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let row = rows.last_mut().unwrap();
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                row.last_mut().unwrap().push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => row.push(String::new()),
            '\n' if !quoted => rows.push(vec![String::new()]),
            c => row.last_mut().unwrap().push(c),
        }
    }
    if rows.last() == Some(&vec![String::new()]) {
        rows.pop();
    }
    rows
}

#[test]
fn clients_table_and_csv_are_safe_from_hostile_names() {
    let dir = temp_dir("table");
    let db = hostile_db(&dir);

    let table = clients(&db, &[]);
    assert!(!has_unsafe(&table), "{table:?}");
    // Header, rule, one line per client, total: nothing split a row.
    assert_eq!(table.lines().count(), NAMES.len() + 3, "{table}");
    assert!(table.contains("\\u{1b}]0;pwned\\u{7}\\u{1b}[2J"), "{table}");
    assert!(table.contains("line\\nbreak") && table.contains("one\\rtwo"));
    assert!(!table.contains("::ffff:"), "{table}");
    assert!(table.contains("127.0.0.1"), "{table}");

    let csv = clients(&db, &["--csv"]);
    assert!(!has_unsafe(&csv.replace(['\r', '\t'], "")), "{csv:?}");
    let rows = parse_csv(&csv);
    assert_eq!(rows.len(), NAMES.len() + 1, "{csv}");
    let header = &rows[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (ws, first, last, addr) = (
        col("workstation"),
        col("first_seen"),
        col("last_seen"),
        col("last_address"),
    );
    let mut names = Vec::new();
    for row in &rows[1..] {
        assert_eq!(row.len(), header.len(), "{row:?}");
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a formula: {cell:?}"
            );
        }
        for c in [first, last] {
            let t = &row[c];
            assert!(
                t.len() == 20 && t.ends_with('Z') && &t[10..11] == "T",
                "not ISO 8601: {t}"
            );
        }
        assert_eq!(row[addr], "127.0.0.1");
        names.push(row[ws].clone());
    }
    for name in NAMES {
        let shown = if name.starts_with(['=', '+', '-', '@', '\t']) {
            format!("'{name}")
        } else {
            rkms::escape::terminal(name)
                .into_owned()
                .replace("\\r", "\r")
                .replace("\\n", "\n")
        };
        assert!(names.contains(&shown), "{shown:?} not in {names:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn activate_escapes_a_hostile_hosts_epid() {
    let epid = "03612-00206-471-452343-03-1033-17763.0000-2692019\u{1b}]0;pwned\u{7}\u{1b}[2J";
    let server = Server::start(&["--epid", epid]);
    let out = Command::new(rkms_bin())
        .args(["activate", &server.addr.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!has_unsafe(&text), "{text:?}");
    assert!(
        text.contains("2692019\\u{1b}]0;pwned\\u{7}\\u{1b}[2J"),
        "{text}"
    );
    let out = Command::new(rkms_bin())
        .args(["activate", &server.addr.to_string(), "--all-products"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!has_unsafe(&text), "{text:?}");
    let out = Command::new(rkms_bin())
        .args(["healthcheck", &server.addr.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!has_unsafe(&text) && text.contains("\\u{1b}"), "{text:?}");
    // JSON carries the ePID as it is (JSON escapes it).
    let out = Command::new(rkms_bin())
        .args(["activate", &server.addr.to_string(), "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["epid"], epid);
}

/// Runs `rkms args` with its standard output closed before it writes: it must end quietly.
fn closed_pipe(args: &[&str]) {
    let mut child = Command::new(rkms_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "rkms {args:?} did not end");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!stderr.contains("panicked"), "rkms {args:?}: {stderr}");
    assert_eq!(status.code(), Some(0), "rkms {args:?}: {stderr}");
    assert!(stderr.is_empty(), "rkms {args:?}: {stderr}");
}

#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    let dir = temp_dir("pipe");
    let db = hostile_db(&dir);
    let db = db.to_str().unwrap();
    let server = Server::start(&[]);
    let host = server.addr.to_string();
    for args in [
        &["products", "--json"][..],
        &["products"],
        &[
            "guide",
            "2de67392-b7a7-462a-b1ca-108dd189f588",
            "--host",
            "kms.example",
        ],
        &["clients", "--db", db],
        &["clients", "--db", db, "--json"],
        &["clients", "--db", db, "--csv"],
        &["activate", &host, "--count", "50"],
        &["activate", &host, "--count", "50", "--json"],
        &["activate", &host, "--all-products"],
        &["completions", "bash"],
        &["completions", "zsh"],
        &["completions", "fish"],
        &["completions", "man"],
        &["epid"],
        &["config", "example"],
        &["dns-record", "--host", "kms.example", "--domain", "example"],
        &["healthcheck", &host],
    ] {
        closed_pipe(args);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn the_pid_file_never_follows_a_symbolic_link() {
    let dir = temp_dir("pidfile");
    let target = dir.join("precious");
    std::fs::write(&target, "precious data\n").unwrap();
    let pidfile = dir.join("rkms.pid");
    std::os::unix::fs::symlink(&target, &pidfile).unwrap();
    let mut server = Server::start(&["--pidfile", pidfile.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "precious data\n",
        "the link's target was written"
    );
    let meta = std::fs::symlink_metadata(&pidfile).unwrap();
    assert!(meta.file_type().is_file(), "the link is replaced by a file");
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        format!("{}\n", server.child().id())
    );
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn a_new_database_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("dbmode");
    let db = dir.join("clients.db");
    // Under the usual umask 022, files would be world-readable.
    let mut command = Command::new("sh");
    command.args([
        "-c",
        "umask 022; exec \"$0\" \"$@\"",
        rkms_bin(),
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--web",
        "off",
        "--db",
        db.to_str().unwrap(),
    ]);
    let server = Server::spawn(&mut command);
    let out = Command::new(rkms_bin())
        .args(["activate", &server.addr.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for suffix in ["", "-wal", "-shm"] {
        let path = dir.join(format!("clients.db{suffix}"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}: {mode:o}", path.display());
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_survives_any_stored_time() {
    let dir = temp_dir("times");
    let path = dir.join("clients.db");
    let store = SqliteStore::open(&path).unwrap();
    let now = rkms::clock::now_unix();
    for i in 0..4u128 {
        store
            .record(&activation(i + 1, "PC", "::ffff:10.0.0.1", now))
            .unwrap();
    }
    // Times no calendar shows, written behind the store's back (as a bad import did).
    let conn = rusqlite::Connection::open(&path).unwrap();
    for (i, t) in [i64::MIN, i64::MAX, -1, 253_402_300_800].iter().enumerate() {
        let cmid = Uuid::from_u128(i as u128 + 1).to_string();
        conn.execute(
            "UPDATE clients SET first_seen = ?1, last_seen = ?1 WHERE cmid = ?2",
            rusqlite::params![t, cmid],
        )
        .unwrap();
        conn.execute(
            "UPDATE activations SET time = ?1 WHERE cmid = ?2",
            rusqlite::params![t, cmid],
        )
        .unwrap();
    }
    drop(conn);
    let store: Arc<dyn ClientStore> = Arc::new(store);
    let host = web_common::start(web_common::Options {
        store: Some(store),
        ..Default::default()
    })
    .await;
    let cmid = Uuid::from_u128(1);
    for page in [
        "/".to_string(),
        "/clients".into(),
        "/clients?sort=last_seen".into(),
        "/clients?sort=first_seen&order=asc".into(),
        format!("/clients/{cmid}"),
        "/settings".into(),
        "/metrics".into(),
        "/api/v1/stats".into(),
        "/api/v1/clients".into(),
        format!("/api/v1/clients/{cmid}"),
        "/api/v1/activations".into(),
    ] {
        let r = web_common::get(host.web, &page).await;
        assert_eq!(r.status, 200, "{page}: {}", r.body);
        assert!(!r.body.contains("::ffff:"), "{page}: {}", r.body);
    }
    let stats = web_common::get(host.web, "/api/v1/stats").await.json();
    assert_eq!(stats["activations"]["total"]["activated"], 4, "{stats}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn importing_impossible_times_is_refused_and_reported() {
    let dir = temp_dir("import");
    let source = dir.join("pykms_database.db");
    let conn = rusqlite::Connection::open(&source).unwrap();
    conn.execute_batch(
        "CREATE TABLE clients(clientMachineId TEXT, machineName TEXT, applicationId TEXT, \
         skuId TEXT, licenseStatus TEXT, lastRequestTime INTEGER, kmsEpid TEXT, \
         requestCount INTEGER)",
    )
    .unwrap();
    let now = rkms::clock::now_unix();
    for (i, t) in [i64::MIN, i64::MAX, 253_402_300_799, now - 60]
        .iter()
        .enumerate()
    {
        conn.execute(
            "INSERT INTO clients VALUES (?1, 'PC', 'Windows', 'Windows 10 Professional', \
             'Activated', ?2, 'e', 1)",
            rusqlite::params![Uuid::from_u128(i as u128 + 1).to_string(), t],
        )
        .unwrap();
    }
    drop(conn);
    let db = dir.join("clients.db");
    let out = Command::new(rkms_bin())
        .args(["clients", "import", source.to_str().unwrap()])
        .args(["--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("imported 1 client "), "{text}");
    assert!(
        text.contains("not imported: 3 clients with an impossible lastRequestTime"),
        "{text}"
    );
    let json = clients(&db, &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_check_masks_the_token_and_the_database_password() {
    let out = Command::new(rkms_bin())
        .args(["config", "check"])
        .env("RKMS_WEB_TOKEN", "s3cret-token")
        .env("RKMS_DB", "postgres://rkms:s3cret-pw@db.example:5432/rkms")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !text.contains("s3cret") && !err.contains("s3cret"),
        "{text}{err}"
    );
    if out.status.success() {
        assert!(text.contains("(set)"), "{text}");
        assert!(
            text.contains("postgres://rkms@db.example:5432/rkms"),
            "{text}"
        );
    }
}

#[test]
fn a_busy_port_says_so() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(rkms_bin())
        .args(["serve", "--listen", &addr, "--db", "none", "--web", "off"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is in use by another process") && err.contains("--listen ADDR:PORT"),
        "{err}"
    );
    assert!(!err.contains("falling back"), "{err}");
}

#[test]
fn a_products_file_may_start_with_a_byte_order_mark() {
    let dir = temp_dir("bom");
    let file = dir.join("products.json");
    let extension = r#"{"lcids": [9999]}"#;
    std::fs::write(&file, format!("\u{feff}{extension}")).unwrap();
    let out = Command::new(rkms_bin())
        .args(["products", "--products", file.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_log_level_is_case_insensitive() {
    for level in ["DEBUG", "Info", "WARN"] {
        let out = Command::new(rkms_bin())
            .args(["--log-level", level, "dns-record", "--host", "kms.example"])
            .args(["--domain", "example"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{level}: {out:?}");
        let out = Command::new(rkms_bin())
            .args(["dns-record", "--host", "kms.example", "--domain", "example"])
            .env("RKMS_LOG_LEVEL", level)
            .output()
            .unwrap();
        assert!(out.status.success(), "{level}: {out:?}");
    }
    let out = Command::new(rkms_bin())
        .args(["--log-level", "loud", "epid"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn no_color_turns_colours_off() {
    // Logs are coloured on a terminal only; NO_COLOR (any non-empty value) turns that off.
    assert!(rkms::logging::use_colour(true, None));
    assert!(!rkms::logging::use_colour(false, None));
    assert!(!rkms::logging::use_colour(true, Some("1".into())));
    assert!(rkms::logging::use_colour(true, Some("".into())));
}
