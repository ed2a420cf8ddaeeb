//! `rkms serve`'s web listener as a process: what hundreds of idle or half-sent web
//! connections cost (open files, memory) and that the KMS port keeps activating meanwhile;
//! start-up checks of the web options. Loopback only, bounded in count and time.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{rkms_bin, Server};

/// The dashboard address `rkms serve` logged ("dashboard on http://ADDR/").
fn dashboard(server: &Server) -> SocketAddr {
    let line = server.wait_log("dashboard on http://");
    let rest = line.split("dashboard on http://").nth(1).unwrap();
    rest.split('/').next().unwrap().parse().unwrap()
}

/// GET `path` with `Host: host`; returns (status, body).
fn get(addr: SocketAddr, path: &str, host: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).into_owned();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

/// One activation through the real client, bounded.
fn activates(kms: SocketAddr) -> bool {
    let mut child = Command::new(rkms_bin())
        .args(["activate", &kms.to_string(), "--timeout", "5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Files the process `pid` has open.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// `rkms serve ARGS` under `ulimit -n LIMIT` (soft and hard), web on a free loopback port.
fn serve_with_fd_limit(limit: &str, args: &[&str]) -> Server {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
        .arg(rkms_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--db", "none"])
        .args(["--web", "127.0.0.1:0"])
        .args(args)
        .env_remove("RKMS_CONFIG");
    Server::spawn(&mut command)
}

fn pid(server: &mut Server) -> u32 {
    server.child().id()
}

#[cfg(target_os = "linux")]
#[test]
fn idle_web_connections_under_256_open_files_leave_activations_working() {
    let mut server = serve_with_fd_limit("256", &["--web-header-timeout", "3"]);
    let web = dashboard(&server);
    let kms = server.addr;
    let pid = pid(&mut server);
    server.wait_log("web connections limited to 56");
    // 372 idle web connections (more than the whole file limit).
    let mut idle = Vec::new();
    for _ in 0..372 {
        match TcpStream::connect(web) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connect: {e}"),
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let files = open_files(pid);
    eprintln!("372 idle web connections under ulimit -n 256: {files} files open in the host");
    assert!(files < 150, "{files} files open");
    // The KMS port still accepts and answers, several times.
    for _ in 0..3 {
        assert!(activates(kms), "activation while the web side is full");
    }
    // The connections beyond the budget were told and closed; the others are held at most
    // the header timeout.
    let mut refused = 0;
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut b = [0u8; 64];
        if let Ok(n) = s.read(&mut b) {
            if n > 0 && b.starts_with(b"HTTP/1.1 503") || n == 0 {
                refused += 1;
            }
        }
    }
    assert!(refused >= 372 - 56, "{refused} refused");
    std::thread::sleep(Duration::from_secs(4));
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut b = [0u8; 256];
        while let Ok(n) = s.read(&mut b) {
            if n == 0 {
                break;
            }
        }
    }
    assert!(
        open_files(pid) < 40,
        "{} files open once the header timeout passed",
        open_files(pid)
    );
    assert_eq!(get(web, "/livez", &web.to_string()).0, 200);
    let log = server.log().join("\n");
    assert!(!log.contains("Too many open files"), "{log}");
}

#[cfg(target_os = "linux")]
#[test]
fn soft_open_file_limit_is_raised_to_the_hard_one() {
    let mut server = serve_with_fd_limit("256 && ulimit -S -n 200 && ulimit -H -n 256", &[]);
    let pid = pid(&mut server);
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_owned();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["256", "256"], "{line}");
}

#[cfg(target_os = "linux")]
#[test]
fn partial_headers_from_3000_connections_do_not_accumulate() {
    // A header timeout longer than the test: only the connection cap bounds what is held.
    let mut server = Server::start(&["--web", "127.0.0.1:0", "--web-header-timeout", "60"]);
    let web = dashboard(&server);
    let pid = pid(&mut server);
    assert_eq!(get(web, "/livez", &web.to_string()).0, 200);
    let before = rss_kib(pid);
    // 8 KiB of headers, never finished.
    let partial = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n",
        "a".repeat(8 * 1024 - 40)
    );
    let started = Instant::now();
    let mut held = Vec::new();
    for i in 0..3000 {
        // In waves, so the listen queue does not overflow into SYN retries of a second.
        if i % 200 == 199 {
            std::thread::sleep(Duration::from_millis(100));
        }
        let Ok(mut s) = TcpStream::connect(web) else {
            continue;
        };
        let _ = s.write_all(partial.as_bytes());
        held.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    let during = rss_kib(pid);
    let files = open_files(pid);
    eprintln!(
        "3000 partial-header connections in {:?}: RSS {} -> {} KiB, {files} files open",
        started.elapsed(),
        before,
        during
    );
    assert!(files < 128 + 40, "{files} files open");
    assert!(
        during.saturating_sub(before) < 24 * 1024,
        "RSS grew by {} KiB",
        during - before
    );
    // Given back once the clients go.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_files(pid) >= 40 {
        assert!(
            Instant::now() < deadline,
            "{} files still open",
            open_files(pid)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("once the clients left: RSS {} KiB", rss_kib(pid));
    assert_eq!(get(web, "/livez", &web.to_string()).0, 200);
}

#[test]
fn web_port_zero_logs_the_port_bound() {
    let server = Server::start(&["--web", "127.0.0.1:0"]);
    let web = dashboard(&server);
    assert_ne!(web.port(), 0);
    assert_eq!(get(web, "/livez", &web.to_string()).0, 200);
}

#[test]
fn web_host_names_and_client_commands_from_the_command_line() {
    let server = Server::start_on(
        "0.0.0.0:0",
        &["--web", "127.0.0.1:0", "--web-host", "kms.test,Other.Test"],
    );
    let web = dashboard(&server);
    let port = web.port();
    assert_eq!(get(web, "/", &format!("kms.test:{port}")).0, 200);
    assert_eq!(get(web, "/", &format!("other.test:{port}")).0, 200);
    let (status, body) = get(web, "/api/v1/clients", &format!("rebound.test:{port}"));
    assert_eq!(status, 421, "{body}");
    // Reached through its address: the commands name an address clients can reach (the
    // listener is on 0.0.0.0), never 127.0.0.1.
    let (status, body) = get(web, "/products?q=W269N", &web.to_string());
    assert_eq!(status, 200);
    let kms_port = server.addr.port();
    let skms = body
        .split("slmgr /skms ")
        .nth(1)
        .and_then(|r| r.split(&[' ', '<', '\n'][..]).next())
        .unwrap_or_else(|| panic!("no /skms command: {body}"));
    let (host, p) = skms.rsplit_once(':').unwrap();
    assert_eq!(p, kms_port.to_string());
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = host
        .parse()
        .unwrap_or_else(|_| panic!("an address: {skms}"));
    assert!(!ip.is_loopback(), "{skms}");
    // One of this machine's own addresses.
    std::net::TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("{ip} is not local: {e}"));
    // Reached through a --web-host name: that name.
    let (_, body) = get(web, "/products?q=W269N", &format!("kms.test:{port}"));
    assert!(
        body.contains(&format!("slmgr /skms kms.test:{kms_port}")),
        "{body}"
    );
}

#[test]
fn web_tokens_clients_cannot_send_are_refused_at_start() {
    for (token, says) in [
        (" s3cret", "space"),
        ("s3cret ", "space"),
        ("s3\u{1}cret", "control character"),
        ("s3cr\u{e9}t", "non-ASCII"),
    ] {
        let mut child = Command::new(rkms_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--db", "none"])
            .args(["--web", "127.0.0.1:0", "--web-token", token])
            .env_remove("RKMS_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = status.unwrap_or_else(|| panic!("{token:?} accepted: {err}"));
        assert_eq!(status.code(), Some(2), "{token:?}: {err}");
        assert!(err.contains("--web-token") && err.contains(says), "{err}");
        assert!(!err.contains("s3c"), "the token is never shown: {err}");
    }
}
