//! Operations helpers: `rkms healthcheck`, `rkms activate` with DNS SRV discovery and
//! fallback, `rkms dns-record`, shell completions and the man page.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::str::FromStr;

use common::{rkms_bin, Server};
use hickory_resolver::proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::SRV;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};

/// Answers `_vlmcs._tcp.<domain>` SRV queries with `targets` (priority, weight, port, target).
fn dns_responder(domain: &str, targets: Vec<(u16, u16, u16, String)>) -> SocketAddr {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let srv = Name::from_str(&format!("_vlmcs._tcp.{domain}.")).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((len, peer)) = socket.recv_from(&mut buf) {
            let Ok(rq) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            let mut resp = Message::new(rq.metadata.id, MessageType::Response, OpCode::Query);
            resp.metadata.authoritative = true;
            resp.metadata.recursion_desired = rq.metadata.recursion_desired;
            resp.queries = rq.queries.clone();
            match rq.queries.first() {
                Some(q) if q.name == srv && q.query_type == RecordType::SRV => {
                    for (p, w, port, target) in &targets {
                        let rdata =
                            RData::SRV(SRV::new(*p, *w, *port, Name::from_str(target).unwrap()));
                        resp.answers
                            .push(Record::from_rdata(srv.clone(), 60, rdata));
                    }
                }
                _ => resp.metadata.response_code = ResponseCode::NXDomain,
            }
            if let Ok(bytes) = resp.to_vec() {
                let _ = socket.send_to(&bytes, peer);
            }
        }
    });
    addr
}

#[test]
fn healthcheck_live_and_dead() {
    // The host's own checks are logged at debug level.
    let server = Server::start(&["--log-level", "debug"]);
    let out = Command::new(rkms_bin())
        .args(["healthcheck", &server.addr.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("healthy:"));
    // The check is not logged as a client activation under its own name... but it is answered.
    server.wait_log("workstation=rkms-selfcheck");
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    let out = Command::new(rkms_bin())
        .args(["healthcheck", &addr.to_string(), "--timeout", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("unhealthy:"));
}

#[test]
fn activate_finds_hosts_through_srv_and_falls_back() {
    let server = Server::start(&[]);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    // Priority 0 is dead; priority 10 is our server.
    let dns = dns_responder(
        "kms.test",
        vec![
            (0, 100, dead_port, "127.0.0.1.".into()),
            (10, 0, server.addr.port(), "127.0.0.1.".into()),
        ],
    );
    let out = Command::new(rkms_bin())
        .args([
            "activate",
            "--domain",
            "kms.test",
            "--dns-server",
            &dns.to_string(),
            "--json",
            "--timeout",
            "2",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(v["address"], server.addr.to_string());
    // No records: the error Windows shows.
    let out = Command::new(rkms_bin())
        .args([
            "activate",
            "--domain",
            "other.test",
            "--dns-server",
            &dns.to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("0x8007232B"));
}

#[test]
fn dns_record_refuses_names_and_ports_that_make_broken_records() {
    for (args, says) in [
        (
            &["--host", "", "--domain", "example.lan"][..],
            "--host '': a DNS name is needed",
        ),
        (
            &["--host", "kms1", "--domain", ""][..],
            "--domain '': a DNS name is needed",
        ),
        (
            &["--host", "bad host!", "--domain", "example.lan"][..],
            "' ' cannot be part of a DNS name",
        ),
        (
            &["--host", "kms1", "--domain", "ex..lan"][..],
            "1 to 63 characters",
        ),
        (
            &["--host", "kms1", "--domain", "example.lan", "--port", "0"][..],
            "--port 0",
        ),
    ] {
        let out = Command::new(rkms_bin())
            .arg("dns-record")
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed records");
    }
}

#[test]
fn dns_record_completions_and_man_page() {
    let out = Command::new(rkms_bin())
        .args(["dns-record", "--host", "kms1", "--domain", "example.lan"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("_vlmcs._tcp.example.lan. 10800 IN SRV 0 0 1688 kms1.example.lan."),
        "{text}"
    );
    assert!(text.contains("srv-host=_vlmcs._tcp.example.lan,kms1.example.lan,1688"));
    // Shell completions and man pages: builds with `completions` (the default).
    if cfg!(feature = "completions") {
        let out = Command::new(rkms_bin())
            .args(["completions", "bash"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("_rkms()") && text.contains("--client-count"),
            "bash completion"
        );
        let out = Command::new(rkms_bin())
            .args(["completions", "man"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(".TH rkms") && text.contains("serve"),
            "{}",
            &text[..200.min(text.len())]
        );
        let out = Command::new(rkms_bin())
            .args(["completions", "tcsh"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
    }
}
