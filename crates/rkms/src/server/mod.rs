//! The async shell around the protocol core: listeners, connections, timeouts and shutdown.

mod acks;
pub mod admission;
mod connection;
pub mod limits;
mod listener;
// The metrics are read only by /metrics: without the `web` feature nothing is counted.
#[cfg(feature = "web")]
pub mod metrics;
#[cfg(not(feature = "web"))]
#[path = "metrics_unbuilt.rs"]
pub mod metrics;
pub mod shutdown;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tracing::{info, warn};

use crate::policy::Policy;
use admission::Admission;
use arc_swap::ArcSwap;
use limits::RateLimiter;
pub use listener::{bind_listeners, bind_listeners_with, DEFAULT_LISTEN};
pub use metrics::Metrics;
use rkms_store::Writer;

/// Server settings that are not policy.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Addresses to listen on; empty means the default (dual-stack `[::]:1688`).
    pub listen: Vec<SocketAddr>,
    /// Offer NDR64.
    pub ndr64: bool,
    /// Answer bind-time feature negotiation.
    pub btfn: bool,
    /// Close a connection idle this long.
    pub idle_timeout: Duration,
    /// Close a connection that has not sent a complete PDU this long after it was accepted.
    pub handshake_timeout: Duration,
    /// Largest PDU accepted.
    pub max_pdu: usize,
    /// Largest request reassembled from fragments.
    pub max_call_size: usize,
    /// How long in-flight exchanges may take to finish at shutdown.
    pub shutdown_grace: Duration,
    /// Connections served at once. At the limit the oldest connection without a complete PDU
    /// is closed for a new one; when every connection has sent one, accepting pauses.
    pub max_connections: usize,
    /// Connections open at once from one client address; more are closed right after accept.
    pub max_connections_per_address: usize,
    /// Activation requests served on one connection before it is closed.
    pub max_calls_per_connection: u32,
    /// Close the connection after every response (py-kms style).
    pub disconnect_after_request: bool,
    /// Serve only clients with private addresses (PROTOCOL.md §2.12); others are closed
    /// before a byte is sent.
    pub private_only: bool,
    /// Activation requests a minute one client address may make.
    pub rate_limit: Option<u32>,
    /// How long a response waits for its client record to be written before it is sent anyway.
    pub store_wait: Duration,
    /// Listen backlog.
    pub backlog: u32,
    /// Listeners on `[::]` accept IPv6 clients only.
    pub ipv6_only: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: Vec::new(),
            ndr64: true,
            btfn: true,
            idle_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(5),
            max_pdu: 5840,
            max_call_size: 16 * 1024,
            shutdown_grace: Duration::from_secs(5),
            max_connections: 1024,
            max_connections_per_address: 64,
            max_calls_per_connection: 1000,
            disconnect_after_request: false,
            private_only: false,
            rate_limit: None,
            store_wait: Duration::from_millis(250),
            backlog: 4096,
            ipv6_only: false,
        }
    }
}

/// What every connection task shares.
pub(crate) struct Shared {
    pub config: ServerConfig,
    /// The current policy; replaced on reload.
    pub policy: Arc<ArcSwap<Policy>>,
    /// One permit per open connection.
    pub connections: Arc<Semaphore>,
    pub rate: Option<RateLimiter>,
    /// Per-address cap, handshake deadline and eviction at the limit.
    pub admission: Arc<Admission>,
    /// Where client records go (None: not kept).
    pub store: Option<Arc<Writer>>,
    /// Whether responses wait for their record (a durable store).
    pub store_acks: bool,
    /// Where the writer's acknowledgements are queued for the delivery task (None: each
    /// acknowledgement wakes its connection itself).
    pub ack_queue: Option<Arc<acks::AckQueue>>,
    pub metrics: Arc<Metrics>,
}

/// Runs the server until `shutdown` resolves, then drains connections and returns.
pub async fn run(
    config: ServerConfig,
    services: Services,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let listeners = bind_listeners_with(&config.listen, config.backlog, config.ipv6_only)?;
    for l in &listeners {
        info!(address = %l.local_addr()?, "listening");
    }
    serve_listeners(listeners, config, services, shutdown).await
}

/// What the server uses besides its settings.
#[derive(Clone)]
pub struct Services {
    /// Decisions (replaced on reload).
    pub policy: Arc<ArcSwap<Policy>>,
    /// Client records.
    pub store: Option<StoreHandle>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

/// The client store as the server uses it.
#[derive(Clone)]
pub struct StoreHandle {
    /// The background writer.
    pub writer: Arc<Writer>,
    /// Wait for each record before answering (true for a file; false for memory).
    pub durable: bool,
}

/// Serves one client on standard input/output (inetd mode) and returns when it is done.
pub async fn serve_stdio(
    config: ServerConfig,
    services: Services,
    peer: SocketAddr,
    local_port: u16,
) {
    let Services {
        policy,
        store,
        metrics,
    } = services;
    let shared = Arc::new(Shared {
        connections: Arc::new(Semaphore::new(1)),
        rate: None,
        admission: Arc::new(Admission::new(
            config.max_connections_per_address,
            config.handshake_timeout,
            metrics.clone(),
        )),
        metrics,
        store_acks: store.as_ref().is_some_and(|s| s.durable) && !config.store_wait.is_zero(),
        ack_queue: None,
        store: store.map(|s| s.writer),
        config,
        policy,
    });
    let (_stop_tx, stop_rx) = watch::channel(false);
    connection::serve_io(
        connection::Stream(tokio::io::stdin()),
        tokio::io::stdout(),
        peer,
        local_port,
        shared.clone(),
        stop_rx,
        None,
    )
    .await;
    if let Some(w) = shared.store.clone() {
        let _ = tokio::task::spawn_blocking(move || w.flush()).await;
    }
}

/// Serves already bound listeners until `shutdown` resolves, then drains connections.
pub async fn serve_listeners(
    listeners: Vec<TcpListener>,
    config: ServerConfig,
    services: Services,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let Services {
        policy,
        store,
        metrics,
    } = services;
    let admission = Arc::new(Admission::new(
        config.max_connections_per_address,
        config.handshake_timeout,
        metrics.clone(),
    ));
    let store_acks = store.as_ref().is_some_and(|s| s.durable) && !config.store_wait.is_zero();
    // Acknowledgements reach the connections through one task, woken once per transaction.
    let ack_queue = store
        .as_ref()
        .filter(|_| store_acks)
        .and_then(|s| acks::AckQueue::attach(&s.writer));
    let delivery = ack_queue.clone().map(|q| tokio::spawn(q.deliver()));
    let shared = Arc::new(Shared {
        admission: admission.clone(),
        metrics,
        store_acks,
        ack_queue,
        store: store.map(|s| s.writer),
        connections: Arc::new(Semaphore::new(config.max_connections.max(1))),
        rate: config.rate_limit.map(RateLimiter::new),
        config,
        policy,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a clone of `done_tx`; recv() returns None once all are gone.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let mut accept_tasks = Vec::new();
    for listener in listeners {
        let shared = shared.clone();
        let stop_rx = stop_rx.clone();
        let done_tx = done_tx.clone();
        accept_tasks.push(tokio::spawn(async move {
            listener::accept_loop(listener, shared, stop_rx, done_tx).await
        }));
    }
    drop(done_tx);
    // Limit events of the last minute are reported even when no new one comes.
    let reporter = tokio::spawn(async move {
        let mut tick = tokio::time::interval(admission::REPORT_EVERY);
        loop {
            tick.tick().await;
            admission.flush();
        }
    });
    shutdown.await;
    reporter.abort();
    info!("shutting down: no new connections, finishing exchanges in progress");
    let _ = stop_tx.send(true);
    for t in accept_tasks {
        let _ = t.await;
    }
    let grace = shared.config.shutdown_grace;
    if tokio::time::timeout(grace, done_rx.recv()).await.is_err() {
        warn!(
            ?grace,
            "connections still open after the grace period; closing them"
        );
    }
    if let Some(writer) = shared.store.clone() {
        // Everything answered so far is written before the process exits.
        let _ = tokio::task::spawn_blocking(move || writer.flush()).await;
        info!("client records flushed");
    }
    if let Some(delivery) = delivery {
        delivery.abort();
    }
    info!("stopped");
    Ok(())
}
