//! `rkms serve` with its dashboard: the web server runs beside the KMS listener, shows real
//! activations, metrics and readiness; a taken port only turns the dashboard off; a public
//! address needs a token.

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{rkms_bin, Server};

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

#[test]
fn dashboard_shows_real_activations_and_becomes_ready() {
    let port = free_port();
    let web = format!("127.0.0.1:{port}");
    let server = Server::start(&["--web", &web, "--web-token", "s3cret"]);
    let out = Command::new(rkms_bin())
        .args([
            "activate",
            &server.addr.to_string(),
            "--name",
            "dash-pc",
            "--count",
            "2",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(get(port, "/api/v1/clients", None).0, 401, "token required");
    let (status, body) = get(port, "/api/v1/clients", Some("s3cret"));
    assert_eq!(status, 200);
    assert!(
        body.contains("dash-pc") && body.contains("Windows 10/11 Pro"),
        "{body}"
    );
    let (_, metrics) = get(port, "/metrics", Some("s3cret"));
    assert!(
        metrics.contains(
            r#"rkms_activations_total{protocol="6",family="windows-client",result="activated"} 2"#
        ),
        "{metrics}"
    );
    assert_eq!(get(port, "/livez", None).0, 200);
    // Ready once the self-check through the real protocol has succeeded.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(port, "/readyz", None);
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "not ready: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The self-check is not a client.
    let (_, body) = get(port, "/api/v1/clients", Some("s3cret"));
    assert!(!body.contains("rkms-selfcheck"), "{body}");
    let (status, page) = get(port, "/", Some("s3cret"));
    assert_eq!(status, 200);
    assert!(
        page.contains("dash-pc") || page.contains("Windows"),
        "overview lists activity"
    );
}

#[test]
fn taken_port_turns_only_the_dashboard_off() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let web = taken.local_addr().unwrap().to_string();
    let server = Server::start(&["--web", &web]);
    server.wait_log("dashboard is off");
    let out = Command::new(rkms_bin())
        .args(["activate", &server.addr.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "activations continue");
}

#[test]
fn public_dashboard_needs_a_token() {
    let out = Command::new(rkms_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            "none",
            "--web",
            "0.0.0.0:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--web-token"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
