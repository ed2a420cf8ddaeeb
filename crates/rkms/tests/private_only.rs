//! `--private-only` against a client with a public-looking address: a network namespace of
//! this test's own, joined to the host by a veth pair with documentation (TEST-NET-2)
//! addresses, so no traffic leaves the machine. Needs root and iproute2; skipped otherwise.
#![cfg(target_os = "linux")]

mod common;

use std::process::Command;

use common::{rkms_bin, Server};

/// A namespace with a veth pair: host side 198.51.100.1, namespace side 198.51.100.2.
struct Netns {
    name: String,
    host_if: String,
}

impl Netns {
    fn create() -> Option<Netns> {
        let id = std::process::id() % 100_000;
        let ns = Netns {
            name: format!("rkmsp{id}"),
            host_if: format!("rkh{id}"),
        };
        let peer = format!("rkn{id}");
        let run = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        let ok = run(&["netns", "add", &ns.name])
            && run(&[
                "link",
                "add",
                &ns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &peer,
            ])
            && run(&["link", "set", &peer, "netns", &ns.name])
            && run(&["addr", "add", "198.51.100.1/30", "dev", &ns.host_if])
            && run(&["link", "set", &ns.host_if, "up"])
            && run(&[
                "netns",
                "exec",
                &ns.name,
                "ip",
                "addr",
                "add",
                "198.51.100.2/30",
                "dev",
                &peer,
            ])
            && run(&["netns", "exec", &ns.name, "ip", "link", "set", &peer, "up"])
            && run(&["netns", "exec", &ns.name, "ip", "link", "set", "lo", "up"]);
        if ok {
            Some(ns)
        } else {
            drop(ns);
            None
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[test]
fn public_clients_are_dropped_private_ones_served() {
    let Some(ns) = Netns::create() else {
        eprintln!("cannot create a network namespace here (not root, or no iproute2): skipped");
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server::start_on(&format!("0.0.0.0:{port}"), &["--private-only"]);
    // From the namespace the client's address is 198.51.100.2: public-looking.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            rkms_bin(),
            "activate",
            &format!("198.51.100.1:{port}"),
            "--timeout",
            "3",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    server.wait_log("closed: public address (--private-only)");
    let line = server.wait_log("--private-only");
    assert!(line.contains("198.51.100.2"), "{line}");
    // Loopback is private: served.
    let out = Command::new(rkms_bin())
        .args(["activate", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(out.status.success());
    // Without --private-only the namespace client is served (the path itself works).
    drop(server);
    let open = Server::start_on(&format!("0.0.0.0:{port}"), &[]);
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            rkms_bin(),
            "activate",
            &format!("198.51.100.1:{port}"),
            "--timeout",
            "3",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(open);
}
