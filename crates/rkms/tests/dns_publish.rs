//! The host publishes itself in DNS (`--dns-publish`): against a real BIND 9 started here
//! (`named -g` on a free loopback port, a throw-away dynamic zone and a TSIG key from
//! `tsig-keygen`), the SRV record appears; two hosts publish side by side and one leaves
//! without touching the other's record; a wrong key is refused (the server's RCODE and TSIG
//! error logged, shown in /readyz and /metrics) while activations go on; and `rkms activate
//! --domain ZONE --dns-server` finds and activates against the published host.
//!
//! Needs BIND 9 (`named`, `tsig-keygen`, `dig`: Debian's bind9 and bind9-dnsutils, which
//! .ci/run installs); without them the tests are reported as ignored, not passed.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{rkms_bin, Server};
use libtest_mimic::{Arguments, Failed, Trial};

const ZONE: &str = "test.lan";

/// A program found in PATH or in the sbin directories (named lives in /usr/sbin).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    // Free for both TCP and UDP (named listens on both).
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A throw-away BIND 9 serving the dynamic zone test.lan, updatable with `key`.
struct Named {
    child: Child,
    dir: PathBuf,
    port: u16,
    /// The key file named accepts.
    key: PathBuf,
    /// A key file with the same key name and another secret.
    wrong_key: PathBuf,
    /// A second accepted key, hmac-sha512.
    key512: PathBuf,
}

impl Named {
    /// Starts named on a free port; again on another port (at most 5 times) when another
    /// program took the port between the choice and named's bind (named then exits, and
    /// queries to the port would reach the other program).
    fn start(name: &str) -> Named {
        let mut attempts = 1;
        loop {
            match Named::start_once(name) {
                Ok(named) => return named,
                Err(log) => {
                    assert!(
                        attempts < 5,
                        "named could not listen on 5 free ports: {log}"
                    );
                    attempts += 1;
                }
            }
        }
    }

    /// Starts named once: `Err` with its log when it could not listen on the port chosen.
    fn start_once(name: &str) -> Result<Named, String> {
        let dir = std::env::temp_dir().join(format!("rkms-bind-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let keygen = find_program("tsig-keygen").unwrap();
        let make_key = |file: &str, alg: &str, name: &str| {
            let out = Command::new(&keygen)
                .args(["-a", alg, name])
                .output()
                .unwrap();
            assert!(out.status.success(), "tsig-keygen failed");
            let path = dir.join(file);
            std::fs::write(&path, &out.stdout).unwrap();
            path
        };
        let key = make_key("rkms.key", "hmac-sha256", "rkms-key");
        let wrong_key = make_key("wrong.key", "hmac-sha256", "rkms-key");
        let key512 = make_key("rkms512.key", "hmac-sha512", "rkms-key512");
        std::fs::write(
            dir.join("zone"),
            "$TTL 300\n\
             @ IN SOA ns.test.lan. admin.test.lan. 1 3600 600 86400 300\n\
             @ IN NS ns.test.lan.\n\
             ns IN A 127.0.0.1\n\
             kms1 IN A 127.0.0.1\n\
             kms2 IN A 127.0.0.1\n",
        )
        .unwrap();
        let d = dir.display();
        let port = free_port();
        std::fs::write(
            dir.join("named.conf"),
            format!(
                "options {{ directory \"{d}\"; listen-on port {port} {{ 127.0.0.1; }}; \
                 listen-on-v6 {{ none; }}; pid-file \"{d}/named.pid\"; recursion no; \
                 dnssec-validation no; session-keyfile \"{d}/session.key\"; \
                 managed-keys-directory \"{d}\"; }};\n\
                 controls {{ }};\n\
                 include \"{d}/rkms.key\";\n\
                 include \"{d}/rkms512.key\";\n\
                 zone \"{ZONE}\" {{ type primary; file \"{d}/zone\"; \
                 allow-update {{ key rkms-key; key rkms-key512; }}; }};\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("named.log")).unwrap();
        let child = Command::new(find_program("named").unwrap())
            .arg("-g")
            .arg("-c")
            .arg(dir.join("named.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start named");
        let named = Named {
            child,
            dir,
            port,
            key,
            wrong_key,
            key512,
        };
        // Ready: its last start-up line is just "running" (its first lines say "running on
        // Linux …" and "running as: …").
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = named.log();
            if log.lines().any(|l| l.ends_with(" running")) {
                return Ok(named);
            }
            if log.contains("unable to listen") || log.contains("address in use") {
                return Err(log);
            }
            assert!(Instant::now() < deadline, "named did not start: {log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("named.log")).unwrap_or_default()
    }

    fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The SRV records of _vlmcs._tcp.test.lan, as `dig +short` prints them, sorted.
    fn srv(&self) -> Vec<String> {
        let out = Command::new(find_program("dig").unwrap())
            .args([
                "@127.0.0.1",
                "-p",
                &self.port.to_string(),
                "+short",
                "+tcp",
                "_vlmcs._tcp.test.lan",
                "SRV",
            ])
            .output()
            .unwrap();
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    }

    /// Waits until the SRV records are exactly `want`.
    fn wait_srv(&self, want: &[String]) -> Result<(), Failed> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let now = self.srv();
            if now == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("SRV records {now:?}, expected {want:?}").into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `rkms serve` publishing itself in test.lan as `host` with `key`.
fn publishing_host(named: &Named, host: &str, key: &Path, extra: &[&str]) -> (Server, u16) {
    let web = free_port();
    let web_addr = format!("127.0.0.1:{web}");
    let key = key.to_str().unwrap().to_string();
    let server_addr = named.server();
    let mut args = vec![
        "--web",
        &web_addr,
        "--dns-publish",
        ZONE,
        "--dns-publish-name",
        host,
        "--dns-update-server",
        &server_addr,
        "--dns-tsig-key",
        &key,
    ];
    args.extend_from_slice(extra);
    (Server::start(&args), web)
}

fn srv_line(priority: u16, weight: u16, port: u16, host: &str) -> String {
    format!("{priority} {weight} {port} {host}.test.lan.")
}

/// GET over plain HTTP/1.1; returns (status, body).
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn activate(args: &[&str]) -> (bool, String) {
    let out = Command::new(rkms_bin())
        .arg("activate")
        .args(args)
        .args(["--json", "--timeout", "5"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Stops a host cleanly (SIGTERM) and waits for it to exit.
fn stop(server: &mut Server) {
    let pid = server.child().id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.child().try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the host did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn record_appears_and_activate_finds_the_host() -> Result<(), Failed> {
    let named = Named::start("appears");
    assert!(named.srv().is_empty());
    let (host, web) = publishing_host(&named, "kms1", &named.key, &[]);
    let port = host.addr.port();
    host.wait_log("SRV record published");
    named.wait_srv(&[srv_line(0, 0, port, "kms1")])?;
    // Found through DNS only: the SRV record and the target's address, both from this server.
    let (ok, out) = activate(&["--domain", ZONE, "--dns-server", &named.server()]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("127.0.0.1:{port}")), "{out}");
    // Status: /metrics and /readyz.
    let (status, metrics) = get(web, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("rkms_dns_publish_failures_total{zone=\"test.lan\"} 0"),
        "{metrics}"
    );
    let last = metrics
        .lines()
        .find(|l| l.starts_with("rkms_dns_publish_last_success_timestamp{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    assert!(last > 1_700_000_000, "{metrics}");
    assert!(metrics.trim_end().ends_with("# EOF"), "{metrics}");
    let (_, ready) = get(web, "/readyz");
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(
        ready["dns_publish"]["test.lan"]["record"],
        format!("_vlmcs._tcp.test.lan. 3600 IN SRV 0 0 {port} kms1.test.lan."),
        "{ready}"
    );
    assert_eq!(ready["dns_publish"]["test.lan"]["failures"], 0);
    // The dashboard's settings page says where and what the host publishes.
    let (status, page) = get(web, "/settings");
    assert_eq!(status, 200);
    assert!(page.contains("DNS publishing in test.lan"), "{page}");
    assert!(page.contains("last published 20"), "{page}");
    Ok(())
}

fn two_hosts_publish_side_by_side() -> Result<(), Failed> {
    let named = Named::start("two");
    let (mut one, _) = publishing_host(&named, "kms1", &named.key, &["--dns-unpublish-on-exit"]);
    // The second host signs with hmac-sha512.
    let (two, _) = publishing_host(
        &named,
        "kms2",
        &named.key512,
        &["--dns-priority", "10", "--dns-weight", "5"],
    );
    let (p1, p2) = (one.addr.port(), two.addr.port());
    one.wait_log("SRV record published");
    two.wait_log("SRV record published");
    let mut both = vec![srv_line(0, 0, p1, "kms1"), srv_line(10, 5, p2, "kms2")];
    both.sort();
    named.wait_srv(&both)?;
    // A clean stop removes kms1's record only.
    stop(&mut one);
    named.wait_srv(&[srv_line(10, 5, p2, "kms2")])?;
    assert!(one.log().iter().any(|l| l.contains("SRV record removed")));
    // kms2 restarted with another priority replaces its own record, not adds a second one.
    drop(two);
    let two = Server::start_on(
        &format!("127.0.0.1:{p2}"),
        &[
            "--dns-publish",
            ZONE,
            "--dns-publish-name",
            "kms2",
            "--dns-update-server",
            &named.server(),
            "--dns-tsig-key",
            named.key.to_str().unwrap(),
            "--dns-priority",
            "20",
        ],
    );
    two.wait_log("SRV record published");
    named.wait_srv(&[srv_line(20, 0, p2, "kms2")])?;
    Ok(())
}

fn wrong_key_is_refused_and_activations_go_on() -> Result<(), Failed> {
    let named = Named::start("wrongkey");
    let (host, web) = publishing_host(&named, "kms1", &named.wrong_key, &[]);
    let line = host.wait_log("DNS UPDATE FAILED");
    // The server's answer: NOTAUTH with TSIG error BADSIG (same key name, other secret).
    assert!(
        line.contains("NOTAUTH") && line.contains("BADSIG"),
        "{line}"
    );
    assert!(line.contains("activations continue"), "{line}");
    assert!(named.srv().is_empty());
    let (ok, out) = activate(&[&host.addr.to_string()]);
    assert!(ok, "{out}");
    let (status, ready) = get(web, "/readyz");
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert!(
        ready["dns_publish"]["test.lan"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("BADSIG")),
        "{ready}"
    );
    // Publishing is shown, not a readiness condition.
    assert!(ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["name"] != "dns_publish"));
    let _ = status;
    let (_, metrics) = get(web, "/metrics");
    assert!(
        metrics.contains("rkms_dns_publish_failures_total{zone=\"test.lan\"} 1")
            || metrics.contains("rkms_dns_publish_failures_total{zone=\"test.lan\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("rkms_dns_publish_last_success_timestamp{zone=\"test.lan\"} 0"));
    // An unreachable server is a failure too, with its reason.
    let dead = free_port();
    let dead_addr = format!("127.0.0.1:{dead}");
    let other = Server::start(&[
        "--dns-publish",
        ZONE,
        "--dns-publish-name",
        "kms1",
        "--dns-update-server",
        &dead_addr,
    ]);
    let line = other.wait_log("DNS UPDATE FAILED");
    assert!(line.contains(&dead_addr), "{line}");
    let (ok, out) = activate(&[&other.addr.to_string()]);
    assert!(ok, "{out}");
    // A server that accepts the connection and never answers: a timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let third = Server::start(&[
        "--dns-publish",
        ZONE,
        "--dns-publish-name",
        "kms1",
        "--dns-update-server",
        &silent_addr,
    ]);
    let line = third.wait_log("DNS UPDATE FAILED");
    assert!(line.contains("no answer within 5s"), "{line}");
    let (ok, out) = activate(&[&third.addr.to_string()]);
    assert!(ok, "{out}");
    drop(silent);
    Ok(())
}

/// Bad publishing options are refused before the host starts, with the reason (no BIND needed).
fn bad_options_are_clear_errors() -> Result<(), Failed> {
    let dir = std::env::temp_dir().join(format!("rkms-dns-opts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("md5.key");
    std::fs::write(
        &key,
        "key \"k\" { algorithm hmac-md5; secret \"c2VjcmV0\"; };\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(rkms_bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--web",
                "off",
                "--db",
                "none",
            ])
            .args(args)
            .env_remove("RKMS_CONFIG")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&[
        "--dns-publish",
        ZONE,
        "--dns-tsig-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("hmac-md5") && err.contains("not supported"),
        "{err}"
    );
    let (code, err) = run(&[
        "--dns-publish",
        ZONE,
        "--dns-tsig-key",
        "/nonexistent/k.key",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("/nonexistent/k.key"), "{err}");
    let (code, err) = run(&["--dns-publish", "a..b"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a DNS zone name"), "{err}");
    let (code, err) = run(&["--dns-publish", ZONE, "--dns-update-server", "ns1:x"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a port number"), "{err}");
    // `rkms config check` reads the key file too.
    let conf = dir.join("rkms.toml");
    std::fs::write(
        &conf,
        format!(
            "dns-publish = [\"{ZONE}\"]\ndns-tsig-key = \"{}\"\n",
            key.display()
        ),
    )
    .unwrap();
    let out = Command::new(rkms_bin())
        .args(["config", "check", "--config", conf.to_str().unwrap()])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("hmac-md5"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

type TestFn = fn() -> Result<(), Failed>;

fn main() {
    let args = Arguments::from_args();
    let tests: [(&str, TestFn); 3] = [
        (
            "record_appears_and_activate_finds_the_host",
            record_appears_and_activate_finds_the_host,
        ),
        (
            "two_hosts_publish_side_by_side",
            two_hosts_publish_side_by_side,
        ),
        (
            "wrong_key_is_refused_and_activations_go_on",
            wrong_key_is_refused_and_activations_go_on,
        ),
    ];
    let missing: Vec<&str> = ["named", "tsig-keygen", "dig"]
        .into_iter()
        .filter(|p| find_program(p).is_none())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "BIND 9 not found ({} missing): the DNS publishing tests are ignored (install \
             Debian's bind9 and bind9-dnsutils, as .ci/run does)",
            missing.join(", ")
        );
    }
    let mut trials: Vec<Trial> = tests
        .into_iter()
        .map(|(name, f)| Trial::test(name, f).with_ignored_flag(!missing.is_empty()))
        .collect();
    trials.push(Trial::test(
        "bad_options_are_clear_errors",
        bad_options_are_clear_errors,
    ));
    libtest_mimic::run(&args, trials).exit();
}
