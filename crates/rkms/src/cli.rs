//! The command line: subcommands and options with their help texts.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::TypedValueParser;
use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

use crate::addr::parse_listen;
use crate::interval::parse_minutes;
use crate::policy::{Allow, Randomization};

/// rkms: a KMS host emulator and test client.
#[derive(Debug, Parser)]
#[command(name = "rkms", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More log output (-v debug, -vv trace). Logs go to standard error.
    #[arg(help_heading = "Logging", short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log level: error, warn, info, debug or trace, in any case (overrides -v).
    #[arg(help_heading = "Logging", long, global = true, value_parser = ["error", "warn", "info", "debug", "trace"], ignore_case = true, env = "RKMS_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Products file (same format as the built-in catalog) adding to or replacing built-in
    /// entries with the same ID, read at start.
    #[arg(
        help_heading = "Configuration",
        long,
        global = true,
        value_name = "FILE",
        env = "RKMS_PRODUCTS"
    )]
    pub products: Option<PathBuf>,
    /// Log format: text (human-readable lines) or json (one JSON object per line).
    #[arg(help_heading = "Logging", long, global = true, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"], env = "RKMS_LOG_FORMAT")]
    pub log_format: String,
    /// Write logs to this file instead of standard error, rotating it by size.
    #[arg(
        help_heading = "Logging",
        long,
        global = true,
        value_name = "PATH",
        env = "RKMS_LOG_FILE"
    )]
    pub log_file: Option<PathBuf>,
    /// With --log-file, also write every log line to standard error (like py-kms'
    /// `-F FILESTDOUT`).
    #[arg(
        help_heading = "Logging",
        long,
        global = true,
        requires = "log_file",
        env = "RKMS_LOG_STDERR"
    )]
    pub log_stderr: bool,
    /// Rotate the log file when it exceeds this many bytes.
    #[arg(help_heading = "Logging", long, global = true, value_name = "BYTES", default_value_t = 10 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..), env = "RKMS_LOG_MAX_SIZE")]
    pub log_max_size: u64,
    /// Rotated log files to keep (rkms.log.1 … rkms.log.N).
    #[arg(help_heading = "Logging", long, global = true, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000), env = "RKMS_LOG_KEEP")]
    pub log_keep: u64,
    /// Configuration file (TOML; keys are the long options of `rkms serve`). Default:
    /// /etc/rkms/rkms.toml (Windows: %ProgramData%\rkms\rkms.toml) if it exists. The command
    /// line and RKMS_* variables override it.
    #[arg(
        help_heading = "Configuration",
        long,
        global = true,
        value_name = "FILE",
        env = "RKMS_CONFIG"
    )]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Global options only a running host reads (its log file and configuration file): shown in
/// the help and manual of the subcommands that run one, hidden (still accepted) elsewhere.
const HOST_ONLY_GLOBALS: &[&str] = &[
    "log_file",
    "log_stderr",
    "log_max_size",
    "log_keep",
    "config",
];

/// Subcommands that run a host, or check its configuration, and so show [`HOST_ONLY_GLOBALS`].
const HOST_COMMANDS: &[&str] = &["serve", "null-server", "config", "service"];

/// The command line definition as help, manuals and completions show it: [`Cli::command`]
/// with the host-only global options hidden on the subcommands that do not read them.
pub fn command() -> clap::Command {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    // A subcommand that already has an argument of a global's name keeps its own copy (and
    // hands it on to its own subcommands): a hidden copy hides the option there.
    let hidden: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| HOST_ONLY_GLOBALS.contains(&a.get_id().as_str()))
        .map(|a| a.clone().hide(true))
        .collect();
    let others: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .filter(|n| !HOST_COMMANDS.contains(&n.as_str()))
        .collect();
    for name in others {
        cmd = cmd.mut_subcommand(name, |sc| sc.args(hidden.clone()));
    }
    cmd
}

/// A hint for an option another KMS host takes (vlmcsd's -L and -P, py-kms' or socat's
/// --port), where clap would suggest an unrelated option (`--port` → `--products`).
pub fn habit_hint(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let name = arg.split('=').next().unwrap_or(arg);
    let listen = "rkms serve takes the address and port together: --listen ADDR:PORT (e.g. \
                  --listen [::]:1700, or --listen 0.0.0.0:1700; repeatable)";
    let what = match name {
        "-L" => "vlmcsd's -L ADDR[:PORT]",
        "-P" => "vlmcsd's -P PORT",
        "--port" | "-p" => "a port option",
        "--ip" | "--address" | "--bind" | "-b" => "an address option",
        _ => return None,
    };
    Some(format!(
        "unexpected argument '{arg}' ({what}): {listen}. A whole vlmcsd command line runs as \
         it is with `rkms vlmcsd -L … -P …` (see `rkms vlmcsd -h`)"
    ))
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the KMS host: answer activation requests until Ctrl-C or SIGTERM (Windows: Ctrl-C,
    /// Ctrl-Break or closing the console).
    Serve(ServeArgs),
    /// Send activation requests to a KMS host and verify its answers.
    Activate(ActivateArgs),
    /// List the products rkms knows, with their GVLKs (volume license keys).
    Products(ProductsArgs),
    /// Print the commands that activate a product against a KMS host, to type on the client.
    Guide(GuideArgs),
    /// Print the ePIDs and HwId a server with these options would use, or check an ePID.
    Epid(EpidArgs),
    /// List the clients the host has seen (from its database), prune or import them.
    Clients(ClientsArgs),
    /// Activate once against a KMS host (default 127.0.0.1:1688) and exit 0 if it works:
    /// for container and service health checks. Not counted as a client by rkms hosts.
    Healthcheck(HealthcheckArgs),
    /// Print the DNS records that let clients find this host automatically.
    DnsRecord(DnsRecordArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) or the man page.
    Completions(CompletionsArgs),
    /// Load-test a KMS host: concurrent verified activations, throughput and latency.
    Bench(BenchArgs),
    /// Answer every bind and request with canned bytes (no KMS work), to measure the
    /// machine's own limit with `rkms bench --no-verify`.
    NullServer {
        /// Address to listen on; without a port, 1689 (not the KMS port, so that it never takes
        /// a real host's place).
        #[arg(long, value_name = "ADDR[:PORT]", default_value = "127.0.0.1:1689", value_parser = |s: &str| crate::addr::parse_listen_or(s, 1689))]
        listen: SocketAddr,
    },
    /// Check the configuration, or print an example configuration file.
    Config {
        /// What to do.
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// py-kms' server command line (pykms_Server.py [ip] [port] [options]), run as `rkms serve`.
    /// Also when rkms is started through a link named pykms_Server.py or py-kms-server.
    /// `rkms pykms-server -h` lists the options and what each becomes.
    #[command(name = "pykms-server", disable_help_flag = true)]
    PykmsServer(ForeignArgs),
    /// py-kms' client command line (pykms_Client.py ip [port] [-m MODE] [-c CMID] [-n NAME] …),
    /// run as `rkms activate`. Also through a link named pykms_Client.py or py-kms-client.
    #[command(name = "pykms-client", disable_help_flag = true)]
    PykmsClient(ForeignArgs),
    /// vlmcsd's command line (-L, -P, -e, -D, -t, -i vlmcsd.ini, …), run as `rkms serve`. Also
    /// through a link named vlmcsd. `rkms vlmcsd -h` lists the options.
    #[command(name = "vlmcsd", disable_help_flag = true)]
    Vlmcsd(ForeignArgs),
    /// vlmcs' command line ([options] [host[:port]|.domain|-]), run as `rkms activate` with
    /// vlmcs' exit status. Also through a link named vlmcs.
    #[command(name = "vlmcs", disable_help_flag = true)]
    Vlmcs(ForeignArgs),
    /// Run rkms as a Windows service: install, uninstall, start, stop, status (Windows only;
    /// elsewhere it exits with status 2: use systemd, see contrib/systemd).
    Service {
        /// What to do.
        #[command(subcommand)]
        command: ServiceCommand,
    },
}

/// `rkms service` subcommands (Windows only).
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Register rkms with the Windows service manager, started at boot, running `rkms serve`
    /// with the options given here, as NT AUTHORITY\LocalService; logs go to
    /// %ProgramData%\rkms\logs\rkms.log and the client database to
    /// %ProgramData%\rkms\clients.db unless --log-file / --db say otherwise. Installing again
    /// updates the registration. Needs an elevated prompt (Run as administrator).
    Install(ServiceInstallArgs),
    /// Stop the service if it runs and remove it (logs and client database stay).
    Uninstall,
    /// Start the installed service and wait until it runs.
    Start,
    /// Stop the service and wait until it has stopped.
    Stop,
    /// Say whether the service is installed and running (exit status 0: running, 3: not
    /// running, 4: not installed).
    Status,
    /// The service itself, started by the Windows service manager (not by hand: use `serve`).
    #[command(hide = true)]
    Run(ServeArgs),
}

/// Options of `rkms service install`: the account, then any option of `rkms serve`.
#[derive(Debug, Args)]
pub struct ServiceInstallArgs {
    /// Account the service runs as: NT AUTHORITY\LocalService (few rights), NT
    /// AUTHORITY\NetworkService, LocalSystem (every right: avoid), or a virtual account such as
    /// "NT SERVICE\rkms". Accounts with a password are set in services.msc.
    #[arg(long, value_name = "ACCOUNT", default_value = crate::platform::DEFAULT_SERVICE_ACCOUNT)]
    pub account: String,
    /// The options the service runs `rkms serve` with.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// `rkms config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration (file, environment, defaults) and print every effective
    /// value of `rkms serve` with where it came from.
    Check,
    /// Print a commented configuration file with every option and its default.
    Example,
    /// Write the rkms.toml equivalent to a vlmcsd.ini, or to py-kms' container variables (IP,
    /// PORT, EPID, …) set in this environment.
    Import(ConfigImportArgs),
}

/// Options of `rkms config import`.
#[derive(Debug, Args)]
pub struct ConfigImportArgs {
    /// The vlmcsd.ini to translate.
    #[arg(
        value_name = "VLMCSD_INI",
        required_unless_present = "pykms_env",
        conflicts_with = "pykms_env"
    )]
    pub ini: Option<PathBuf>,
    /// Translate py-kms' container variables of this environment instead.
    #[arg(long)]
    pub pykms_env: bool,
    /// Write to this file (which must not exist) instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// The words of a foreign command line (py-kms', vlmcsd's), which the `compat` module parses.
#[derive(Debug, Args)]
pub struct ForeignArgs {
    /// The original program's options and arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<std::ffi::OsString>,
}

/// Options that decide the host's ePIDs and HwId (shared by `serve` and `epid`).
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Identity")]
pub struct IdentityArgs {
    /// ePID for every product (EPID), or for one ePID profile (PROFILE=EPID[/HWID], e.g.
    /// Office2019=03612-00206-684-137669-03-1033-17763.0000-2972018). Repeatable. Profiles:
    /// Windows, Office2010, Office2013, Office2016, Office2019, Office2021, Office2024, WinChinaGov.
    #[arg(
        long = "epid",
        value_name = "EPID|PROFILE=EPID[/HWID]",
        env = "RKMS_EPID",
        value_delimiter = ','
    )]
    pub epid: Vec<String>,
    /// Hardware ID sent in V6 responses: 16 hex digits, or "random" for a new one at each start.
    #[arg(
        long,
        value_name = "HEX16|random",
        default_value = "3A1C049600B60076",
        env = "RKMS_HWID"
    )]
    pub hwid: String,
    /// LCID (host language) of the ePIDs, e.g. 1033 for en-US (default: random from Windows' list,
    /// or 1033 with --randomize fixed).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=0xFFFF), env = "RKMS_LCID")]
    pub lcid: Option<u32>,
    /// Windows build the ePIDs claim for the host (default: random among server builds that can
    /// hold every KMS host key, 20348 or 26100).
    #[arg(long, value_name = "BUILD", env = "RKMS_HOST_BUILD")]
    pub host_build: Option<u32>,
    /// How ePIDs are chosen: fixed (built-in), start (random once per start, like vlmcsd -r1),
    /// request (random for every request: testing only, easy to detect). 0/1/2 also accepted.
    #[arg(long, value_name = "LEVEL", default_value = "start", value_parser = levels(&["fixed", "start", "request"], &["0", "1", "2"]).try_map(|s: String| parse_randomization(&s)), ignore_case = true, env = "RKMS_RANDOMIZE")]
    pub randomize: Randomization,
    /// Do not negotiate NDR64 (like a pre-Windows 8 host; generated ePIDs then claim an older build).
    #[arg(long, env = "RKMS_NO_NDR64")]
    pub no_ndr64: bool,
}

/// `--client-count`: a fixed number or the genuine count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCount {
    /// A fixed count.
    Fixed(u32),
    /// Distinct clients from the store.
    Auto,
}

fn parse_client_count(s: &str) -> Result<ClientCount, String> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(ClientCount::Auto);
    }
    match s.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(ClientCount::Fixed(n)),
        _ => Err(format!("'{s}': expected a number from 1 or \"auto\"")),
    }
}

/// The values of a level option, for help and completion; the numbers (vlmcsd's) are accepted
/// but not offered.
fn levels(names: &[&'static str], numbers: &[&'static str]) -> clap::builder::PossibleValuesParser {
    use clap::builder::PossibleValue;
    let names = names.iter().map(|n| PossibleValue::new(*n));
    let numbers = numbers.iter().map(|n| PossibleValue::new(*n).hide(true));
    clap::builder::PossibleValuesParser::new(names.chain(numbers))
}

fn parse_randomization(s: &str) -> Result<Randomization, String> {
    match s.to_ascii_lowercase().as_str() {
        "fixed" | "0" => Ok(Randomization::Fixed),
        "start" | "1" => Ok(Randomization::PerStart),
        "request" | "2" => Ok(Randomization::PerRequest),
        _ => Err(format!(
            "'{s}': expected fixed, start or request (or 0, 1, 2)"
        )),
    }
}

/// Options of `rkms serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, ADDR:PORT (IPv6 in brackets, e.g. [::]:1688; a host name is
    /// resolved once at start). Repeatable.
    /// Default: [::]:1688 dual-stack, or 0.0.0.0:1688 where IPv6 is unavailable.
    #[arg(help_heading = "Listening", long = "listen", value_name = "ADDR:PORT", value_parser = parse_listen, env = "RKMS_LISTEN", value_delimiter = ',')]
    pub listen: Vec<SocketAddr>,
    /// ePID and HwId options.
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Client count reported: a number (py-kms rules: below a request's need reports need+1,
    /// capped at twice the need), or "auto": the distinct clients of the last 30 days per KMS ID,
    /// from the client store, capped at twice the threshold, like a genuine host.
    /// Default: twice each request's need, like a fully charged host.
    #[arg(help_heading = "Counts and policy", long, value_name = "N|auto", value_parser = parse_client_count, env = "RKMS_CLIENT_COUNT")]
    pub client_count: Option<ClientCount>,
    /// With --client-count auto: "charged" reports at least a charged host's count until real
    /// clients fill the pool; "empty" reports only real clients, so the first ones get too low
    /// a count (0xC004F038 on the client) until the threshold is reached.
    #[arg(help_heading = "Counts and policy", long, value_name = "charged|empty", default_value = "charged", value_parser = ["charged", "empty"], env = "RKMS_START")]
    pub start: String,
    /// Client database: a SQLite file (PATH or sqlite:PATH), a PostgreSQL URL shared by several
    /// hosts (postgres://user:password@host/db; TLS with libpq's parameters, e.g.
    /// ?sslmode=verify-full&sslrootcert=/etc/rkms/db-ca.pem), or "none" to keep records in memory only (the latest 1,000 clients and activations). Default:
    /// clients.db in $STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/rkms, else
    /// %LOCALAPPDATA%\rkms (Windows), else ~/.local/state/rkms (the path is logged at start).
    #[arg(
        help_heading = "Storage",
        long,
        value_name = "PATH|none",
        env = "RKMS_DB"
    )]
    pub db: Option<String>,
    /// Seconds between refreshes of the client counts from a database shared by several hosts
    /// (PostgreSQL): the count includes the other hosts' clients as of the last refresh.
    #[arg(help_heading = "Storage", long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86400), env = "RKMS_COUNT_REFRESH")]
    pub count_refresh: u64,
    /// Milliseconds a response waits for its client record to reach the database before it is
    /// sent anyway (a slow or broken disk never stops activations). 0: never wait (fastest;
    /// records of the last moments may be lost in a crash).
    #[arg(help_heading = "Storage", long, value_name = "MS", default_value_t = 250, value_parser = clap::value_parser!(u64).range(0..=60_000), env = "RKMS_STORE_WAIT")]
    pub store_wait: u64,
    /// KiB of SQLite page cache for writing the client database: a larger cache keeps more of
    /// the indexes in memory, so each record costs fewer page reads and writes (about a third
    /// less CPU per new client with 16 MiB than with 256 KiB); SQLite fills it only as far as
    /// the pages it uses. When not set: 16384 (16 MiB); 256 in builds without the dashboard (`web`),
    /// made for small devices.
    #[arg(help_heading = "Storage", long, value_name = "KIB", value_parser = clap::value_parser!(u64).range(64..=4_194_304), env = "RKMS_DB_CACHE")]
    pub db_cache: Option<u64>,
    /// Days of activation history kept: older events are deleted in the background, a small
    /// batch at a time, never holding up activations (the per-day counts stay). 0 keeps
    /// every event.
    #[arg(long, value_name = "DAYS", default_value_t = 90, value_parser = clap::value_parser!(u32).range(0..=36_500), env = "RKMS_KEEP_HISTORY")]
    pub keep_history: u32,
    /// Days a client record is kept after its latest request (longer than the 180 days an
    /// activation lasts): older records are deleted in the background like the history. 0
    /// keeps every record.
    #[arg(long, value_name = "DAYS", default_value_t = 400, value_parser = clap::value_parser!(u32).range(0..=36_500), env = "RKMS_KEEP_CLIENTS")]
    pub keep_clients: u32,
    /// Minutes a client waits before retrying a failed activation (or e.g. 2h, 90m).
    #[arg(help_heading = "Counts and policy", long, value_name = "MIN", default_value = "120", value_parser = parse_minutes, env = "RKMS_ACTIVATION_INTERVAL")]
    pub activation_interval: u32,
    /// Minutes between renewals (or e.g. 7d, 168h).
    #[arg(help_heading = "Counts and policy", long, value_name = "MIN", default_value = "10080", value_parser = parse_minutes, env = "RKMS_RENEWAL_INTERVAL")]
    pub renewal_interval: u32,
    /// Which KMS IDs are served: any; known (only catalog KMS IDs, with their own application);
    /// volume (no retail or preview IDs); known-volume (both, closest to a genuine host).
    /// Refused requests get 0xC004F042. vlmcsd's -K0..-K3 numbers also accepted.
    #[arg(
        help_heading = "Counts and policy",
        long,
        value_name = "LEVEL",
        default_value = "any",
        value_parser = levels(&["any", "known", "volume", "known-volume"], &["0", "1", "2", "3"]).try_map(|s: String| s.parse::<Allow>()),
        ignore_case = true,
        env = "RKMS_ALLOW"
    )]
    pub allow: Allow,
    /// Refuse requests whose clock differs from this host's by more than 4 hours (0xC004F06C).
    #[arg(
        help_heading = "Counts and policy",
        long,
        env = "RKMS_CHECK_CLIENT_TIME"
    )]
    pub check_client_time: bool,
    /// Do not answer bind-time feature negotiation.
    #[arg(help_heading = "Counts and policy", long, env = "RKMS_NO_BTFN")]
    pub no_btfn: bool,
    /// Close connections idle for this many seconds.
    #[arg(help_heading = "Limits", long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86400), env = "RKMS_IDLE_TIMEOUT")]
    pub idle_timeout: u64,
    /// Close a connection that has not sent a complete RPC PDU this many seconds after it was
    /// accepted (separate from --idle-timeout; real clients send their bind at once).
    #[arg(help_heading = "Limits", long, value_name = "SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600), env = "RKMS_HANDSHAKE_TIMEOUT")]
    pub handshake_timeout: u64,
    /// Connections served at once. At the limit a new connection is accepted and the oldest
    /// connection that has not sent a complete PDU is closed; when every connection has sent
    /// one, new connections wait in the kernel's queue.
    #[arg(help_heading = "Limits", long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000), env = "RKMS_MAX_CONNECTIONS")]
    pub max_connections: u64,
    /// Connections open at once from one client address (IPv4-mapped IPv6 counts as IPv4);
    /// more are closed right after accept.
    #[arg(help_heading = "Limits", long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1_000_000), env = "RKMS_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: u64,
    /// Activation requests served on one connection before the host closes it.
    #[arg(help_heading = "Limits", long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..), env = "RKMS_MAX_CALLS_PER_CONNECTION")]
    pub max_calls_per_connection: u32,
    /// Close the connection after every response (py-kms style; vlmcsd -d).
    #[arg(help_heading = "Limits", long, env = "RKMS_DISCONNECT_AFTER_REQUEST")]
    pub disconnect_after_request: bool,
    /// Serve only clients with private addresses (10/8, 172.16/12, 192.168/16, 169.254/16,
    /// 127/8, IPv6 outside 2000::/3); others are closed before a byte is sent.
    #[arg(help_heading = "Limits", long, env = "RKMS_PRIVATE_ONLY")]
    pub private_only: bool,
    /// Activation requests a minute one client address may make (bursts up to the same number);
    /// beyond it the host closes that address's connections. Default: no limit.
    #[arg(help_heading = "Limits", long, value_name = "PER_MINUTE", value_parser = clap::value_parser!(u32).range(1..), env = "RKMS_RATE_LIMIT")]
    pub rate_limit: Option<u32>,
    /// Largest RPC PDU accepted, in bytes (KMS clients send at most 300).
    #[arg(help_heading = "Limits", long, value_name = "BYTES", default_value_t = 5840, value_parser = clap::value_parser!(u64).range(512..=65535), env = "RKMS_MAX_PDU_SIZE")]
    pub max_pdu_size: u64,
    /// Web dashboard, JSON API, /metrics, /livez and /readyz: ADDR:PORT, or "off". If the port
    /// is taken the host still activates and says the dashboard is off.
    #[arg(help_heading = "Web dashboard", long, value_name = "ADDR:PORT|off", default_value = crate::web::DEFAULT_WEB_LISTEN, value_parser = crate::web::parse_web_listen, env = "RKMS_WEB")]
    pub web: crate::web::WebListen,
    /// Token for the dashboard (bearer, or basic auth with any user name). Required when --web
    /// is not a loopback address, unless --web-public.
    #[arg(
        help_heading = "Web dashboard",
        long,
        value_name = "TOKEN",
        env = "RKMS_WEB_TOKEN"
    )]
    pub web_token: Option<String>,
    /// Allow a dashboard on a non-loopback address without a token (it shows client names and
    /// addresses: only on a trusted network).
    #[arg(help_heading = "Web dashboard", long, env = "RKMS_WEB_PUBLIC")]
    pub web_public: bool,
    /// A host name (or IP address) the dashboard may be reached at without a token, besides its
    /// address and localhost; other names are refused (421) against DNS rebinding. Repeatable.
    #[arg(help_heading = "Web dashboard", long = "web-host", value_name = "NAME", value_parser = crate::web::parse_web_host, env = "RKMS_WEB_HOST", value_delimiter = ',')]
    pub web_host: Vec<String>,
    /// Web connections open at once; one more is answered 503 and closed. Lowered at start to
    /// a quarter of the open file limit if that is less, so the KMS port keeps accepting.
    #[arg(help_heading = "Web dashboard", long, value_name = "N", default_value_t = crate::web::DEFAULT_WEB_MAX_CONNECTIONS, value_parser = clap::value_parser!(u64).range(1..=65536), env = "RKMS_WEB_MAX_CONNECTIONS")]
    pub web_max_connections: u64,
    /// Seconds a web client has to send its request headers (also the longest a kept-alive web
    /// connection stays idle).
    #[arg(help_heading = "Web dashboard", long, value_name = "SECONDS", default_value_t = crate::web::DEFAULT_HEADER_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..=300), env = "RKMS_WEB_HEADER_TIMEOUT")]
    pub web_header_timeout: u64,
    /// Write the process ID to this file at start (removed at exit).
    #[arg(
        help_heading = "Service",
        long,
        value_name = "PATH",
        env = "RKMS_PIDFILE"
    )]
    pub pidfile: Option<PathBuf>,
    /// Run as this user after binding the listeners (Unix only; start as root to use it. On
    /// Windows the service's account is chosen by `rkms service install --account`).
    #[arg(help_heading = "Service", long, value_name = "USER", env = "RKMS_USER")]
    pub user: Option<String>,
    /// Run as this group after binding the listeners (Unix only; default: the --user's
    /// primary group).
    #[arg(
        help_heading = "Service",
        long,
        value_name = "GROUP",
        env = "RKMS_GROUP"
    )]
    pub group: Option<String>,
    /// Serve one client on standard input/output, then exit (inetd/xinetd style; Unix only).
    #[arg(help_heading = "Service", long, env = "RKMS_INETD")]
    pub inetd: bool,
    /// Listen backlog (connections the kernel queues before they are accepted; Linux caps it at
    /// net.core.somaxconn). A full queue drops new clients' SYNs (they retry after 1 s).
    #[arg(help_heading = "Listening", long, value_name = "N", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=65535), env = "RKMS_BACKLOG")]
    pub backlog: u32,
    /// Listeners on [::] accept IPv6 clients only (by default [::] also accepts IPv4 clients,
    /// as ::ffff:a.b.c.d); add --listen 0.0.0.0:1688 to serve IPv4 on its own listener.
    #[arg(help_heading = "Listening", long, env = "RKMS_IPV6_ONLY")]
    pub ipv6_only: bool,
    /// Threads answering clients. 1: one thread for everything (least memory; what a one-CPU
    /// machine gets by default). Default: one per CPU this process may run on.
    #[arg(help_heading = "Limits", long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024), env = "RKMS_THREADS")]
    pub threads: Option<u32>,
    /// Largest request reassembled from fragments, in bytes.
    #[arg(help_heading = "Limits", long, value_name = "BYTES", default_value_t = 16384, value_parser = clap::value_parser!(u64).range(512..=1_048_576), env = "RKMS_MAX_CALL_SIZE")]
    pub max_call_size: u64,
    /// Publishing this host in DNS (SRV record by dynamic update).
    #[command(flatten)]
    pub dns: crate::dns::DnsPublishArgs,
}

/// Options of `rkms activate`.
#[derive(Debug, Args)]
pub struct ActivateArgs {
    /// KMS host: HOST, HOST:PORT, or [IPv6]:PORT (port 1688 by default). Without it, hosts
    /// are found through DNS (_vlmcs._tcp SRV records of --domain) and tried in order; with
    /// no DNS domain at all, 127.0.0.1:1688.
    #[arg(value_name = "HOST[:PORT]")]
    pub host: Option<String>,
    /// DNS domain whose _vlmcs._tcp SRV records list KMS hosts (default: the system's search domain).
    #[arg(long, value_name = "DOMAIN", conflicts_with = "host")]
    pub domain: Option<String>,
    /// DNS server to ask for SRV records, IP:PORT (default: the system's resolvers).
    #[arg(long, value_name = "IP:PORT", conflicts_with = "host")]
    pub dns_server: Option<SocketAddr>,
    /// KMS protocol version: 4, 5 or 6 (default 6; with --all-products, each product's own),
    /// or any MAJOR.MINOR (e.g. 7.0) to test that a host refuses it with 0x8007000D.
    #[arg(long, value_name = "VERSION", value_parser = parse_protocol)]
    pub protocol: Option<rkms_proto::kms::Version>,
    /// Product: a catalog name, vlmcsd's or py-kms' name (Windows10), or a SKU GUID;
    /// case-insensitive, exact, unique prefix or words ("Windows 10 Pro"). `rkms products`
    /// lists them.
    #[arg(long, default_value = crate::client::DEFAULT_PRODUCT, conflicts_with = "all_products")]
    pub product: String,
    /// Send one request for every product in the catalog and print a table of results.
    #[arg(long)]
    pub all_products: bool,
    /// Application ID to send instead of the product's.
    #[arg(long, value_parser = parse_guid, value_name = "GUID")]
    pub app_id: Option<Uuid>,
    /// KMS counted ID to send instead of the product's.
    #[arg(long, value_parser = parse_guid, value_name = "GUID")]
    pub kms_id: Option<Uuid>,
    /// SKU (activation) ID to send instead of the product's.
    #[arg(long, value_parser = parse_guid, value_name = "GUID")]
    pub sku_id: Option<Uuid>,
    /// Client machine ID (default: a new random one for every request).
    #[arg(long, value_parser = parse_guid, value_name = "GUID")]
    pub cmid: Option<Uuid>,
    /// Workstation name sent (at most 63 characters are sent), or "random" for a new
    /// NetBIOS-style name (DESKTOP-XXXXXXX) in every request.
    #[arg(long, value_name = "WORKSTATION|random", default_value = "rkms-client")]
    pub name: String,
    /// Say that the client runs in a virtual machine (the request's VM flag).
    #[arg(long)]
    pub vm: bool,
    /// Licence status sent: 0 unlicensed, 1 licensed, 2 initial grace period, 3 out of
    /// tolerance, 4 non-genuine, 5 notification, 6 extended grace.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=6))]
    pub license_status: u32,
    /// Minutes until the client's activation (binding) expires, as sent (default 30 days).
    #[arg(long, value_name = "MINUTES", default_value_t = crate::client::DEFAULT_GRACE_MINUTES)]
    pub grace_minutes: u32,
    /// Write the ePIDs and HwId the host answers with to FILE (which must not exist) as an
    /// rkms.toml snippet (epid = [...]), to answer as that host does; with --all-products,
    /// one ePID per profile.
    #[arg(long, value_name = "FILE")]
    pub save_epids: Option<PathBuf>,
    /// Activation threshold to request (default: the product's).
    #[arg(long, value_name = "N")]
    pub required_count: Option<u32>,
    /// Number of requests to send.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub count: u32,
    /// Open a new connection for every request (default: all on one connection).
    #[arg(long)]
    pub new_connection: bool,
    /// Do not offer NDR64 in the bind.
    #[arg(long)]
    pub no_ndr64: bool,
    /// Do not offer bind-time feature negotiation.
    #[arg(long)]
    pub no_btfn: bool,
    /// Do not set the multiplex flag in the bind.
    #[arg(long)]
    pub no_multiplex: bool,
    /// Seconds to wait for a connection or a reply.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub timeout: f64,
    /// Print one JSON object per response (for scripts).
    #[arg(long)]
    pub json: bool,
    /// Exit as vlmcs does (0 once a host answered, 103 when none could be reached, 22 for bad
    /// options); set by `rkms vlmcs`.
    #[arg(long, hide = true)]
    pub vlmcs_exit: bool,
}

/// Options of `rkms products`.
#[derive(Debug, Args)]
pub struct ProductsArgs {
    /// Only products whose name contains this or has all its words ("windows 11 pro"), py-kms'
    /// names (Office2019), a SKU GUID, or text of the GVLK, KMS group or application
    /// (case-insensitive).
    #[arg(value_name = "SEARCH")]
    pub search: Option<String>,
    /// Print JSON (an array of products) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Options of `rkms guide`.
#[derive(Debug, Args)]
pub struct GuideArgs {
    /// Product: a catalog name (case-insensitive, exact or unique prefix) or a SKU GUID.
    #[arg(value_name = "PRODUCT")]
    pub product: String,
    /// The KMS host as clients reach it: HOST[:PORT] (default: this machine's host name, port 1688).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub host: Option<String>,
}

/// Options of `rkms epid`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EpidArgs {
    /// Check an ePID instead of printing the host's.
    #[command(subcommand)]
    pub check: Option<EpidCommand>,
    /// ePID and HwId options, as for `rkms serve`.
    #[command(flatten)]
    pub identity: IdentityArgs,
}

/// `rkms epid check`.
#[derive(Debug, Subcommand)]
pub enum EpidCommand {
    /// Say whether an ePID is well formed and plausible for a genuine KMS host, field by field.
    Check {
        /// The ePID to check.
        epid: String,
    },
}

/// Options of `rkms clients`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ClientsArgs {
    /// Prune or import instead of listing.
    #[command(subcommand)]
    pub command: Option<ClientsCommand>,
    /// Client database: a SQLite path or a postgres:// URL (default: the one `rkms serve` uses;
    /// see its --db).
    #[arg(long, value_name = "PATH|URL", global = true, env = "RKMS_DB")]
    pub db: Option<String>,
    /// Only clients whose product name contains this or has all its words, or is the product
    /// of a py-kms name (case-insensitive; "office 2019" finds every Office 2019 product).
    #[arg(long, value_name = "NAME")]
    pub product: Option<String>,
    /// Only clients seen within this time: minutes, or e.g. 12h, 7d.
    #[arg(long, value_name = "AGE", value_parser = parse_minutes)]
    pub since: Option<u32>,
    /// Only this client machine ID.
    #[arg(long, value_parser = parse_guid, value_name = "GUID")]
    pub cmid: Option<Uuid>,
    /// Only clients in this health state, soonest to expire first: current (renewed within
    /// twice the renewal interval), overdue (not renewed for longer), at-risk (activation runs
    /// out within 30 days), lapsed (more than 180 days since the last activation), failing
    /// (latest request refused).
    #[arg(long, value_name = "STATE", value_parser = clap::builder::PossibleValuesParser::new(rkms_store::ClientState::names()))]
    pub state: Option<String>,
    /// The host's renewal interval the health states use (overdue after twice it): minutes,
    /// or e.g. 7d; as `rkms serve --renewal-interval`.
    #[arg(long, value_name = "MIN", default_value = "10080", value_parser = parse_minutes, env = "RKMS_RENEWAL_INTERVAL")]
    pub renewal_interval: u32,
    /// At most this many clients (most recent first).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Print JSON (an array of records).
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV with a header row.
    #[arg(long)]
    pub csv: bool,
}

/// `rkms clients` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Delete clients not seen for a while (and older history), or those of a workstation.
    Prune {
        /// Age: minutes, or e.g. 30d, 12w.
        #[arg(long, value_name = "AGE", value_parser = parse_minutes, required_unless_present = "workstation")]
        older_than: Option<u32>,
        /// Delete the records and history of this workstation name (case-insensitive, whole
        /// name), e.g. the records `rkms bench` leaves on the host it loads.
        #[arg(long, value_name = "NAME")]
        workstation: Option<String>,
    },
    /// Import the clients of a py-kms database (its `clients` table).
    Import {
        /// The py-kms SQLite file.
        path: PathBuf,
    },
    /// Copy every client record and its history from one database to another (e.g. from
    /// SQLite to a PostgreSQL database shared by several hosts). The target must be empty.
    Migrate {
        /// Source: a SQLite path (or sqlite:PATH) or a postgres:// URL.
        #[arg(long, value_name = "SPEC")]
        from: String,
        /// Target: a SQLite path or a postgres:// URL.
        #[arg(long, value_name = "SPEC")]
        to: String,
    },
}

/// Options of `rkms healthcheck`.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The KMS host to check.
    #[arg(value_name = "HOST[:PORT]", default_value = "127.0.0.1:1688")]
    pub host: String,
    /// Seconds to wait for the answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub timeout: f64,
}

/// Options of `rkms dns-record`.
#[derive(Debug, Args)]
pub struct DnsRecordArgs {
    /// Host name clients use to reach this KMS host (qualified with --domain when it has no
    /// dot), or its IP address: an SRV record points at a name, so an address also gets an
    /// A/AAAA record under --name.
    #[arg(long, value_name = "NAME|IP")]
    pub host: String,
    /// With an IP address as --host: the name the A/AAAA record gives it and the SRV record
    /// points at (qualified with --domain when it has no dot; default "kms").
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// DNS domain the clients are in.
    #[arg(long, value_name = "DOMAIN")]
    pub domain: String,
    /// TCP port.
    #[arg(long, default_value_t = 1688)]
    pub port: u16,
    /// Record TTL in seconds.
    #[arg(long, default_value_t = 10800)]
    pub ttl: u32,
    /// SRV priority (lower is tried first).
    #[arg(long, default_value_t = 0)]
    pub priority: u16,
    /// SRV weight (share among hosts of one priority).
    #[arg(long, default_value_t = 0)]
    pub weight: u16,
}

/// Options of `rkms completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish, powershell, or "man" for the manual pages (roff).
    #[arg(value_name = "SHELL|man")]
    pub shell: String,
    /// With "man": the page of this subcommand (e.g. serve, or "config check") instead of
    /// rkms(1).
    #[arg(value_name = "SUBCOMMAND", num_args = 0..)]
    pub subcommand: Vec<String>,
    /// With "man": write every page (rkms.1, rkms-serve.1, rkms-config-check.1, …) to this
    /// directory (created if needed) instead of printing rkms(1).
    #[arg(long, value_name = "DIR", conflicts_with = "subcommand")]
    pub dir: Option<PathBuf>,
}

/// Options of `rkms bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The KMS host to load.
    #[arg(value_name = "HOST[:PORT]")]
    pub host: String,
    /// Concurrent clients.
    #[arg(long, short = 'c', default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub connections: u64,
    /// Run this many seconds (default 10, unless --requests is given).
    #[arg(long, short = 'd', value_name = "SECONDS", conflicts_with = "requests")]
    pub duration: Option<f64>,
    /// Send this many requests in all.
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,
    /// new-connection (bind + request per activation) or keep-alive.
    #[arg(long, default_value = "keep-alive", value_parser = ["new-connection", "keep-alive"])]
    pub mode: String,
    /// KMS protocol version.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u16).range(4..=6))]
    pub protocol: u16,
    /// Offer NDR64 (kept connections use it from their second request on).
    #[arg(long)]
    pub ndr64: bool,
    /// How new-connection mode closes each connection: "fin" (an orderly close, as Windows
    /// does) or "reset" (an abortive close, RST). One machine opening thousands of connections
    /// a second to one port leaves them in TIME_WAIT, and the kernel then spends much of the
    /// load generator's time finding a free local port (clients on a real network each have
    /// their own address): "reset" leaves no TIME_WAIT, so the host is measured rather than
    /// the load generator's kernel.
    #[arg(long, default_value = "fin", value_parser = ["fin", "reset"])]
    pub close: String,
    /// Do not verify answers (for `rkms null-server`, whose answers are canned).
    #[arg(long)]
    pub no_verify: bool,
    /// Threads the clients are spread over, each with its own single-threaded runtime
    /// (default: one per CPU this process may run on, e.g. 1 under `taskset -c 1`; never more
    /// than the clients).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: Option<u64>,
    /// Seconds to wait for each exchange.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub timeout: f64,
    /// Print the summary as JSON (no progress lines).
    #[arg(long)]
    pub json: bool,
}

/// A GUID option's value, with an error that shows what a GUID looks like.
fn parse_guid(text: &str) -> Result<Uuid, String> {
    Uuid::parse_str(text.trim()).map_err(|_| {
        "not a GUID: expected 32 hexadecimal digits in groups of 8-4-4-4-12, such as \
         6e8b9c3f-5a8b-4f6e-9a53-6d1f3b1a2c4d (braces and upper case allowed)"
            .to_string()
    })
}

/// `--protocol`: 4, 5, 6, or MAJOR.MINOR.
fn parse_protocol(text: &str) -> Result<rkms_proto::kms::Version, String> {
    let bad = || {
        format!(
            "'{text}' is not a protocol version: 4, 5 or 6, or MAJOR.MINOR (each 0-65535) to \
             test a host, e.g. 7.0"
        )
    };
    let (major, minor) = text.trim().split_once('.').unwrap_or((text.trim(), "0"));
    let major: u16 = major.parse().map_err(|_| bad())?;
    let minor: u16 = minor.parse().map_err(|_| bad())?;
    if !text.contains('.') && !(4..=6).contains(&major) {
        return Err(format!(
            "{} (a version other than 4, 5 and 6 is given as MAJOR.MINOR, e.g. {major}.0)",
            bad()
        ));
    }
    Ok(rkms_proto::kms::Version { major, minor })
}

impl ServeArgs {
    /// The options given that exist on Unix only (empty when none is used).
    pub fn unix_only_options(&self) -> Vec<&'static str> {
        let mut used = Vec::new();
        if self.user.is_some() {
            used.push("--user");
        }
        if self.group.is_some() {
            used.push("--group");
        }
        if self.inetd {
            used.push("--inetd");
        }
        used
    }

    /// Refuses, before anything starts, the options this platform does not have.
    pub fn check_platform_options(&self) -> Result<(), String> {
        let used = self.unix_only_options();
        if cfg!(unix) || used.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{} {} on Unix only; on Windows run `rkms service install` to run rkms as a \
             low-privilege service (see `rkms service install --help`)",
            used.join(", "),
            if used.len() == 1 { "exists" } else { "exist" }
        ))
    }
}
