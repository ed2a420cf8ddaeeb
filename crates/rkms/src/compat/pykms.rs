//! py-kms' command lines: `pykms_Server.py [ip] [port] [options] [connect [options]]` and
//! `pykms_Client.py [ip] [port] [options]`, as py-kms' documentation (docs/Usage.md) gives
//! them, translated into `rkms serve` and `rkms activate`.

use std::path::{Path, PathBuf};

use super::{listen_addr, pykms_level, Outcome, Refusal, Translation};

/// The database py-kms' `-s` uses when it names no file.
pub const DEFAULT_PYKMS_DB: &str = "pykms_database.db";

/// One option of a py-kms command line.
struct Opt {
    short: &'static str,
    long: &'static str,
    /// How many values: 0 (flag), 1, `OPTIONAL` (`-s [FILE]`), `SOME` (`-F` takes 1 or 2).
    values: u8,
}

const OPTIONAL: u8 = 8;
const SOME: u8 = 9;

const SERVER_OPTS: &[Opt] = &[
    opt("-e", "--epid", 1),
    opt("-l", "--lcid", 1),
    opt("-c", "--client-count", 1),
    opt("-a", "--activation-interval", 1),
    opt("-r", "--renewal-interval", 1),
    opt("-s", "--sqlite", OPTIONAL),
    opt("-w", "--hwid", 1),
    opt("-t0", "--timeout-idle", 1),
    opt("-t1", "--timeout-sndrcv", 1),
    opt("-y", "--async-msg", 0),
    opt("-V", "--loglevel", 1),
    opt("-F", "--logfile", SOME),
    opt("-S", "--logsize", 1),
    opt("-h", "--help", 0),
    // Older py-kms releases spelled these in lower case.
    opt("-v", "--loglevel", 1),
    opt("-f", "--logfile", SOME),
];

const CONNECT_OPTS: &[Opt] = &[
    opt("-n", "--listen", 1),
    opt("-b", "--backlog", 1),
    opt("-u", "--no-reuse", 0),
    // A boolean in current py-kms, a flag in older releases.
    opt("-d", "--dual", OPTIONAL),
    opt("-h", "--help", 0),
];

const CLIENT_OPTS: &[Opt] = &[
    opt("-m", "--mode", 1),
    opt("-c", "--cmid", 1),
    opt("-n", "--name", 1),
    opt("-t0", "--timeout-idle", 1),
    opt("-t1", "--timeout-sndrcv", 1),
    opt("-y", "--async-msg", 0),
    opt("-V", "--loglevel", 1),
    opt("-F", "--logfile", SOME),
    opt("-S", "--logsize", 1),
    opt("-D", "--discovery", 1),
    opt("-h", "--help", 0),
    opt("-v", "--loglevel", 1),
    opt("-f", "--logfile", SOME),
];

const fn opt(short: &'static str, long: &'static str, values: u8) -> Opt {
    Opt {
        short,
        long,
        values,
    }
}

/// A parsed word: an option (its short name, for messages and matching) with its values, or a
/// positional argument.
#[derive(Debug, PartialEq, Eq)]
enum Word {
    Opt(&'static str, &'static str, Vec<String>),
    Pos(String),
}

/// Splits py-kms-style words (argparse conventions: `--long=value`, `-xVALUE` for one-letter
/// options, `-t0 VALUE`) against `opts`; `sections` are words that start another parser
/// (py-kms' `connect`), returned as positionals.
fn parse_words(words: &[String], opts: &[Opt], program: &str) -> Result<Vec<Word>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    let is_option = |w: &str| w.starts_with('-') && w.len() > 1 && w.parse::<f64>().is_err();
    while i < words.len() {
        let w = &words[i];
        i += 1;
        if w == "--" {
            out.extend(words[i..].iter().cloned().map(Word::Pos));
            break;
        }
        if !is_option(w) {
            out.push(Word::Pos(w.clone()));
            continue;
        }
        let (name, inline) = match w.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (w.clone(), None),
        };
        let found = opts.iter().find(|o| o.short == name || o.long == name);
        let (o, inline) = match found {
            Some(o) => (o, inline),
            None => {
                // `-eVALUE`: a one-letter option with its value attached.
                let glued = (!name.starts_with("--") && name.len() > 2)
                    .then(|| {
                        opts.iter().find(|o| {
                            o.short.len() == 2 && o.values != 0 && name.starts_with(o.short)
                        })
                    })
                    .flatten();
                match glued {
                    Some(o) => (o, Some(name[2..].to_string())),
                    None => {
                        return Err(format!(
                            "unrecognized {program} argument '{w}' (see `{program} -h`)"
                        ))
                    }
                }
            }
        };
        let mut values = Vec::new();
        if let Some(v) = inline {
            if o.values == 0 {
                return Err(format!("argument {}/{}: takes no value", o.short, o.long));
            }
            values.push(v);
        } else {
            let (min, max) = match o.values {
                OPTIONAL => (0, 1),
                SOME => (1, 2),
                n => (n as usize, n as usize),
            };
            while values.len() < max && i < words.len() && !is_option(&words[i]) {
                if o.values == OPTIONAL && words[i] == "connect" {
                    break;
                }
                values.push(words[i].clone());
                i += 1;
            }
            if values.len() < min {
                return Err(format!("argument {}/{}: expected a value", o.short, o.long));
            }
        }
        out.push(Word::Opt(o.short, o.long, values));
    }
    Ok(out)
}

fn int<T: std::str::FromStr>(v: &str, o: &str, what: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("argument {o}: '{v}' is not {what}"))
}

/// Translates `pykms_Server.py`'s command line into `rkms serve`.
pub fn server(words: &[String]) -> Result<Outcome, Refusal> {
    // Options after `connect` belong to py-kms' connection parser.
    let split = words.iter().position(|w| w == "connect");
    let (main, connect) = match split {
        Some(p) => (&words[..p], Some(&words[p + 1..])),
        None => (words, None),
    };
    let parsed = parse_words(main, SERVER_OPTS, "pykms_Server.py")?;
    let parsed_connect = match connect {
        Some(c) => parse_words(c, CONNECT_OPTS, "pykms_Server.py connect")?,
        None => Vec::new(),
    };
    let help = |w: &Word| matches!(w, Word::Opt("-h", _, _));
    if parsed.iter().any(help) || parsed_connect.iter().any(help) {
        return Ok(Outcome::Help(SERVER_HELP.into()));
    }
    let mut t = Translation::new("serve");
    let mut positional = Vec::new();
    let mut sqlite: Option<Option<String>> = None;
    let mut timeout_idle_set = false;
    for w in parsed {
        let (s, l, v) = match w {
            Word::Pos(p) => {
                positional.push(p);
                continue;
            }
            Word::Opt(s, l, v) => (s, l, v),
        };
        let o = format!("{s}/{l}");
        let first = v.first().cloned().unwrap_or_default();
        match s {
            "-e" => t.set("epid", Some(first)),
            "-l" => {
                let n: u32 = int(&first, &o, "an LCID (a decimal number)")?;
                t.set("lcid", Some(n.to_string()));
            }
            "-c" => {
                let n: u32 = int(&first, &o, "a client count (a number)")?;
                if n == 0 {
                    return Err(format!("argument {o}: the client count must be at least 1").into());
                }
                t.set("client-count", Some(n.to_string()));
            }
            "-a" => {
                let n: u32 = int(&first, &o, "a number of minutes")?;
                t.set("activation-interval", Some(n.to_string()));
            }
            "-r" => {
                let n: u32 = int(&first, &o, "a number of minutes")?;
                t.set("renewal-interval", Some(n.to_string()));
            }
            "-s" => sqlite = Some(v.first().cloned()),
            "-w" => {
                if first.eq_ignore_ascii_case("random") {
                    t.set("hwid", Some("random".into()));
                } else {
                    crate::policy::parse_hwid(&first).map_err(|e| format!("argument {o}: {e}"))?;
                    t.set("hwid", Some(first));
                }
            }
            "-t0" => {
                timeout_idle_set = true;
                if first.eq_ignore_ascii_case("none") {
                    t.set("idle-timeout", Some("86400".into()));
                    t.note(format!(
                        "py-kms option {o} None (never close idle connections): rkms closes connections idle for a day (the longest --idle-timeout)"
                    ));
                } else {
                    let n: f64 = int(&first, &o, "a number of seconds")?;
                    let secs = n.ceil();
                    if !(1.0..=86400.0).contains(&secs) {
                        return Err(format!(
                            "argument {o}: '{first}': rkms' --idle-timeout takes 1 to 86400 seconds"
                        )
                        .into());
                    }
                    t.set("idle-timeout", Some((secs as u64).to_string()));
                }
            }
            "-t1" => t.note(format!(
                "py-kms option {o} is ignored: rkms has no separate send/receive timeout; a stalled exchange is closed by the idle timeout (-t0, rkms --idle-timeout{})",
                if timeout_idle_set { "" } else { ", default 30 s" }
            )),
            "-y" => t.note(format!(
                "py-kms option {o} has no effect in rkms (its logging never blocks activations): ignored"
            )),
            "-V" | "-v" => t.global("log-level", pykms_level(&first, &format!("argument {o}"))?.into()),
            "-F" | "-f" => logfile(&mut t, &v, &o, "pykms_logserver.log")?,
            "-S" => logsize(&mut t, &first, &o)?,
            _ => {}
        }
    }
    let file_or_note = t.globals.iter().any(|(k, _)| k == "log-file")
        || t.notes.iter().any(|(_, n)| n.contains("--logfile"));
    if !file_or_note && !words.iter().any(|w| w == "STDOUT") {
        t.note(
            "py-kms writes its log to ./pykms_logserver.log unless -F says otherwise; rkms logs to standard error (give -F FILE for a file)".into(),
        );
    }
    if positional.len() > 2 {
        return Err(format!(
            "unrecognized pykms_Server.py arguments: {} (expected [ip] [port] before the options)",
            positional[2..].join(" ")
        )
        .into());
    }
    let ip = positional.first().cloned();
    let port: Option<u16> = match positional.get(1) {
        Some(p) => Some(
            p.parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("argument port: '{p}' is not a port number (1-65535)"))?,
        ),
        None => None,
    };
    // Connection options: extra addresses, backlog, reuse, dual stack.
    let mut extra = Vec::new();
    let mut backlogs = Vec::new();
    let mut dual = true;
    for w in parsed_connect {
        let (s, l, v) = match w {
            Word::Pos(p) => {
                return Err(format!("unrecognized pykms_Server.py connect argument '{p}'").into())
            }
            Word::Opt(s, l, v) => (s, l, v),
        };
        let o = format!("{s}/{l}");
        let first = v.first().cloned().unwrap_or_default();
        match s {
            "-n" => {
                let (a, p) = first
                    .rsplit_once(',')
                    .ok_or_else(|| format!("argument {o}: '{first}' is not ADDRESS,PORT"))?;
                let p: u16 = p
                    .trim()
                    .parse()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("argument {o}: port number '{p}' is invalid (1-65535)"))?;
                extra.push(listen_addr(a, p, &format!("argument {o}"))?);
            }
            "-b" => {
                let n: u32 = int(&first, &o, "a number")?;
                if !(1..=65535).contains(&n) {
                    return Err(format!("argument {o}: rkms' --backlog takes 1 to 65535").into());
                }
                backlogs.push(n);
            }
            "-u" => t.note(format!(
                "py-kms option {o}: rkms never shares a port with another process (no SO_REUSEPORT), as -u asks: nothing to change"
            )),
            "-d" => {
                dual = match first.to_ascii_lowercase().as_str() {
                    "" | "yes" | "true" | "t" | "y" | "1" => true,
                    "no" | "false" | "f" | "n" | "0" => false,
                    _ => {
                        return Err(format!(
                            "argument {o}: '{first}' is not a boolean (true/false, yes/no, 1/0)"
                        )
                        .into())
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(max) = backlogs.iter().max() {
        t.set("backlog", Some(max.to_string()));
        if backlogs.len() > 1 && backlogs.iter().any(|b| b != max) {
            t.note(format!(
                "py-kms connect -b per address: rkms uses one backlog for every address, the largest given ({max})"
            ));
        }
    }
    // The main address: py-kms' default is "::" (every address, dual stack), port 1688.
    let main_ip = ip.clone().unwrap_or_else(|| "::".into());
    let main_port = port.unwrap_or(crate::addr::DEFAULT_PORT);
    let unspecified_v6 = main_ip
        .parse::<std::net::IpAddr>()
        .is_ok_and(|a| a.is_ipv6() && a.is_unspecified());
    // `-d false` on '::' listens on every IPv6 address only, as py-kms does.
    let ipv6_only = !dual && unspecified_v6;
    if ipv6_only {
        t.set("ipv6-only", None);
    } else if !dual {
        t.note("py-kms option connect -d/--dual false: dual stack only concerns '::'; rkms listens on the addresses given".into());
    }
    if ip.is_some() || port.is_some() || !extra.is_empty() || ipv6_only {
        t.add("listen", listen_addr(&main_ip, main_port, "argument ip")?);
    }
    for a in extra {
        t.add("listen", a);
    }
    match sqlite {
        None => {
            // py-kms without -s keeps no database.
            t.set("db", Some("none".into()));
        }
        Some(file) => {
            let path = PathBuf::from(file.unwrap_or_else(|| DEFAULT_PYKMS_DB.into()));
            let db = database(&path, &mut t)?;
            t.set("db", Some(db.to_string_lossy().into_owned()));
        }
    }
    Ok(Outcome::Run(t))
}

/// `-F`: a file, or STDOUT, FILESTDOUT FILE, STDOUTOFF FILE, FILEOFF.
fn logfile(t: &mut Translation, v: &[String], o: &str, default: &str) -> Result<(), String> {
    let first = v.first().map(String::as_str).unwrap_or_default();
    let second = v.get(1).cloned();
    match first {
        "STDOUT" | "FILEOFF" if second.is_some() => {
            return Err(format!("argument {o}: too many arguments after {first}"))
        }
        "STDOUT" => {
            t.unset_global("log-file");
            t.unset_global("log-stderr");
        }
        "FILEOFF" => {
            t.unset_global("log-file");
            t.note(format!(
                "py-kms option {o} FILEOFF (no log file): rkms logs to standard error"
            ));
        }
        "FILESTDOUT" | "STDOUTOFF" => {
            let file = second.unwrap_or_else(|| default.to_string());
            t.global("log-file", file);
            if first == "FILESTDOUT" {
                // The file and standard error (rkms' log stream; py-kms writes to stdout).
                t.global("log-stderr", String::new());
            } else {
                t.unset_global("log-stderr");
            }
        }
        file => {
            if second.is_some() {
                return Err(format!("argument {o}: too many arguments"));
            }
            t.global("log-file", file.to_string());
        }
    }
    Ok(())
}

/// `-S MB`: rotation size.
fn logsize(t: &mut Translation, v: &str, o: &str) -> Result<(), String> {
    let mb: f64 = int(v, o, "a size in MB")?;
    if mb <= 0.0 {
        t.note(format!(
            "py-kms option {o} {v} (no size limit): rkms always rotates its log file, at --log-max-size (default 10 MiB)"
        ));
        return Ok(());
    }
    let bytes = (mb * 1024.0 * 1024.0).round();
    if !(1024.0..1e15).contains(&bytes) {
        return Err(format!(
            "argument {o}: '{v}' MB is out of range (at least 0.001)"
        ));
    }
    t.global("log-max-size", (bytes as u64).to_string());
    Ok(())
}

/// The rkms database for py-kms' `-s FILE`: next to it, `<stem>.rkms.db`. A py-kms database
/// found at FILE is imported into it once (when the rkms database does not exist yet). A FILE
/// that already is an rkms database is used as it is.
fn database(path: &Path, t: &mut Translation) -> Result<PathBuf, String> {
    let path = if path.is_dir() {
        path.join(DEFAULT_PYKMS_DB)
    } else {
        path.to_path_buf()
    };
    if path.exists() && !is_pykms_db(&path) {
        return Ok(path);
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pykms_database".into());
    let target = path.with_file_name(format!("{stem}.rkms.db"));
    if path.exists() && !target.exists() {
        let catalog = crate::commands::load_catalog(None)?;
        let resolve = |name: &str| {
            catalog
                .find_product(name)
                .ok()
                .map(|s| (s.app_id, s.id, s.kms_id))
        };
        let spec = target.to_string_lossy().into_owned();
        let store = rkms_store::open_store(&spec)
            .map_err(|e| format!("argument -s/--sqlite: {}: {e}", target.display()))?;
        let report = rkms_store::import_pykms(store.as_ref(), &path, &resolve).map_err(|e| {
            let _ = std::fs::remove_file(&target);
            format!(
                "argument -s/--sqlite: importing the py-kms database {}: {e}",
                path.display()
            )
        })?;
        t.info(format!(
            "imported {} of the py-kms database {} into the rkms database {} (once: the py-kms file is left unchanged; rkms uses {} from now on)",
            crate::interval::count(report.imported as u64, "client"),
            path.display(),
            target.display(),
            target.display()
        ));
        for (cmid, name) in &report.unmapped {
            t.note(format!(
                "py-kms database: client {cmid} not imported: unknown product \"{name}\""
            ));
        }
        for why in &report.invalid {
            t.note(format!("py-kms database: row not imported: {why}"));
        }
    } else if path.exists() {
        t.info(format!(
            "py-kms database {}: its clients were imported before; rkms uses {}",
            path.display(),
            target.display()
        ));
    } else {
        t.info(format!(
            "-s {}: rkms keeps its client records in {}",
            path.display(),
            target.display()
        ));
    }
    Ok(target)
}

/// Whether `path` is a SQLite file with py-kms' `clients` table (rather than rkms' schema).
fn is_pykms_db(path: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; 16];
    if std::io::Read::read_exact(&mut f, &mut head).is_err() || &head != b"SQLite format 3\0" {
        return false;
    }
    let resolve = |_: &str| None;
    rkms_store::read_pykms(path, &resolve).is_ok()
}

/// py-kms' client product names (`-m`) to catalog products (shared with `--product`).
pub use rkms_catalog::PYKMS_CLIENT_MODES as CLIENT_MODES;

/// The catalog product for py-kms' `-m MODE` (its names, else any name the catalog knows).
pub fn client_product(mode: &str) -> Result<String, String> {
    if let Some(p) = rkms_catalog::pykms_client_mode(mode) {
        return Ok(p.to_string());
    }
    let catalog = crate::commands::load_catalog(None)?;
    match catalog.find_product(mode) {
        Ok(sku) => Ok(sku.id.to_string()),
        Err(_) => Err(format!(
            "argument -m/--mode: '{mode}' is not a py-kms product; choose from {} (or any name `rkms products` lists)",
            CLIENT_MODES
                .iter()
                .map(|(m, _)| *m)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Translates `pykms_Client.py`'s command line into `rkms activate`.
pub fn client(words: &[String]) -> Result<Outcome, Refusal> {
    let parsed = parse_words(words, CLIENT_OPTS, "pykms_Client.py")?;
    if parsed.iter().any(|w| matches!(w, Word::Opt("-h", _, _))) {
        return Ok(Outcome::Help(CLIENT_HELP.into()));
    }
    let mut t = Translation::new("activate");
    let mut positional = Vec::new();
    let mut mode = "Windows8.1".to_string();
    let mut domain = None;
    let mut timeout: Option<f64> = None;
    for w in parsed {
        let (s, l, v) = match w {
            Word::Pos(p) => {
                positional.push(p);
                continue;
            }
            Word::Opt(s, l, v) => (s, l, v),
        };
        let o = format!("{s}/{l}");
        let first = v.first().cloned().unwrap_or_default();
        match s {
            "-m" => mode = first,
            "-c" => {
                let id = uuid::Uuid::parse_str(first.trim())
                    .map_err(|_| format!("argument {o}: '{first}' is not a CMID (a GUID)"))?;
                t.set("cmid", Some(id.to_string()));
            }
            "-n" => {
                if !first.is_ascii() {
                    return Err(format!("argument {o}: the machine name must be ASCII").into());
                }
                t.set("name", Some(first));
            }
            "-t0" | "-t1" if !first.eq_ignore_ascii_case("none") => {
                let n: f64 = int(&first, &o, "a number of seconds")?;
                if !(n > 0.0 && n <= 3600.0) {
                    return Err(format!("argument {o}: '{first}': 0 to 3600 seconds").into());
                }
                timeout = Some(timeout.map_or(n, |t| t.max(n)));
            }
            "-y" => t.note(format!("py-kms option {o} has no effect in rkms: ignored")),
            "-V" | "-v" => t.global(
                "log-level",
                pykms_level(&first, &format!("argument {o}"))?.into(),
            ),
            "-F" | "-f" => logfile(&mut t, &v, &o, "pykms_logclient.log")?,
            "-S" => logsize(&mut t, &first, &o)?,
            "-D" => domain = Some(first),
            _ => {}
        }
    }
    if let Some(secs) = timeout {
        t.set("timeout", Some(secs.to_string()));
    }
    t.set("product", Some(client_product(&mode)?));
    if positional.len() > 2 {
        return Err(format!(
            "unrecognized pykms_Client.py arguments: {}",
            positional[2..].join(" ")
        )
        .into());
    }
    if let Some(d) = domain {
        if !positional.is_empty() {
            return Err(Refusal::usage(
                "-D/--discovery finds the host in DNS: give no ip and port with it",
            ));
        }
        t.set("domain", Some(d));
        return Ok(Outcome::Run(t));
    }
    // py-kms' default address "::" reaches this machine; so do 0.0.0.0 and no address.
    let ip = positional.first().cloned().unwrap_or_else(|| "::".into());
    let ip = match ip.as_str() {
        "::" | "0.0.0.0" | "" => "localhost".to_string(),
        _ => ip,
    };
    let port: u16 = match positional.get(1) {
        Some(p) => p
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("argument port: '{p}' is not a port number (1-65535)"))?,
        None => crate::addr::DEFAULT_PORT,
    };
    let host = if ip.contains(':') && !ip.starts_with('[') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    };
    t.positional.push(host);
    Ok(Outcome::Run(t))
}

const SERVER_HELP: &str = "\
rkms pykms-server: py-kms' server command line, run by rkms serve.

usage: pykms_Server.py [ip] [port] [options] [connect [connect options]]

  ip                     address or host name to listen on (default :: , every address)
  port                   TCP port (default 1688)
  -e, --epid EPID        ePID for every product                 (rkms --epid)
  -l, --lcid LCID        LCID of generated ePIDs                (rkms --lcid)
  -w, --hwid HEX|RANDOM  HwId                                   (rkms --hwid)
  -c, --client-count N   client count reported                  (rkms --client-count)
  -a, --activation-interval MIN                                 (rkms --activation-interval)
  -r, --renewal-interval MIN                                    (rkms --renewal-interval)
  -s, --sqlite [FILE]    keep client records; a py-kms database is imported once into
                         FILE's neighbour <name>.rkms.db        (rkms --db)
  -t0, --timeout-idle S  close idle connections                 (rkms --idle-timeout)
  -t1, --timeout-sndrcv S  accepted, ignored (the idle timeout covers it)
  -y, --async-msg        accepted, ignored
  -V, --loglevel LEVEL   CRITICAL ERROR WARNING INFO MININFO DEBUG (rkms --log-level)
  -F, --logfile FILE|STDOUT|FILESTDOUT FILE|STDOUTOFF FILE|FILEOFF  (rkms --log-file)
  -S, --logsize MB       rotate the log file at this size       (rkms --log-max-size)
connect options:
  -n, --listen ADDR,PORT another address (repeatable)           (rkms --listen)
  -b, --backlog N        listen backlog                         (rkms --backlog)
  -u, --no-reuse         accepted (rkms never shares its port)
  -d, --dual BOOL        dual stack on ::  (false: --ipv6-only)

Older py-kms spellings -v (--loglevel) and -f (--logfile) are accepted too.
Without -s no client database is kept (rkms --db none), as py-kms does.
RKMS_COMPAT_PRINT=1 prints the rkms command line instead of running it.
";

const CLIENT_HELP: &str = "\
rkms pykms-client: py-kms' client command line, run by rkms activate.

usage: pykms_Client.py [ip] [port] [options]

  ip                     KMS host, address or name (default: this machine)
  port                   TCP port (default 1688)
  -m, --mode PRODUCT     WindowsVista Windows7 Windows8 Windows8.1 Windows10 Office2010
                         Office2013 Office2016 Office2019 (default Windows8.1), or any
                         product `rkms products` lists           (rkms --product)
  -c, --cmid GUID        client machine ID                      (rkms --cmid)
  -n, --name NAME        workstation name                       (rkms --name)
  -t0, -t1 SECONDS       connection and exchange timeout        (rkms --timeout)
  -y, --async-msg        accepted, ignored
  -V, --loglevel LEVEL   CRITICAL ERROR WARNING INFO MININFO DEBUG (rkms --log-level)
  -F, --logfile …        as pykms-server                        (rkms --log-file)
  -S, --logsize MB                                              (rkms --log-max-size)
  -D, --discovery DOMAIN find the host in DNS (_vlmcs._tcp)     (rkms --domain)

RKMS_COMPAT_PRINT=1 prints the rkms command line instead of running it.
";

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn run(t: Result<Outcome, Refusal>) -> Translation {
        match t {
            Ok(Outcome::Run(t)) => t,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_line_of_the_issue() {
        let t = run(server(&w(
            "0.0.0.0 1688 -e 03612-00206-684-137669-03-1033-17763.0000-2972018 -l 1049 -c 26 -s -v INFO",
        )));
        let d = t.display();
        assert_eq!(
            d,
            "rkms --log-level info serve --epid 03612-00206-684-137669-03-1033-17763.0000-2972018 --lcid 1049 --client-count 26 --listen 0.0.0.0:1688 --db pykms_database.rkms.db"
        );
    }

    #[test]
    fn server_options() {
        let t = run(server(&w(
            "-t0 10 -t1 5 -y -w 0x58C4F4E53AE14224 -a 60 -r 1440 -V MININFO -F FILESTDOUT /tmp/x.log -S 2 connect -n 127.0.0.2,1700 -b 12 -u",
        )));
        let d = t.display();
        assert!(d.contains("--idle-timeout 10"), "{d}");
        assert!(d.contains("--hwid 0x58C4F4E53AE14224"), "{d}");
        assert!(
            d.contains("--activation-interval 60 --renewal-interval 1440"),
            "{d}"
        );
        assert!(d.contains("--log-level info"), "{d}");
        assert!(d.contains("--log-file /tmp/x.log"), "{d}");
        assert!(d.contains("--log-max-size 2097152"), "{d}");
        assert!(
            d.contains("--listen '[::]:1688' --listen 127.0.0.2:1700"),
            "{d}"
        );
        assert!(d.contains("--backlog 12"), "{d}");
        let notes: Vec<_> = t.notes.iter().map(|(_, n)| n.as_str()).collect();
        assert!(notes
            .iter()
            .any(|n| n.contains("-t1/--timeout-sndrcv is ignored")));
        assert!(notes.iter().any(|n| n.contains("-y/--async-msg")));
        // FILESTDOUT: the file and standard error both get the log.
        assert!(d.contains("--log-file /tmp/x.log --log-stderr "), "{d}");
        assert!(!notes.iter().any(|n| n.contains("FILESTDOUT")));
        assert!(notes.iter().any(|n| n.contains("-u/--no-reuse")));
    }

    /// The connect examples of py-kms' docs/Usage.md (addresses as given: translated, not bound).
    #[test]
    fn documented_connect_examples() {
        for (line, listen, backlog) in [
            ("connect -b 12", "", Some("12")),
            (
                ":: connect -b 12 -u -d yes",
                "--listen '[::]:1688'",
                Some("12"),
            ),
            (
                "connect -n 1.1.1.1,1699 -b 10",
                "--listen '[::]:1688' --listen 1.1.1.1:1699",
                Some("10"),
            ),
            (
                ":: 1655 connect -n 2001:db8:0:200::7,1699 -d true -b 10 -n 2.2.2.2,1677 -u",
                "--listen '[::]:1655' --listen '[2001:db8:0:200::7]:1699' --listen 2.2.2.2:1677",
                Some("10"),
            ),
            (
                "connect -b 12 -u -n 1.1.1.1,1699 -b 10 -n 2.2.2.2,1677 -b 15",
                "--listen '[::]:1688' --listen 1.1.1.1:1699 --listen 2.2.2.2:1677",
                Some("15"),
            ),
            (
                "connect -b 11 -u -n ::,1699 -n 2.2.2.2,1677",
                "--listen '[::]:1699'",
                Some("11"),
            ),
            ("-V INFO", "", None),
        ] {
            let d = run(server(&w(line))).display();
            assert!(d.contains(listen), "{line}: {d}");
            match backlog {
                Some(b) => assert!(d.contains(&format!("--backlog {b}")), "{line}: {d}"),
                None => assert!(!d.contains("--backlog"), "{line}: {d}"),
            }
        }
        // `-d false` on "::": every IPv6 address, IPv6 clients only.
        for line in [
            ":: connect -b 12 -u -d false",
            "connect -d 0 -u -b 8 -n 1.1.1.1,1699",
        ] {
            let d = run(server(&w(line))).display();
            assert!(d.contains("--ipv6-only"), "{line}: {d}");
            assert!(d.contains("--listen '[::]:1688'"), "{line}: {d}");
        }
        // `-d false` elsewhere changes nothing: no IPv6-only listener.
        let d = run(server(&w("127.0.0.1 connect -d false"))).display();
        assert!(!d.contains("--ipv6-only"), "{d}");
    }

    #[test]
    fn server_errors_name_the_option() {
        for (line, needle) in [
            ("-c many", "argument -c/--client-count"),
            ("-w 1234", "argument -w/--hwid"),
            ("-V LOUD", "argument -V/--loglevel"),
            ("-q", "unrecognized pykms_Server.py argument '-q'"),
            ("1.2.3.4 99999", "argument port"),
            ("-e", "argument -e/--epid: expected a value"),
            ("connect -n 1.1.1.1", "argument -n/--listen"),
            (":: connect -d maybe", "argument -d/--dual"),
            ("-t0 0", "argument -t0/--timeout-idle"),
        ] {
            let e = server(&w(line)).unwrap_err();
            assert!(e.message.contains(needle), "{line}: {}", e.message);
        }
    }

    #[test]
    fn client_line_of_the_issue() {
        let t = run(client(&w(
            "192.168.1.2 1688 -m Windows10 -c 6e8b9c3f-5a8b-4f6e-9a53-6d1f3b1a2c4d -n PC01",
        )));
        assert_eq!(
            t.display(),
            "rkms activate --cmid 6e8b9c3f-5a8b-4f6e-9a53-6d1f3b1a2c4d --name PC01 --product 'Windows 10/11 Enterprise' -- 192.168.1.2:1688"
        );
        let t = run(client(&w("-V DEBUG -F STDOUT -D contoso.com")));
        assert!(
            t.display().contains("--domain contoso.com"),
            "{}",
            t.display()
        );
        assert!(client(&w("-m Windows95"))
            .unwrap_err()
            .message
            .contains("-m/--mode"));
    }

    #[test]
    fn every_client_mode_is_in_the_catalog() {
        let catalog = crate::commands::load_catalog(None).unwrap();
        for (m, p) in CLIENT_MODES {
            assert!(catalog.find_product(p).is_ok(), "{m}: {p}");
        }
    }
}
