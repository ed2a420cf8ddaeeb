//! Configuration beyond the command line: a TOML file and environment variables (rkms' own
//! `RKMS_*`, handled by clap, and py-kms' container names), merged with the precedence
//! command line > environment > file > defaults.
//!
//! Every file key is a long option of `rkms serve` or a global option, spelled as on the
//! command line (`client-count = 50`; `_` works too). Values are checked by the same parsers
//! as the command line, and errors name the file, the line and the key.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, Command, CommandFactory};

use crate::cli::Cli;
pub use rkms_config::{load_file, parse_file, pykms_env, Entry, Origin};

/// The `serve` subcommand definition.
fn serve_command() -> Command {
    Cli::command()
        .find_subcommand("serve")
        .expect("serve exists")
        .clone()
}

/// Whether `key` is a global option (given before the subcommand in checks).
fn is_global(key: &str) -> bool {
    Cli::command()
        .get_arguments()
        .any(|a| a.get_long() == Some(key) && a.is_global_set())
}

fn is_flag(cmd: &Command, key: &str) -> bool {
    cmd.get_arguments()
        .any(|a| a.get_long() == Some(key) && matches!(a.get_action(), clap::ArgAction::SetTrue))
}

/// Command-line words for an entry (`--key value …`, or `--key` for a true flag).
fn words(entry: &Entry, flag: bool) -> Result<Vec<String>, String> {
    let mut w = Vec::new();
    for v in &entry.values {
        if flag {
            match v.as_str() {
                "true" => w.push(format!("--{}", entry.key)),
                "false" => {}
                other => {
                    return Err(format!(
                        "{}: {}: expected true or false, found '{other}'",
                        entry.origin, entry.written
                    ))
                }
            }
        } else {
            w.push(format!("--{}", entry.key));
            w.push(v.clone());
        }
    }
    Ok(w)
}

/// The command-line words a lower-precedence source adds, and where every key came from.
pub type Merged = (Vec<OsString>, Vec<(String, Origin)>);

/// Checks each entry against the options of `rkms serve` and returns the command-line words
/// to append for those not already set at a higher precedence, with the origin of each key.
pub fn merge(matches: &ArgMatches, layers: &[Vec<Entry>]) -> Result<Merged, String> {
    let serve = serve_command();
    let serve_matches = matches.subcommand_matches("serve");
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let mut origins = Vec::new();
    // What the command line and RKMS_* variables set wins.
    let cli = Cli::command();
    let globals = cli.get_arguments().map(|a| (a, Some(matches)));
    let locals = serve
        .get_arguments()
        .filter(|a| !a.is_global_set())
        .map(|a| (a, serve_matches));
    for (arg, m) in globals.chain(locals) {
        let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else {
            continue;
        };
        let source = m.and_then(|m| m.try_contains_id(id).ok().and_then(|_| m.value_source(id)));
        match source {
            Some(ValueSource::CommandLine) => {
                taken.insert(long.to_string());
                origins.push((long.to_string(), Origin::CommandLine));
            }
            Some(ValueSource::EnvVariable) => {
                taken.insert(long.to_string());
                let var = arg
                    .get_env()
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_default();
                origins.push((long.to_string(), Origin::Env(var)));
            }
            _ => {}
        }
    }
    let mut extra: Vec<OsString> = Vec::new();
    for layer in layers {
        for entry in layer {
            let known = serve
                .get_arguments()
                .any(|a| a.get_long() == Some(entry.key.as_str()))
                || is_global(&entry.key);
            if !known || ["help", "version", "config"].contains(&entry.key.as_str()) {
                return Err(format!(
                    "{}: unknown key '{}' (see `rkms config example`)",
                    entry.origin, entry.written
                ));
            }
            let flag = is_flag(&serve, &entry.key) || is_flag(&Cli::command(), &entry.key);
            let w = words(entry, flag)?;
            // Check the value with the command line's own parser, for a precise message.
            let mut probe: Vec<String> = vec!["rkms".into()];
            if is_global(&entry.key) {
                probe.extend(w.iter().cloned());
                probe.push("serve".into());
            } else {
                probe.push("serve".into());
                probe.extend(w.iter().cloned());
            }
            if let Err(e) = Cli::command().try_get_matches_from(&probe) {
                let msg = e.to_string();
                let first = msg
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("error: ");
                return Err(format!("{}: {}: {first}", entry.origin, entry.written));
            }
            if taken.insert(entry.key.clone()) {
                origins.push((entry.key.clone(), entry.origin.clone()));
                extra.extend(w.into_iter().map(OsString::from));
            }
        }
    }
    Ok((extra, origins))
}

/// The configuration file to read: `--config`, else the default path if it exists.
pub fn config_path(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => Some(crate::platform::default_config_path()).filter(|p| p.exists()),
    }
}

/// A commented example file covering every option of `rkms serve`.
pub fn example() -> String {
    let mut out = String::from(
        "# rkms configuration (TOML). Every key is a long option of `rkms serve`; the command line\n\
         # and RKMS_* environment variables override this file. Uncomment to change a default.\n\n",
    );
    let cli = Cli::command();
    let serve = serve_command();
    let globals = cli.get_arguments().filter(|a| a.is_global_set());
    for arg in globals.chain(serve.get_arguments()) {
        let Some(long) = arg.get_long() else { continue };
        // Options of a feature left out of this build would be refused.
        if ["help", "version", "config", "verbose"].contains(&long)
            || !crate::features::option_built(long)
        {
            continue;
        }
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        for line in textwrap(&help, 96) {
            out.push_str(&format!("# {line}\n"));
        }
        let flag = matches!(arg.get_action(), clap::ArgAction::SetTrue);
        let multi = matches!(arg.get_action(), clap::ArgAction::Append);
        let default: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let value = if flag {
            "false".to_string()
        } else if let Some(d) = default.first() {
            if d.parse::<i64>().is_ok() {
                d.clone()
            } else {
                format!("{d:?}")
            }
        } else if multi {
            "[]".into()
        } else if long == "products" {
            // The file must exist: shown as an example, not as a line to uncomment.
            out.push_str("# Not set by default (the built-in catalog). For example:\n");
            out.push_str("#   products = \"/etc/rkms/products.toml\"\n\n");
            continue;
        } else {
            let example = example_value(long).unwrap_or("\"\"");
            out.push_str("# Not set by default. For example:\n");
            example.to_string()
        };
        out.push_str(&format!("#{long} = {value}\n\n"));
    }
    out
}

/// A valid value for an option without a default, shown commented out in the example.
fn example_value(long: &str) -> Option<&'static str> {
    Some(match long {
        "log-level" => "\"info\"",
        "log-file" => "\"/var/log/rkms/rkms.log\"",
        "lcid" => "1033",
        "host-build" => "26100",
        "client-count" => "50",
        // A store this build has.
        "db" if cfg!(feature = "sqlite") => "\"/var/lib/rkms/clients.db\"",
        "db" if cfg!(feature = "postgres") => "\"postgres://rkms@db.example/rkms\"",
        "db" => "\"none\"",
        // Its default depends on the build (see its help): shown as an example.
        "db-cache" => "16384",
        "rate-limit" => "60",
        "threads" => "2",
        "web-token" => "\"replace-with-a-long-random-token\"",
        "pidfile" => "\"/run/rkms/rkms.pid\"",
        "user" => "\"rkms\"",
        "group" => "\"rkms\"",
        "dns-publish-name" => "\"kms.example.com\"",
        "dns-update-server" => "\"192.0.2.53\"",
        "dns-tsig-key" => "\"/etc/rkms/dns-update.key\"",
        _ => return None,
    })
}

fn textwrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Parses the command line and, for `serve` and `config check`, merges the configuration file
/// and py-kms' variables under it. Returns the effective command line, what the lower layers
/// added (with origins) and the configuration file read.
pub fn parse_with_config(argv: &[OsString]) -> Result<(Cli, Merged, Option<PathBuf>), String> {
    use crate::cli::{Command as Cmd, ConfigCommand};
    use clap::FromArgMatches;
    let matches = Cli::command()
        .try_get_matches_from(argv)
        .map_err(|e| e.to_string())?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    let serve = matches!(cli.command, Cmd::Serve(_));
    let check = matches!(
        cli.command,
        Cmd::Config {
            command: ConfigCommand::Check
        }
    );
    let path = config_path(cli.config.as_deref());
    if !serve && !check {
        return Ok((cli, (Vec::new(), Vec::new()), path));
    }
    let mut layers = vec![pykms_env(&|k| std::env::var(k).ok())];
    if let Some(p) = &path {
        layers.push(load_file(p)?);
    }
    let probe = if serve {
        matches
    } else {
        Cli::command().get_matches_from(["rkms", "serve"])
    };
    let merged = merge(&probe, &layers)?;
    crate::features::check_options(&merged.1)?;
    if !serve || merged.0.is_empty() {
        return Ok((cli, merged, path));
    }
    let mut full = argv.to_vec();
    full.extend(merged.0.iter().cloned());
    let cli = Cli::command()
        .try_get_matches_from(&full)
        .and_then(|m| Cli::from_arg_matches(&m))
        .map_err(|e| format!("configuration: {e}"))?;
    Ok((cli, merged, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_checks_keys_and_values_and_keeps_precedence() {
        let m = Cli::command()
            .try_get_matches_from(["rkms", "serve", "--lcid", "1031"])
            .unwrap();
        let file = |k: &str, v: &str, line| Entry {
            key: k.into(),
            written: k.into(),
            values: vec![v.into()],
            origin: Origin::File {
                path: "c.toml".into(),
                line,
            },
        };
        let (extra, origins) = merge(
            &m,
            &[vec![
                file("lcid", "1033", 1),
                file("client-count", "40", 2),
                file("no-btfn", "true", 3),
            ]],
        )
        .unwrap();
        assert_eq!(extra, vec!["--client-count", "40", "--no-btfn"]);
        assert!(origins.contains(&("lcid".into(), Origin::CommandLine)));
        let err = merge(&m, &[vec![file("client-cuont", "4", 7)]]).unwrap_err();
        assert_eq!(
            err,
            "c.toml:7: unknown key 'client-cuont' (see `rkms config example`)"
        );
        let err = merge(&m, &[vec![file("renewal-interval", "5y", 9)]]).unwrap_err();
        assert!(
            err.starts_with("c.toml:9: renewal-interval: ") && err.contains("unknown unit"),
            "{err}"
        );
        let err = merge(&m, &[vec![file("no-btfn", "maybe", 4)]]).unwrap_err();
        assert!(err.contains("expected true or false"), "{err}");
        assert!(merge(&m, &[vec![file("log-level", "debug", 5)]]).is_ok());
    }

    #[test]
    fn example_covers_every_option_and_parses() {
        let ex = example();
        for arg in serve_command().get_arguments() {
            let shown = |l: &&str| *l != "help" && crate::features::option_built(l);
            if let Some(long) = arg.get_long().filter(shown) {
                assert!(ex.contains(&format!("#{long} = ")), "{long} missing");
            }
        }
        // Uncommented, the example is a valid file with the default values.
        let uncommented: String = ex
            .lines()
            .map(|l| {
                if l.starts_with('#') && l.contains(" = ") && !l.starts_with("# ") {
                    &l[1..]
                } else {
                    ""
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let entries = parse_file(&uncommented, Path::new("ex.toml")).unwrap();
        let m = Cli::command()
            .try_get_matches_from(["rkms", "serve"])
            .unwrap();
        // Every line is valid as written (none is a placeholder such as "N" or "PATH").
        let filtered = entries;
        assert!(filtered.len() > 15, "{}", filtered.len());
        merge(&m, &[filtered]).unwrap();
        // Every option without a default has an example value.
        for arg in serve_command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let plain = matches!(arg.get_action(), clap::ArgAction::Set);
            if plain && arg.get_default_values().is_empty() {
                assert!(example_value(long).is_some(), "{long} has no example value");
            }
        }
    }
}
