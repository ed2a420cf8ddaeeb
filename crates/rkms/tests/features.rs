//! Builds without some Cargo features: the host still serves activations (memory store), and
//! every option of a part left out is refused by name — on the command line, in an `RKMS_*`
//! variable and in the configuration file — never silently ignored. Each test runs in the
//! builds that lack its feature (`cargo test --no-default-features --features sqlite`, …).

mod common;

use std::process::Command;

use common::{rkms_bin, Server};

/// Runs rkms with `args` and `env` (no configuration file but `config`); returns (exit code,
/// standard error).
#[allow(dead_code)]
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(rkms_bin())
        .args(args)
        .env_remove("RKMS_CONFIG")
        .env_remove("RKMS_DB")
        .env_remove("RKMS_WEB")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A configuration file holding `text`, in a directory of this test process.
#[allow(dead_code)]
fn config_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rkms-features-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[allow(dead_code)]
fn assert_refused(feature: &str, (code, err): (i32, String), naming: &str) {
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "this rkms was built without the `{feature}` feature"
        )),
        "{err}"
    );
    assert!(err.contains(naming), "{naming} not named in: {err}");
}

/// Whatever the features, the host answers an activation with the memory store.
#[test]
fn host_and_client_work_in_every_build() {
    let server = Server::start(&[]);
    let out = Command::new(rkms_bin())
        .args(["activate", &server.addr.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(not(feature = "web"))]
#[test]
fn web_options_are_refused_without_web() {
    // The dashboard is off by default; `--web off` is accepted.
    let server = Server::start(&["--web", "off"]);
    drop(server);
    assert_refused("web", run(&["serve", "--web", "127.0.0.1:0"], &[]), "--web");
    assert_refused(
        "web",
        run(&["serve", "--db", "none"], &[("RKMS_WEB", "127.0.0.1:0")]),
        "--web",
    );
    assert_refused(
        "web",
        run(
            &[
                "serve",
                "--db",
                "none",
                "--web-token",
                "long-enough-token-0123456789",
            ],
            &[],
        ),
        "--web-token",
    );
    assert_refused(
        "web",
        run(&["serve", "--db", "none"], &[("RKMS_WEB_PUBLIC", "true")]),
        "RKMS_WEB_PUBLIC",
    );
    let file = config_file("web.toml", "lcid = 1033\nweb-max-connections = 10\n");
    let (code, err) = run(
        &["serve", "--db", "none", "--config", file.to_str().unwrap()],
        &[],
    );
    assert_refused("web", (code, err.clone()), "web-max-connections");
    assert!(err.contains("web.toml:2"), "{err}");
    // `config check` refuses the same file.
    assert_refused(
        "web",
        run(
            &["config", "check", "--config", file.to_str().unwrap()],
            &[],
        ),
        "web-max-connections",
    );
    let file = config_file("web-addr.toml", "web = \"127.0.0.1:8080\"\n");
    let (code, err) = run(
        &["config", "check", "--config", file.to_str().unwrap()],
        &[],
    );
    assert_refused("web", (code, err.clone()), "web");
    assert!(err.contains("web-addr.toml:1"), "{err}");
}

#[cfg(not(feature = "dns"))]
#[test]
fn dns_options_are_refused_without_dns() {
    assert_refused(
        "dns",
        run(
            &["serve", "--db", "none", "--dns-publish", "example.lan"],
            &[],
        ),
        "--dns-publish",
    );
    assert_refused(
        "dns",
        run(&["serve", "--db", "none"], &[("RKMS_DNS_TTL", "60")]),
        "RKMS_DNS_TTL",
    );
    let file = config_file("dns.toml", "dns-unpublish-on-exit = true\n");
    assert_refused(
        "dns",
        run(
            &["serve", "--db", "none", "--config", file.to_str().unwrap()],
            &[],
        ),
        "dns.toml:1: dns-unpublish-on-exit",
    );
    // Discovery of KMS hosts in DNS.
    assert_refused(
        "dns",
        run(&["activate", "--domain", "example.lan"], &[]),
        "--domain",
    );
}

#[cfg(not(feature = "postgres"))]
#[test]
fn postgres_is_refused_without_postgres() {
    let (code, err) = run(
        &["serve", "--db", "postgres://rkms:s3cret@127.0.0.1:1/rkms"],
        &[],
    );
    assert_refused("postgres", (code, err.clone()), "postgres://rkms");
    assert!(
        !err.contains("s3cret"),
        "the password is never shown: {err}"
    );
    assert_eq!(code, 2, "refused before the host starts: {err}");
    assert_refused(
        "postgres",
        run(&["clients", "--db", "postgresql://db.example/rkms"], &[]),
        "postgresql://db.example/rkms",
    );
    assert_refused(
        "postgres",
        run(&["serve", "--db", "none", "--count-refresh", "60"], &[]),
        "--count-refresh",
    );
}

#[cfg(not(feature = "sqlite"))]
#[test]
fn sqlite_is_refused_without_sqlite() {
    let dir = std::env::temp_dir().join(format!("rkms-features-db-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("clients.db");
    let (code, err) = run(&["serve", "--db", db.to_str().unwrap()], &[]);
    assert_refused("sqlite", (code, err.clone()), db.to_str().unwrap());
    assert_eq!(code, 2, "refused before the host starts: {err}");
    assert_refused(
        "sqlite",
        run(&["serve", "--db", "none", "--db-cache", "1024"], &[]),
        "--db-cache",
    );
    assert!(!db.exists(), "nothing is created");
    let file = config_file("db.toml", &format!("db = \"sqlite:{}\"\n", db.display()));
    assert_refused(
        "sqlite",
        run(
            &["config", "check", "--config", file.to_str().unwrap()],
            &[],
        ),
        "SQLite",
    );
    assert_refused(
        "sqlite",
        run(&["clients", "--db", db.to_str().unwrap()], &[]),
        "SQLite",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(not(feature = "completions"))]
#[test]
fn completions_are_refused_without_completions() {
    for args in [
        &["completions", "bash"][..],
        &["completions", "man"],
        &["completions", "man", "--dir", "/nonexistent/rkms-man"],
    ] {
        let (code, err) = run(args, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_refused("completions", (code, err), "rkms completions");
    }
    assert!(!std::path::Path::new("/nonexistent/rkms-man").exists());
    // The subcommand stays in the help, which says what it would do.
    let out = Command::new(rkms_bin())
        .args(["completions", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
}
