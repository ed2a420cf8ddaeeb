//! The load: C concurrent clients sending verified activation requests for a duration or a
//! number of requests, on kept connections or a new connection each.
//!
//! The generator must not be the limit of what it measures: its clients are spread over
//! `threads` operating-system threads, each running its own single-threaded runtime (no
//! work stealing, no cross-thread wake-ups), every reply is read with one read, and request
//! salts and client IDs come from a CSPRNG seeded once per client instead of one system call
//! per request. Its own CPU time is measured and reported with the results.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rand::rngs::{OsRng, StdRng};
use rand::{RngCore, SeedableRng};
use rkms_proto::rpc::client::BindOffer;
use uuid::Uuid;

use super::cpu::CpuTime;
use super::report::Summary;
use crate::client::{Session, SessionError, Target};

/// How connections are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A new TCP connection (bind + request) for every activation.
    NewConnection,
    /// Each client keeps its connection for all its requests.
    KeepAlive,
}

/// Load settings.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Target.
    pub addr: SocketAddr,
    /// Concurrent clients.
    pub connections: usize,
    /// Threads the clients are spread over (each with its own single-threaded runtime).
    pub threads: usize,
    /// Stop after this long…
    pub duration: Option<Duration>,
    /// …or after this many requests in all.
    pub requests: Option<u64>,
    /// Connection use.
    pub mode: Mode,
    /// KMS protocol version.
    pub protocol: u16,
    /// Offer NDR64 (kept connections then use it from their second request on).
    pub ndr64: bool,
    /// Verify every answer like `rkms activate` (off only for canned-reply servers).
    pub verify: bool,
    /// Close each new connection with RST instead of FIN (no TIME_WAIT on the load side).
    pub reset_close: bool,
    /// What each request asks for.
    pub target: Target,
    /// Per-exchange timeout.
    pub timeout: Duration,
    /// Print progress every second to standard error.
    pub progress: bool,
}

/// The threads [`BenchOptions::threads`] defaults to: one per CPU this process may run on
/// (so `taskset -c 1 rkms bench …` uses one).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

struct Shared {
    opts: BenchOptions,
    deadline: Option<Instant>,
    remaining: AtomicU64,
    done: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    /// Takes the right to send one more request at `now`.
    fn take(&self, now: Instant) -> bool {
        if self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| now >= d) {
            return false;
        }
        if self.opts.requests.is_some() {
            return self
                .remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| r.checked_sub(1))
                .is_ok();
        }
        true
    }
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn absorb(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }
}

fn error_kind(e: &SessionError) -> String {
    match e {
        SessionError::Connect { .. } => "connect".into(),
        SessionError::Timeout(_) => "timeout".into(),
        SessionError::Io(_) => "connection closed".into(),
        SessionError::Rpc(r) => format!("rpc: {r}"),
        SessionError::NothingBound => "bind".into(),
    }
}

/// A new client ID (version 4, random) from `rng`.
fn new_cmid(rng: &mut StdRng) -> Uuid {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

async fn one(session: &mut Session, opts: &BenchOptions, rng: &mut StdRng) -> Result<(), String> {
    // A new client each time, in its initial grace period.
    let rq = opts
        .target
        .request_with(opts.protocol, new_cmid(rng), "rkms-bench", 2, rng);
    let (stub, _) = session
        .activate(&rq.bytes)
        .await
        .map_err(|e| error_kind(&e))?;
    let payload = stub.result.map_err(|h| format!("refused {h}"))?;
    if opts.verify {
        rq.verify_response(&payload).map_err(|e| {
            format!(
                "verification: {e}: the target is not a KMS host (`rkms null-server` \
                     answers canned bytes); add --no-verify to measure it anyway"
            )
        })?;
    }
    Ok(())
}

/// One activation, opening the connection first when there is none.
async fn exchange(
    session: &mut Option<Session>,
    opts: &BenchOptions,
    offer: BindOffer,
    rng: &mut StdRng,
) -> Result<(), String> {
    if session.is_none() || opts.mode == Mode::NewConnection {
        *session = Some(
            Session::open(opts.addr, offer, opts.timeout)
                .await
                .map_err(|e| error_kind(&e))?,
        );
    }
    let Some(s) = session.as_mut() else {
        return Err("bind".into());
    };
    let r = one(s, opts, rng).await;
    if r.is_err() {
        *session = None;
    }
    r
}

async fn client(shared: Arc<Shared>) -> Tally {
    let opts = &shared.opts;
    let offer = BindOffer {
        ndr64: opts.ndr64,
        btfn: true,
        multiplex: true,
    };
    // A CSPRNG (ChaCha) seeded once from the operating system's: request salts and client
    // IDs stay unpredictable without a system call per request.
    let mut rng = StdRng::from_rng(OsRng).unwrap_or_else(|_| StdRng::from_entropy());
    let mut tally = Tally::default();
    let mut session: Option<Session> = None;
    // Requests served on the current kept connection: a host may recycle connections (rkms
    // closes after --max-calls-per-connection), which is a reconnect, not an error.
    let mut served = 0u64;
    loop {
        let started = Instant::now();
        if !shared.take(started) {
            break;
        }
        let mut result = exchange(&mut session, opts, offer, &mut rng).await;
        let recycled = matches!(&result, Err(k) if k == "connection closed");
        if recycled && opts.mode == Mode::KeepAlive && served > 0 {
            served = 0;
            result = exchange(&mut session, opts, offer, &mut rng).await;
        }
        match result {
            Ok(()) => {
                served += 1;
                tally
                    .latencies_us
                    .push(started.elapsed().as_micros().min(u32::MAX as u128) as u32)
            }
            Err(kind) => *tally.errors.entry(kind).or_default() += 1,
        }
        shared.done.fetch_add(1, Ordering::Relaxed);
        if opts.mode == Mode::NewConnection {
            if let Some(s) = session.take().filter(|_| opts.reset_close) {
                s.reset_on_close();
            }
        }
    }
    tally
}

/// Runs `clients` clients on this thread's own single-threaded runtime.
fn worker(shared: Arc<Shared>, clients: usize) -> Result<Tally, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a load thread's runtime: {e}"))?;
    Ok(rt.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|_| tokio::spawn(client(shared.clone())))
            .collect();
        let mut all = Tally::default();
        for t in tasks {
            if let Ok(t) = t.await {
                all.absorb(t);
            }
        }
        all
    }))
}

/// How many of `connections` clients thread `i` of `threads` runs (as even as can be).
fn share(connections: usize, threads: usize, i: usize) -> usize {
    connections / threads + usize::from(i < connections % threads)
}

/// Runs the load (blocking the calling thread) and returns its summary.
pub fn run(opts: BenchOptions) -> Result<Summary, String> {
    let connections = opts.connections.max(1);
    let threads = opts.threads.clamp(1, connections);
    let shared = Arc::new(Shared {
        deadline: opts.duration.map(|d| Instant::now() + d),
        remaining: AtomicU64::new(opts.requests.unwrap_or(u64::MAX)),
        done: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        opts: opts.clone(),
    });
    let cpu_before = CpuTime::now();
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    for i in 0..threads {
        let (mine, tx) = (shared.clone(), tx.clone());
        let clients = share(connections, threads, i);
        let spawned = std::thread::Builder::new()
            .name(format!("rkms-bench-{i}"))
            .spawn(move || {
                let _ = tx.send(worker(mine, clients));
            });
        if let Err(e) = spawned {
            shared.stop.store(true, Ordering::Relaxed);
            return Err(format!("cannot start a load thread: {e}"));
        }
    }
    drop(tx);
    let mut all = Tally::default();
    let mut failure = None;
    let mut finished = 0;
    let mut last = 0;
    let mut next_tick = started + Duration::from_secs(1);
    while finished < threads {
        match rx.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
            Ok(Ok(t)) => {
                all.absorb(t);
                finished += 1;
            }
            Ok(Err(e)) => {
                // Without this thread's clients the load is not what was asked: stop.
                shared.stop.store(true, Ordering::Relaxed);
                failure = Some(e);
                finished += 1;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let done = shared.done.load(Ordering::Relaxed);
                if opts.progress {
                    eprintln!(
                        "{:>6.1}s  {done:>9} requests  {:>8}/s",
                        started.elapsed().as_secs_f64(),
                        done - last
                    );
                }
                last = done;
                next_tick += Duration::from_secs(1);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let elapsed = started.elapsed();
    let cpu = match (cpu_before, CpuTime::now()) {
        (Some(a), Some(b)) => Some(b.since(&a)),
        _ => None,
    };
    Ok(Summary::new(
        &opts,
        threads,
        elapsed,
        cpu,
        all.latencies_us,
        all.errors,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_shared_evenly_among_threads() {
        for (connections, threads) in [(16, 1), (16, 3), (5, 2), (1000, 7), (3, 3)] {
            let shares: Vec<usize> = (0..threads)
                .map(|i| share(connections, threads, i))
                .collect();
            assert_eq!(shares.iter().sum::<usize>(), connections);
            let (min, max) = (shares.iter().min(), shares.iter().max());
            assert!(max.unwrap() - min.unwrap() <= 1, "{shares:?}");
        }
    }

    #[test]
    fn client_ids_are_random_version_4() {
        let mut rng = StdRng::seed_from_u64(7);
        let (a, b) = (new_cmid(&mut rng), new_cmid(&mut rng));
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 4);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
    }
}
