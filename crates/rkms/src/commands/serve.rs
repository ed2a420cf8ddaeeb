//! `rkms serve`: build the policy from the options and run the server until a signal.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::OsRng;
use tracing::{info, warn};

use super::{identity_config, load_catalog, now_unix, usage};
use crate::cli::ServeArgs;
use crate::policy::{CountMode, Policy, PolicyConfig};
use crate::server::ServerConfig;

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
        count: args
            .client_count
            .map(CountMode::Fixed)
            .unwrap_or(CountMode::Auto),
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
        ..ServerConfig::default()
    };
    Ok((server, policy))
}

/// Runs the server; returns the exit code.
pub async fn run(args: ServeArgs, products: Option<&Path>) -> u8 {
    let (server, policy) = match prepare(&args, products) {
        Ok(p) => p,
        Err(e) => return usage(&e),
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
    match crate::server::run(server, policy, crate::server::shutdown::signal()).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e:#}");
            1
        }
    }
}
