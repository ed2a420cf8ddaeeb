//! The async shell around the protocol core: listeners, connections, timeouts and shutdown.

mod connection;
mod listener;
pub mod shutdown;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::policy::Policy;
pub use listener::{bind_listeners, DEFAULT_LISTEN};

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
    /// Largest PDU accepted.
    pub max_pdu: usize,
    /// Largest request reassembled from fragments.
    pub max_call_size: usize,
    /// How long in-flight exchanges may take to finish at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: Vec::new(),
            ndr64: true,
            btfn: true,
            idle_timeout: Duration::from_secs(30),
            max_pdu: 5840,
            max_call_size: 16 * 1024,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Runs the server until `shutdown` resolves, then drains connections and returns.
pub async fn run(
    config: ServerConfig,
    policy: Arc<Policy>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let listeners = bind_listeners(&config.listen)?;
    for l in &listeners {
        info!(address = %l.local_addr()?, "listening");
    }
    let config = Arc::new(config);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a clone of `done_tx`; recv() returns None once all are gone.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let mut accept_tasks = Vec::new();
    for listener in listeners {
        let config = config.clone();
        let policy = policy.clone();
        let stop_rx = stop_rx.clone();
        let done_tx = done_tx.clone();
        accept_tasks.push(tokio::spawn(async move {
            listener::accept_loop(listener, config, policy, stop_rx, done_tx).await
        }));
    }
    drop(done_tx);
    shutdown.await;
    info!("shutting down: no new connections, finishing exchanges in progress");
    let _ = stop_tx.send(true);
    for t in accept_tasks {
        let _ = t.await;
    }
    if tokio::time::timeout(config.shutdown_grace, done_rx.recv())
        .await
        .is_err()
    {
        warn!(grace = ?config.shutdown_grace, "connections still open after the grace period; closing them");
    }
    info!("stopped");
    Ok(())
}
