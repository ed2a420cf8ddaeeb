//! The `rkms` executable: parses the command line (merged with the configuration file and
//! environment for `serve`) and runs a subcommand.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use rkms::cli::{Cli, Command, ConfigCommand};
use rkms::commands;
use rkms::config;

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    // py-kms' and vlmcsd's command lines (`rkms vlmcsd …`, or a link named vlmcsd, …).
    if let Some(code) = foreign(rkms::compat::intercept(&argv)) {
        return ExitCode::from(code);
    }
    // `rkms service run …`, started by the Windows service manager: `serve` under its control.
    if let Some(serve) = rkms::service::serve_argv(&argv) {
        let _ = rkms::cli::command().get_matches_from(&argv);
        return ExitCode::from(rkms::service::run_under_scm(Box::new(move || run(serve))));
    }
    ExitCode::from(run(argv))
}

/// Runs a translated foreign command line, or returns the exit code already decided.
fn foreign(intercept: Option<rkms::compat::Intercept>) -> Option<u8> {
    match intercept? {
        rkms::compat::Intercept::Run(t) => {
            #[cfg(unix)]
            if t.detach {
                return Some(rkms::compat::detach(&t.foreground));
            }
            rkms::compat::defer_notes(&t.notes);
            Some(run(t.argv()))
        }
        rkms::compat::Intercept::Exit(code) => Some(code),
    }
}

/// Runs `f` on a short-lived thread and returns its result (on the calling thread if no thread
/// can be started). For clap's work on the command line: the builder functions its derive
/// generates keep the whole definition in one stack frame (`rkms::cli::Command`'s 64 kB and
/// `serve`'s 45 kB with the size-optimised build), and the pages of a stack once touched stay
/// resident. A thread's stack is unmapped when it ends; the main thread's would stay, for as
/// long as a host runs (about 130 kB of its resident memory).
fn off_main<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let slot = std::sync::Mutex::new(Some(f));
    let take = || slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    let on_thread = std::thread::scope(|s| {
        let thread = std::thread::Builder::new()
            .name("rkms-cli".into())
            // The main thread's size (unoptimised builds take far more than 64 kB).
            .stack_size(8 << 20)
            .spawn_scoped(s, || take().map(|f| f()));
        // A panic on the thread (only in the test profile: release builds abort) goes on here.
        thread
            .ok()
            .and_then(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    });
    match on_thread {
        Some(result) => result,
        // The thread could not start, so `f` is still in its slot.
        None => match take() {
            Some(f) => f(),
            None => unreachable!("off_main: the closure ran on its thread"),
        },
    }
}

/// The parsed command line, or the exit code (usage errors were reported).
type Parsed = Result<(Cli, config::Merged, Option<std::path::PathBuf>), u8>;

fn parse(argv: &[OsString]) -> Parsed {
    // Help, version and usage errors exit here, as clap prints them; another program's
    // habits (vlmcsd's -L/-P, --port) get a hint to rkms' own option.
    if let Err(e) = rkms::cli::command().try_get_matches_from(argv) {
        if let Some(hint) = rkms::cli::habit_hint(&e) {
            eprintln!("error: {hint}");
            return Err(2);
        }
        e.exit();
    }
    config::parse_with_config(argv).map_err(|e| commands::usage(&e))
}

fn run(argv: Vec<OsString>) -> u8 {
    let (cli, merged, path) = match off_main(|| parse(&argv)) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };

    let default_level = match cli.command {
        Command::Serve(_) | Command::NullServer { .. } => "info",
        _ => "warn",
    };
    let log = rkms::logging::LogSettings {
        verbose: cli.verbose,
        level: cli.log_level.clone(),
        default_level,
        json: cli.log_format == "json",
        file: cli.log_file.clone(),
        also_stderr: cli.log_stderr,
        max_size: cli.log_max_size,
        keep: cli.log_keep as usize,
    };
    if let Err(e) = rkms::logging::init(&log) {
        return commands::usage(&e);
    }
    rkms::compat::log_notes();
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
        Command::Bench(args) => with_runtime(commands::tools::bench(args)),
        Command::NullServer { listen } => with_runtime(commands::tools::null_server(listen)),
        Command::Config {
            command: ConfigCommand::Example,
        } => commands::config::print_example(),
        Command::Config {
            command: ConfigCommand::Check,
        } => commands::config::check(&merged.0, &merged.1, path.as_deref()),
        Command::Config {
            command: ConfigCommand::Import(args),
        } => {
            rkms::compat::config_import(args.ini.as_deref(), args.pykms_env, args.output.as_deref())
        }
        // Foreign command lines are translated before clap sees them (see `foreign`).
        Command::PykmsServer(_)
        | Command::PykmsClient(_)
        | Command::Vlmcsd(_)
        | Command::Vlmcs(_) => {
            commands::usage("give rkms' own options before the subcommand name, as separate words")
        }
        Command::Serve(args) => {
            let mut full = argv.clone();
            full.extend(merged.0.iter().cloned());
            let settings = off_main(|| commands::config::settings(&full, &merged.1));
            // SIGHUP re-reads the configuration file and environment with the same command line.
            let reload = move || match config::parse_with_config(&argv) {
                Ok((
                    Cli {
                        command: Command::Serve(args),
                        products,
                        ..
                    },
                    _,
                    _,
                )) => Ok((args, products)),
                Ok(_) => Err("the command line no longer names `serve`".to_string()),
                Err(e) => Err(e),
            };
            let products = products.map(Path::to_path_buf);
            with_runtime_threads(
                args.threads,
                Box::pin(commands::serve::run(
                    args,
                    products,
                    Box::new(reload),
                    settings,
                )),
            )
        }
        Command::Activate(args) => with_runtime(commands::activate::run(args, products)),
        Command::Service { command } => commands::service::run(command, &argv),
    };
    rkms::logging::flush();
    code
}

fn with_runtime<'a>(fut: impl std::future::Future<Output = u8> + 'a) -> u8 {
    with_runtime_threads(None, Box::pin(fut))
}

/// Runs `fut` on a runtime of `threads` worker threads (`serve --threads`; default one per
/// CPU this process may run on). One thread is a current-thread runtime: on one CPU (a small
/// machine, or a host pinned with `taskset`) the work-stealing scheduler would run one worker
/// anyway and only add cross-thread hand-offs and per-worker memory. (`fut` is boxed: one
/// copy of both runtimes' `block_on` serves every command, instead of one per command.)
fn with_runtime_threads(
    threads: Option<u32>,
    fut: std::pin::Pin<Box<dyn std::future::Future<Output = u8> + '_>>,
) -> u8 {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = threads.map_or(cpus, |n| n as usize);
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    match builder.enable_all().build() {
        Ok(rt) => rt.block_on(fut),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            1
        }
    }
}
