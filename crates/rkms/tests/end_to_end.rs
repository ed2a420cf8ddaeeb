//! Our client against our server on loopback: every protocol version, NDR32/NDR64, BTFN on
//! and off on both sides, several calls per connection; and the `rkms activate` command.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{rkms_bin, Server};
use rkms::client::Session;
use rkms_proto::kms::{build_request, BaseRequest, Version};
use rkms_proto::rpc::client::BindOffer;
use rkms_proto::rpc::TransferSyntax;
use uuid::Uuid;

fn base(cmid: Uuid) -> BaseRequest {
    BaseRequest {
        version: Version::V6,
        is_client_vm: 0,
        license_status: 2,
        grace_time: 43200,
        application_id: Uuid::parse_str("55c92734-d682-4d71-983e-d6ec3f16059f").unwrap(),
        sku_id: Uuid::parse_str("2de67392-b7a7-462a-b1ca-108dd189f588").unwrap(),
        kms_id: Uuid::parse_str("58e2134f-8e11-4d17-9cb2-91069c151148").unwrap(),
        cmid,
        required_client_count: 25,
        request_time: rkms_proto::kms::filetime_from_unix(1_790_000_000),
        previous_cmid: Uuid::nil(),
        workstation: BaseRequest::workstation_field("e2e.example"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_versions_syntaxes_btfn_two_calls() {
    for (server_ndr64, server_btfn) in [(true, true), (false, true), (true, false), (false, false)]
    {
        let mut args = vec![];
        if !server_ndr64 {
            args.extend(["--no-ndr64", "--host-build", "20348"]);
        }
        if !server_btfn {
            args.push("--no-btfn");
        }
        let server = Server::start(&args);
        let mut epids: Option<String> = None;
        for client_ndr64 in [true, false] {
            for client_btfn in [true, false] {
                for major in [4u16, 5, 6] {
                    let offer = BindOffer {
                        ndr64: client_ndr64,
                        btfn: client_btfn,
                        multiplex: true,
                    };
                    let mut s = Session::open(server.addr, offer, Duration::from_secs(5))
                        .await
                        .unwrap();
                    let b = s.bound().clone();
                    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
                    assert_eq!(b.btfn, client_btfn && server_btfn);
                    assert_eq!(b.ndr64.is_some(), client_ndr64 && server_ndr64);
                    assert!(
                        b.ndr32.is_some(),
                        "NDR32 bound directly or via alter_context"
                    );
                    let mut syntaxes = Vec::new();
                    for call in 0..2 {
                        let cmid = Uuid::new_v4();
                        let rq =
                            build_request(Version::new(major), &base(cmid), &mut rand::rngs::OsRng);
                        let (stub, syntax) = s.activate(&rq.bytes).await.unwrap();
                        assert!(stub.warnings.is_empty(), "{:?}", stub.warnings);
                        let v = rq.verify_response(&stub.result.unwrap()).unwrap();
                        assert!(v.warnings.is_empty(), "{:?}", v.warnings);
                        assert_eq!(v.base.cmid, cmid);
                        assert_eq!(v.base.current_count, 50);
                        // Generated once per start, from the Windows (Server 2025 key) profile.
                        let e = rkms_proto::epid::Epid::parse(&v.base.epid).unwrap();
                        assert_eq!(e.group_id, 4919);
                        let first = epids.get_or_insert_with(|| v.base.epid.clone());
                        assert_eq!(*first, v.base.epid);
                        assert_eq!(v.hwid.is_some(), major == 6);
                        syntaxes.push(syntax);
                        let _ = call;
                    }
                    let second = if client_ndr64 && server_ndr64 {
                        TransferSyntax::Ndr64
                    } else {
                        TransferSyntax::Ndr32
                    };
                    assert_eq!(syntaxes, vec![TransferSyntax::Ndr32, second]);
                }
            }
        }
    }
}

#[test]
fn activate_command_prints_and_exits_zero_on_success() {
    let server = Server::start(&[
        "--epid",
        "03612-00206-556-123727-03-1033-17763.0000-2972018",
        "--hwid",
        "0102030405060708",
    ]);
    let out = Command::new(rkms_bin())
        .args([
            "activate",
            &server.addr.to_string(),
            "--count",
            "2",
            "--name",
            "cli-test",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.matches("Result           : activated").count(),
        2,
        "{text}"
    );
    assert!(text.contains("03612-00206-556-123727-03-1033-17763.0000-2972018"));
    assert!(text.contains("KMS host HwId    : 0102030405060708"));
    assert!(
        text.contains("KMS V6 over NDR64"),
        "second call uses NDR64: {text}"
    );
    let line = server.wait_log("workstation=cli-test");
    assert!(line.contains("product=\"Windows 10/11 Pro\""), "{line}");
    assert!(line.contains("activated"), "{line}");
}

#[test]
fn activate_json_each_protocol_and_product() {
    let server = Server::start(&[
        "--client-count",
        "7",
        "--activation-interval",
        "2h",
        "--renewal-interval",
        "3d",
    ]);
    for (protocol, product, count) in [
        ("4", "Office Professional Plus 2010", 7),
        ("5", "Windows Server 2012 Datacenter", 7),
        ("6", "Windows 10/11 Pro", 26),
    ] {
        let out = Command::new(rkms_bin())
            .args([
                "activate",
                &server.addr.to_string(),
                "--protocol",
                protocol,
                "--product",
                product,
                "--json",
                "--new-connection",
                "--count",
                "2",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        for v in &lines {
            assert_eq!(v["verified"], true, "{v}");
            assert_eq!(v["protocol"], protocol.parse::<u64>().unwrap());
            assert_eq!(v["product"], product);
            assert_eq!(v["current_count"], count, "{v}");
            assert_eq!(v["activation_interval"], 120);
            assert_eq!(v["renewal_interval"], 4320);
            assert_eq!(
                v["syntax"], "NDR32",
                "a new connection each time: always the first call"
            );
        }
        assert_ne!(lines[0]["cmid"], lines[1]["cmid"], "fresh CMID per request");
        assert!(out.status.success());
    }
}

#[test]
fn activate_failures_exit_non_zero_with_a_reason() {
    // Nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    let out = Command::new(rkms_bin())
        .args(["activate", &addr.to_string(), "--timeout", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no KMS host could be contacted") && err.contains("0xC004F074"),
        "{err}"
    );
    // Unknown product.
    let out = Command::new(rkms_bin())
        .args(["activate", "127.0.0.1", "--product", "No Such Product"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--product"));
    // The required count given on the command line is what the host sees (auto count = 2N).
    let server = Server::start(&[]);
    let out = Command::new(rkms_bin())
        .args([
            "activate",
            &server.addr.to_string(),
            "--required-count",
            "30",
            "--json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["current_count"], 60);
    assert!(out.status.success());
    let out = Command::new(rkms_bin())
        .args(["serve", "--hwid", "xyz"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("16 hexadecimal digits"));
    let out = Command::new(rkms_bin())
        .args(["serve", "--renewal-interval", "5y"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown unit"));
}

#[test]
fn ipv6_loopback_and_sigterm_shutdown() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("IPv6 loopback unavailable here; skipping");
        return;
    }
    let mut server = Server::start_on("[::1]:0", &[]);
    let out = Command::new(rkms_bin())
        .args(["activate", &format!("{}", server.addr), "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = server.child().id();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = server.child().wait().unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    server.wait_log("stopped");
}

/// Relays one connection to `server`, answering every reply with call_id 1 (as Wine's RPC
/// server does).
fn call_id_one_proxy(server: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut client, _) = listener.accept().unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut upstream = std::net::TcpStream::connect(server).unwrap();
        let mut up_read = upstream.try_clone().unwrap();
        let mut down = client.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut client, &mut upstream);
        });
        loop {
            let mut pdu = vec![0u8; 16];
            if up_read.read_exact(&mut pdu).is_err() {
                return;
            }
            let len = u16::from_le_bytes([pdu[8], pdu[9]]) as usize;
            pdu.resize(len.max(16), 0);
            if up_read.read_exact(&mut pdu[16..]).is_err() {
                return;
            }
            pdu[12..16].copy_from_slice(&1u32.to_le_bytes());
            if down.write_all(&pdu).is_err() {
                return;
            }
        }
    });
    addr
}

#[test]
fn activate_warns_when_the_reply_call_id_differs() {
    let server = Server::start(&[]);
    let proxy = call_id_one_proxy(server.addr);
    let out = Command::new(rkms_bin())
        .args(["activate", &proxy.to_string(), "--timeout", "5"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The bind was call 2 and the request call 2: both replies came back as call 1.
    assert!(
        text.contains("reply call_id 1 differs from the request's 2"),
        "{text}"
    );
    // Straight to the server: no such warning.
    let out = Command::new(rkms_bin())
        .args(["activate", &server.addr.to_string(), "--timeout", "5"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && !text.contains("call_id"), "{text}");
}

#[test]
fn activate_without_host_or_dns_domain_tries_this_machine() {
    // LOCALDOMAIN set and empty: no system search domain, whatever /etc/resolv.conf says.
    let out = Command::new(rkms_bin())
        .args(["activate", "--timeout", "2"])
        .env("LOCALDOMAIN", "")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        err.contains("no DNS domain") && err.contains("trying 127.0.0.1:1688"),
        "{err}"
    );
    assert!(!err.contains("give --domain"), "{err}");
    // Whatever listens on 127.0.0.1:1688 (nothing, or a host), that is where it went.
    assert!(
        text.contains("127.0.0.1:1688") || err.contains("127.0.0.1:1688: "),
        "{text}\n{err}"
    );
    // With a domain in LOCALDOMAIN, DNS is asked instead (and finds nothing at this server);
    // a build without the `dns` feature refuses --dns-server (tests/features.rs).
    if !cfg!(feature = "dns") {
        return;
    }
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns = dead.local_addr().unwrap();
    let out = Command::new(rkms_bin())
        .args([
            "activate",
            "--dns-server",
            &dns.to_string(),
            "--timeout",
            "2",
        ])
        .env("LOCALDOMAIN", "example.invalid")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("trying 127.0.0.1:1688"), "{err}");
    assert!(err.contains("_vlmcs._tcp.example.invalid"), "{err}");
}

#[test]
fn activate_bad_port_is_a_usage_error() {
    for host in ["127.0.0.1:abc", "127.0.0.1:99999", "[::1", ":1688"] {
        let out = Command::new(rkms_bin())
            .args(["activate", host])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{host}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: "), "{host}: {err}");
    }
}

#[cfg(feature = "sqlite")]
#[test]
fn activate_sends_vm_flag_licence_status_grace_and_random_names() {
    let dir = std::env::temp_dir().join(format!("rkms-e2e-parity-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("clients.db");
    let server = Server::start(&["--db", db.to_str().unwrap()]);
    let out = Command::new(rkms_bin())
        .args([
            "activate",
            &server.addr.to_string(),
            "--vm",
            "--name",
            "random",
            "--license-status",
            "1",
            "--grace-minutes",
            "600",
            "--count",
            "3",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["workstation"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(names.len(), 3);
    for n in &names {
        assert!(n.starts_with("DESKTOP-") && n.len() == 15, "{n}");
        assert!(
            n[8..]
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()),
            "{n}"
        );
    }
    assert!(names[0] != names[1] || names[1] != names[2], "{names:?}");
    // What the host recorded: the VM flag, the licence status, the names.
    let out = Command::new(rkms_bin())
        .args(["clients", "--json", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    let records: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 3, "{records:?}");
    for r in records {
        assert_eq!(r["is_vm"], true, "{r}");
        assert!(
            names.contains(&r["workstation"].as_str().unwrap().to_string()),
            "{r}"
        );
        assert_eq!(r["license_status"], 1, "{r}");
    }
    // Without --vm, no VM flag.
    let cmid = Uuid::new_v4().to_string();
    let out = Command::new(rkms_bin())
        .args(["activate", &server.addr.to_string(), "--cmid", &cmid])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = Command::new(rkms_bin())
        .args([
            "clients",
            "--json",
            "--db",
            db.to_str().unwrap(),
            "--cmid",
            &cmid,
        ])
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r[0]["is_vm"], false, "{r}");
    assert_eq!(r[0]["workstation"], "rkms-client", "{r}");
    assert_eq!(r[0]["license_status"], 2, "{r}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn activate_with_an_unsupported_protocol_expects_invalid_data() {
    let server = Server::start(&[]);
    let out = Command::new(rkms_bin())
        .args(["activate", &server.addr.to_string(), "--protocol", "7.0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{out:?}");
    assert!(
        text.contains("KMS V7.0") || text.contains("KMS V7 "),
        "{text}"
    );
    assert!(
        text.contains("refused by the host with 0x8007000D") && text.contains("must refuse"),
        "{text}"
    );
    let out = Command::new(rkms_bin())
        .args([
            "activate",
            &server.addr.to_string(),
            "--protocol",
            "6.1",
            "--json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["protocol"], "6.1", "{v}");
    assert_eq!(v["hresult"], "0x8007000D", "{v}");
    assert!(out.status.success(), "{v}");
    for bad in ["7", "x.0", "6.", "70000.0"] {
        let out = Command::new(rkms_bin())
            .args(["activate", &server.addr.to_string(), "--protocol", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
    }
}

#[test]
fn activate_saves_the_hosts_epids_as_an_rkms_toml_snippet() {
    const EPID: &str = "03612-00206-556-123727-03-1033-17763.0000-2972018";
    let server = Server::start(&["--epid", EPID, "--hwid", "0102030405060708"]);
    let dir = std::env::temp_dir().join(format!("rkms-e2e-save-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("epids.toml");
    let out = Command::new(rkms_bin())
        .args([
            "activate",
            &server.addr.to_string(),
            "--save-epids",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(&format!("\"Windows={EPID}/0102030405060708\",")),
        "{text}"
    );
    // The snippet is a configuration a second host answers with.
    let copy = Server::start(&["--config", file.to_str().unwrap()]);
    let out = Command::new(rkms_bin())
        .args(["activate", &copy.addr.to_string(), "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["epid"], EPID, "{v}");
    assert_eq!(v["hwid"], "0102030405060708", "{v}");
    // An existing file is not overwritten.
    let out = Command::new(rkms_bin())
        .args([
            "activate",
            &server.addr.to_string(),
            "--save-epids",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must not exist"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    let _ = std::fs::remove_dir_all(&dir);
}
