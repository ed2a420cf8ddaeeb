//! Settings from outside the command line, read into entries that say where they came from:
//! the TOML configuration file (with line numbers for every key) and py-kms' container
//! environment variables. Checking the keys and values against the options of `rkms serve`,
//! and the precedence between sources, are the binary's job; this crate only reads.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::{Path, PathBuf};

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The command line.
    CommandLine,
    /// An `RKMS_*` environment variable.
    Env(String),
    /// A py-kms container variable (IP, PORT, EPID, …).
    PyKmsEnv(String),
    /// A line of the configuration file.
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
    },
    /// Built-in default.
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::CommandLine => f.write_str("command line"),
            Origin::Env(v) => write!(f, "environment {v}"),
            Origin::PyKmsEnv(v) => write!(f, "environment {v} (py-kms name)"),
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// One setting from a lower-precedence source, as command-line words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Long option name (kebab-case).
    pub key: String,
    /// The key as its source spells it (`client_count` in a file, `CLIENT_COUNT` for a py-kms
    /// variable), for messages.
    pub written: String,
    /// Values, each given as `--key value`; for flags `true`/`false`.
    pub values: Vec<String>,
    /// Where it came from.
    pub origin: Origin,
}

/// Reads a configuration file into entries, with line numbers.
pub fn load_file(path: &Path) -> Result<Vec<Entry>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("config file {}: {e}", path.display()))?;
    parse_file(&text, path)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses configuration text (see [`load_file`]).
pub fn parse_file(text: &str, path: &Path) -> Result<Vec<Entry>, String> {
    use std::collections::BTreeMap;
    use toml::Spanned;
    let table: BTreeMap<Spanned<String>, Spanned<toml::Value>> =
        toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| format!(":{}", line_of(text, s.start)))
                .unwrap_or_default();
            // The parser says only "duplicate key": name it (its span is the key as written).
            let key = e
                .span()
                .filter(|_| e.message() == "duplicate key")
                .and_then(|s| text.get(s))
                .map(|k| format!(" `{}`", k.trim()))
                .unwrap_or_default();
            format!("{}{line}: {}{key}", path.display(), e.message())
        })?;
    let mut out = Vec::new();
    for (key, value) in table {
        let line = line_of(text, key.span().start);
        let origin = Origin::File {
            path: path.to_path_buf(),
            line,
        };
        let k = key.get_ref().replace('_', "-");
        let where_ = format!("{}:{line}: {}", path.display(), key.get_ref());
        let scalar = |v: &toml::Value| -> Result<String, String> {
            match v {
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Float(f) => Ok(f.to_string()),
                toml::Value::Boolean(b) => Ok(b.to_string()),
                other => Err(format!(
                    "{where_}: expected a string, number or true/false, found {}",
                    other.type_str()
                )),
            }
        };
        let values = match value.get_ref() {
            toml::Value::Array(items) => items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?,
            v => vec![scalar(v)?],
        };
        out.push(Entry {
            key: k,
            written: key.get_ref().clone(),
            values,
            origin,
        });
    }
    Ok(out)
}

/// py-kms' container variables, as entries (IP and PORT together make one listen address).
pub fn pykms_env(get: &dyn Fn(&str) -> Option<String>) -> Vec<Entry> {
    let mut out = Vec::new();
    let ip = get("IP");
    let port = get("PORT");
    if ip.is_some() || port.is_some() {
        let ip = ip.unwrap_or_else(|| "::".into());
        let ip = if ip.contains(':') && !ip.starts_with('[') {
            format!("[{ip}]")
        } else {
            ip
        };
        let port = port.unwrap_or_else(|| "1688".into());
        let name = if get("IP").is_some() {
            "IP/PORT"
        } else {
            "PORT"
        };
        out.push(Entry {
            key: "listen".into(),
            written: name.into(),
            values: vec![format!("{ip}:{port}")],
            origin: Origin::PyKmsEnv(name.into()),
        });
    }
    for (var, key) in [
        ("EPID", "epid"),
        ("LCID", "lcid"),
        ("CLIENT_COUNT", "client-count"),
        ("ACTIVATION_INTERVAL", "activation-interval"),
        ("RENEWAL_INTERVAL", "renewal-interval"),
        ("HWID", "hwid"),
        ("LOGLEVEL", "log-level"),
    ] {
        if let Some(v) = get(var).filter(|v| !v.trim().is_empty()) {
            let v = if key == "log-level" {
                pykms_level(&v)
            } else {
                v
            };
            out.push(Entry {
                key: key.into(),
                written: var.into(),
                values: vec![v],
                origin: Origin::PyKmsEnv(var.into()),
            });
        }
    }
    // LOGFILE: a file, or STDOUT / FILEOFF (rkms then logs to standard error), or
    // FILESTDOUT / STDOUTOFF followed by a file.
    if let Some(v) = get("LOGFILE").filter(|v| !v.trim().is_empty()) {
        let mut words = v.split_whitespace();
        let first = words.next().unwrap_or_default();
        let file = match first {
            "STDOUT" | "FILEOFF" => None,
            "FILESTDOUT" | "STDOUTOFF" => {
                Some(words.next().unwrap_or("pykms_logserver.log").to_string())
            }
            _ => Some(v.trim().to_string()),
        };
        if let Some(file) = file {
            out.push(Entry {
                key: "log-file".into(),
                written: "LOGFILE".into(),
                values: vec![file],
                origin: Origin::PyKmsEnv("LOGFILE".into()),
            });
        }
    }
    // LOGSIZE: megabytes (0 or less: no limit in py-kms; rkms keeps its default rotation).
    if let Some(v) = get("LOGSIZE").filter(|v| !v.trim().is_empty()) {
        let value = match v.trim().parse::<f64>() {
            Ok(mb) if mb <= 0.0 => None,
            Ok(mb) if mb < 1e9 => Some(((mb * 1024.0 * 1024.0).round() as u64).to_string()),
            // Not a number: the option's own parser says what is wrong.
            _ => Some(v.trim().to_string()),
        };
        if let Some(value) = value {
            out.push(Entry {
                key: "log-max-size".into(),
                written: "LOGSIZE".into(),
                values: vec![value],
                origin: Origin::PyKmsEnv("LOGSIZE".into()),
            });
        }
    }
    out
}

fn pykms_level(v: &str) -> String {
    match v.to_ascii_uppercase().as_str() {
        "CRITICAL" | "ERROR" => "error",
        "WARNING" | "WARN" => "warn",
        "DEBUG" => "debug",
        _ => "info",
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_name_the_file_line_and_key() {
        let err = parse_file("listen = \"a\"\nlisten = \"b\"\n", Path::new("x.toml")).unwrap_err();
        assert_eq!(err, "x.toml:2: duplicate key `listen`");
        let err = parse_file("listen = \"a\"\nthreads = \n", Path::new("x.toml")).unwrap_err();
        assert!(err.starts_with("x.toml:2: "), "{err}");
        let err = parse_file("listen = \"open\n", Path::new("x.toml")).unwrap_err();
        assert!(
            err.starts_with("x.toml:1: ") && err.contains("string"),
            "{err}"
        );
    }

    #[test]
    fn file_entries_have_lines_and_values() {
        let text = "# comment\nclient-count = 50\nlisten = [\"127.0.0.1:1688\", \"[::1]:1688\"]\n\ncheck_client_time = true\n";
        let e = parse_file(text, Path::new("x.toml")).unwrap();
        let cc = e.iter().find(|e| e.key == "client-count").unwrap();
        assert_eq!(cc.values, vec!["50"]);
        assert_eq!(cc.written, "client-count");
        assert_eq!(
            cc.origin,
            Origin::File {
                path: "x.toml".into(),
                line: 2
            }
        );
        assert_eq!(
            e.iter().find(|e| e.key == "listen").unwrap().values.len(),
            2
        );
        assert_eq!(
            e.iter()
                .find(|e| e.key == "check-client-time")
                .unwrap()
                .values,
            vec!["true"]
        );
        let e = parse_file("check_client_time = true\n", Path::new("x.toml")).unwrap();
        assert_eq!(e[0].written, "check_client_time");
        let err = parse_file("a = 1\nb = [1, {x = 2}]\n", Path::new("y.toml")).unwrap_err();
        assert!(err.contains("y.toml:2: b"), "{err}");
        let err = parse_file("a = \n", Path::new("z.toml")).unwrap_err();
        assert!(err.starts_with("z.toml:1"), "{err}");
    }

    #[test]
    fn pykms_names() {
        let env = |k: &str| match k {
            "IP" => Some("::".to_string()),
            "PORT" => Some("1700".to_string()),
            "LOGLEVEL" => Some("WARNING".to_string()),
            "CLIENT_COUNT" => Some("26".to_string()),
            _ => None,
        };
        let e = pykms_env(&env);
        assert_eq!(e[0].values, vec!["[::]:1700"]);
        assert!(e
            .iter()
            .any(|e| e.key == "log-level" && e.values == ["warn"]));
        assert!(e
            .iter()
            .any(|e| e.key == "client-count" && e.values == ["26"]));
    }

    #[test]
    fn pykms_log_file_and_size() {
        let entries = |file: &'static str, size: &'static str| {
            pykms_env(&move |k: &str| match k {
                "LOGFILE" => Some(file.to_string()),
                "LOGSIZE" => Some(size.to_string()),
                _ => None,
            })
        };
        let e = entries("/var/log/pykms_logserver.log", "2");
        assert_eq!(e[0].key, "log-file");
        assert_eq!(e[0].values, ["/var/log/pykms_logserver.log"]);
        assert_eq!(e[1].key, "log-max-size");
        assert_eq!(e[1].values, ["2097152"]);
        assert_eq!(e[1].origin.to_string(), "environment LOGSIZE (py-kms name)");
        // STDOUT: rkms' standard error; a size of 0: rkms' default rotation.
        assert!(entries("STDOUT", "0").is_empty());
        assert_eq!(
            entries("STDOUTOFF /logs/k.log", "")[0].values,
            ["/logs/k.log"]
        );
        assert_eq!(entries("FILEOFF", "x")[0].values, ["x"]);
    }
}
