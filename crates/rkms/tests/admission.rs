//! Connection admission under attack, on loopback (127.0.0.2 is a different client from
//! 127.0.0.1), bounded in time and count: idle connections that never send a byte, reopened as
//! they are closed, do not keep another address from activating; the per-address cap, the
//! handshake deadline and eviction at the global limit; limit events logged once a minute.
#![cfg(target_os = "linux")]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client_pdus, testdata, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The attack tests each hold over 1,100 sockets and keep two cores busy: one at a time.
static HEAVY: Mutex<()> = Mutex::new(());

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn good() -> (Vec<u8>, Vec<u8>) {
    let p = client_pdus(&testdata().join("vectors/probe-vlmcsd/probe-vlmcsd-good-ndr32.hex"));
    (p[0].clone(), p[1].clone())
}

/// Lets this process open `n` files.
fn raise_fd_limit(n: u64) -> bool {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft >= n {
        return true;
    }
    setrlimit(Resource::RLIMIT_NOFILE, n.min(hard), hard).is_ok() && hard >= n
}

/// A connection to `addr` from the loopback address `source`.
async fn connect_from(source: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let s = socket.connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

async fn read_pdu(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut h = vec![0u8; 16];
    s.read_exact(&mut h).await.ok()?;
    let len = u16::from_le_bytes([h[8], h[9]]) as usize;
    h.resize(len.max(16), 0);
    s.read_exact(&mut h[16..]).await.ok()?;
    Some(h)
}

/// Connect, bind and one activation from `source`; its total time, or why it failed (within
/// 5 s).
async fn activation_from(source: IpAddr, addr: SocketAddr) -> Result<Duration, String> {
    let (bind, request) = good();
    let t = Instant::now();
    let run = async {
        let mut s = connect_from(source, addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        s.write_all(&bind).await.map_err(|e| e.to_string())?;
        let ack = read_pdu(&mut s).await.ok_or("no bind_ack")?;
        if ack[2] != 12 {
            return Err(format!("PDU type {} instead of bind_ack", ack[2]));
        }
        s.write_all(&request).await.map_err(|e| e.to_string())?;
        let r = read_pdu(&mut s).await.ok_or("no response")?;
        if r[2] != 2 {
            return Err(format!("PDU type {} instead of a response", r[2]));
        }
        Ok(())
    };
    match tokio::time::timeout(Duration::from_secs(5), run).await {
        Ok(Ok(())) => Ok(t.elapsed()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("no answer within 5 s".into()),
    }
}

/// `n` connections from 127.0.0.1 that never send a byte, each reopened as soon as the server
/// closes it, until stopped (at most 5,000 reopenings each).
struct Attack {
    stop: tokio::sync::watch::Sender<bool>,
    /// Connections the server closed (each was reopened).
    closed: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Attack {
    fn start(addr: SocketAddr, n: usize) -> Attack {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let closed = Arc::new(AtomicU64::new(0));
        let tasks = (0..n)
            .map(|_| {
                let mut stopped = stopped.clone();
                let closed = closed.clone();
                tokio::spawn(async move {
                    for _ in 0..5000 {
                        let connect = tokio::time::timeout(
                            Duration::from_secs(2),
                            connect_from(ATTACKER, addr),
                        );
                        let mut s = tokio::select! {
                            _ = stopped.changed() => return,
                            c = connect => match c {
                                Ok(Ok(s)) => s,
                                _ => {
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                    continue;
                                }
                            },
                        };
                        // Silent until the server closes it (or the attack ends).
                        let mut b = [0u8; 16];
                        loop {
                            tokio::select! {
                                _ = stopped.changed() => return,
                                r = s.read(&mut b) => match r {
                                    Ok(0) | Err(_) => break,
                                    Ok(_) => continue,
                                },
                            }
                        }
                        closed.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Attack {
            stop,
            closed,
            tasks,
        }
    }

    async fn stop(self) -> u64 {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.closed.load(Ordering::Relaxed)
    }
}

/// 10 activations from 127.0.0.2, 700 ms apart, while 1,100 idle connections from 127.0.0.1
/// are reopened as they close: every one succeeds within 2 s (locked out, none would; the
/// margin over the 0.2–0.6 s seen on an idle machine is for a machine busy with other tests).
async fn ten_activations_under_idle_attack(server: &Server) -> (Vec<Duration>, u64) {
    let addr = server.addr;
    let attack = Attack::start(addr, 1100);
    // Let the attack fill the host.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut times = Vec::new();
    let mut failures = Vec::new();
    for i in 0..10 {
        match activation_from(CLIENT, addr).await {
            Ok(t) if t < Duration::from_secs(2) => times.push(t),
            Ok(t) => failures.push(format!("activation {i} took {t:?}")),
            Err(e) => failures.push(format!("activation {i} failed: {e}")),
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let closed = attack.stop().await;
    assert!(
        failures.is_empty(),
        "{} of 10 activations from 127.0.0.2 succeeded within 2 s: {failures:?}",
        times.len()
    );
    (times, closed)
}

/// Runs a heavy test alone (the others in this file are light), on two worker threads.
fn heavy(test: impl std::future::Future<Output = ()>) {
    let _alone = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test);
}

#[test]
fn idle_connections_from_one_address_do_not_lock_out_another() {
    heavy(idle_connections_from_one_address_do_not_lock_out_another_body());
}

async fn idle_connections_from_one_address_do_not_lock_out_another_body() {
    assert!(raise_fd_limit(4096), "cannot raise the file limit");
    // Defaults: --max-connections 1024, --max-connections-per-address 64,
    // --handshake-timeout 5, --idle-timeout 30.
    let server = Server::start(&[]);
    let lines_before = server.log().len();
    let (times, closed) = ten_activations_under_idle_attack(&server).await;
    let worst = times.iter().max().unwrap();
    eprintln!(
        "per-address cap: 10/10 activations from 127.0.0.2, worst {worst:?}; \
         {closed} idle connections from 127.0.0.1 closed and reopened"
    );
    assert!(closed > 1000, "the cap closed only {closed} connections");
    // Limit events: one line (the first), then at most one a minute; nothing per connection.
    let log = server.log();
    let new_lines = &log[lines_before..];
    let reports = new_lines
        .iter()
        .filter(|l| l.contains("connection limits at work"))
        .count();
    let other: Vec<_> = new_lines
        .iter()
        .filter(|l| !l.contains("activated (count"))
        .collect();
    eprintln!(
        "per-address cap: besides the 10 activations the log grew by {} line(s): {other:#?}",
        other.len()
    );
    assert_eq!(reports, 1, "{new_lines:#?}");
    assert!(other.len() <= 2, "the log grew by {other:#?}");
}

#[test]
fn at_the_global_limit_the_oldest_silent_connection_makes_room() {
    heavy(at_the_global_limit_the_oldest_silent_connection_makes_room_body());
}

async fn at_the_global_limit_the_oldest_silent_connection_makes_room_body() {
    assert!(raise_fd_limit(4096), "cannot raise the file limit");
    // No per-address cap and a long handshake deadline: only eviction helps.
    let server = Server::start(&[
        "--max-connections-per-address",
        "5000",
        "--handshake-timeout",
        "60",
    ]);
    let (times, closed) = ten_activations_under_idle_attack(&server).await;
    let worst = times.iter().max().unwrap();
    eprintln!(
        "eviction: 10/10 activations from 127.0.0.2, worst {worst:?}; \
         {closed} idle connections from 127.0.0.1 evicted and reopened"
    );
    assert!(closed >= 76, "only {closed} connections evicted");
    let reports = server
        .log()
        .iter()
        .filter(|l| l.contains("connection limits at work"))
        .count();
    assert_eq!(reports, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn established_connections_are_not_evicted_and_new_ones_wait() {
    let server = Server::start(&["--max-connections", "2"]);
    let (bind, request) = good();
    let addr = server.addr;
    // One silent, one bound: a third connection evicts the silent one, not the bound one.
    let mut silent = connect_from(ATTACKER, addr).await.unwrap();
    let mut bound = connect_from(CLIENT, addr).await.unwrap();
    bound.write_all(&bind).await.unwrap();
    assert_eq!(read_pdu(&mut bound).await.unwrap()[2], 12);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = activation_from(CLIENT, addr).await.unwrap();
    assert!(t < Duration::from_secs(1), "{t:?}");
    let mut b = [0u8; 1];
    let r = tokio::time::timeout(Duration::from_secs(2), silent.read(&mut b)).await;
    assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "silent one evicted");
    bound.write_all(&request).await.unwrap();
    assert_eq!(read_pdu(&mut bound).await.unwrap()[2], 2, "bound one kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_timeout_is_separate_from_idle_timeout() {
    let server = Server::start(&["--handshake-timeout", "1", "--idle-timeout", "30"]);
    let (bind, request) = good();
    let addr = server.addr;
    let mut silent = connect_from(CLIENT, addr).await.unwrap();
    let mut partial = connect_from(CLIENT, addr).await.unwrap();
    partial.write_all(&bind[..10]).await.unwrap();
    let mut bound = connect_from(CLIENT, addr).await.unwrap();
    bound.write_all(&bind).await.unwrap();
    assert_eq!(read_pdu(&mut bound).await.unwrap()[2], 12);
    let t = Instant::now();
    for s in [&mut silent, &mut partial] {
        let mut b = [0u8; 1];
        let r = tokio::time::timeout(Duration::from_secs(3), s.read(&mut b)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "closed by the handshake timeout"
        );
    }
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_millis(2500),
        "{waited:?}"
    );
    // The bound connection has no such deadline: it still serves after 2 s.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    bound.write_all(&request).await.unwrap();
    assert_eq!(read_pdu(&mut bound).await.unwrap()[2], 2);
}

#[test]
fn per_address_cap_closes_the_surplus_at_once() {
    let server = Server::start(&["--max-connections-per-address", "3"]);
    let (bind, _) = good();
    let mut kept: Vec<_> = (0..3).map(|_| common::connect(server.addr)).collect();
    for s in kept.iter_mut() {
        common::send(s, &bind);
        assert_eq!(common::read_pdu(s).unwrap()[2], 12);
    }
    let mut extra = common::connect(server.addr);
    common::assert_closed(&mut extra, Duration::from_secs(2));
    server.wait_log("connection limits at work");
    // Another address is unaffected; a freed place is usable again.
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert!(rt.block_on(activation_from(CLIENT, server.addr)).is_ok());
    drop(kept.pop());
    // The host notices the close when it reads the end of the stream: retry for up to 3 s.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let mut again = common::connect(server.addr);
        // Refused connections are reset: the write may fail.
        let _ = std::io::Write::write_all(&mut again, &bind);
        match common::read_pdu(&mut again) {
            Some(ack) => {
                assert_eq!(ack[2], 12);
                break;
            }
            None => assert!(
                Instant::now() < deadline,
                "the freed place was not given back"
            ),
        }
    }
}

#[test]
fn new_limit_options_are_checked() {
    for (opt, bad) in [
        ("--handshake-timeout", "0"),
        ("--max-connections-per-address", "0"),
        ("--handshake-timeout", "soon"),
    ] {
        let out = std::process::Command::new(common::rkms_bin())
            .args(["serve", "--db", "none", "--web", "off", opt, bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{opt} {bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(opt), "{opt} {bad}: {err}");
    }
}

#[test]
fn the_host_raises_its_open_file_limit() {
    // Started with a soft limit of 256 (below --max-connections), it raises it to the hard one.
    let hard = std::fs::read_to_string("/proc/self/limits")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4).map(str::to_string))
        .unwrap();
    let mut command = std::process::Command::new("bash");
    command.args([
        "-c",
        &format!(
            "ulimit -Sn 256 && exec {} serve --listen 127.0.0.1:0 --db none --web off",
            common::rkms_bin()
        ),
    ]);
    let mut server = Server::spawn(&mut command);
    let pid = server.child().id();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let soft = line.split_whitespace().nth(3).unwrap();
    assert_eq!(soft, hard, "{line}");
}

/// The idle deadline moves with every request: a connection used more often than the idle
/// timeout stays open well past it, and is closed one idle timeout after its last request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_timeout_counts_from_the_last_request() {
    let server = Server::start(&["--idle-timeout", "2"]);
    let (bind, request) = good();
    let mut s = connect_from(CLIENT, server.addr).await.unwrap();
    s.write_all(&bind).await.unwrap();
    assert_eq!(read_pdu(&mut s).await.unwrap()[2], 12);
    // 4 s of requests 0.5 s apart: twice the idle timeout.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        s.write_all(&request).await.unwrap();
        let r = tokio::time::timeout(Duration::from_secs(5), read_pdu(&mut s))
            .await
            .expect("answered in time");
        assert_eq!(r.expect("still open")[2], 2, "answered");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let last = Instant::now();
    let mut b = [0u8; 1];
    let r = tokio::time::timeout(Duration::from_secs(6), s.read(&mut b)).await;
    assert!(
        matches!(r, Ok(Ok(0)) | Ok(Err(_))),
        "closed by the idle timeout"
    );
    let idle = last.elapsed();
    assert!(
        idle >= Duration::from_millis(1000) && idle < Duration::from_millis(4500),
        "closed {idle:?} after the last request"
    );
}

/// At shutdown a kept connection waiting for its next request is closed at once (not at its
/// idle timeout), and the host exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_a_kept_connection_waiting_for_its_next_request() {
    let mut server = Server::start(&["--idle-timeout", "60"]);
    let (bind, request) = good();
    let mut s = connect_from(CLIENT, server.addr).await.unwrap();
    s.write_all(&bind).await.unwrap();
    assert_eq!(read_pdu(&mut s).await.unwrap()[2], 12);
    s.write_all(&request).await.unwrap();
    assert_eq!(read_pdu(&mut s).await.unwrap()[2], 2);
    let pid = server.child().id();
    let t = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let mut b = [0u8; 1];
    let r = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await;
    assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "closed at shutdown");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let status = server.child().wait().unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}
