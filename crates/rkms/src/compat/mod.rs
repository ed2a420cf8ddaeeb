//! Drop-in command lines: py-kms' (`pykms_Server.py`, `pykms_Client.py`) and vlmcsd's
//! (`vlmcsd`, `vlmcs`) options, translated into rkms' own `serve` and `activate` options so
//! that an existing unit file, init script or container only changes the program's path.
//!
//! Each dialect has a hand-written parser (py-kms has multi-character single-dash options such
//! as `-t0`; vlmcsd glues values to letters, `-N1`, `-t30`, and groups flags, `-De`), and
//! produces a [`Translation`]: the rkms command line, plus notes about options that rkms
//! accepts without an effect, logged once when the host starts. Options whose effect rkms
//! cannot give are refused, naming the foreign option and the closest rkms option.
//!
//! The binary answers to these command lines as `rkms pykms-server …` (and the other
//! subcommand names below) or, multi-call, when started through a link named like the
//! original program (`ln -s rkms vlmcsd`).

pub mod ini;
pub mod pykms;
pub mod vlmcs;
pub mod vlmcsd;

use std::ffi::{OsStr, OsString};
use std::sync::Mutex;

/// Exit code for a foreign command line rkms cannot run (as for its own bad options).
pub const EXIT_USAGE: u8 = crate::commands::EXIT_USAGE;

/// Whose command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// py-kms' server, `pykms_Server.py`.
    PykmsServer,
    /// py-kms' client, `pykms_Client.py`.
    PykmsClient,
    /// vlmcsd, the server.
    Vlmcsd,
    /// vlmcs, vlmcsd's client.
    Vlmcs,
}

impl Dialect {
    /// The rkms subcommand for this dialect.
    pub fn subcommand(self) -> &'static str {
        match self {
            Dialect::PykmsServer => "pykms-server",
            Dialect::PykmsClient => "pykms-client",
            Dialect::Vlmcsd => "vlmcsd",
            Dialect::Vlmcs => "vlmcs",
        }
    }

    /// The dialect of an rkms subcommand name.
    pub fn from_subcommand(name: &str) -> Option<Dialect> {
        [
            Dialect::PykmsServer,
            Dialect::PykmsClient,
            Dialect::Vlmcsd,
            Dialect::Vlmcs,
        ]
        .into_iter()
        .find(|d| d.subcommand() == name)
    }

    /// The dialect of the name the program was started as (multi-call), if it is one of
    /// py-kms' or vlmcsd's program names.
    pub fn from_program(argv0: &OsStr) -> Option<Dialect> {
        let name = std::path::Path::new(argv0).file_name()?.to_str()?;
        let name = name
            .strip_suffix(".exe")
            .or_else(|| name.strip_suffix(".EXE"))
            .unwrap_or(name);
        match name {
            "pykms_Server.py" | "pykms_Server" | "py-kms-server" | "pykms-server" => {
                Some(Dialect::PykmsServer)
            }
            "pykms_Client.py" | "pykms_Client" | "py-kms-client" | "pykms-client" => {
                Some(Dialect::PykmsClient)
            }
            "vlmcsd" => Some(Dialect::Vlmcsd),
            "vlmcs" => Some(Dialect::Vlmcs),
            _ => None,
        }
    }

    /// The original program's name, for messages.
    pub fn program(self) -> &'static str {
        match self {
            Dialect::PykmsServer => "pykms_Server.py",
            Dialect::PykmsClient => "pykms_Client.py",
            Dialect::Vlmcsd => "vlmcsd",
            Dialect::Vlmcs => "vlmcs",
        }
    }
}

/// How loud a note is when logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Something done on the user's behalf (an import, a mapping worth knowing).
    Info,
    /// An option accepted without effect, or with a different effect than the original's.
    Warn,
}

/// What a foreign command line becomes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Translation {
    /// Global rkms options (`log-level`, `log-file`, …): (long name, value; empty for a flag).
    pub globals: Vec<(String, String)>,
    /// The rkms subcommand: `serve`, `activate` or `products`.
    pub command: String,
    /// Options of the subcommand: (long name, value or `None` for a flag).
    pub options: Vec<(String, Option<String>)>,
    /// Positional arguments of the subcommand (after the options).
    pub positional: Vec<String>,
    /// Notes logged once when rkms starts.
    pub notes: Vec<(Level, String)>,
    /// rkms' own global options given before the subcommand (`rkms -v vlmcsd …`); they win
    /// over the translation's.
    pub prefix: Vec<String>,
    /// Run in the background, as vlmcsd does without `-D` (see [`detach`]).
    pub detach: bool,
    /// For [`detach`]: the foreign command line with `-D`, run by the background process (so
    /// that it logs the same notes).
    pub foreground: Vec<OsString>,
}

impl Translation {
    fn new(command: &str) -> Translation {
        Translation {
            command: command.into(),
            ..Default::default()
        }
    }

    /// Sets a subcommand option, replacing an earlier value of the same option (the last one
    /// given wins, as in the original programs) unless `repeat`.
    fn set(&mut self, key: &str, value: Option<String>) {
        self.options.retain(|(k, _)| k != key);
        self.options.push((key.into(), value));
    }

    fn add(&mut self, key: &str, value: String) {
        self.options.push((key.into(), Some(value)));
    }

    fn unset(&mut self, key: &str) {
        self.options.retain(|(k, _)| k != key);
    }

    fn global(&mut self, key: &str, value: String) {
        self.globals.retain(|(k, _)| k != key);
        self.globals.push((key.into(), value));
    }

    fn unset_global(&mut self, key: &str) {
        self.globals.retain(|(k, _)| k != key);
    }

    fn note(&mut self, text: String) {
        if !self.notes.iter().any(|(_, t)| *t == text) {
            self.notes.push((Level::Warn, text));
        }
    }

    fn info(&mut self, text: String) {
        self.notes.push((Level::Info, text));
    }

    /// The equivalent rkms command line, program name first.
    pub fn argv(&self) -> Vec<OsString> {
        let mut out: Vec<OsString> = vec!["rkms".into()];
        out.extend(self.prefix.iter().map(OsString::from));
        let given = |k: &str| {
            self.prefix
                .iter()
                .any(|w| w == &format!("--{k}") || w.starts_with(&format!("--{k}=")))
        };
        for (k, v) in self.globals.iter().filter(|(k, _)| !given(k)) {
            out.push(format!("--{k}").into());
            // An empty value stands for a flag (`--log-stderr`).
            if !v.is_empty() {
                out.push(v.into());
            }
        }
        out.push(self.command.clone().into());
        for (k, v) in &self.options {
            out.push(format!("--{k}").into());
            if let Some(v) = v {
                out.push(v.into());
            }
        }
        if !self.positional.is_empty() {
            out.push("--".into());
            out.extend(self.positional.iter().map(OsString::from));
        }
        out
    }

    /// The equivalent command line as one shell-like line, for messages and `--print`.
    pub fn display(&self) -> String {
        self.argv()
            .iter()
            .map(|w| {
                let w = w.to_string_lossy();
                let special = |c: char| !(c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
                if w.is_empty() || w.chars().any(special) {
                    format!("'{}'", w.replace('\'', "'\\''"))
                } else {
                    w.into_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What to do with a command line.
#[derive(Debug)]
pub enum Intercept {
    /// Run this rkms command line; notes are logged once logging is set up.
    Run(Translation),
    /// Exit now with this code (help printed, or an error already reported).
    Exit(u8),
}

/// If `argv` is a foreign command line (multi-call program name, or `rkms pykms-server …`,
/// `rkms pykms-client …`, `rkms vlmcsd …`, `rkms vlmcs …`), translates it.
pub fn intercept(argv: &[OsString]) -> Option<Intercept> {
    if let Some(d) = argv.first().and_then(|a| Dialect::from_program(a)) {
        return Some(run_dialect(d, &argv[1..], Vec::new()));
    }
    // `rkms [global options] SUBCOMMAND …`: global options that take a value, as separate words.
    const WITH_VALUE: &[&str] = &[
        "--log-level",
        "--products",
        "--log-format",
        "--log-file",
        "--log-max-size",
        "--log-keep",
        "--config",
    ];
    let mut i = 1;
    while i < argv.len() {
        let w = argv[i].to_str()?;
        if let Some(d) = Dialect::from_subcommand(w) {
            let prefix: Vec<String> = argv[1..i]
                .iter()
                .filter_map(|a| a.to_str().map(String::from))
                .collect();
            return Some(run_dialect(d, &argv[i + 1..], prefix));
        }
        if !w.starts_with('-') {
            return None;
        }
        i += if WITH_VALUE.contains(&w) { 2 } else { 1 };
    }
    None
}

/// Translates the arguments of one dialect (program name excluded); `prefix` are rkms' own
/// global options given before the subcommand.
pub fn run_dialect(dialect: Dialect, args: &[OsString], prefix: Vec<String>) -> Intercept {
    let mut words = Vec::with_capacity(args.len());
    for a in args {
        match a.to_str() {
            Some(s) => words.push(s.to_string()),
            None => {
                eprintln!(
                    "{}: error: argument {:?} is not valid UTF-8",
                    dialect.program(),
                    a
                );
                return Intercept::Exit(EXIT_USAGE);
            }
        }
    }
    let result = match dialect {
        Dialect::PykmsServer => pykms::server(&words),
        Dialect::PykmsClient => pykms::client(&words),
        Dialect::Vlmcsd => vlmcsd::translate(&words),
        Dialect::Vlmcs => vlmcs::translate(&words),
    };
    match result {
        Ok(Outcome::Run(mut t)) => {
            if t.detach {
                t.foreground = std::iter::once("rkms".into())
                    .chain(prefix.iter().map(OsString::from))
                    .chain([dialect.subcommand().into(), "-D".into()])
                    .chain(args.iter().cloned())
                    .collect();
            }
            t.prefix = prefix;
            let line = t.display();
            t.notes.insert(
                0,
                (
                    Level::Info,
                    format!("{} command line, run as: {line}", dialect.program()),
                ),
            );
            if std::env::var_os("RKMS_COMPAT_PRINT").is_some_and(|v| v == "1") {
                // Shows the translation without running it (documentation and tests).
                println!("{line}");
                for (_, n) in t.notes.iter().skip(1) {
                    println!("note: {n}");
                }
                if t.detach {
                    println!("note: runs in the background, as vlmcsd without -D");
                }
                return Intercept::Exit(0);
            }
            Intercept::Run(t)
        }
        Ok(Outcome::Help(text)) => {
            print!("{text}");
            Intercept::Exit(0)
        }
        Ok(Outcome::Grab(g)) => Intercept::Exit(vlmcs::grab(&g)),
        Err(Refusal { message, code }) => {
            eprintln!("{}: error: {message}", dialect.program());
            Intercept::Exit(code)
        }
    }
}

/// What a dialect's parser returns when the line is acceptable.
#[derive(Debug)]
pub enum Outcome {
    /// Run the translated line.
    Run(Translation),
    /// Print this help text and exit 0.
    Help(String),
    /// vlmcs -G: write a host's ePIDs into a vlmcsd.ini.
    Grab(vlmcs::Grab),
}

/// A refused command line: the message names the foreign option; `code` is the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What is wrong and what to use instead.
    pub message: String,
    /// Exit code.
    pub code: u8,
}

impl Refusal {
    fn usage(message: impl Into<String>) -> Refusal {
        Refusal {
            message: message.into(),
            code: EXIT_USAGE,
        }
    }
}

impl From<String> for Refusal {
    fn from(message: String) -> Refusal {
        Refusal::usage(message)
    }
}

/// Starts the translated host as a background process and returns once it runs, as vlmcsd
/// does without `-D` (so that init scripts and `Type=forking` units keep working): the child
/// has its own process group and no terminal streams. If it stops within its first moments
/// (bad settings, a taken port), its exit status is returned and the reason is on the log it
/// was given, or shown by running the same command line with `-D`.
#[cfg(unix)]
pub fn detach(argv: &[OsString]) -> u8 {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "vlmcsd: error: cannot find the rkms program to start in the background: {e}"
            );
            return 1;
        }
    };
    let child = Command::new(exe)
        .args(argv.iter().skip(1))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vlmcsd: error: cannot start rkms in the background: {e}");
            return 1;
        }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    while std::time::Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(status)) => {
                let code = status.code().unwrap_or(1);
                eprintln!(
                    "vlmcsd: error: the background host stopped at once (exit status {code}); run the same command line with -D to see why"
                );
                return u8::try_from(code).unwrap_or(1).max(1);
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(50)),
            Err(_) => break,
        }
    }
    0
}

static PENDING: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());

/// Keeps the notes of a translation until logging is set up.
pub fn defer_notes(notes: &[(Level, String)]) {
    if let Ok(mut p) = PENDING.lock() {
        p.extend(notes.iter().cloned());
    }
}

/// Logs the kept notes once (called after logging is set up).
pub fn log_notes() {
    let notes = match PENDING.lock() {
        Ok(mut p) => std::mem::take(&mut *p),
        Err(_) => return,
    };
    for (level, text) in notes {
        match level {
            Level::Info => tracing::info!("{text}"),
            Level::Warn => tracing::warn!("{text}"),
        }
    }
}

/// A listen address in rkms' form (`[v6]:port`, `v4:port`, `name:port`), checked by the
/// same parser as `--listen` (host names are resolved).
pub(crate) fn listen_addr(host: &str, port: u16, what: &str) -> Result<String, String> {
    let host = host.trim();
    let text = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    crate::addr::parse_listen(&text).map_err(|e| format!("{what}: {e}"))?;
    Ok(text)
}

/// Minutes from vlmcsd's interval syntax: a number with an optional unit s, m, h, d or w
/// (minutes without one; seconds are rounded down to whole minutes).
pub(crate) fn vlmcsd_minutes(text: &str, option: &str) -> Result<u32, String> {
    let t = text.trim();
    let (num, mult) = match t.chars().last() {
        Some('s' | 'S') => (&t[..t.len() - 1], 0u64),
        Some('m' | 'M') => (&t[..t.len() - 1], 1),
        Some('h' | 'H') => (&t[..t.len() - 1], 60),
        Some('d' | 'D') => (&t[..t.len() - 1], 1440),
        Some('w' | 'W') => (&t[..t.len() - 1], 10080),
        _ => (t, 1),
    };
    let n: u64 = num.parse().map_err(|_| {
        format!("{option} '{text}': expected a number with an optional unit s, m, h, d or w")
    })?;
    let minutes = if mult == 0 {
        n / 60
    } else {
        n.saturating_mul(mult)
    };
    if minutes == 0 || minutes > u64::from(u32::MAX) {
        return Err(format!(
            "{option} '{text}': the interval must be at least one minute and at most {} minutes",
            u32::MAX
        ));
    }
    Ok(minutes as u32)
}

/// py-kms' log level names to rkms': CRITICAL and ERROR are error, WARNING warn, INFO and
/// MININFO (one line per activation) info, DEBUG debug.
pub(crate) fn pykms_level(text: &str, option: &str) -> Result<&'static str, String> {
    match text.to_ascii_uppercase().as_str() {
        "CRITICAL" | "ERROR" => Ok("error"),
        "WARNING" => Ok("warn"),
        "INFO" | "MININFO" => Ok("info"),
        "DEBUG" => Ok("debug"),
        _ => Err(format!(
            "{option} '{text}': expected one of CRITICAL, ERROR, WARNING, INFO, DEBUG, MININFO"
        )),
    }
}

/// `rkms config import`: the rkms.toml equivalent of a vlmcsd.ini, or of py-kms' container
/// variables in this environment, on standard output or into `output` (never overwritten).
pub fn config_import(
    ini: Option<&std::path::Path>,
    pykms_env: bool,
    output: Option<&std::path::Path>,
) -> u8 {
    let text = match (ini, pykms_env) {
        (Some(path), false) => {
            // -D: the file alone says nothing about detaching.
            let words = vec![
                "-D".to_string(),
                "-i".into(),
                path.to_string_lossy().into_owned(),
            ];
            match vlmcsd::translate(&words) {
                Ok(Outcome::Run(t)) => toml_of(
                    &format!("vlmcsd configuration {}", path.display()),
                    &t.globals,
                    &t.options,
                    &t.notes,
                ),
                Ok(_) => unreachable!("no -h given"),
                Err(r) => return crate::commands::usage(&r.message),
            }
        }
        (None, true) => {
            let entries = rkms_config::pykms_env(&|k| std::env::var(k).ok());
            if entries.is_empty() {
                return crate::commands::usage(
                    "--pykms-env: none of py-kms' variables (IP, PORT, EPID, LCID, CLIENT_COUNT, ACTIVATION_INTERVAL, RENEWAL_INTERVAL, HWID, LOGLEVEL) is set",
                );
            }
            let mut options = Vec::new();
            let mut notes = Vec::new();
            for e in entries {
                notes.push((Level::Info, format!("{} from {}", e.key, e.origin)));
                for v in e.values {
                    options.push((e.key.clone(), Some(v)));
                }
            }
            toml_of("py-kms container variables", &[], &options, &notes)
        }
        _ => return crate::commands::usage("give a vlmcsd.ini file or --pykms-env (one of them)"),
    };
    // The result must be a configuration rkms accepts.
    if let Err(e) = rkms_config::parse_file(&text, std::path::Path::new("rkms.toml")) {
        return crate::commands::usage(&format!("the translated configuration is not valid: {e}"));
    }
    match output {
        None => {
            print!("{text}");
            0
        }
        Some(p) => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p);
            match file.and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes())) {
                Ok(()) => {
                    eprintln!("wrote {}", p.display());
                    0
                }
                Err(e) => {
                    eprintln!("error: {}: {e}", p.display());
                    1
                }
            }
        }
    }
}

/// TOML text for rkms options: one key per option, repeated options as arrays, flags `true`.
fn toml_of(
    source: &str,
    globals: &[(String, String)],
    options: &[(String, Option<String>)],
    notes: &[(Level, String)],
) -> String {
    let mut out = format!("# rkms configuration translated from the {source}.\n");
    for (_, n) in notes {
        out.push_str(&format!("# note: {n}\n"));
    }
    out.push('\n');
    let mut keys: Vec<(String, Vec<Option<String>>)> = Vec::new();
    let all = globals
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .chain(options.iter().cloned());
    for (k, v) in all {
        match keys.iter_mut().find(|(key, _)| *key == k) {
            Some((_, vals)) => vals.push(v),
            None => keys.push((k, vec![v])),
        }
    }
    let repeatable = ["listen", "epid"];
    for (k, vals) in keys {
        let quote = |v: &str| {
            if !v.is_empty() && v.len() < 10 && v.chars().all(|c| c.is_ascii_digit()) {
                v.to_string()
            } else {
                toml::Value::String(v.to_string()).to_string()
            }
        };
        let rendered: Vec<String> = vals
            .iter()
            .map(|v| v.as_deref().map_or_else(|| "true".to_string(), quote))
            .collect();
        if repeatable.contains(&k.as_str()) {
            out.push_str(&format!("{k} = [{}]\n", rendered.join(", ")));
        } else if let Some(last) = rendered.last() {
            out.push_str(&format!("{k} = {last}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_names() {
        for (name, d) in [
            ("/usr/bin/pykms_Server.py", Dialect::PykmsServer),
            ("py-kms-server", Dialect::PykmsServer),
            ("./pykms_Client.py", Dialect::PykmsClient),
            ("py-kms-client", Dialect::PykmsClient),
            ("/usr/sbin/vlmcsd", Dialect::Vlmcsd),
            ("vlmcs.exe", Dialect::Vlmcs),
        ] {
            assert_eq!(Dialect::from_program(OsStr::new(name)), Some(d), "{name}");
        }
        assert_eq!(Dialect::from_program(OsStr::new("/usr/bin/rkms")), None);
        assert_eq!(Dialect::from_program(OsStr::new("vlmcsdmulti")), None);
    }

    #[test]
    fn intervals() {
        assert_eq!(vlmcsd_minutes("3d", "-R"), Ok(4320));
        assert_eq!(vlmcsd_minutes("1w", "-R"), Ok(10080));
        assert_eq!(vlmcsd_minutes("120", "-A"), Ok(120));
        assert_eq!(vlmcsd_minutes("2h", "-A"), Ok(120));
        assert_eq!(vlmcsd_minutes("150s", "-A"), Ok(2));
        assert!(vlmcsd_minutes("30s", "-A")
            .unwrap_err()
            .contains("at least one minute"));
        assert!(vlmcsd_minutes("3y", "-R")
            .unwrap_err()
            .starts_with("-R '3y'"));
        assert!(vlmcsd_minutes("", "-R").is_err());
    }

    /// Any mix of words gives a translation or an error, never a panic.
    #[test]
    fn arbitrary_words_never_panic() {
        // No names that would be looked up in DNS: IP literals and words with '/' only.
        const POOL: &[&str] = &[
            "-",
            "--",
            "-t0",
            "-t1",
            "-s",
            "connect",
            "-n",
            "-d",
            "-b",
            "-F",
            "STDOUT",
            "FILESTDOUT",
            "-e",
            "-L",
            "-P",
            "-N1",
            "-K9",
            "-a",
            "=",
            "/",
            "é/",
            "1,2",
            "127.0.0.1",
            "[::1]:0",
            "0",
            "99999",
            "-De",
            "-l",
            "-G",
            "-r",
            "-c",
            "-m",
            "-w",
            "-V",
            "-v",
            "-S",
            "NaN",
            "inf",
            "-1",
            "Windows=/",
            "-R",
            "3y",
            "1w",
            "-A",
            "-o",
            "-C",
            "-H",
            "-M1",
            "-E1",
            "-T0",
            "-p",
            "-u",
            "-g",
            "-k",
            "-q",
            "-y",
            "-6",
            "-T",
            "-B0",
            "-4",
            "-5",
            "-K",
            "5.0",
            "-Z",
            "--epid=",
            "-ea",
            "-é",
            "é",
            ".",
            ".a/b",
        ];
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..800 {
            let mut words = Vec::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let n = (seed % 7) as usize;
            for k in 0..n {
                let i = ((seed >> (8 * k)) as usize) % POOL.len();
                words.push(POOL[i].to_string());
            }
            let _ = pykms::server(&words);
            let _ = pykms::client(&words);
            let _ = vlmcsd::translate(&words);
            let _ = vlmcs::translate(&words);
        }
    }

    #[test]
    fn global_options_before_the_subcommand() {
        let argv = |w: &[&str]| w.iter().map(OsString::from).collect::<Vec<_>>();
        match intercept(&argv(&[
            "rkms",
            "-v",
            "--log-level",
            "warn",
            "vlmcsd",
            "-D",
            "-v",
        ])) {
            Some(Intercept::Run(t)) => assert_eq!(
                t.display(),
                "rkms -v --log-level warn serve --db none",
                "rkms' own --log-level wins over -v's"
            ),
            other => panic!("{other:?}"),
        }
        assert!(intercept(&argv(&["rkms", "serve"])).is_none());
        assert!(intercept(&argv(&["rkms", "--config", "vlmcsd", "serve"])).is_none());
        assert!(intercept(&argv(&["rkms", "products", "vlmcs"])).is_none());
    }

    #[test]
    fn argv_and_display() {
        let mut t = Translation::new("serve");
        t.global("log-level", "debug".into());
        t.add("listen", "127.0.0.1:1688".into());
        t.set("no-btfn", None);
        t.set("epid", Some("a b".into()));
        assert_eq!(
            t.display(),
            "rkms --log-level debug serve --listen 127.0.0.1:1688 --no-btfn --epid 'a b'"
        );
    }
}
