//! Abuse on loopback, bounded in time and count: slowloris, garbage floods, huge and endless
//! fragments, bind storms, 10,000 idle connections. The host stays small and keeps activating.
#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use common::{client_pdus, testdata, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn good() -> (Vec<u8>, Vec<u8>) {
    let p = client_pdus(&testdata().join("vectors/probe-vlmcsd/probe-vlmcsd-good-ndr32.hex"));
    (p[0].clone(), p[1].clone())
}

/// Lets this process (and the servers it starts) open `n` files.
fn raise_fd_limit(n: u64) -> bool {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft >= n {
        return true;
    }
    let want = n.min(hard.max(n));
    setrlimit(Resource::RLIMIT_NOFILE, want, hard.max(want)).is_ok() || soft >= n
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn read_pdu(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut h = vec![0u8; 16];
    s.read_exact(&mut h).await.ok()?;
    let len = u16::from_le_bytes([h[8], h[9]]) as usize;
    h.resize(len, 0);
    s.read_exact(&mut h[16..]).await.ok()?;
    Some(h)
}

/// A full bind + request; returns how long the request took.
async fn activation(addr: std::net::SocketAddr) -> Duration {
    let (bind, request) = good();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(&bind).await.unwrap();
    read_pdu(&mut s).await.unwrap();
    let t = Instant::now();
    s.write_all(&request).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), read_pdu(&mut s))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r[2], 2, "a response");
    t.elapsed()
}

/// Whether the server closed `s` (EOF or reset) within `within`.
async fn closed(s: &mut TcpStream, within: Duration) -> bool {
    let mut b = [0u8; 64];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            s.read(&mut b),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_does_not_delay_activations_and_is_cut_off() {
    assert!(raise_fd_limit(4096), "cannot raise the file limit");
    let server = Server::start(&[
        "--idle-timeout",
        "2",
        "--max-connections",
        "3000",
        "--max-connections-per-address",
        "3000",
    ]);
    let addr = server.addr;
    let (bind, _) = good();
    let mut slow = Vec::new();
    for _ in 0..1000 {
        slow.push(TcpStream::connect(addr).await.unwrap());
    }
    // Trickle one byte of a bind every 500 ms on every connection, for 3 s.
    let trickle = tokio::spawn(async move {
        for i in 0..6 {
            for s in slow.iter_mut() {
                let _ = s.write_all(&bind[i..i + 1]).await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        slow
    });
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        worst = worst.max(activation(addr).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        worst < Duration::from_millis(100),
        "an activation took {worst:?} under slowloris"
    );
    let mut slow = trickle.await.unwrap();
    // Each trickling connection is closed within the PDU deadline (2 s from its first byte).
    let mut all_closed = true;
    for s in slow.iter_mut() {
        all_closed &= closed(s, Duration::from_secs(3)).await;
    }
    assert!(all_closed, "slow connections still open");
    server.wait_log("a PDU was not completed within 2s");
    assert!(activation(addr).await < Duration::from_millis(100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_keep_memory_bounded_and_the_host_serving() {
    assert!(raise_fd_limit(4096));
    let mut server = Server::start(&[
        "--max-connections",
        "3000",
        "--max-connections-per-address",
        "3000",
    ]);
    let addr = server.addr;
    let pid = server.child().id();
    let (bind, request) = good();
    // 2,000 connections of garbage: each closed, each logged once.
    let mut tasks = Vec::new();
    for i in 0..2000u32 {
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let mut junk = vec![0u8; 64];
            for (j, b) in junk.iter_mut().enumerate() {
                *b = (i as usize * 31 + j * 17) as u8;
            }
            junk[8] = 8; // frag_length below the header: a framing error
            junk[9] = 0;
            let _ = s.write_all(&junk).await;
            closed(&mut s, Duration::from_secs(5)).await
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap(), "garbage connection not closed");
    }
    // Huge declared fragment length: closed before any body is buffered.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut huge = bind.clone();
    huge[8..10].copy_from_slice(&u16::MAX.to_le_bytes());
    s.write_all(&huge).await.unwrap();
    assert!(closed(&mut s, Duration::from_secs(3)).await);
    // Endless fragments: cut off at the reassembly limit.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&bind).await.unwrap();
    read_pdu(&mut s).await.unwrap();
    let mut frag = request.clone();
    frag[3] = 0x01; // FIRST only
    let mut cut = false;
    for i in 0..1000 {
        if s.write_all(&frag).await.is_err() {
            cut = true;
            break;
        }
        if i == 0 {
            frag[3] = 0x00; // middle fragments from now on
        }
    }
    cut |= closed(&mut s, Duration::from_secs(3)).await;
    assert!(cut, "endless fragments not cut off");
    // A bind storm on one connection: every bind answered, nothing accumulates.
    let mut s = TcpStream::connect(addr).await.unwrap();
    for _ in 0..10_000 {
        s.write_all(&bind).await.unwrap();
        read_pdu(&mut s).await.unwrap();
    }
    s.write_all(&request).await.unwrap();
    assert_eq!(read_pdu(&mut s).await.unwrap()[2], 2);
    assert!(activation(addr).await < Duration::from_millis(100));
    let rss = rss_kib(pid);
    eprintln!("RSS after the floods: {rss} KiB");
    assert!(rss < 64 * 1024, "RSS {rss} KiB after the floods");
    // Logged once per connection, not once per byte.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let framing = server
        .log()
        .iter()
        .filter(|l| l.contains("frag_length 8 is smaller"))
        .count();
    assert_eq!(framing, 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_stay_small() {
    // Each process (this test, the server) holds about 10,000 sockets.
    if !raise_fd_limit(12_000) {
        eprintln!("cannot raise the file limit to 12,000; skipping");
        return;
    }
    let mut server = Server::start(&[
        "--max-connections",
        "20000",
        "--max-connections-per-address",
        "20000",
        "--idle-timeout",
        "60",
        "--handshake-timeout",
        "60",
    ]);
    let addr = server.addr;
    let pid = server.child().id();
    let (bind, _) = good();
    let mut idle = Vec::with_capacity(10_000);
    for i in 0..10_000 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        if i % 2 == 0 {
            // Half of them bound, half silent.
            s.write_all(&bind).await.unwrap();
            read_pdu(&mut s).await.unwrap();
        }
        idle.push(s);
    }
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        worst = worst.max(activation(addr).await);
    }
    assert!(
        worst < Duration::from_millis(100),
        "activation took {worst:?} with 10,000 idle connections"
    );
    let rss = rss_kib(pid);
    eprintln!("RSS with 10,000 idle connections: {rss} KiB");
    assert!(
        rss < 64 * 1024,
        "RSS {rss} KiB with 10,000 idle connections"
    );
    drop(idle);
}
