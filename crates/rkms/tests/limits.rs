//! Limits and protections of `rkms serve`: connection limit, calls per connection,
//! disconnect after request, per-address rate limit.

mod common;

use std::time::Duration;

use common::{assert_closed, client_pdus, connect, read_pdu, send, testdata, Server};

fn good() -> (Vec<u8>, Vec<u8>) {
    let p = client_pdus(&testdata().join("vectors/probe-vlmcsd/probe-vlmcsd-good-ndr32.hex"));
    (p[0].clone(), p[1].clone())
}

#[test]
fn connection_limit_makes_new_connections_wait() {
    let server = Server::start(&["--max-connections", "2"]);
    let (bind, _) = good();
    let mut a = connect(server.addr);
    let mut b = connect(server.addr);
    send(&mut a, &bind);
    send(&mut b, &bind);
    read_pdu(&mut a).unwrap();
    read_pdu(&mut b).unwrap();
    // The third is queued by the kernel but not served while two are open.
    let mut c = connect(server.addr);
    send(&mut c, &bind);
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut byte = [0u8; 1];
    let r = std::io::Read::read(&mut c, &mut byte);
    assert!(
        r.is_err(),
        "third connection served while at the limit: {r:?}"
    );
    let report = server.wait_log("connection limits at work");
    assert!(report.contains("waited_at_limit=1"), "{report}");
    drop(a);
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        read_pdu(&mut c).unwrap()[2],
        12,
        "served once a slot is free"
    );
}

#[test]
fn calls_per_connection_and_disconnect_after_request() {
    let (bind, request) = good();
    let server = Server::start(&["--max-calls-per-connection", "2"]);
    let mut s = connect(server.addr);
    send(&mut s, &bind);
    read_pdu(&mut s).unwrap();
    for _ in 0..2 {
        send(&mut s, &request);
        assert_eq!(read_pdu(&mut s).unwrap()[2], 2);
    }
    assert_closed(&mut s, Duration::from_secs(3));
    server.wait_log("maximum calls per connection reached");

    let server = Server::start(&["--disconnect-after-request"]);
    let mut s = connect(server.addr);
    send(&mut s, &bind);
    read_pdu(&mut s).unwrap();
    send(&mut s, &request);
    assert_eq!(read_pdu(&mut s).unwrap()[2], 2);
    assert_closed(&mut s, Duration::from_secs(3));
}

#[test]
fn rate_limit_trips_once_per_minute_in_the_log() {
    let (bind, request) = good();
    let server = Server::start(&["--rate-limit", "3"]);
    let mut s = connect(server.addr);
    send(&mut s, &bind);
    read_pdu(&mut s).unwrap();
    for _ in 0..3 {
        send(&mut s, &request);
        assert_eq!(read_pdu(&mut s).unwrap()[2], 2);
    }
    send(&mut s, &request);
    assert_closed(&mut s, Duration::from_secs(3));
    // Further attempts are refused too, without more log lines.
    for _ in 0..3 {
        let mut s = connect(server.addr);
        send(&mut s, &bind);
        read_pdu(&mut s).unwrap();
        send(&mut s, &request);
        assert_closed(&mut s, Duration::from_secs(3));
    }
    server.wait_log("rate limit reached");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        server
            .log()
            .iter()
            .filter(|l| l.contains("rate limit reached"))
            .count(),
        1
    );
}

#[test]
fn rate_limit_counts_a_fragmented_request_once() {
    let (bind, request) = good();
    // The request as two fragments (first, then last), each with the request's header.
    let frag = |flags: u8, part: &[u8]| {
        let mut p = request[..24].to_vec();
        p[3] = flags;
        p.extend_from_slice(part);
        let len = p.len() as u16;
        p[8..10].copy_from_slice(&len.to_le_bytes());
        p
    };
    let stub = &request[24..];
    let server = Server::start(&["--rate-limit", "3"]);
    let mut s = connect(server.addr);
    send(&mut s, &bind);
    read_pdu(&mut s).unwrap();
    for _ in 0..3 {
        send(&mut s, &frag(0x01, &stub[..100]));
        send(&mut s, &frag(0x02, &stub[100..]));
        assert_eq!(read_pdu(&mut s).unwrap()[2], 2, "answered");
    }
    send(&mut s, &frag(0x01, &stub[..100]));
    assert_closed(&mut s, Duration::from_secs(3));
}

#[test]
fn private_only_serves_loopback() {
    let (bind, request) = good();
    let server = Server::start(&["--private-only"]);
    let mut s = connect(server.addr);
    send(&mut s, &bind);
    read_pdu(&mut s).unwrap();
    send(&mut s, &request);
    assert_eq!(read_pdu(&mut s).unwrap()[2], 2);
}

#[cfg_attr(
    not(feature = "sqlite"),
    ignore = "keeps its records in an SQLite file: needs the `sqlite` feature"
)]
#[test]
fn backlog_and_store_wait_zero_and_a_small_db_cache_are_accepted_and_serve() {
    let dir = std::env::temp_dir().join(format!("rkms-limits-db-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("c.db");
    let (bind, request) = good();
    let server = Server::start(&[
        "--backlog",
        "16",
        "--store-wait",
        "0",
        "--db-cache",
        "64",
        "--db",
        db.to_str().unwrap(),
    ]);
    let mut s = connect(server.addr);
    send(&mut s, &bind);
    read_pdu(&mut s).unwrap();
    send(&mut s, &request);
    assert_eq!(read_pdu(&mut s).unwrap()[2], 2);
    // Without waiting, the record still reaches the database soon after.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let out = std::process::Command::new(common::rkms_bin())
            .args(["clients", "--json", "--db", db.to_str().unwrap()])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if v.as_array().is_some_and(|a| a.len() == 1) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "record not written");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = std::process::Command::new(common::rkms_bin())
        .args(["serve", "--backlog", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A page cache below 64 KiB is refused by name.
    let out = std::process::Command::new(common::rkms_bin())
        .args(["serve", "--db-cache", "8"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--db-cache"));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
