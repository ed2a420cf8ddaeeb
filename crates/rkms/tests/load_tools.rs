//! The load tools: `rkms bench` against `rkms serve` and `rkms null-server`, in both connection
//! modes and both ways of closing, with its JSON summary, error counting and exit codes.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

use common::{rkms_bin, Server};
use serde_json::Value;

/// Runs `rkms bench ADDR <args> --json` and returns its exit code and parsed summary.
fn bench(addr: SocketAddr, args: &[&str]) -> (i32, Value) {
    let out: Output = Command::new(rkms_bin())
        .arg("bench")
        .arg(addr.to_string())
        .args(args)
        .args(["--json", "--timeout", "5"])
        .output()
        .expect("run rkms bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "bench printed no JSON summary ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), summary)
}

/// Log lines of a served activation.
fn activations(server: &Server) -> usize {
    server
        .log()
        .iter()
        .filter(|l| l.contains("activated (count"))
        .count()
}

/// Waits until the server logged `n` activations (the log is read by another thread).
fn wait_activations(server: &Server, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while activations(server) < n && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(activations(server), n, "log: {:#?}", server.log());
}

fn assert_latencies(s: &Value) {
    let p50 = s["p50_ms"].as_f64().unwrap();
    let p90 = s["p90_ms"].as_f64().unwrap();
    let p99 = s["p99_ms"].as_f64().unwrap();
    let max = s["max_ms"].as_f64().unwrap();
    assert!(
        0.0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max,
        "latencies out of order: {s}"
    );
    assert!(s["per_second"].as_f64().unwrap() > 0.0, "{s}");
}

#[test]
fn kept_connections_send_exactly_the_requests_asked_and_all_verify() {
    let server = Server::start(&[]);
    let (code, s) = bench(
        server.addr,
        &["--mode", "keep-alive", "-c", "4", "-n", "200"],
    );
    assert_eq!(code, 0, "{s}");
    assert_eq!(
        (s["ok"].as_u64(), s["errors"].as_u64()),
        (Some(200), Some(0))
    );
    assert_eq!(s["mode"], "keep-alive");
    assert_eq!(s["connections"], 4);
    assert_eq!(s["protocol"], 6);
    assert_latencies(&s);
    wait_activations(&server, 200);
}

#[test]
fn new_connections_closed_with_fin_or_reset_are_served_without_warnings() {
    let server = Server::start(&[]);
    for (close, protocol) in [("fin", "4"), ("reset", "5"), ("reset", "6")] {
        let (code, s) = bench(
            server.addr,
            &[
                "--mode",
                "new-connection",
                "--close",
                close,
                "--protocol",
                protocol,
                "-c",
                "3",
                "-n",
                "30",
            ],
        );
        assert_eq!(code, 0, "--close {close}: {s}");
        assert_eq!(
            (s["ok"].as_u64(), s["errors"].as_u64()),
            (Some(30), Some(0))
        );
        assert_eq!(s["protocol"].as_u64(), protocol.parse().ok());
        assert_latencies(&s);
    }
    wait_activations(&server, 90);
    // A client that resets instead of closing is an ordinary end of connection for the host.
    let warnings: Vec<String> = server
        .log()
        .into_iter()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
}

#[test]
fn ndr64_is_used_on_kept_connections() {
    let server = Server::start(&["--log-level", "debug"]);
    let (code, s) = bench(server.addr, &["--ndr64", "-c", "1", "-n", "3"]);
    assert_eq!((code, s["ok"].as_u64()), (0, Some(3)), "{s}");
    // The first request of a connection goes with NDR32, the later ones with NDR64.
    server.wait_log("syntax: Ndr64");
}

/// Starts `rkms null-server` on a free loopback port.
fn null_server() -> Server {
    Server::spawn(Command::new(rkms_bin()).args(["null-server", "--listen", "127.0.0.1:0"]))
}

#[test]
fn null_server_answers_every_request_and_its_answers_fail_verification() {
    let null = null_server();
    for mode in ["keep-alive", "new-connection"] {
        let (code, s) = bench(null.addr, &["--mode", mode, "--no-verify", "-n", "50"]);
        assert_eq!(code, 0, "{s}");
        assert_eq!(
            (s["ok"].as_u64(), s["errors"].as_u64()),
            (Some(50), Some(0))
        );
    }
    // Canned bytes are not a KMS answer: with verification every one is an error, by kind.
    let (code, s) = bench(null.addr, &["-c", "2", "-n", "10"]);
    assert_eq!(code, 1, "{s}");
    assert_eq!(
        (s["ok"].as_u64(), s["errors"].as_u64()),
        (Some(0), Some(10))
    );
    let kinds = s["errors_by_kind"].as_object().unwrap();
    assert_eq!(kinds.len(), 1, "{s}");
    let (kind, n) = kinds.iter().next().unwrap();
    assert!(kind.starts_with("verification"), "{kind}");
    assert!(
        kind.contains("not a KMS host") && kind.contains("--no-verify"),
        "{kind}"
    );
    assert_eq!(n.as_u64(), Some(10));
}

#[test]
fn clients_spread_over_threads_and_the_generator_reports_its_own_cpu() {
    let server = Server::start(&[]);
    let (code, s) = bench(server.addr, &["--threads", "3", "-c", "5", "-n", "120"]);
    assert_eq!(code, 0, "{s}");
    assert_eq!(
        (s["ok"].as_u64(), s["errors"].as_u64()),
        (Some(120), Some(0))
    );
    assert_eq!(s["load_threads"], 3, "{s}");
    // Never more threads than clients.
    let (_, one) = bench(server.addr, &["--threads", "8", "-c", "2", "-n", "4"]);
    assert_eq!(one["load_threads"], 2, "{one}");
    #[cfg(unix)]
    {
        let user = s["load_cpu_user_s"].as_f64().unwrap();
        let system = s["load_cpu_system_s"].as_f64().unwrap();
        let cores = s["load_cpu_cores"].as_f64().unwrap();
        let per_request = s["load_cpu_us_per_request"].as_f64().unwrap();
        let seconds = s["seconds"].as_f64().unwrap();
        assert!(user >= 0.0 && system >= 0.0 && user + system > 0.0, "{s}");
        assert!(
            (cores - (user + system) / seconds).abs() < 1e-6,
            "cores is CPU seconds per wall second: {s}"
        );
        assert!(
            (per_request - (user + system) * 1e6 / 120.0).abs() < 1e-3,
            "{s}"
        );
        assert!(s["load_saturated"].is_boolean(), "{s}");
    }
    wait_activations(&server, 124);
}

#[test]
fn a_host_that_is_not_there_is_counted_as_connect_errors() {
    // A port nobody listens on: bind one, then close it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (code, s) = bench(addr, &["--mode", "new-connection", "-c", "2", "-n", "6"]);
    assert_eq!(code, 1, "{s}");
    assert_eq!((s["ok"].as_u64(), s["errors"].as_u64()), (Some(0), Some(6)));
    assert_eq!(s["errors_by_kind"]["connect"].as_u64(), Some(6), "{s}");
}

#[test]
fn bad_options_are_refused_with_a_message() {
    for (args, says) in [
        (&["--duration", "0"][..], "--duration"),
        (&["--close", "abort"][..], "abort"),
        (&["--mode", "pipelined"][..], "pipelined"),
        (&["-c", "0"][..], "0"),
        (&["-n", "0"][..], "--requests"),
        (&["--threads", "0"][..], "--threads"),
        (&["--timeout", "0"][..], "--timeout must be"),
        (
            &["--close", "reset"][..],
            "--close reset applies to --mode new-connection",
        ),
    ] {
        let out = Command::new(rkms_bin())
            .args(["bench", "127.0.0.1:9"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn hosts_that_cannot_be_reached_are_refused_before_any_load() {
    let run = |host: &str| {
        Command::new(rkms_bin())
            .args(["bench", host, "-n", "1"])
            .output()
            .unwrap()
    };
    let out = run("127.0.0.1:0");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("port 0"), "{stderr}");
    // A name that does not resolve: the resolver's reason is given.
    let out = run("no-such-host.invalid");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot resolve no-such-host.invalid: "),
        "{stderr}"
    );
}
