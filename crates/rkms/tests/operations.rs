//! Running rkms as a service: pid file and SIGTERM, privilege drop, inetd mode, systemd
//! socket activation and readiness, SIGHUP reload without dropping connections, log files
//! with rotation, JSON logs.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{client_pdus, connect, read_pdu, rkms_bin, send, testdata, Server};
use rkms_proto::kms::ClientRequest;
use rkms_proto::rpc::client::check_response;
use rkms_proto::rpc::ndr::decode_request_stub;
use rkms_proto::rpc::TransferSyntax;

fn good() -> (Vec<u8>, Vec<u8>) {
    let p = client_pdus(&testdata().join("vectors/probe-vlmcsd/probe-vlmcsd-good-ndr32.hex"));
    (p[0].clone(), p[1].clone())
}

/// The count in a verified response to the good request.
fn count_of(request_pdu: &[u8], reply: &[u8]) -> u32 {
    let payload = decode_request_stub(&request_pdu[24..], TransferSyntax::Ndr32).unwrap();
    let stub = check_response(reply, 2, 0, TransferSyntax::Ndr32).unwrap();
    ClientRequest::from_bytes(payload)
        .unwrap()
        .verify_response(&stub.result.unwrap())
        .unwrap()
        .base
        .current_count
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rkms-ops-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn kill(pid: u32, sig: &str) {
    Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
}

#[test]
fn pidfile_and_sigterm() {
    let dir = temp_dir("pid");
    let pidfile = dir.join("rkms.pid");
    let mut server = Server::start(&["--pidfile", pidfile.to_str().unwrap()]);
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, server.child().id());
    kill(pid, "-TERM");
    assert!(server.child().wait().unwrap().success());
    assert!(!pidfile.exists(), "pid file removed at exit");
}

#[test]
fn privileges_are_dropped_after_binding() {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !is_root {
        eprintln!("not root: privilege drop cannot be tested here");
        return;
    }
    let mut server = Server::start(&["--user", "65534", "--group", "65534"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child().id())).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let gid = status.lines().find(|l| l.starts_with("Gid:")).unwrap();
    assert!(
        uid.split_whitespace().skip(1).all(|u| u == "65534"),
        "{uid}"
    );
    assert!(
        gid.split_whitespace().skip(1).all(|g| g == "65534"),
        "{gid}"
    );
    server.wait_log("privileges dropped");
    let (bind, request) = good();
    let mut s = connect(server.addr);
    send(&mut s, &bind);
    read_pdu(&mut s).unwrap();
    send(&mut s, &request);
    assert_eq!(count_of(&request, &read_pdu(&mut s).unwrap()), 50);
    let out = Command::new(rkms_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            "none",
            "--user",
            "no-such-user-here",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such user"));
}

#[test]
fn inetd_mode_serves_one_connection_on_stdio() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let mut child = Command::new(rkms_bin())
        .args(["serve", "--inetd", "--db", "none"])
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(
            accepted.try_clone().unwrap(),
        )))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(accepted)))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (bind, request) = good();
    send(&mut client, &bind);
    let ack = read_pdu(&mut client).unwrap();
    assert_eq!(ack[2], 12);
    // The secondary address is the port the client connected to.
    let port = listener.local_addr().unwrap().port().to_string();
    assert_eq!(&ack[26..26 + port.len()], port.as_bytes());
    send(&mut client, &request);
    assert_eq!(count_of(&request, &read_pdu(&mut client).unwrap()), 50);
    drop(client);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// Starts `rkms serve` with a listening socket passed as fd 3 (LISTEN_FDS=1), like systemd.
const ACTIVATE_PY: &str = r#"
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), NOTIFY_SOCKET=sys.argv[1])
os.execve(sys.argv[2], sys.argv[2:], env)
"#;

#[test]
fn socket_activation_and_readiness_notification() {
    let dir = temp_dir("sd");
    let notify_path = dir.join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut child = match Command::new("python3")
        .args([
            "-c",
            ACTIVATE_PY,
            notify_path.to_str().unwrap(),
            rkms_bin(),
            "serve",
            "--db",
            "none",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("python3 unavailable ({e}); socket activation not tested");
            return;
        }
    };
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().unwrap();
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    let (bind, request) = good();
    let mut s = connect(format!("127.0.0.1:{port}").parse().unwrap());
    send(&mut s, &bind);
    read_pdu(&mut s).unwrap();
    send(&mut s, &request);
    assert_eq!(count_of(&request, &read_pdu(&mut s).unwrap()), 50);
    kill(child.id(), "-TERM");
    let n = notify.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    assert!(child.wait().unwrap().success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("socket activation"), "{err}");
}

#[test]
fn sighup_reloads_without_dropping_connections() {
    let dir = temp_dir("hup");
    let config = dir.join("rkms.toml");
    std::fs::write(&config, "client-count = 40\n").unwrap();
    let mut server = Server::start(&["--config", config.to_str().unwrap()]);
    let (bind, request) = good();
    let mut s = connect(server.addr);
    send(&mut s, &bind);
    read_pdu(&mut s).unwrap();
    send(&mut s, &request);
    assert_eq!(count_of(&request, &read_pdu(&mut s).unwrap()), 40);
    std::fs::write(&config, "client-count = 30\n").unwrap();
    kill(server.child().id(), "-HUP");
    server.wait_log("configuration reloaded");
    // Same connection, new value.
    send(&mut s, &request);
    assert_eq!(count_of(&request, &read_pdu(&mut s).unwrap()), 30);
    // A broken file keeps the running configuration.
    std::fs::write(&config, "client-count = \"many\"\n").unwrap();
    kill(server.child().id(), "-HUP");
    server.wait_log("reload failed, keeping the running configuration");
    send(&mut s, &request);
    assert_eq!(count_of(&request, &read_pdu(&mut s).unwrap()), 30);
}

#[test]
fn log_file_rotates_by_size_and_json_format() {
    let dir = temp_dir("logs");
    let log = dir.join("rkms.log");
    // Port 0, the bound address read from the log (also on standard error): a port chosen
    // beforehand could be taken meanwhile by another test's server, which this test would
    // then talk to.
    let mut server = Server::start(&[
        "--db",
        "none",
        "--log-file",
        log.to_str().unwrap(),
        "--log-stderr",
        "--log-max-size",
        "2048",
        "--log-keep",
        "2",
        "--log-format",
        "json",
    ]);
    let (bind, request) = good();
    let mut s = connect(server.addr);
    send(&mut s, &bind);
    read_pdu(&mut s).unwrap();
    for _ in 0..60 {
        send(&mut s, &request);
        read_pdu(&mut s).unwrap();
    }
    kill(server.child().id(), "-TERM");
    server.child().wait().unwrap();
    assert!(log.exists() && dir.join("rkms.log.1").exists() && dir.join("rkms.log.2").exists());
    assert!(
        !dir.join("rkms.log.3").exists(),
        "only --log-keep files are kept"
    );
    for f in ["rkms.log", "rkms.log.1"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(text.len() < 2048 + 1024, "{f} is {} bytes", text.len());
        for line in text.lines() {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert!(v["level"].is_string() && v["message"].is_string(), "{line}");
        }
    }
    let out = Command::new(rkms_bin())
        .args([
            "serve",
            "--db",
            "none",
            "--log-file",
            "/nonexistent-dir/x.log",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent-dir"));
}

#[cfg(feature = "web")]
#[test]
fn own_self_check_is_logged_at_debug_level_only() {
    let server = Server::start(&["--web", "127.0.0.1:0", "--log-level", "debug"]);
    // The self-check runs at start: its activation line is a debug line.
    let line = server.wait_log("workstation=rkms-selfcheck");
    assert!(line.contains("DEBUG") && !line.contains("INFO"), "{line}");
    // A client's activation stays at info level.
    let out = Command::new(rkms_bin())
        .args(["activate", &server.addr.to_string(), "--name", "ws-info"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let line = server.wait_log("workstation=ws-info");
    assert!(line.contains("INFO"), "{line}");
}

#[cfg(feature = "web")]
#[test]
fn missing_home_suggests_db_and_announces_no_dashboard() {
    // A HOME that cannot hold directories (like /nonexistent for system users).
    let dir = temp_dir("nohome");
    let home = dir.join("not-a-directory");
    std::fs::write(&home, "").unwrap();
    let out = Command::new(rkms_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--web", "127.0.0.1:0"])
        .env("HOME", &home)
        .env_remove("XDG_STATE_HOME")
        .env_remove("STATE_DIRECTORY")
        .env_remove("RKMS_DB")
        .env_remove("RKMS_CONFIG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--db PATH") && err.contains("--db none"),
        "{err}"
    );
    assert!(!err.contains("dashboard on"), "{err}");
}

#[cfg(feature = "web")]
#[test]
fn start_names_version_client_addresses_and_commands() {
    let server = Server::start(&["--web", "127.0.0.1:0"]);
    server.wait_log(&format!("rkms {} starting", env!("CARGO_PKG_VERSION")));
    server.wait_log(&format!("clients can use {}", server.addr));
    server.wait_log(&format!("slmgr /skms {}", server.addr));
    server.wait_log("dashboard on http://127.0.0.1:");
}

/// The command line is parsed on a short-lived thread: clap's derived builders take large
/// stack frames (816 kB of the main thread's stack in the debug build when they ran there,
/// 164 kB in the size-optimised release), and a stack page once touched stays resident for as
/// long as the host runs.
#[cfg(target_os = "linux")]
#[test]
fn the_main_thread_stack_stays_small() {
    let mut server = Server::start(&[]);
    let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", server.child().id())).unwrap();
    let mut lines = smaps.lines().skip_while(|l| !l.ends_with("[stack]"));
    assert!(lines.next().is_some(), "no [stack] mapping in {smaps}");
    let rss_kb: u64 = lines
        .find_map(|l| l.strip_prefix("Rss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("Rss of the main stack");
    // 100 kB with the debug build (the runtime and the host's futures), 816 kB before.
    assert!(rss_kb < 400, "main thread stack resident: {rss_kb} kB");
}
