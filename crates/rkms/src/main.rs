//! The `rkms` executable: parses the command line (merged with the configuration file and
//! environment for `serve`) and runs a subcommand.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use rkms::cli::{Cli, Command, ConfigCommand};
use rkms::commands;
use rkms::config;

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let matches = Cli::command().get_matches_from(&argv);
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());

    // `serve` and `config check` read the configuration file and py-kms' variables.
    let needs_config = matches!(
        cli.command,
        Command::Serve(_)
            | Command::Config {
                command: ConfigCommand::Check
            }
    );
    let mut merged = (Vec::new(), Vec::new());
    let path = config::config_path(cli.config.as_deref());
    if needs_config {
        let mut layers = vec![config::pykms_env(&|k| std::env::var(k).ok())];
        if let Some(p) = &path {
            match config::load_file(p) {
                Ok(entries) => layers.push(entries),
                Err(e) => return ExitCode::from(commands::usage(&e)),
            }
        }
        let probe = if matches!(cli.command, Command::Serve(_)) {
            matches.clone()
        } else {
            Cli::command().get_matches_from(["rkms", "serve"])
        };
        merged = match config::merge(&probe, &layers) {
            Ok(m) => m,
            Err(e) => return ExitCode::from(commands::usage(&e)),
        };
        if matches!(cli.command, Command::Serve(_)) && !merged.0.is_empty() {
            let mut full = argv.clone();
            full.extend(merged.0.iter().cloned());
            match Cli::command()
                .try_get_matches_from(&full)
                .and_then(|m| Cli::from_arg_matches(&m))
            {
                Ok(c) => cli = c,
                Err(e) => return ExitCode::from(commands::usage(&format!("configuration: {e}"))),
            }
        }
    }

    let default_level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    rkms::logging::init(cli.verbose, cli.log_level.as_deref(), default_level);
    for (key, origin) in &merged.1 {
        if !matches!(origin, config::Origin::CommandLine)
            && matches!(cli.command, Command::Serve(_))
        {
            tracing::debug!(key, %origin, "setting");
        }
    }
    let products = cli.products.as_deref();
    let code = match cli.command {
        Command::Products(args) => commands::products::products(args, products),
        Command::Guide(args) => commands::products::guide_cmd(args, products),
        Command::Epid(args) => commands::epid::run(args, products),
        Command::Clients(args) => commands::clients::run(args, products),
        Command::Healthcheck(args) => with_runtime(commands::tools::healthcheck(args)),
        Command::DnsRecord(args) => commands::tools::dns_record(args),
        Command::Completions(args) => commands::tools::completions(args),
        Command::Config {
            command: ConfigCommand::Example,
        } => commands::config::print_example(),
        Command::Config {
            command: ConfigCommand::Check,
        } => commands::config::check(&merged.0, &merged.1, path.as_deref()),
        Command::Serve(args) => with_runtime(commands::serve::run(args, products)),
        Command::Activate(args) => with_runtime(commands::activate::run(args, products)),
    };
    ExitCode::from(code)
}

fn with_runtime(fut: impl std::future::Future<Output = u8>) -> u8 {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(fut),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            1
        }
    }
}
