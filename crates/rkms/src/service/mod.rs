//! `rkms service`: rkms as a Windows service.
//!
//! Everything that decides what happens (the service's command line, its account, the
//! directories under %ProgramData%, installing twice, the messages) is written against
//! [`ServiceManager`], a small stand-in for the Windows service control manager, so it runs and
//! is tested on every platform with a fake manager. The real manager and the service's entry
//! point (`rkms service run`, started by Windows) are in `windows`, built on Windows only.

#[cfg(windows)]
pub mod windows;

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command, ServiceCommand};

/// The service's name (`sc query rkms`, `net start rkms`).
pub const SERVICE_NAME: &str = "rkms";
/// The name services.msc shows.
pub const DISPLAY_NAME: &str = "rkms KMS host";
/// The description services.msc shows.
pub const DESCRIPTION: &str =
    "KMS host emulator: answers volume activation requests on TCP port 1688 (rkms serve).";
pub use crate::platform::WindowsPaths;
/// The account the service runs as unless `--account` says otherwise.
pub use crate::platform::DEFAULT_SERVICE_ACCOUNT as DEFAULT_ACCOUNT;
/// The command that opens the KMS port in Windows' firewall, printed by `install`.
pub const FIREWALL_RULE: &str = r#"netsh advfirewall firewall add rule name="rkms KMS" dir=in action=allow protocol=TCP localport=1688"#;
/// What `rkms service` says on other platforms (exit status 2).
pub const WINDOWS_ONLY: &str = "`rkms service` manages the Windows service and works on Windows \
    only; elsewhere run `rkms serve` under your service manager (systemd: see contrib/systemd)";

/// A service's state, as the service manager reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not running.
    Stopped,
    /// Starting.
    StartPending,
    /// Stopping.
    StopPending,
    /// Running.
    Running,
    /// Paused, or pausing or resuming (rkms never asks for it).
    Paused,
}

/// A service's state and process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The state.
    pub state: State,
    /// The process, while it runs.
    pub pid: Option<u32>,
    /// The service's progress counter while it starts or stops (Windows' check point): a
    /// service that takes long, opening a large database, advances it as it goes.
    pub checkpoint: u32,
}

/// What is registered with the service manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Service name.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// The program (rkms.exe, absolute).
    pub executable: PathBuf,
    /// Its arguments: `service run` and the options of `serve`.
    pub arguments: Vec<OsString>,
    /// The account it runs as.
    pub account: String,
}

impl ServiceSpec {
    /// The command line, quoted as Windows parses it, for people to read.
    pub fn command_line(&self) -> String {
        let mut line = quote(self.executable.as_os_str());
        for a in &self.arguments {
            line.push(' ');
            line.push_str(&quote(a));
        }
        line
    }
}

/// Quotes a command-line word when it needs it (spaces, tabs, quotes, empty).
fn quote(word: &OsStr) -> String {
    let w = word.to_string_lossy();
    if !w.is_empty() && !w.contains([' ', '\t', '"']) {
        return w.into_owned();
    }
    // Windows' rules: backslashes are literal unless they come before a quote.
    let mut out = String::from('"');
    let mut slashes = 0;
    for c in w.chars() {
        if c == '\\' {
            slashes += 1;
            continue;
        }
        let n = if c == '"' { slashes * 2 + 1 } else { slashes };
        out.push_str(&"\\".repeat(n));
        out.push(c);
        slashes = 0;
    }
    out.push_str(&"\\".repeat(slashes * 2));
    out.push('"');
    out
}

/// Why the service manager refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagerError {
    /// Not allowed: the command needs an elevated prompt.
    AccessDenied,
    /// No such service.
    NotInstalled,
    /// Anything else, as the system words it.
    Other(String),
}

impl std::fmt::Display for ManagerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManagerError::AccessDenied => f.write_str(
                "access denied by the Windows service manager: run this from an elevated \
                 prompt (right-click the terminal, Run as administrator)",
            ),
            ManagerError::NotInstalled => write!(
                f,
                "the service \"{SERVICE_NAME}\" is not installed: run `rkms service install` first"
            ),
            ManagerError::Other(msg) => f.write_str(msg),
        }
    }
}

/// The service control manager, as much of it as rkms uses.
pub trait ServiceManager {
    /// The service's status, or `None` when it is not installed.
    fn query(&self, name: &str) -> Result<Option<Status>, ManagerError>;
    /// Registers a new service (started at boot).
    fn install(&mut self, spec: &ServiceSpec) -> Result<(), ManagerError>;
    /// Replaces an installed service's registration.
    fn reconfigure(&mut self, spec: &ServiceSpec) -> Result<(), ManagerError>;
    /// Removes a (stopped) service.
    fn uninstall(&mut self, name: &str) -> Result<(), ManagerError>;
    /// Asks for the service to start (returns before it runs).
    fn start(&mut self, name: &str) -> Result<(), ManagerError>;
    /// Asks for the service to stop (returns before it has stopped).
    fn stop(&mut self, name: &str) -> Result<(), ManagerError>;
    /// Creates a directory (with its parents) and lets `grantee` (an account name or `*SID`)
    /// modify what is in it; `None` when the account already may.
    fn prepare_directory(&mut self, path: &str, grantee: Option<&str>) -> Result<(), ManagerError>;
}

/// What `rkms service` needs to know about where it runs.
#[derive(Debug, Clone)]
pub struct Context {
    /// The whole command line (`rkms … service install …`).
    pub argv: Vec<OsString>,
    /// rkms.exe, absolute.
    pub executable: PathBuf,
    /// The current directory (relative paths in the options are made absolute against it: a
    /// service starts in C:\Windows\System32).
    pub cwd: String,
    /// %USERPROFILE%, to warn when rkms.exe lies where the service account cannot read it.
    pub user_profile: Option<String>,
    /// Directories and files under %ProgramData%.
    pub paths: WindowsPaths,
    /// Pause between status checks while waiting for a start or stop.
    pub poll: Duration,
    /// Status checks before giving up waiting.
    pub polls: u32,
}

impl Context {
    /// This process's context.
    pub fn current(argv: &[OsString]) -> Result<Self, String> {
        let executable =
            std::env::current_exe().map_err(|e| format!("cannot find rkms.exe's path: {e}"))?;
        let cwd = std::env::current_dir()
            .map_err(|e| format!("cannot read the current directory: {e}"))?;
        Ok(Context {
            argv: argv.to_vec(),
            executable,
            cwd: cwd.to_string_lossy().into_owned(),
            user_profile: std::env::var("USERPROFILE").ok(),
            paths: WindowsPaths::from_env(&|k| std::env::var(k).ok()),
            poll: Duration::from_millis(250),
            polls: 120,
        })
    }
}

/// The system's service manager: Windows' own, or an error saying `rkms service` is for
/// Windows.
pub fn system_manager() -> Result<Box<dyn ServiceManager>, String> {
    #[cfg(windows)]
    {
        Ok(Box::new(windows::Scm))
    }
    #[cfg(not(windows))]
    {
        Err(WINDOWS_ONLY.into())
    }
}

/// Runs `body` (the `serve` command line) as the Windows service, reporting to the service
/// manager; returns its exit status. Elsewhere: an error, status 2.
pub fn run_under_scm(body: Box<dyn FnOnce() -> u8 + Send>) -> u8 {
    #[cfg(windows)]
    {
        windows::run_under_scm(body)
    }
    #[cfg(not(windows))]
    {
        drop(body);
        crate::commands::usage(WINDOWS_ONLY)
    }
}

/// For `rkms service run OPTIONS` (the command line `install` registers), the equivalent
/// `rkms serve OPTIONS`.
pub fn serve_argv(argv: &[OsString]) -> Option<Vec<OsString>> {
    if argv.len() < 3 || argv[1] != "service" || argv[2] != "run" {
        return None;
    }
    let mut out = vec![argv[0].clone(), "serve".into()];
    out.extend(argv[3..].iter().cloned());
    Some(out)
}

/// Options whose value is a path: made absolute at install.
const PATH_OPTIONS: [&str; 5] = ["--products", "--config", "--db", "--log-file", "--pidfile"];

/// Whether a Windows path is absolute (C:\…, \\server\…, or rooted \…).
fn is_absolute_windows(p: &str) -> bool {
    let b = p.as_bytes();
    p.starts_with(['\\', '/'])
        || (b.len() >= 3
            && b[0].is_ascii_alphabetic()
            && b[1] == b':'
            && matches!(b[2], b'\\' | b'/'))
}

/// Whether a value is a URL or `scheme:…` rather than a path (`C:` is a drive, not a scheme).
fn has_scheme(v: &str) -> bool {
    v.split_once(':').is_some_and(|(scheme, _)| {
        scheme.len() > 1
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    })
}

/// Whether `words` set `option` (as `--option VALUE` or `--option=VALUE`).
fn sets(words: &[OsString], option: &str) -> bool {
    option_value(words, option).is_some()
}

/// The last value `words` give `option` (`--option VALUE` or `--option=VALUE`).
fn option_value(words: &[OsString], option: &str) -> Option<String> {
    let prefix = format!("{option}=");
    let mut found = None;
    for (i, w) in words.iter().enumerate() {
        let w = w.to_string_lossy();
        if w == option {
            found = words.get(i + 1).map(|v| v.to_string_lossy().into_owned());
        } else if let Some(v) = w.strip_prefix(&prefix) {
            found = Some(v.to_string());
        }
    }
    found
}

/// The account to grant the state directories to, as icacls wants it: the well-known SIDs
/// (names are translated on non-English Windows), `None` for LocalSystem (it may already).
pub fn acl_grantee(account: &str) -> Option<String> {
    let bare = account
        .rsplit_once('\\')
        .map_or(account, |(_, name)| name)
        .to_ascii_lowercase();
    match bare.as_str() {
        "localsystem" | "system" => None,
        "localservice" | "local service" => Some("*S-1-5-19".into()),
        "networkservice" | "network service" => Some("*S-1-5-20".into()),
        _ => Some(account.to_string()),
    }
}

/// The registration `rkms service install …` asks for: rkms.exe running `service run` with
/// the `serve` options of the command line (everything but `service install` and
/// `--account`), relative paths made absolute, logs and the database under %ProgramData%
/// unless given.
pub fn install_spec(ctx: &Context) -> Result<ServiceSpec, String> {
    let argv = &ctx.argv;
    let at = (1..argv.len().saturating_sub(1))
        .find(|&i| argv[i] == "service" && argv[i + 1] == "install")
        .ok_or("the command line does not contain `service install`")?;
    let mut account = DEFAULT_ACCOUNT.to_string();
    let mut words: Vec<OsString> = Vec::new();
    let mut rest = argv[1..at].iter().chain(&argv[at + 2..]);
    while let Some(w) = rest.next() {
        let text = w.to_string_lossy();
        if text == "--account" {
            account = rest
                .next()
                .ok_or("--account needs a value")?
                .to_string_lossy()
                .into_owned();
        } else if let Some(v) = text.strip_prefix("--account=") {
            account = v.to_string();
        } else {
            words.push(w.clone());
        }
    }
    if account.trim().is_empty() {
        return Err("--account must name an account".into());
    }
    // Relative paths would be read from C:\Windows\System32, the service's directory.
    let cwd = ctx.cwd.trim_end_matches(['\\', '/']);
    let absolute = |v: &OsString| -> OsString {
        let t = v.to_string_lossy();
        if let Some(path) = t
            .strip_prefix("sqlite:")
            .filter(|p| !is_absolute_windows(p))
        {
            format!(r"sqlite:{cwd}\{path}").into()
        } else if is_absolute_windows(&t) || t.eq_ignore_ascii_case("none") || has_scheme(&t) {
            v.clone()
        } else {
            format!(r"{cwd}\{t}").into()
        }
    };
    let mut fixed: Vec<OsString> = Vec::with_capacity(words.len() + 4);
    let mut i = 0;
    while i < words.len() {
        let text = words[i].to_string_lossy().into_owned();
        if PATH_OPTIONS.contains(&text.as_str()) && i + 1 < words.len() {
            fixed.push(words[i].clone());
            fixed.push(absolute(&words[i + 1]));
            i += 2;
            continue;
        }
        match text.split_once('=') {
            Some((opt, v)) if PATH_OPTIONS.contains(&opt) => {
                let v = absolute(&OsString::from(v));
                fixed.push(format!("{opt}={}", v.to_string_lossy()).into());
            }
            _ => fixed.push(words[i].clone()),
        }
        i += 1;
    }
    let mut arguments: Vec<OsString> = vec!["service".into(), "run".into()];
    if !sets(&fixed, "--log-file") {
        arguments.extend(["--log-file".into(), ctx.paths.log_file.clone().into()]);
    }
    if !sets(&fixed, "--db") {
        arguments.extend(["--db".into(), ctx.paths.db.clone().into()]);
    }
    arguments.extend(fixed);
    // The service must start: check its command line as `rkms service run` will read it.
    let mut probe = vec![OsString::from("rkms")];
    probe.extend(arguments.iter().cloned());
    let cli = Cli::command()
        .try_get_matches_from(&probe)
        .and_then(|m| Cli::from_arg_matches(&m))
        .map_err(|e| {
            let msg = e.to_string();
            msg.lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_string()
        })?;
    if let Command::Service {
        command: ServiceCommand::Run(serve),
    } = &cli.command
    {
        let unix = serve.unix_only_options();
        if !unix.is_empty() {
            return Err(format!(
                "{} {} on Unix only; the service runs as --account (default {DEFAULT_ACCOUNT})",
                unix.join(", "),
                if unix.len() == 1 { "exists" } else { "exist" }
            ));
        }
    }
    Ok(ServiceSpec {
        name: SERVICE_NAME.into(),
        display_name: DISPLAY_NAME.into(),
        description: DESCRIPTION.into(),
        executable: ctx.executable.clone(),
        arguments,
        account,
    })
}

/// Waits until the service's state satisfies `done`, for up to `ctx.polls` checks without
/// progress: while the service advances its check point (a start migrating a large
/// database) the count starts again. Returns the last status seen.
fn wait_until(
    mgr: &dyn ServiceManager,
    ctx: &Context,
    done: impl Fn(State) -> bool,
) -> Result<Option<Status>, ManagerError> {
    let mut last = mgr.query(SERVICE_NAME)?;
    let mut still = 0;
    while still < ctx.polls {
        let Some(before) = last.filter(|s| !done(s.state)) else {
            break;
        };
        std::thread::sleep(ctx.poll);
        last = mgr.query(SERVICE_NAME)?;
        match last {
            Some(now) if now.state == before.state && now.checkpoint != before.checkpoint => {
                still = 0;
            }
            _ => still += 1,
        }
    }
    Ok(last)
}

fn installed(mgr: &dyn ServiceManager) -> Result<Status, String> {
    mgr.query(SERVICE_NAME)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| ManagerError::NotInstalled.to_string())
}

fn wait_secs(ctx: &Context) -> u64 {
    (ctx.poll * ctx.polls).as_secs()
}

/// Exit status of `status` when the service is installed but not running (LSB).
pub const EXIT_NOT_RUNNING: u8 = 3;
/// Exit status of `status` when the service is not installed (LSB "unknown").
pub const EXIT_NOT_INSTALLED: u8 = 4;

/// Carries out an `rkms service` command (except `run`) through `mgr`, writing what it did
/// to `out`; returns the exit status, or the error to print (exit status 1).
pub fn execute(
    command: &ServiceCommand,
    mgr: &mut dyn ServiceManager,
    ctx: &Context,
    out: &mut dyn Write,
) -> Result<u8, String> {
    let say = |out: &mut dyn Write, text: String| {
        let _ = writeln!(out, "{text}");
    };
    let err = |e: ManagerError| e.to_string();
    match command {
        ServiceCommand::Install(_) => {
            let spec = install_spec(ctx)?;
            let grantee = acl_grantee(&spec.account);
            for dir in [&ctx.paths.root, &ctx.paths.logs] {
                mgr.prepare_directory(dir, grantee.as_deref())
                    .map_err(|e| format!("{}: {e}", dir))?;
            }
            let before = mgr.query(SERVICE_NAME).map_err(err)?;
            match before {
                None => {
                    mgr.install(&spec).map_err(err)?;
                    say(
                        out,
                        format!("installed the service \"{SERVICE_NAME}\" ({DISPLAY_NAME}), started at boot"),
                    );
                }
                Some(_) => {
                    mgr.reconfigure(&spec).map_err(err)?;
                    say(
                        out,
                        format!("the service \"{SERVICE_NAME}\" was already installed: its settings are updated"),
                    );
                }
            }
            say(out, format!("  runs:     {}", spec.command_line()));
            say(out, format!("  account:  {}", spec.account));
            let log = option_value(&spec.arguments, "--log-file").unwrap_or_default();
            say(out, format!("  logs:     {log}"));
            let db = option_value(&spec.arguments, "--db").unwrap_or_default();
            let db = if db.eq_ignore_ascii_case("none") {
                "none (client records in memory only)".into()
            } else {
                db
            };
            say(out, format!("  clients:  {db}"));
            if let Some(profile) = ctx.user_profile.as_deref().filter(|p| !p.is_empty()) {
                let exe = ctx.executable.to_string_lossy().to_ascii_lowercase();
                if exe.starts_with(&profile.to_ascii_lowercase()) {
                    say(
                        out,
                        format!(
                            "warning: {} is in your user profile, which the service account \
                             cannot read: copy rkms.exe to C:\\Program Files\\rkms\\ and run \
                             `rkms service install` from there",
                            ctx.executable.display()
                        ),
                    );
                }
            }
            match before {
                Some(s) if s.state != State::Stopped => say(
                    out,
                    "restart it to apply: rkms service stop && rkms service start".into(),
                ),
                _ => say(out, "start it now: rkms service start".into()),
            }
            say(
                out,
                "open TCP port 1688 for the clients (elevated prompt):".into(),
            );
            say(out, format!("  {FIREWALL_RULE}"));
            Ok(0)
        }
        ServiceCommand::Uninstall => {
            let Some(status) = mgr.query(SERVICE_NAME).map_err(err)? else {
                say(
                    out,
                    format!("the service \"{SERVICE_NAME}\" is not installed"),
                );
                return Ok(0);
            };
            if status.state != State::Stopped {
                if status.state != State::StopPending {
                    mgr.stop(SERVICE_NAME).map_err(err)?;
                }
                let after = wait_until(mgr, ctx, |s| s == State::Stopped).map_err(err)?;
                if after.is_some_and(|s| s.state != State::Stopped) {
                    return Err(format!(
                        "the service did not stop within {} s; it is still installed",
                        wait_secs(ctx)
                    ));
                }
                say(out, format!("stopped the service \"{SERVICE_NAME}\""));
            }
            match mgr.uninstall(SERVICE_NAME) {
                Ok(()) | Err(ManagerError::NotInstalled) => {}
                Err(e) => return Err(e.to_string()),
            }
            say(
                out,
                format!(
                    "removed the service \"{SERVICE_NAME}\"; its logs and client database stay in {}",
                    ctx.paths.root
                ),
            );
            Ok(0)
        }
        ServiceCommand::Start => {
            let status = installed(mgr)?;
            if status.state == State::Running {
                say(
                    out,
                    format!("the service \"{SERVICE_NAME}\" is already running"),
                );
                return Ok(0);
            }
            if status.state != State::StartPending {
                mgr.start(SERVICE_NAME).map_err(err)?;
            }
            let after = wait_until(mgr, ctx, |s| s != State::StartPending).map_err(err)?;
            match after.map(|s| (s.state, s.pid)) {
                Some((State::Running, pid)) => {
                    let pid = pid.map(|p| format!(" (process {p})")).unwrap_or_default();
                    say(
                        out,
                        format!("the service \"{SERVICE_NAME}\" is running{pid}"),
                    );
                    Ok(0)
                }
                Some((State::StartPending, _)) => Err(format!(
                    "the service is still starting, with no progress for {} s: see `rkms service status` and {}",
                    wait_secs(ctx),
                    ctx.paths.log_file
                )),
                Some(_) => Err(format!(
                    "the service stopped right after starting: see its log, {}, and the \
                     System event log",
                    ctx.paths.log_file
                )),
                None => Err(ManagerError::NotInstalled.to_string()),
            }
        }
        ServiceCommand::Stop => {
            let status = installed(mgr)?;
            if status.state == State::Stopped {
                say(
                    out,
                    format!("the service \"{SERVICE_NAME}\" is not running"),
                );
                return Ok(0);
            }
            if status.state != State::StopPending {
                mgr.stop(SERVICE_NAME).map_err(err)?;
            }
            let after = wait_until(mgr, ctx, |s| s == State::Stopped).map_err(err)?;
            if after.is_some_and(|s| s.state != State::Stopped) {
                return Err(format!(
                    "the service did not stop within {} s",
                    wait_secs(ctx)
                ));
            }
            say(out, format!("stopped the service \"{SERVICE_NAME}\""));
            Ok(0)
        }
        ServiceCommand::Status => {
            let status = mgr.query(SERVICE_NAME).map_err(err)?;
            let (text, code) = match status {
                None => ("not installed".to_string(), EXIT_NOT_INSTALLED),
                Some(Status {
                    state: State::Running,
                    pid,
                    ..
                }) => (
                    match pid {
                        Some(p) => format!("running (process {p})"),
                        None => "running".into(),
                    },
                    0,
                ),
                Some(s) => (
                    match s.state {
                        State::Stopped => "stopped",
                        State::StartPending => "starting",
                        State::StopPending => "stopping",
                        _ => "paused",
                    }
                    .to_string(),
                    EXIT_NOT_RUNNING,
                ),
            };
            say(out, format!("{SERVICE_NAME}: {text}"));
            Ok(code)
        }
        ServiceCommand::Run(_) => Err(
            "`rkms service run` is started by the Windows service manager; to run rkms in this \
             console use `rkms serve`"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests;
