//! `rkms activate`: options to [`crate::client`] runs.

use std::time::Duration;

use super::{load_catalog, usage};
use crate::cli::ActivateArgs;
use crate::client::ActivateOptions;

/// Runs one product's requests, or one request per catalog product; returns the exit code.
pub async fn run(args: ActivateArgs, file: Option<&std::path::Path>) -> u8 {
    let vlmcs = args.vlmcs_exit;
    let catalog = match load_catalog(file) {
        Ok(c) => c,
        Err(e) => return usage(&e),
    };
    if let Some(host) = &args.host {
        if let Err(e) = crate::addr::split_host_port(host, crate::addr::DEFAULT_PORT) {
            if vlmcs {
                eprintln!("error: {e}");
                return crate::compat::vlmcs::EXIT_INVALID;
            }
            return usage(&e);
        }
    }
    if !(args.timeout > 0.0 && args.timeout <= 3600.0) {
        return usage("--timeout must be more than 0 and at most 3600 seconds");
    }
    let opts = ActivateOptions {
        host: args.host,
        domain: args.domain,
        dns_server: args.dns_server,
        protocol: args.protocol,
        product: args.product,
        app_id: args.app_id,
        kms_id: args.kms_id,
        sku_id: args.sku_id,
        cmid: args.cmid,
        name: args.name,
        vm: args.vm,
        license_status: args.license_status,
        grace_minutes: args.grace_minutes,
        save_epids: args.save_epids,
        required_count: args.required_count,
        count: args.count,
        new_connection: args.new_connection,
        ndr64: !args.no_ndr64,
        btfn: !args.no_btfn,
        multiplex: !args.no_multiplex,
        timeout: Duration::from_secs_f64(args.timeout),
        json: args.json,
    };
    if vlmcs && !args.all_products {
        // vlmcs: 0 once a host answered (errors included), 103 unreachable, 22 bad options.
        return match crate::client::run_reporting(&catalog, opts).await {
            (2, _) => crate::compat::vlmcs::EXIT_INVALID,
            (_, false) => crate::compat::vlmcs::EXIT_UNREACHABLE,
            (_, true) => 0,
        };
    }
    let code = if args.all_products {
        crate::client::run_all(&catalog, opts).await
    } else {
        crate::client::run(&catalog, opts).await
    };
    code as u8
}
