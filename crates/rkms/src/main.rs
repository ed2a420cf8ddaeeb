//! The `rkms` executable: parses the command line and runs a subcommand.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use rkms::cli::{Cli, Command};
use rkms::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    rkms::logging::init(cli.verbose, cli.log_level.as_deref(), default_level);
    let products = cli.products.as_deref();
    let code = match cli.command {
        Command::Products(args) => commands::products::products(args, products),
        Command::Guide(args) => commands::products::guide_cmd(args, products),
        Command::Epid(args) => commands::epid::run(args, products),
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
