//! `rkms serve`: build the policy from the options and run the server until a signal.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::OsRng;
use tracing::{info, warn};

use super::{identity_config, load_catalog, now_unix, usage};
use crate::cli::{ClientCount, ServeArgs};
use crate::policy::WINDOW_SECS;
use crate::policy::{CountMode, Policy, PolicyConfig};
use crate::server::{Metrics, ServerConfig, Services, StoreHandle};
use rkms_store::{open_store as open_store_spec, ClientFilter, ClientStore, Writer, NO_DATABASE};

/// Turns the options into the server settings and the policy, checking everything that can be
/// checked before binding.
pub fn prepare(
    args: &ServeArgs,
    products: Option<&Path>,
) -> Result<(ServerConfig, Arc<Policy>), String> {
    let catalog = load_catalog(products)?;
    let identity = identity_config(&args.identity, &mut OsRng)?;
    let config = PolicyConfig {
        identity,
        count: match args.client_count {
            None => CountMode::Auto,
            Some(ClientCount::Fixed(n)) => CountMode::Fixed(n),
            Some(ClientCount::Auto) => CountMode::Genuine {
                start_empty: args.start == "empty",
            },
        },
        activation_interval: args.activation_interval,
        renewal_interval: args.renewal_interval,
        allow: args.allow,
        check_client_time: args.check_client_time,
    };
    let policy = Arc::new(Policy::new(catalog, config, now_unix(), &mut OsRng)?);
    let server = ServerConfig {
        listen: args.listen.clone(),
        ndr64: !args.identity.no_ndr64,
        btfn: !args.no_btfn,
        idle_timeout: Duration::from_secs(args.idle_timeout),
        max_connections: args.max_connections as usize,
        max_calls_per_connection: args.max_calls_per_connection,
        disconnect_after_request: args.disconnect_after_request,
        private_only: args.private_only,
        rate_limit: args.rate_limit,
        max_pdu: args.max_pdu_size as usize,
        max_call_size: args.max_call_size as usize,
        store_wait: Duration::from_millis(args.store_wait),
        ..ServerConfig::default()
    };
    Ok((server, policy))
}

/// Opens the client store named by `--db` and seeds the policy's pools from it.
pub fn open_store(args: &ServeArgs, policy: &Policy) -> Result<StoreHandle, String> {
    let (spec, default) = match &args.db {
        Some(s) => (s.clone(), false),
        None => (default_db_path()?.to_string_lossy().into_owned(), true),
    };
    let store: Arc<dyn ClientStore> =
        Arc::from(open_store_spec(&spec).map_err(|e| format!("--db {spec}: {e}"))?);
    let durable = spec != NO_DATABASE;
    if durable {
        info!(path = %spec, default, "client database");
    } else {
        info!("client records are kept in memory only (--db none)");
    }
    // The genuine count survives restarts: seed it with the last 30 days.
    let now = now_unix();
    let since = now - WINDOW_SECS;
    let records = store
        .list(&ClientFilter {
            since: Some(since),
            ..Default::default()
        })
        .map_err(|e| format!("--db {spec}: {e}"))?;
    let mut seeded = 0;
    for r in records.iter().filter(|r| r.last_hresult == 0) {
        policy
            .pools()
            .seed(policy.pool_of(&r.kms_id), r.cmid, r.last_seen);
        seeded += 1;
    }
    if seeded > 0 {
        info!(
            clients = seeded,
            "active clients of the last 30 days loaded"
        );
    }
    let writer = Writer::new(
        store,
        Box::new(|e| {
            tracing::error!(
                "CLIENT STORE WRITE FAILED: {e}; activations continue but are not recorded"
            )
        }),
    );
    Ok(StoreHandle {
        writer: Arc::new(writer),
        durable,
    })
}

/// clients.db in $STATE_DIRECTORY, $XDG_STATE_HOME/rkms or ~/.local/state/rkms (created).
pub fn default_db_path() -> Result<PathBuf, String> {
    let dir = if let Some(d) = std::env::var_os("STATE_DIRECTORY").filter(|d| !d.is_empty()) {
        // systemd may list several directories separated by ':'; the first is ours.
        PathBuf::from(d.to_string_lossy().split(':').next().unwrap_or_default())
    } else if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        PathBuf::from(d).join("rkms")
    } else if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        PathBuf::from(h).join(".local/state/rkms")
    } else {
        return Err(
            "no state directory: set --db PATH (or STATE_DIRECTORY, XDG_STATE_HOME or HOME)".into(),
        );
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create the state directory {}: {e}", dir.display()))?;
    Ok(dir.join("clients.db"))
}

/// Runs the server; returns the exit code.
pub async fn run(args: ServeArgs, products: Option<&Path>) -> u8 {
    let (server, policy) = match prepare(&args, products) {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    let store = match open_store(&args, &policy) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    for w in policy.warnings() {
        warn!("{w}");
    }
    let id = policy.identity();
    info!(
        host_build = id.host_build(),
        lcid = id.lcid(),
        "host identity"
    );
    for (profile, epid, hwid) in id.slots() {
        info!(profile, epid, hwid = %hex::encode_upper(hwid), "ePID");
    }
    let services = Services {
        policy,
        store: Some(store),
        metrics: Arc::new(Metrics::new()),
    };
    match crate::server::run(server, services, crate::server::shutdown::signal()).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e:#}");
            1
        }
    }
}
