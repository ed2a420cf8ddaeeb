//! Configuration file and environment: precedence (command line > RKMS_* > py-kms names >
//! file > default), errors naming file, line and key, and `rkms config check / example`.

mod common;

use std::process::Command;

use common::rkms_bin;

fn temp(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rkms-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `rkms config check` output with the given file and environment.
fn check(file: &std::path::Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(rkms_bin());
    cmd.args(["config", "check", "--config", file.to_str().unwrap()]);
    for var in [
        "IP",
        "PORT",
        "EPID",
        "LCID",
        "CLIENT_COUNT",
        "ACTIVATION_INTERVAL",
        "RENEWAL_INTERVAL",
        "HWID",
        "LOGLEVEL",
        "LOGFILE",
        "LOGSIZE",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn row<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("{key} missing in\n{text}"))
}

#[test]
fn precedence_per_source() {
    let file = temp("prec.toml", "client-count = 40\nlcid = 1031\nrenewal-interval = \"3d\"\nno-btfn = true\nlisten = [\"127.0.0.1:1700\"]\n");
    let (code, out, err) = check(
        &file,
        &[
            ("RKMS_LCID", "1036"),
            ("CLIENT_COUNT", "35"),
            ("RKMS_HWID", "0102030405060708"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    // RKMS_* beats py-kms' name beats the file.
    assert!(
        row(&out, "lcid").contains("1036") && row(&out, "lcid").contains("environment RKMS_LCID"),
        "{out}"
    );
    assert!(
        row(&out, "client-count").contains("35")
            && row(&out, "client-count").contains("CLIENT_COUNT (py-kms name)")
    );
    assert!(
        row(&out, "renewal-interval").contains("3d")
            && row(&out, "renewal-interval").contains("prec.toml:3")
    );
    assert!(row(&out, "no-btfn").contains("true") && row(&out, "no-btfn").contains("prec.toml:4"));
    assert!(row(&out, "hwid").contains("0102030405060708"));
    assert!(
        row(&out, "idle-timeout").contains("30") && row(&out, "idle-timeout").ends_with("default")
    );
    assert!(out.trim_end().ends_with("configuration is valid"));
    // py-kms' IP and PORT make one listen address, above the file.
    let (_, out, _) = check(&file, &[("IP", "::1"), ("PORT", "1799")]);
    assert!(row(&out, "listen").contains("[::1]:1799"), "{out}");
}

#[test]
fn command_line_beats_everything_when_serving() {
    let file = temp("serve.toml", "client-count = 40\n");
    let server = |extra: &[&str], env: &[(&str, &str)]| {
        let mut cmd = vec!["--config", file.to_str().unwrap()];
        cmd.extend_from_slice(extra);
        common::Server::start_env(&cmd, env)
    };
    let count_seen = |s: &common::Server| -> u64 {
        let out = Command::new(rkms_bin())
            .args(["activate", &s.addr.to_string(), "--json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["current_count"].as_u64().unwrap()
    };
    assert_eq!(count_seen(&server(&[], &[])), 40, "file");
    assert_eq!(
        count_seen(&server(&[], &[("RKMS_CLIENT_COUNT", "30")])),
        30,
        "environment over file"
    );
    assert_eq!(
        count_seen(&server(
            &["--client-count", "27"],
            &[("RKMS_CLIENT_COUNT", "30")]
        )),
        27,
        "command line over environment"
    );
}

#[test]
fn errors_name_file_line_and_key() {
    let cases = [
        (
            "unknown.toml",
            "lcid = 1033\nclient-cuont = 3\n",
            "unknown.toml:2: unknown key 'client-cuont'",
        ),
        // Keys are named as the file writes them.
        (
            "underscore.toml",
            "lcid = 1033\nrkms_bar_no_such_key = 1\n",
            "underscore.toml:2: unknown key 'rkms_bar_no_such_key'",
        ),
        (
            "underscorevalue.toml",
            "renewal_interval = \"5y\"\n",
            "underscorevalue.toml:1: renewal_interval:",
        ),
        (
            "badvalue.toml",
            "\n\nrenewal-interval = \"5y\"\n",
            "badvalue.toml:3: renewal-interval:",
        ),
        (
            "badlisten.toml",
            "listen = [\"kms.lan:1688\"]\n",
            "badlisten.toml:1: listen:",
        ),
        (
            "badflag.toml",
            "no-btfn = \"yes\"\n",
            "badflag.toml:1: no-btfn: expected true or false",
        ),
        ("syntax.toml", "lcid = 1033\nhwid = \n", "syntax.toml:2"),
        (
            "semantic.toml",
            "epid = [\"Nope=1-2\"]\n",
            "unknown ePID profile",
        ),
    ];
    for (name, text, expected) in cases {
        let f = temp(name, text);
        let (code, _, err) = check(&f, &[]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(expected), "{name}: {err}");
        // `serve` refuses to start with the same message.
        let out = Command::new(rkms_bin())
            .args(["serve", "--config", f.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(expected),
            "{name}"
        );
    }
    let (code, _, err) = check(std::path::Path::new("/nonexistent/rkms.toml"), &[]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/rkms.toml"), "{err}");
}

#[test]
fn example_is_a_valid_configuration() {
    let out = Command::new(rkms_bin())
        .args(["config", "example"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("#client-count") && text.contains("#max-connections = 1024"));
    // The example as shipped (everything commented out) is valid.
    let f = temp("example.toml", &text);
    let (code, _, err) = check(&f, &[]);
    assert_eq!(code, 0, "{err}");
    // The copy shipped in contrib/ (packages install it; the fuzzer seeds from it) is current
    // (it is the default build's: a build without some features shows other defaults).
    if !cfg!(all(
        feature = "web",
        feature = "postgres",
        feature = "dns",
        feature = "sqlite"
    )) {
        return;
    }
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/rkms.toml"),
    )
    .unwrap();
    assert!(
        shipped == text,
        "contrib/rkms.toml is out of date: rkms config example > contrib/rkms.toml"
    );
}

#[cfg(feature = "postgres")]
#[test]
fn database_tls_settings_in_the_file_are_checked_and_shown_without_password() {
    // The `db` key carries libpq's TLS parameters in the URL.
    let dir = std::env::temp_dir().join(format!("rkms-config-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    // A file that is no certificate: `config check` reads it and says what is wrong.
    std::fs::write(&ca, "not a certificate\n").unwrap();
    let bad = temp(
        "tls-bad.toml",
        &format!(
            "db = \"postgres://rkms:s3cret-pw@db.example:5432/rkms?sslmode=verify-full&sslrootcert={}\"\n",
            ca.display()
        ),
    );
    let (code, out, err) = check(&bad, &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(&format!("sslrootcert {}: no PEM certificate", ca.display()))
            && err.contains("postgres://rkms@db.example:5432/rkms?sslmode=verify-full"),
        "{err}"
    );
    assert!(!err.contains("s3cret-pw") && !out.contains("s3cret-pw"));
    let bad_mode = temp(
        "tls-mode.toml",
        "db = \"postgres://rkms:s3cret-pw@db.example/rkms?sslmode=verify\"\n",
    );
    let (code, _, err) = check(&bad_mode, &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("invalid sslmode \"verify\"") && !err.contains("s3cret-pw"),
        "{err}"
    );
    // sslmode=require needs no file: valid, and shown without the password.
    let good = temp(
        "tls-good.toml",
        "db = \"postgres://rkms:s3cret-pw@db.example:5432/rkms?sslmode=require&connect_timeout=5\"\n",
    );
    let (code, out, err) = check(&good, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        row(&out, "db").contains("postgres://rkms@db.example:5432/rkms?sslmode=require"),
        "{out}"
    );
    assert!(!out.contains("s3cret-pw"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_shows_effective_defaults() {
    let file = temp("empty.toml", "");
    let state = std::env::temp_dir().join(format!("rkms-config-state-{}", std::process::id()));
    let (code, out, err) = check(
        &file,
        &[
            ("XDG_STATE_HOME", state.to_str().unwrap()),
            ("STATE_DIRECTORY", ""),
        ],
    );
    assert_eq!(code, 0, "{err}");
    for (key, value) in [
        ("listen", "[::]:1688"),
        ("db", &*state.join("rkms/clients.db").display().to_string()),
        ("log-level", "info"),
        ("lcid", "random"),
        ("client-count", "twice each request's need"),
    ] {
        let r = row(&out, key);
        assert!(r.contains(value) && r.ends_with("default"), "{r}");
        assert!(!r.contains("(not set)"), "{r}");
    }
    // With fixed ePIDs the LCID is 1033.
    let file = temp("fixed.toml", "randomize = \"fixed\"\n");
    let (_, out, _) = check(&file, &[]);
    assert!(row(&out, "lcid").contains("1033"), "{out}");
}

#[test]
fn every_example_line_is_valid_uncommented_alone() {
    let out = Command::new(rkms_bin())
        .args(["config", "example"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.len() > 1 && l.starts_with('#') && l.as_bytes()[1].is_ascii_lowercase())
        .collect();
    assert!(lines.len() > 30, "{}", lines.len());
    for line in lines {
        let key = line[1..].split(" = ").next().unwrap();
        // Options that exist on Unix only are refused elsewhere, with a message.
        if cfg!(windows) && ["user", "group", "pidfile"].contains(&key) {
            continue;
        }
        let f = temp("one-line.toml", &line[1..]);
        let (code, _, err) = check(&f, &[]);
        assert_eq!(code, 0, "{line}: {err}");
    }
}

#[test]
fn pykms_log_file_and_size_variables() {
    let file = temp("pykms-log.toml", "");
    let (code, out, err) = check(
        &file,
        &[
            ("LOGFILE", "/var/log/pykms_logserver.log"),
            ("LOGSIZE", "3"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let r = row(&out, "log-file");
    assert!(
        r.contains("/var/log/pykms_logserver.log") && r.contains("LOGFILE"),
        "{r}"
    );
    let r = row(&out, "log-max-size");
    assert!(r.contains("3145728") && r.contains("LOGSIZE"), "{r}");
    let (code, _, err) = check(&file, &[("LOGSIZE", "big")]);
    assert_eq!(code, 2);
    assert!(err.contains("LOGSIZE"), "{err}");
}
