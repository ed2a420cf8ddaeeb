//! The binary's top layer imports in one direction: the command-line definitions (`cli`) and
//! the platform code (`platform`) depend on nothing above them, so that the subcommands
//! (`commands`, `service`, `config`) can use both without a cycle. Checked on the source text.

use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if dir.is_file() {
        out.push(dir.to_path_buf());
        return out;
    }
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(sources(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

/// The `crate::MODULE` names a file refers to.
fn uses(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

fn assert_never_uses(module: &str, forbidden: &[&str]) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let path = if src.join(module).is_dir() {
        src.join(module)
    } else {
        src.join(format!("{module}.rs"))
    };
    let files = sources(&path);
    assert!(!files.is_empty(), "{module}: no source");
    for f in files {
        for u in uses(&f) {
            assert!(
                !forbidden.contains(&u.as_str()),
                "{} uses crate::{u}, a module above {module}",
                f.display()
            );
        }
    }
}

#[test]
fn platform_depends_on_nothing_above_it() {
    assert_never_uses(
        "platform",
        &[
            "cli", "config", "service", "commands", "server", "web", "compat",
        ],
    );
}

#[test]
fn cli_depends_on_nothing_above_it() {
    assert_never_uses(
        "cli",
        &["config", "service", "commands", "compat", "server"],
    );
}

#[test]
fn config_uses_platform_not_the_service() {
    assert_never_uses("config", &["service", "commands"]);
}

/// The command line is defined the same way in every build (an option of a feature left out is
/// refused when used, not left out of the definitions), so the man pages and completions one
/// build generates describe every build: the release gives the lean archives those of the full
/// build (scripts/release.sh), the lean binary having no `rkms completions`.
#[test]
fn the_command_line_does_not_depend_on_features() {
    let cli = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cli.rs");
    for f in sources(&cli) {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            !text.contains("feature ="),
            "{} depends on a Cargo feature",
            f.display()
        );
    }
}
