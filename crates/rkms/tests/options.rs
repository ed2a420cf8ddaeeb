//! Options no other test exercises: `rkms activate --cmid/--sku-id/--kms-id/--app-id`, the
//! bind options `--no-ndr64/--no-btfn/--no-multiplex`, `rkms serve --max-pdu-size` and
//! `--max-call-size`, `rkms dns-record` with every value set, and `rkms bench --duration`.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{assert_closed, client_pdus, connect, read_pdu, rkms_bin, send, testdata, Server};
use serde_json::Value;

const WINDOWS_APP: &str = "55c92734-d682-4d71-983e-d6ec3f16059f";
const OFFICE_APP: &str = "0ff1ce15-a989-479d-af46-f275c6370663";
/// Office 2019's KMS ID and Office Professional Plus 2019's SKU ID (catalog entries).
const OFFICE2019_KMS: &str = "617d9eb1-ef36-4f82-86e0-a65ae07b96c6";
const PROPLUS2019_SKU: &str = "85dd8b5f-eaa4-4af3-a628-cce9e77c9a03";

/// Runs `rkms activate ADDR <args>`.
fn activate(addr: SocketAddr, args: &[&str]) -> Output {
    Command::new(rkms_bin())
        .arg("activate")
        .arg(addr.to_string())
        .args(args)
        .args(["--timeout", "5"])
        .output()
        .expect("run rkms activate")
}

/// The JSON lines `rkms activate --json` printed.
fn json_lines(out: &Output) -> Vec<Value> {
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| {
                panic!(
                    "not JSON ({e}): {l}\nstderr: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
        })
        .collect()
}

fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn activate_cmid_is_the_one_the_host_logs() {
    let server = Server::start(&[]);
    let cmid = "1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7081";
    let out = activate(server.addr, &["--cmid", cmid, "--count", "2", "--json"]);
    assert_success(&out);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    for v in &lines {
        assert_eq!(v["cmid"], cmid, "{v}");
        assert_eq!(v["activated"], true, "{v}");
        assert_eq!(v["verified"], true, "the response echoes the CMID: {v}");
    }
    let line = server.wait_log(&format!("cmid={cmid}"));
    assert!(line.contains("activated (count"), "{line}");
    // Both requests carry it (not just a fresh random one after the first).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server
        .log()
        .iter()
        .filter(|l| l.contains(&format!("cmid={cmid}")))
        .count()
        < 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "log: {:#?}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn activate_id_overrides_are_sent_to_the_host() {
    // known-volume: the host serves a KMS ID only with its own application ID, so the
    // application override matters too.
    let server = Server::start(&["--allow", "known-volume"]);
    // The default product is Windows 10/11 Pro; every ID is replaced by Office 2019's.
    let out = activate(
        server.addr,
        &[
            "--app-id",
            OFFICE_APP,
            "--kms-id",
            OFFICE2019_KMS,
            "--sku-id",
            PROPLUS2019_SKU,
            "--name",
            "override-all",
            "--json",
        ],
    );
    assert_success(&out);
    let v = &json_lines(&out)[0];
    assert_eq!(v["activated"], true, "{v}");
    assert_eq!(v["app_id"], OFFICE_APP, "{v}");
    assert_eq!(v["kms_id"], OFFICE2019_KMS, "{v}");
    assert_eq!(v["sku_id"], PROPLUS2019_SKU, "{v}");
    assert_eq!(v["product"], "Office Professional Plus 2019", "{v}");
    let line = server.wait_log("workstation=override-all");
    assert!(line.contains("activated (count"), "{line}");
    assert!(line.contains(&format!("sku={PROPLUS2019_SKU}")), "{line}");
    assert!(line.contains(&format!("kms_id={OFFICE2019_KMS}")), "{line}");
    assert!(
        line.contains("product=\"Office Professional Plus 2019\""),
        "{line}"
    );

    // Without --app-id the product's own (Windows) application is sent with Office's KMS ID,
    // which this host refuses: the application override above was really sent.
    let out = activate(
        server.addr,
        &[
            "--kms-id",
            OFFICE2019_KMS,
            "--sku-id",
            PROPLUS2019_SKU,
            "--name",
            "no-app-override",
            "--json",
        ],
    );
    assert!(!out.status.success(), "a refusal exits non-zero");
    let v = &json_lines(&out)[0];
    assert_eq!(v["app_id"], WINDOWS_APP, "{v}");
    assert_eq!(v["hresult"], "0xC004F042", "{v}");
    let line = server.wait_log("workstation=no-app-override");
    assert!(line.contains("refused 0xC004F042"), "{line}");
    assert!(line.contains(&format!("not {WINDOWS_APP}")), "{line}");
}

/// Debug log lines of the server for the connection from `workstation`, once it has closed.
fn connection_log(server: &Server, workstation: &str) -> Vec<String> {
    let line = server.wait_log(&format!("workstation={workstation} "));
    let client = line
        .split("client=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .expect("client address in the log line")
        .to_string();
    let tag = format!("client={client} ");
    let end = format!("client={client}");
    // Everything of the connection is logged before its close.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<String> = server
            .log()
            .into_iter()
            .filter(|l| l.contains(&tag) || l.ends_with(&end))
            .collect();
        if has(&lines, "client closed the connection") {
            return lines;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "connection {client} not closed; log: {:#?}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn has(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

#[test]
fn activate_bind_offer_options_shape_the_negotiation() {
    let server = Server::start(&["--log-level", "debug"]);
    let run = |name: &str, extra: &[&str]| -> (Vec<Value>, Vec<String>) {
        let mut args = vec!["--count", "2", "--json", "--name", name];
        args.extend_from_slice(extra);
        let out = activate(server.addr, &args);
        assert_success(&out);
        let lines = json_lines(&out);
        assert_eq!(lines.len(), 2);
        for v in &lines {
            assert_eq!(v["activated"], true, "{v}");
            assert_eq!(v["warnings"], serde_json::json!([]), "{v}");
        }
        (lines, connection_log(&server, name))
    };

    // Default: NDR32 and NDR64 offered, BTFN acknowledged; the second call uses NDR64.
    let (json, log) = run("bind-default", &[]);
    assert!(
        has(
            &log,
            "Bound { alter: false, ndr32: Some(0), ndr64: Some(1), btfn: true }"
        ),
        "{log:#?}"
    );
    assert!(has(&log, "syntax: Ndr64"), "{log:#?}");
    assert_eq!(
        (&json[0]["syntax"], &json[1]["syntax"]),
        (&"NDR32".into(), &"NDR64".into())
    );

    // --no-ndr64: nothing but NDR32 is bound, and both calls use it.
    let (json, log) = run("bind-no-ndr64", &["--no-ndr64"]);
    assert!(
        has(
            &log,
            "Bound { alter: false, ndr32: Some(0), ndr64: None, btfn: true }"
        ),
        "{log:#?}"
    );
    assert!(!has(&log, "ndr64: Some"), "{log:#?}");
    assert!(!has(&log, "syntax: Ndr64"), "{log:#?}");
    assert_eq!(
        log.iter().filter(|l| l.contains("syntax: Ndr32")).count(),
        2,
        "{log:#?}"
    );
    for v in &json {
        assert_eq!(v["syntax"], "NDR32", "{v}");
    }

    // --no-btfn: no feature negotiation to acknowledge; NDR64 is still bound.
    let (json, log) = run("bind-no-btfn", &["--no-btfn"]);
    assert!(
        has(
            &log,
            "Bound { alter: false, ndr32: Some(0), ndr64: Some(1), btfn: false }"
        ),
        "{log:#?}"
    );
    assert!(!has(&log, "btfn: true"), "{log:#?}");
    assert_eq!(json[1]["syntax"], "NDR64");
}

/// A loopback relay in front of `target` for one connection, recording what the client sends.
fn recording_relay(target: SocketAddr) -> (SocketAddr, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (mut client, _) = listener.accept().unwrap();
        let mut server = TcpStream::connect(target).unwrap();
        let mut server_read = server.try_clone().unwrap();
        let mut client_write = client.try_clone().unwrap();
        let back = std::thread::spawn(move || {
            let _ = std::io::copy(&mut server_read, &mut client_write);
            let _ = client_write.shutdown(Shutdown::Write);
        });
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let mut buf = [0u8; 4096];
        loop {
            match client.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    recorded.lock().unwrap().extend_from_slice(&buf[..n]);
                    if server.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = server.shutdown(Shutdown::Write);
        let _ = back.join();
        let bytes = recorded.lock().unwrap().clone();
        bytes
    });
    (addr, handle)
}

/// Splits a byte stream into PDUs by their frag_length.
fn split_pdus(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut pdus = Vec::new();
    while bytes.len() >= 16 {
        let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        pdus.push(bytes[..len].to_vec());
        bytes = &bytes[len..];
    }
    assert!(bytes.is_empty(), "trailing bytes");
    pdus
}

#[test]
fn activate_no_multiplex_clears_the_flag_of_its_binds() {
    const BIND: u8 = 11;
    const ALTER_CONTEXT: u8 = 14;
    const PFC_CONC_MPX: u8 = 0x10;
    let server = Server::start(&[]);
    for (extra, multiplex) in [(None, true), (Some("--no-multiplex"), false)] {
        let (relay, recorded) = recording_relay(server.addr);
        let mut args = vec!["--count", "2", "--json"];
        args.extend(extra);
        let out = activate(relay, &args);
        assert_success(&out);
        for v in json_lines(&out) {
            assert_eq!(v["activated"], true, "{v}");
            // The host echoes the client's flag in its bind_ack (else the client warns).
            assert_eq!(v["warnings"], serde_json::json!([]), "{v}");
        }
        let pdus = split_pdus(&recorded.join().unwrap());
        let binds: Vec<&Vec<u8>> = pdus
            .iter()
            .filter(|p| p[2] == BIND || p[2] == ALTER_CONTEXT)
            .collect();
        assert_eq!(binds[0][2], BIND, "the first PDU is the bind");
        assert_eq!(binds.len(), 2, "bind, then alter_context for NDR32");
        for b in binds {
            assert_eq!(
                b[3] & PFC_CONC_MPX != 0,
                multiplex,
                "flags 0x{:02x} of PDU type {} ({extra:?})",
                b[3],
                b[2]
            );
        }
        assert_eq!(pdus.iter().filter(|p| p[2] == 0).count(), 2, "two requests");
    }
}

/// The bind and V6 request (NDR32, 292 bytes, stub 268 bytes) of a captured vlmcs session.
fn good() -> (Vec<u8>, Vec<u8>) {
    let p = client_pdus(&testdata().join("vectors/probe-vlmcsd/probe-vlmcsd-good-ndr32.hex"));
    (p[0].clone(), p[1].clone())
}

/// Request PDU offsets: frag_length, alloc_hint, stub.
const FRAG_LEN: usize = 8;
const ALLOC_HINT: usize = 16;
const STUB: usize = 24;
const PFC_FIRST: u8 = 0x01;
const PFC_LAST: u8 = 0x02;

/// `request` with `extra` zero bytes after its stub (the host reads only the conformant
/// array's declared length, so the request stays valid), in `fragments` fragments.
fn padded_request(request: &[u8], extra: usize, fragments: usize) -> Vec<Vec<u8>> {
    let header = &request[..STUB];
    let mut stub = request[STUB..].to_vec();
    stub.resize(stub.len() + extra, 0);
    let chunk = stub.len().div_ceil(fragments);
    let parts: Vec<&[u8]> = stub.chunks(chunk).collect();
    let n = parts.len();
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let mut pdu = header.to_vec();
            pdu.extend_from_slice(part);
            let len = pdu.len() as u16;
            pdu[FRAG_LEN..FRAG_LEN + 2].copy_from_slice(&len.to_le_bytes());
            let hint = (stub.len() - i * chunk) as u32;
            pdu[ALLOC_HINT..ALLOC_HINT + 4].copy_from_slice(&hint.to_le_bytes());
            let mut flags = pdu[3] & !(PFC_FIRST | PFC_LAST);
            if i == 0 {
                flags |= PFC_FIRST;
            }
            if i == n - 1 {
                flags |= PFC_LAST;
            }
            pdu[3] = flags;
            pdu
        })
        .collect()
}

/// Binds on a raw connection and sends `pdus`; returns the connection.
fn bind_and_send(server: &Server, pdus: &[Vec<u8>]) -> TcpStream {
    let (bind, _) = good();
    let mut s = connect(server.addr);
    send(&mut s, &bind);
    assert_eq!(read_pdu(&mut s).expect("bind_ack")[2], 12);
    for p in pdus {
        send(&mut s, p);
    }
    s
}

fn assert_answered(server: &Server, pdus: &[Vec<u8>]) {
    let mut s = bind_and_send(server, pdus);
    let reply = read_pdu(&mut s).expect("a response");
    assert_eq!(reply[2], 2, "response PDU");
    server.wait_log("activated (count");
}

#[test]
fn serve_max_pdu_size_refuses_larger_pdus() {
    let (_, request) = good();
    assert_eq!(request.len(), 292);
    // One 692-byte PDU: a valid request with 400 bytes of padding after its stub.
    let big = padded_request(&request, 400, 1);
    assert_eq!(big[0].len(), 692);

    // Default limit (5840): answered.
    let server = Server::start(&[]);
    assert_answered(&server, &big);

    // The smallest limit the option allows is 512, above any KMS client's PDU (at most
    // 300 bytes): a real client still activates, the 692-byte PDU closes the connection.
    let server = Server::start(&["--max-pdu-size", "512"]);
    let out = activate(server.addr, &["--count", "2"]);
    assert_success(&out);
    let mut s = bind_and_send(&server, &big);
    assert_closed(&mut s, Duration::from_secs(3));
    let line = server.wait_log("frag_length 692 exceeds the limit of 512 bytes");
    assert!(line.contains("closing connection"), "{line}");

    // Below the allowed range: refused on the command line.
    let out = Command::new(rkms_bin())
        .args([
            "serve",
            "--max-pdu-size",
            "511",
            "--db",
            "none",
            "--web",
            "off",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--max-pdu-size"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn serve_max_call_size_limits_reassembled_requests() {
    let (_, request) = good();
    // The request stub (268 bytes) plus 600 bytes of padding, in two 458-byte fragments
    // (each below the PDU limit): 868 bytes reassembled.
    let big = padded_request(&request, 600, 2);
    assert_eq!(big.len(), 2);
    assert!(big.iter().all(|p| p.len() < 512));
    // The plain request, fragmented: 268 bytes reassembled.
    let small = padded_request(&request, 0, 2);
    assert_eq!(small.len(), 2);

    // Default limit (16384): the large call is reassembled and answered.
    let server = Server::start(&[]);
    assert_answered(&server, &big);

    // --max-call-size 512 (the smallest allowed, above a V6 stub): the fragmented V6 request
    // still activates, the 868-byte one closes the connection.
    let server = Server::start(&["--max-call-size", "512"]);
    assert_answered(&server, &small);
    let mut s = bind_and_send(&server, &big);
    assert_closed(&mut s, Duration::from_secs(3));
    let line = server.wait_log("fragmented call exceeds 512 bytes");
    assert!(line.contains("closing connection"), "{line}");
}

#[test]
fn dns_record_with_an_address_names_it_and_points_the_srv_record_at_the_name() {
    let out = Command::new(rkms_bin())
        .args([
            "dns-record",
            "--host",
            "192.168.1.10",
            "--domain",
            "example.lan",
        ])
        .output()
        .unwrap();
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l == "kms.example.lan. 10800 IN A 192.168.1.10"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l == "_vlmcs._tcp.example.lan. 10800 IN SRV 0 0 1688 kms.example.lan."),
        "{text}"
    );
    assert!(
        !text.contains("192.168.1.10."),
        "an address as SRV target: {text}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must point at a host name"), "{err}");
    assert!(err.contains("--name"), "{err}");

    let out = Command::new(rkms_bin())
        .args([
            "dns-record",
            "--host",
            "fd00::10",
            "--name",
            "kms7",
            "--domain",
            "example.lan",
        ])
        .output()
        .unwrap();
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l == "kms7.example.lan. 10800 IN AAAA fd00::10"),
        "{text}"
    );
    assert!(
        text.contains("srv-host=_vlmcs._tcp.example.lan,kms7.example.lan,1688,0,0"),
        "{text}"
    );

    // --name is for an address only.
    let out = Command::new(rkms_bin())
        .args([
            "dns-record",
            "--host",
            "kms1",
            "--name",
            "x",
            "--domain",
            "example.lan",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn dns_record_prints_the_values_given() {
    let out = Command::new(rkms_bin())
        .args([
            "dns-record",
            "--host",
            "kms1",
            "--domain",
            "example.test",
            "--port",
            "1700",
            "--ttl",
            "600",
            "--priority",
            "5",
            "--weight",
            "20",
        ])
        .output()
        .unwrap();
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l == "_vlmcs._tcp.example.test. 600 IN SRV 5 20 1700 kms1.example.test."),
        "{text}"
    );
    assert!(
        text.contains("srv-host=_vlmcs._tcp.example.test,kms1.example.test,1700,5,20"),
        "{text}"
    );
    assert!(
        text.contains("-Priority 5 -Weight 20 -Port 1700 -TimeToLive 00:10:00"),
        "{text}"
    );
}

#[test]
fn bench_duration_runs_that_long() {
    let server = Server::start(&[]);
    let out = Command::new(rkms_bin())
        .args([
            "bench",
            &server.addr.to_string(),
            "--duration",
            "0.5",
            "--json",
        ])
        .output()
        .unwrap();
    assert_success(&out);
    let s: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    let seconds = s["seconds"].as_f64().unwrap();
    assert!((0.5..5.0).contains(&seconds), "{s}");
    assert!(s["ok"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["errors"], 0, "{s}");
}

#[test]
fn a_bad_guid_says_what_a_guid_looks_like() {
    for option in ["--cmid", "--app-id", "--kms-id", "--sku-id"] {
        let out = Command::new(rkms_bin())
            .args(["activate", "127.0.0.1", option, "notaguid"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{option}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("not a GUID") && err.contains("8-4-4-4-12"),
            "{option}: {err}"
        );
        assert!(!err.contains("found `n` at 0"), "{err}");
    }
    // Braces and upper case are fine.
    let out = Command::new(rkms_bin())
        .args([
            "activate",
            "127.0.0.1:1",
            "--cmid",
            "{6E8B9C3F-5A8B-4F6E-9A53-6D1F3B1A2C4D}",
            "--timeout",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn other_hosts_listen_habits_point_to_listen() {
    for args in [
        &["serve", "--port", "1688"][..],
        &["serve", "-L", "0.0.0.0:1688"],
        &["serve", "-P", "1688"],
    ] {
        let out = Command::new(rkms_bin()).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("--listen ADDR:PORT"), "{err}");
        assert!(err.contains("rkms vlmcsd"), "{err}");
        assert!(!err.contains("--products"), "{err}");
    }
    // Both wildcards on one port, and an IPv6 address with a port but no brackets.
    let out = Command::new(rkms_bin())
        .args(["serve", "--listen", "0.0.0.0:1688", "--listen", "[::]:1688"])
        .args(["--db", "none", "--web", "off"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("already accepts IPv4"), "{err}");
    let out = Command::new(rkms_bin())
        .args([
            "serve", "--listen", "::1:1688", "--db", "none", "--web", "off",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("[::1]:1688"), "{err}");
}

#[test]
fn serve_help_is_in_sections() {
    let out = Command::new(rkms_bin())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    // The section each option appears under.
    let mut section = "";
    let mut found = std::collections::HashMap::new();
    for line in help.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            section = line.trim_end_matches(':');
        } else if let Some(opt) = line
            .split_whitespace()
            .take(2)
            .find(|w| w.starts_with("--"))
        {
            found.insert(opt.trim_end_matches(',').to_string(), section.to_string());
        }
    }
    for (opt, want) in [
        ("--listen", "Listening"),
        ("--backlog", "Listening"),
        ("--lcid", "Identity"),
        ("--client-count", "Counts and policy"),
        ("--rate-limit", "Limits"),
        ("--max-call-size", "Limits"),
        ("--db", "Storage"),
        ("--web-token", "Web dashboard"),
        ("--log-file", "Logging"),
        ("--user", "Service"),
        ("--inetd", "Service"),
        ("--dns-publish", "DNS publishing"),
    ] {
        assert_eq!(
            found.get(opt).map(String::as_str),
            Some(want),
            "{opt}\n{help}"
        );
    }
}

/// `serve --threads N`: N threads answer clients; 1 is a single-threaded runtime (the
/// process then runs fewer threads), and 0 is refused.
#[cfg(target_os = "linux")]
#[test]
fn serve_threads_sets_the_runtime_threads() {
    let threads_of = |n: &str| {
        let mut server = Server::start(&["--threads", n]);
        assert_success(&activate(server.addr, &[]));
        let pid = server.child().id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap()
    };
    let one = threads_of("1");
    let four = threads_of("4");
    assert!(
        four >= one + 3,
        "--threads 1: {one} threads, --threads 4: {four}"
    );
    let out = Command::new(rkms_bin())
        .args(["serve", "--threads", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads"));
}

/// `RUST_LOG` (read when neither -v nor --log-level is given): levels and `target=level`
/// directives are taken, anything else refused at start naming the directive.
#[test]
fn rust_log_directives_are_taken_or_refused_by_name() {
    let run = |rust_log: &str, args: &[&str]| {
        Command::new(rkms_bin())
            .args(args)
            .arg("epid")
            .env_remove("RKMS_LOG_LEVEL")
            .env_remove("RKMS_CONFIG")
            .env("RUST_LOG", rust_log)
            .output()
            .unwrap()
    };
    for good in ["debug", "warn,rkms::commands=trace", "rkms", " ", "OFF"] {
        let out = run(good, &[]);
        assert!(out.status.success(), "{good:?}: {out:?}");
    }
    for (bad, directive) in [
        ("rkms[conn]=debug", "rkms[conn]=debug"),
        ("info,rkms=loud", "rkms=loud"),
    ] {
        let out = run(bad, &[]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("error: RUST_LOG: '{directive}': ")),
            "{err}"
        );
        // -v and --log-level take precedence: RUST_LOG is then not read.
        let out = run(bad, &["--log-level", "warn"]);
        assert!(out.status.success(), "{bad}: {out:?}");
        let out = run(bad, &["-v"]);
        assert!(out.status.success(), "{bad}: {out:?}");
    }
}
