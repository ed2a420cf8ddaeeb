//! `rkms config check` and `rkms config example`.

use clap::{CommandFactory, FromArgMatches};

use super::usage;
use crate::cli::{Cli, Command};
use crate::config::{example, Origin};

/// Prints a commented example configuration.
pub fn print_example() -> u8 {
    crate::out!("{}", example());
    0
}

/// Validates the effective `serve` configuration and prints each value with its origin.
/// `extra` are the words the file and py-kms variables contribute; `origins` where keys came from.
pub fn check(
    extra: &[std::ffi::OsString],
    origins: &[(String, Origin)],
    file: Option<&std::path::Path>,
) -> u8 {
    let mut argv: Vec<std::ffi::OsString> = vec!["rkms".into(), "serve".into()];
    argv.extend(extra.iter().cloned());
    let matches = match Cli::command().try_get_matches_from(&argv) {
        Ok(m) => m,
        Err(e) => return usage(&e.to_string()),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return usage(&e.to_string()),
    };
    let Command::Serve(args) = cli.command else {
        unreachable!("parsed as serve")
    };
    if let Err(e) = super::serve::prepare(&args, cli.products.as_deref())
        .and_then(|_| args.check_platform_options())
    {
        return usage(&e);
    }
    // The database's connection string and TLS files, checked without connecting.
    if let Some(db) = &args.db {
        if let Err(e) = rkms_store::check_spec(db) {
            return usage(&format!("--db {}: {e}", rkms_store::describe_spec(db)));
        }
    }
    crate::outln!("built with features: {}", crate::features::built());
    match file {
        Some(f) => crate::outln!("configuration file: {}", f.display()),
        None => crate::outln!(
            "configuration file: none ({} does not exist)",
            crate::platform::default_config_path().display()
        ),
    }
    let rows = rows_of(&matches, origins);
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).min(60);
    for (k, v, o) in rows {
        crate::outln!("{k:w0$}  {v:w1$}  {o}");
    }
    crate::outln!("configuration is valid");
    0
}

/// Every effective `serve` setting: (key, value, where it came from), from parsed `serve`
/// arguments and the origins of the keys set by the environment, the file or py-kms names.
pub fn rows_of(
    matches: &clap::ArgMatches,
    origins: &[(String, Origin)],
) -> Vec<(String, String, String)> {
    let Some(serve) = matches.subcommand_matches("serve") else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    let cmd = Cli::command();
    let serve_cmd = cmd.find_subcommand("serve").expect("serve").clone();
    for arg in cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .chain(serve_cmd.get_arguments())
    {
        let Some(long) = arg.get_long() else { continue };
        if ["help", "version", "verbose", "config"].contains(&long) {
            continue;
        }
        let id = arg.get_id().as_str();
        let m = if serve.try_get_raw(id).is_ok() {
            serve
        } else {
            matches
        };
        let value = match m.get_raw(id) {
            Some(vals) => vals
                .map(|v| v.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(", "),
            None if matches!(arg.get_action(), clap::ArgAction::SetTrue) => "false".into(),
            None => unset_default(long, serve),
        };
        // A database URL is shown without its password.
        let value = if long == "db" && value != "(not set)" {
            rkms_store::describe_spec(&value)
        } else {
            value
        };
        let origin = origins
            .iter()
            .find(|(k, _)| k == long)
            .map(|(_, o)| o.clone())
            .unwrap_or(Origin::Default);
        let value = redact(long, value);
        rows.push((long.to_string(), value, origin.to_string()));
    }
    rows
}

/// What an option that is not set amounts to (its effective default), for those whose
/// default is computed at start rather than written in the option's definition.
fn unset_default(long: &str, serve: &clap::ArgMatches) -> String {
    match long {
        "listen" => format!(
            "{} (0.0.0.0:{} where IPv6 is unavailable)",
            crate::server::DEFAULT_LISTEN,
            crate::server::DEFAULT_LISTEN.port()
        ),
        "db" => match super::serve::default_db_dir() {
            Ok(dir) => dir.join("clients.db").display().to_string(),
            Err(e) => format!("(none: {e})"),
        },
        "log-level" => "info".into(),
        "lcid" => {
            let fixed = serve
                .get_one::<crate::policy::Randomization>("randomize")
                .is_some_and(|r| *r == crate::policy::Randomization::Fixed);
            if fixed {
                "1033".into()
            } else {
                "random from Windows' list, chosen at start".into()
            }
        }
        "host-build" => "random, 20348 or 26100, chosen at start".into(),
        "client-count" => "twice each request's need".into(),
        "rate-limit" => "no limit".into(),
        "products" => "built-in catalog".into(),
        "log-file" => "standard error".into(),
        _ => "(not set)".into(),
    }
}

/// A setting's value as it may be shown (`rkms config check`, the dashboard): a token,
/// password or secret as `(set)`, a database connection string without its password (as the
/// logs show it).
pub fn redact(key: &str, value: String) -> String {
    let key = key.to_ascii_lowercase();
    let secret = ["token", "password", "secret"]
        .iter()
        .any(|s| key.contains(s));
    if secret && !value.is_empty() && value != "(not set)" {
        "(set)".to_owned()
    } else if key == "db" {
        rkms_store::describe_spec(&value)
    } else {
        value
    }
}

/// The settings rows of a `serve` command line (with the words the configuration added).
pub fn settings(
    argv: &[std::ffi::OsString],
    origins: &[(String, Origin)],
) -> Vec<(String, String, String)> {
    match Cli::command().try_get_matches_from(argv) {
        Ok(m) => rows_of(&m, origins),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked() {
        assert_eq!(redact("web-token", "s3cret".into()), "(set)");
        assert_eq!(redact("web-token", "(not set)".into()), "(not set)");
        let db = redact("db", "postgres://rkms:pw@db:5432/rkms".into());
        if cfg!(feature = "postgres") {
            assert_eq!(db, "postgres://rkms@db:5432/rkms");
        } else {
            assert_eq!(db, "postgres://rkms:***@db:5432/rkms");
        }
        assert_eq!(
            redact("db", "/var/lib/rkms/clients.db".into()),
            "/var/lib/rkms/clients.db"
        );
        assert_eq!(redact("listen", "[::]:1688".into()), "[::]:1688");
    }
}
