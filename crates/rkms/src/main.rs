//! The `rkms` executable: parses the command line and runs a subcommand.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use rand::RngCore;
use rkms::cli::{ActivateArgs, Cli, Command, ServeArgs};
use rkms::client::ActivateOptions;
use rkms::policy::{parse_hwid, CountMode, Policy, PolicyConfig};
use rkms::server::ServerConfig;
use rkms_catalog::Catalog;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        Command::Activate(_) => "warn",
    };
    rkms::logging::init(cli.verbose, cli.log_level.as_deref(), default_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Activate(args) => activate(args).await,
        }
    });
    ExitCode::from(code)
}

async fn serve(args: ServeArgs) -> u8 {
    let hwid = if args.hwid.eq_ignore_ascii_case("random") {
        let mut h = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut h);
        h
    } else {
        match parse_hwid(&args.hwid) {
            Ok(h) => h,
            Err(e) => return usage(&format!("--hwid: {e}")),
        }
    };
    let config = PolicyConfig {
        epid: args.epid,
        hwid,
        lcid: args.lcid,
        count: args
            .client_count
            .map(CountMode::Fixed)
            .unwrap_or(CountMode::Auto),
        activation_interval: args.activation_interval,
        renewal_interval: args.renewal_interval,
    };
    let policy = match Policy::new(Arc::new(Catalog::builtin().clone()), config) {
        Ok(p) => Arc::new(p),
        Err(e) => return usage(&e),
    };
    for (profile, epid) in policy.identity().epids() {
        tracing::info!(profile, epid, "ePID");
    }
    tracing::info!(hwid = %hex::encode_upper(policy.identity().hwid()), "HwId");
    let server = ServerConfig {
        listen: args.listen,
        ndr64: !args.no_ndr64,
        btfn: !args.no_btfn,
        idle_timeout: Duration::from_secs(args.idle_timeout),
        ..ServerConfig::default()
    };
    match rkms::server::run(server, policy, rkms::server::shutdown::signal()).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e:#}");
            1
        }
    }
}

async fn activate(args: ActivateArgs) -> u8 {
    if !(args.timeout > 0.0 && args.timeout <= 3600.0) {
        return usage("--timeout must be between 0 and 3600 seconds");
    }
    let opts = ActivateOptions {
        host: args.host,
        protocol: args.protocol,
        product: args.product,
        app_id: args.app_id,
        kms_id: args.kms_id,
        sku_id: args.sku_id,
        cmid: args.cmid,
        name: args.name,
        required_count: args.required_count,
        count: args.count,
        new_connection: args.new_connection,
        ndr64: !args.no_ndr64,
        btfn: !args.no_btfn,
        multiplex: !args.no_multiplex,
        timeout: Duration::from_secs_f64(args.timeout),
        json: args.json,
    };
    rkms::client::run(Catalog::builtin(), opts).await as u8
}

fn usage(msg: &str) -> u8 {
    eprintln!("error: {msg}");
    2
}
