//! The load: C concurrent clients sending verified activation requests for a duration or a
//! number of requests, on kept connections or a new connection each.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rkms_proto::rpc::client::BindOffer;
use uuid::Uuid;

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

struct Shared {
    opts: BenchOptions,
    deadline: Option<Instant>,
    remaining: AtomicU64,
    done: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    /// Takes the right to send one more request.
    fn take(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d) {
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

fn error_kind(e: &SessionError) -> String {
    match e {
        SessionError::Connect { .. } => "connect".into(),
        SessionError::Timeout(_) => "timeout".into(),
        SessionError::Io(_) => "connection closed".into(),
        SessionError::Rpc(r) => format!("rpc: {r}"),
        SessionError::NothingBound => "bind".into(),
    }
}

async fn one(session: &mut Session, opts: &BenchOptions) -> Result<(), String> {
    // A new client each time, in its initial grace period.
    let rq = opts
        .target
        .request(opts.protocol, Uuid::new_v4(), "rkms-bench", 2);
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
) -> Result<(), String> {
    if session.is_none() || opts.mode == Mode::NewConnection {
        *session = Some(
            Session::open(opts.addr, offer, opts.timeout)
                .await
                .map_err(|e| error_kind(&e))?,
        );
    }
    let s = session.as_mut().expect("opened above");
    let r = one(s, opts).await;
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
    let mut tally = Tally::default();
    let mut session: Option<Session> = None;
    // Requests served on the current kept connection: a host may recycle connections (rkms
    // closes after --max-calls-per-connection), which is a reconnect, not an error.
    let mut served = 0u64;
    while shared.take() {
        let started = Instant::now();
        let mut result = exchange(&mut session, opts, offer).await;
        let recycled = matches!(&result, Err(k) if k == "connection closed");
        if recycled && opts.mode == Mode::KeepAlive && served > 0 {
            served = 0;
            result = exchange(&mut session, opts, offer).await;
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

/// Runs the load and returns its summary.
pub async fn run(opts: BenchOptions) -> Summary {
    let shared = Arc::new(Shared {
        deadline: opts.duration.map(|d| Instant::now() + d),
        remaining: AtomicU64::new(opts.requests.unwrap_or(u64::MAX)),
        done: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        opts: opts.clone(),
    });
    let started = Instant::now();
    let progress = opts.progress.then(|| {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut last = 0;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let done = shared.done.load(Ordering::Relaxed);
                eprintln!(
                    "{:>6.1}s  {done:>9} requests  {:>8}/s",
                    started.elapsed().as_secs_f64(),
                    done - last
                );
                last = done;
            }
        })
    });
    let tasks: Vec<_> = (0..opts.connections.max(1))
        .map(|_| tokio::spawn(client(shared.clone())))
        .collect();
    let mut all = Tally::default();
    for t in tasks {
        if let Ok(t) = t.await {
            all.latencies_us.extend(t.latencies_us);
            for (k, v) in t.errors {
                *all.errors.entry(k).or_default() += v;
            }
        }
    }
    if let Some(p) = progress {
        p.abort();
    }
    Summary::new(&opts, started.elapsed(), all.latencies_us, all.errors)
}
