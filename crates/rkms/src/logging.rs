//! Log output: human-readable lines on standard error, level from -v / --log-level / RUST_LOG.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Sets up logging. `default` is the level without -v; each -v raises it one step.
pub fn init(verbose: u8, level: Option<&str>, default: &str) {
    let levels = ["error", "warn", "info", "debug", "trace"];
    let base = levels.iter().position(|l| *l == default).unwrap_or(2);
    let chosen = level.unwrap_or(levels[(base + verbose as usize).min(levels.len() - 1)]);
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if level.is_none() && verbose == 0 => {
            EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new(chosen))
        }
        _ => EnvFilter::new(format!("{chosen},rkms={chosen}")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
