//! The packaging files: systemd units (contrib/systemd), Dockerfile, compose.yaml and the Helm
//! chart (charts/rkms). Each test reads a file and asserts what running rkms relies on; the
//! image's entry point, environment and health check, and compose's variables, are run with
//! the built binary (no Docker engine is needed). `scripts/check-packaging.sh` adds the
//! external validators (systemd-analyze, hadolint, the Compose schema, helm where available).
#![cfg_attr(not(feature = "web"), allow(unused_imports, dead_code))]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The files that configure rkms through its options or `RKMS_*` variables.
const PACKAGING_FILES: &[&str] = &[
    "contrib/systemd/rkms.service",
    "contrib/systemd/rkms.socket",
    "contrib/systemd/README.md",
    "Dockerfile",
    "compose.yaml",
    "charts/rkms/values.yaml",
    "charts/rkms/README.md",
    "charts/rkms/templates/deployment.yaml",
    "charts/rkms/templates/_helpers.tpl",
    "charts/rkms/templates/NOTES.txt",
    "charts/rkms/templates/tests/test-activation.yaml",
];

/// py-kms' container variables, which rkms also reads.
const PYKMS_NAMES: &[&str] = &[
    "IP",
    "PORT",
    "EPID",
    "LCID",
    "CLIENT_COUNT",
    "ACTIVATION_INTERVAL",
    "RENEWAL_INTERVAL",
    "HWID",
    "LOGLEVEL",
];

fn rkms_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rkms")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

/// `rkms` with no inherited `RKMS_*` or py-kms variable, so only what a test sets counts.
fn rkms() -> Command {
    let mut c = Command::new(rkms_bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("RKMS_") || PYKMS_NAMES.contains(&k.as_str()) || k == "XDG_STATE_HOME" {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null());
    c
}

fn output(args: &[&str]) -> String {
    let out = rkms().args(args).output().unwrap();
    assert!(out.status.success(), "rkms {args:?} failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The long options `rkms serve` has, from its help and from `rkms config example`.
fn serve_options() -> BTreeSet<String> {
    let help = output(&["serve", "--help"]);
    let example = output(&["config", "example"]);
    let mut opts = BTreeSet::new();
    for word in help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
        if let Some(name) = word.strip_prefix("--") {
            if !name.is_empty() {
                opts.insert(name.to_string());
            }
        }
    }
    for line in example.lines() {
        let line = line.trim_start_matches('#').trim();
        if let Some((key, _)) = line.split_once(" = ") {
            if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                opts.insert(key.to_string());
            }
        }
    }
    opts
}

fn assert_option_exists(opts: &BTreeSet<String>, name: &str, used_in: &str) {
    assert!(
        opts.contains(name),
        "{used_in} uses --{name}, which `rkms serve` does not have (options: {opts:?})"
    );
}

// ---------------------------------------------------------------------------------------------
// systemd

/// A unit file as (section, key, value), in order; comments and blank lines dropped.
fn unit(rel: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut entries = Vec::new();
    for (n, line) in read(rel).lines().enumerate() {
        let s = line.trim();
        if s.is_empty() || s.starts_with('#') || s.starts_with(';') {
            continue;
        }
        if let Some(name) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        assert!(!s.ends_with('\\'), "{rel}:{}: keep lines unbroken", n + 1);
        let (k, v) = s
            .split_once('=')
            .unwrap_or_else(|| panic!("{rel}:{}: not Key=Value: {s}", n + 1));
        assert!(!section.is_empty(), "{rel}:{}: outside a section", n + 1);
        entries.push((section.clone(), k.trim().to_string(), v.trim().to_string()));
    }
    entries
}

fn unit_values<'a>(u: &'a [(String, String, String)], section: &str, key: &str) -> Vec<&'a str> {
    u.iter()
        .filter(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v.as_str())
        .collect()
}

/// The effective value of a single-valued setting (the last assignment wins).
fn unit_value<'a>(u: &'a [(String, String, String)], section: &str, key: &str) -> &'a str {
    unit_values(u, section, key)
        .last()
        .copied()
        .unwrap_or_else(|| panic!("[{section}] {key}= is missing"))
}

/// A systemd time span in seconds ("30", "30s", "1min", "2min 30s").
fn timespan_seconds(v: &str) -> u64 {
    let mut total = 0;
    for part in v.split_whitespace() {
        let digits: String = part.chars().take_while(|c| c.is_ascii_digit()).collect();
        let n: u64 = digits
            .parse()
            .unwrap_or_else(|_| panic!("bad time span {v:?}"));
        total += match &part[digits.len()..] {
            "" | "s" | "sec" => n,
            "m" | "min" => n * 60,
            "h" => n * 3600,
            other => panic!("unit {other:?} in time span {v:?}"),
        };
    }
    total
}

#[test]
fn systemd_service_is_notify_with_dynamic_user_state_directory_and_watchdog() {
    let u = unit("contrib/systemd/rkms.service");
    let s = "Service";
    assert_eq!(unit_value(&u, s, "Type"), "notify");
    assert_eq!(unit_value(&u, s, "DynamicUser"), "yes");
    assert_eq!(unit_value(&u, s, "StateDirectory"), "rkms");
    assert_eq!(unit_value(&u, s, "ConfigurationDirectory"), "rkms");
    assert_eq!(unit_value(&u, s, "Restart"), "on-failure");
    let watchdog = timespan_seconds(unit_value(&u, s, "WatchdogSec"));
    assert!((10..=120).contains(&watchdog), "WatchdogSec={watchdog}");
    assert!(unit_value(&u, s, "ExecReload").contains("-HUP $MAINPID"));
    assert_eq!(
        unit_values(&u, "Install", "WantedBy"),
        ["multi-user.target"]
    );

    // ExecStart: the installed binary, `serve`; the database is left to its default under
    // systemd, $STATE_DIRECTORY/clients.db (a --db here would also override the config file).
    let exec = unit_value(&u, s, "ExecStart");
    let argv: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(
        argv[..2],
        ["/usr/local/bin/rkms", "serve"],
        "ExecStart={exec}"
    );
    assert!(!exec.contains("--db"), "ExecStart={exec}");
    let opts = serve_options();
    for arg in &argv[2..] {
        if let Some(name) = arg.strip_prefix("--") {
            let name = name.split('=').next().unwrap();
            assert_option_exists(&opts, name, "rkms.service's ExecStart");
        }
    }
}

#[test]
fn systemd_service_is_hardened_without_capabilities() {
    let u = unit("contrib/systemd/rkms.service");
    let s = "Service";
    for (key, want) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictRealtime", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        // Port 1688 is unprivileged: no capability at all.
        ("CapabilityBoundingSet", ""),
    ] {
        assert_eq!(unit_value(&u, s, key), want, "{key}=");
    }
    assert!(unit_values(&u, s, "AmbientCapabilities")
        .iter()
        .all(|v| v.is_empty()));
    let families: BTreeSet<&str> = unit_value(&u, s, "RestrictAddressFamilies")
        .split_whitespace()
        .collect();
    assert_eq!(
        families,
        BTreeSet::from(["AF_INET", "AF_INET6", "AF_UNIX"]),
        "AF_UNIX is needed for sd_notify and the journal"
    );
    assert!(unit_values(&u, s, "SystemCallFilter").contains(&"@system-service"));
    // ProtectSystem=strict leaves only the state, logs and runtime directories writable:
    // nothing may point rkms elsewhere.
    for (_, key, _) in &u {
        assert!(
            key != "ReadWritePaths" && key != "User" && key != "Group",
            "{key}= defeats DynamicUser/ProtectSystem"
        );
    }
}

#[test]
fn systemd_socket_listens_on_1688_dual_stack_for_rkms_service() {
    let u = unit("contrib/systemd/rkms.socket");
    assert_eq!(unit_values(&u, "Socket", "ListenStream"), ["1688"]);
    assert_eq!(unit_value(&u, "Socket", "BindIPv6Only"), "both");
    // One service for every connection, the one named like the socket.
    assert!(unit_values(&u, "Socket", "Accept")
        .iter()
        .all(|v| *v == "no" || *v == "false"));
    assert!(unit_values(&u, "Socket", "Service")
        .iter()
        .all(|v| *v == "rkms.service"));
    assert_eq!(unit_values(&u, "Install", "WantedBy"), ["sockets.target"]);
    // How to add addresses is explained in the file.
    let text = read("contrib/systemd/rkms.socket");
    assert!(text.contains("# More addresses"), "{text}");
}

#[test]
fn systemd_readme_gives_the_install_steps() {
    let text = read("contrib/systemd/README.md");
    for needle in [
        "install -m 0755 target/release/rkms /usr/local/bin/rkms",
        "/etc/systemd/system/",
        "systemctl daemon-reload",
        "systemctl enable --now rkms.socket",
        "systemctl enable --now rkms.service",
        "/etc/rkms/rkms.toml",
        "rkms config example",
        "journalctl -u rkms.service",
        "rkms healthcheck",
    ] {
        assert!(
            text.contains(needle),
            "contrib/systemd/README.md lacks {needle:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Dockerfile and compose.yaml

/// Dockerfile instructions as (INSTRUCTION, arguments), continuation lines joined and comments
/// dropped.
fn dockerfile() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in read("Dockerfile").lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (ins, rest) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        out.push((ins.to_ascii_uppercase(), rest.trim().to_string()));
        current.clear();
    }
    out
}

/// The stages of the Dockerfile, each starting with its FROM.
fn stages() -> Vec<Vec<(String, String)>> {
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    for (ins, args) in dockerfile() {
        if ins == "FROM" {
            stages.push(Vec::new());
        }
        if let Some(stage) = stages.last_mut() {
            stage.push((ins, args));
        }
    }
    stages
}

fn stage_args<'a>(stage: &'a [(String, String)], ins: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter(|(i, _)| i == ins)
        .map(|(_, a)| a.as_str())
        .collect()
}

/// The exec-form (JSON array) command of an instruction's arguments.
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("not an exec-form array: {args}: {e}"))
}

/// ENV of the final stage.
fn image_env() -> Vec<(String, String)> {
    let stages = stages();
    let mut env = Vec::new();
    for args in stage_args(stages.last().unwrap(), "ENV") {
        for pair in args.split_whitespace() {
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("ENV {args}: use KEY=value"));
            env.push((k.to_string(), v.trim_matches('"').to_string()));
        }
    }
    env
}

/// The final stage's HEALTHCHECK command.
fn image_healthcheck() -> Vec<String> {
    let stages = stages();
    let hc = stage_args(stages.last().unwrap(), "HEALTHCHECK");
    assert_eq!(hc.len(), 1, "one HEALTHCHECK in the final stage");
    let cmd = hc[0]
        .split_once("CMD ")
        .expect("HEALTHCHECK ... CMD [...]")
        .1;
    exec_form(cmd)
}

#[test]
fn dockerfile_builds_a_static_binary_in_a_multi_stage_build() {
    let stages = stages();
    assert!(stages.len() >= 2, "multi-stage build");
    let build = &stages[0];
    let from = build[0].1.as_str();
    let from = from
        .strip_prefix("--platform=$BUILDPLATFORM ")
        .unwrap_or(from);
    assert!(from.starts_with("rust:"), "builder FROM {from}");
    // A static binary, built by the release archives' recipe (full build, release profile),
    // checked static before it is copied.
    let runs = stage_args(build, "RUN").join("\n");
    assert!(
        runs.contains("scripts/build-static.sh \"$target\" full release"),
        "{runs}"
    );
    assert!(runs.contains("\"statically linked\""), "{runs}");
    for (arch, target) in [
        ("amd64", "x86_64-unknown-linux-musl"),
        ("arm64", "aarch64-unknown-linux-musl"),
        ("arm", "armv7-unknown-linux-musleabihf"),
    ] {
        assert!(
            runs.contains(&format!("{arch}) target={target} ;;")),
            "TARGETARCH {arch}: {runs}"
        );
    }
    let last = stages.last().unwrap();
    let base = last[0].1.as_str();
    assert!(
        base == "scratch" || base.starts_with("gcr.io/distroless/static"),
        "final stage FROM {base}: no libc, so the binary must be static"
    );
    // The binary the final stage receives is the one ENTRYPOINT runs.
    let entry = exec_form(stage_args(last, "ENTRYPOINT")[0]);
    assert_eq!(entry, ["/rkms"]);
    assert!(stage_args(last, "COPY")
        .iter()
        .any(|a| a.starts_with("--from=") && a.ends_with(" /rkms")));
    assert_eq!(exec_form(stage_args(last, "CMD")[0]), ["serve"]);
}

#[test]
fn dockerfile_runs_unprivileged_with_a_data_volume_port_and_healthcheck() {
    let stages = stages();
    let last = stages.last().unwrap();
    let user = stage_args(last, "USER");
    assert_eq!(user.len(), 1, "one USER in the final stage");
    // Numeric: a scratch image has no /etc/passwd to look names up in.
    let uid: u32 = user[0]
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("numeric USER");
    assert_ne!(uid, 0, "USER must not be root");
    let gid = user[0].split(':').nth(1).map(|g| g.parse::<u32>().unwrap());
    assert_ne!(gid, Some(0));

    // A new named volume copies /data from the image: it must belong to that user.
    assert!(
        stage_args(last, "COPY")
            .iter()
            .any(|a| a.contains(&format!("--chown={}", user[0])) && a.ends_with(" /data")),
        "/data must belong to USER {}",
        user[0]
    );

    let volumes = stage_args(last, "VOLUME").join(" ");
    assert!(volumes.contains("\"/data\"") || volumes.split_whitespace().any(|v| v == "/data"));
    let exposed: Vec<&str> = stage_args(last, "EXPOSE")
        .iter()
        .flat_map(|a| a.split_whitespace())
        .collect();
    assert!(
        exposed.contains(&"1688/tcp") || exposed.contains(&"1688"),
        "{exposed:?}"
    );
    assert!(
        exposed.contains(&"8080/tcp") || exposed.contains(&"8080"),
        "{exposed:?}"
    );

    let hc = image_healthcheck();
    assert_eq!(hc[..2], ["/rkms", "healthcheck"], "HEALTHCHECK {hc:?}");

    let env = image_env();
    let db = env
        .iter()
        .find(|(k, _)| k == "RKMS_DB")
        .expect("ENV RKMS_DB");
    assert!(db.1.starts_with("/data/"), "RKMS_DB={}", db.1);
}

#[test]
fn dockerignore_keeps_build_output_and_history_out_of_the_context() {
    let text = read(".dockerignore");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for needle in [".git", "**/target", "fuzz"] {
        assert!(lines.contains(&needle), ".dockerignore lacks {needle}");
    }
    // What the build needs stays in: the sources and the build recipe.
    assert!(
        lines.contains(&"!scripts/build-static.sh"),
        ".dockerignore must let scripts/build-static.sh in"
    );
    // And every script it sources.
    for line in read("scripts/build-static.sh").lines() {
        if let Some(sourced) = line.trim().strip_prefix(". scripts/") {
            let needle = format!("!scripts/{sourced}");
            assert!(
                lines.contains(&needle.as_str()),
                ".dockerignore must let scripts/{sourced} in (build-static.sh sources it)"
            );
        }
    }
    for needed in ["crates", "Cargo.toml", "Cargo.lock"] {
        assert!(
            !lines.iter().any(|l| l.trim_end_matches('/') == needed),
            ".dockerignore excludes {needed}"
        );
    }
}

/// Free a loopback port for a child to bind.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The container, without the container: `ENTRYPOINT CMD` with the image's ENV (the database
/// moved from /data to a temporary directory, the ports to free loopback ones), then the
/// HEALTHCHECK command against it.
#[cfg(feature = "web")]
#[test]
fn image_entrypoint_env_and_healthcheck_work_with_the_built_binary() {
    let data = std::env::temp_dir().join(format!("rkms-packaging-{}", std::process::id()));
    std::fs::create_dir_all(&data).unwrap();
    let mut cmd = rkms();
    for (k, v) in image_env() {
        let v = match k.as_str() {
            "RKMS_DB" => v.replacen("/data", data.to_str().unwrap(), 1),
            "RKMS_WEB" => format!("127.0.0.1:{}", free_port()),
            "RKMS_LISTEN" => "127.0.0.1:0".to_string(),
            _ => v,
        };
        cmd.env(k, v);
    }
    cmd.env("RKMS_LISTEN", "127.0.0.1:0");
    let stages = stages();
    let last = stages.last().unwrap();
    cmd.args(exec_form(stage_args(last, "CMD")[0]));
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut log = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening address=").nth(1) {
                let _ = tx.send(Ok(rest.trim().to_string()));
            }
            log.push(line);
        }
        let _ = tx.send(Err(log));
    });
    let addr = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(addr)) => addr,
        other => {
            let _ = child.kill();
            panic!("the image's command did not start listening: {other:?}");
        }
    };

    let hc = image_healthcheck();
    let status = rkms()
        .args(&hc[1..])
        .arg(&addr)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let db_exists = Path::new(&data).join("clients.db").exists();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&data);
    assert!(
        status.success(),
        "HEALTHCHECK {hc:?} {addr} failed: {status}"
    );
    assert!(db_exists, "RKMS_DB under the volume was not created");
}

/// The `environment:` entries of compose.yaml, the commented examples included.
fn compose_environment() -> Vec<(String, String)> {
    let text = read("compose.yaml");
    let mut env = Vec::new();
    let mut indent = None;
    for line in text.lines() {
        let body = line.trim_start();
        let depth = line.len() - body.len();
        if body.starts_with("environment:") {
            indent = Some(depth);
            continue;
        }
        let Some(block) = indent else { continue };
        if body.is_empty() {
            continue;
        }
        if depth <= block {
            indent = None;
            continue;
        }
        let entry = body.trim_start_matches('#').trim();
        if let Some((k, v)) = entry.split_once(": ") {
            if !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                let v = v.split(" #").next().unwrap().trim().trim_matches('"');
                env.push((k.to_string(), v.to_string()));
            }
        }
    }
    env
}

#[test]
fn compose_builds_the_dockerfile_publishes_1688_and_keeps_data() {
    let text = read("compose.yaml");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for needle in [
        "context: .",
        "dockerfile: Dockerfile",
        "- \"1688:1688\"",
        "- \"127.0.0.1:8080:8080\"",
        "- rkms-data:/data",
        "restart: unless-stopped",
        "rkms-data:",
    ] {
        assert!(lines.contains(&needle), "compose.yaml lacks {needle:?}");
    }
    let env = compose_environment();
    for name in PYKMS_NAMES {
        assert!(
            env.iter().any(|(k, _)| k == name),
            "compose.yaml should show py-kms' {name}"
        );
    }
}

/// Every value compose.yaml shows (set or commented) is accepted by rkms: the RKMS_* ones
/// together, then py-kms' names together.
#[cfg(feature = "web")]
#[test]
fn compose_environment_examples_pass_config_check() {
    let env = compose_environment();
    let (pykms, ours): (Vec<_>, Vec<_>) = env
        .into_iter()
        .partition(|(k, _)| PYKMS_NAMES.contains(&k.as_str()));
    assert!(ours.iter().all(|(k, _)| k.starts_with("RKMS_")), "{ours:?}");
    for set in [ours, pykms] {
        let out = rkms()
            .args(["config", "check"])
            .envs(set.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "config check with {set:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Every RKMS_* variable names an option.

#[test]
fn every_rkms_variable_in_the_packaging_names_an_option() {
    let opts = serve_options();
    let mut seen = BTreeSet::new();
    for rel in PACKAGING_FILES {
        let text = read(rel);
        let mut rest = text.as_str();
        while let Some(i) = rest.find("RKMS_") {
            let tail = &rest[i + 5..];
            let n = tail
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            let var = tail[..n].trim_end_matches('_');
            rest = &tail[n..];
            if var.is_empty() {
                continue; // RKMS_* or RKMS_<OPTION> in prose
            }
            let option = var.to_ascii_lowercase().replace('_', "-");
            assert_option_exists(&opts, &option, &format!("{rel} (RKMS_{var})"));
            seen.insert(option);
        }
    }
    for must in ["db", "web"] {
        assert!(seen.contains(must), "RKMS_{must} is used nowhere: {seen:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Helm chart

fn chart(rel: &str) -> String {
    read(&format!("charts/rkms/{rel}"))
}

/// The key paths of a block-style YAML file ("a", "a.b", ...), from indentation: enough for
/// the chart's own values.yaml, whose maps are all in block style.
fn yaml_paths(text: &str) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut scalar_block: Option<usize> = None;
    for line in text.lines() {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        if let Some(depth) = scalar_block {
            if indent > depth {
                continue;
            }
            scalar_block = None;
        }
        if body.starts_with("- ") || body == "-" {
            continue;
        }
        let Some((key, value)) = body.split_once(':') else {
            continue;
        };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        while stack.last().is_some_and(|(d, _)| *d >= indent) {
            stack.pop();
        }
        stack.push((indent, key.to_string()));
        paths.insert(
            stack
                .iter()
                .map(|(_, k)| k.as_str())
                .collect::<Vec<_>>()
                .join("."),
        );
        let value = value.split(" #").next().unwrap().trim();
        if value.starts_with('|') || value.starts_with('>') {
            scalar_block = Some(indent);
        }
    }
    paths
}

fn template_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![repo().join("charts/rkms/templates")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// The `{{ ... }}` actions of a template, trimmed, with their line numbers.
fn actions(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(i) = rest.find("{{") {
        let j = rest[i..]
            .find("}}")
            .unwrap_or_else(|| panic!("unclosed {{{{ at byte {}", offset + i));
        let body = rest[i + 2..i + j]
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        let line = text[..offset + i].matches('\n').count() + 1;
        out.push((line, body.to_string()));
        offset += i + j + 2;
        rest = &rest[i + j + 2..];
    }
    out
}

#[test]
fn helm_templates_are_balanced_and_reference_only_defined_names_and_values() {
    let values = yaml_paths(&chart("values.yaml"));
    let files = template_files();
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|p| {
            (
                p.strip_prefix(repo()).unwrap().display().to_string(),
                std::fs::read_to_string(p).unwrap(),
            )
        })
        .collect();
    let mut defined = BTreeSet::new();
    for (_, t) in &texts {
        for (_, a) in actions(t) {
            if let Some(name) = a.strip_prefix("define ") {
                defined.insert(name.trim().trim_matches('"').to_string());
            }
        }
    }
    for (rel, t) in &texts {
        let mut open: Vec<(usize, String)> = Vec::new();
        for (line, a) in actions(t) {
            if a.starts_with("/*") {
                continue;
            }
            let word = a.split_whitespace().next().unwrap_or("");
            match word {
                "if" | "range" | "with" | "define" | "block" => open.push((line, word.to_string())),
                "end" => {
                    assert!(open.pop().is_some(), "{rel}:{line}: end without a block");
                }
                "else" => assert!(!open.is_empty(), "{rel}:{line}: else outside a block"),
                _ => {}
            }
            for kw in ["include \"", "template \""] {
                let mut rest = a.as_str();
                while let Some(i) = rest.find(kw) {
                    let name = rest[i + kw.len()..].split('"').next().unwrap();
                    assert!(
                        defined.contains(name),
                        "{rel}:{line}: {name:?} is not defined"
                    );
                    rest = &rest[i + kw.len()..];
                }
            }
            let mut rest = a.as_str();
            while let Some(i) = rest.find(".Values.") {
                let tail = &rest[i + 8..];
                let n = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                    .unwrap_or(tail.len());
                let path = tail[..n].trim_end_matches('.');
                assert!(
                    values.contains(path),
                    "{rel}:{line}: .Values.{path} is not in values.yaml"
                );
                rest = &tail[n..];
            }
        }
        assert!(open.is_empty(), "{rel}: unclosed blocks {open:?}");
    }
}

#[test]
fn helm_chart_service_keeps_client_addresses() {
    let meta = chart("Chart.yaml");
    assert!(meta.lines().any(|l| l == "apiVersion: v2"), "{meta}");
    assert!(meta.lines().any(|l| l == "name: rkms"), "{meta}");

    let values = chart("values.yaml");
    let lines: Vec<&str> = values.lines().map(str::trim).collect();
    assert!(lines.contains(&"type: LoadBalancer"));
    assert!(lines.contains(&"externalTrafficPolicy: Local"));
    assert!(lines.contains(&"port: 1688"));

    let svc = chart("templates/service.yaml");
    assert!(svc.contains("externalTrafficPolicy: {{ .Values.service.externalTrafficPolicy }}"));
    // Only NodePort and LoadBalancer services may set it.
    assert!(svc.contains(
        r#"{{- if or (eq .Values.service.type "LoadBalancer") (eq .Values.service.type "NodePort") }}"#
    ));
    assert!(svc.contains("targetPort: kms"));
    let web = chart("templates/service-web.yaml");
    assert!(web.contains("targetPort: web"));
    assert!(values.contains("  service:\n    type: ClusterIP\n    port: 8080"));
}

#[test]
fn helm_chart_probes_both_ports() {
    let dep = chart("templates/deployment.yaml");
    let helpers = chart("templates/_helpers.tpl");
    for probe in ["startupProbe:", "livenessProbe:", "readinessProbe:"] {
        assert!(dep.contains(probe), "deployment lacks {probe}");
    }
    // Web port: HTTP /livez and /readyz.
    assert!(dep.contains("path: /livez\n              port: web"));
    assert!(dep.contains("path: /readyz\n              port: web"));
    // KMS port: `rkms healthcheck`, the image's own binary, as in the Dockerfile.
    assert!(dep.contains("include \"rkms.kmsProbe\""));
    let hc = image_healthcheck();
    assert!(
        helpers.contains(&format!(
            "exec:\n  command:\n    - {}\n    - healthcheck\n    - 127.0.0.1:1688",
            hc[0]
        )),
        "{helpers}"
    );
    assert!(dep.contains("containerPort: 1688"));
    assert!(dep.contains("- name: web"));
}

#[test]
fn helm_chart_persists_data_and_runs_locked_down() {
    let pvc = chart("templates/pvc.yaml");
    assert!(pvc.contains("kind: PersistentVolumeClaim"));
    let dep = chart("templates/deployment.yaml");
    assert!(dep.contains("mountPath: /data"));
    assert!(dep.contains("persistentVolumeClaim:"));
    assert!(dep.contains("value: {{ if .Values.persistence.enabled }}/data/clients.db"));
    // One writer for the SQLite file: replace, never overlap.
    assert!(dep.contains("type: Recreate"));
    assert!(dep.contains("fail \"replicaCount must be 1"));
    // Services named rkms-... would otherwise inject RKMS_*_PORT variables.
    assert!(dep.contains("enableServiceLinks: false"));
    assert!(dep.contains("automountServiceAccountToken: false"));
    assert!(dep.contains("resources:"));

    let values = chart("values.yaml");
    let lines: Vec<&str> = values.lines().map(str::trim).collect();
    for needle in [
        "replicaCount: 1",
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        "- ALL",
        "size: 1Gi",
    ] {
        assert!(lines.contains(&needle), "values.yaml lacks {needle:?}");
    }
    let uid = image_env_user();
    assert!(lines.contains(&format!("runAsUser: {uid}").as_str()));
    assert!(
        values.contains("PostgreSQL"),
        "values.yaml explains the single replica"
    );

    for file in ["templates/NOTES.txt", "README.md", ".helmignore"] {
        assert!(!chart(file).is_empty(), "{file}");
    }
    assert!(chart("README.md").contains("PostgreSQL"));
}

/// The Dockerfile's numeric user id, which the chart's pod must run as.
fn image_env_user() -> u32 {
    let stages = stages();
    stage_args(stages.last().unwrap(), "USER")[0]
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn yaml_paths_reads_nested_block_maps() {
    let p = yaml_paths(
        "a: 1\nb:\n  c: x # note\n  d: |\n    e: not a key\n  f:\n    - g\n# h: no\ni: {}\n",
    );
    let want: BTreeSet<String> = ["a", "b", "b.c", "b.d", "b.f", "i"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(p, want);
}

#[test]
fn licence_files_match_the_declared_licence_and_no_placeholder_urls_ship() {
    let manifest = read("Cargo.toml");
    assert!(
        manifest.contains("license = \"MIT OR Apache-2.0\""),
        "the workspace declares MIT OR Apache-2.0"
    );
    let mit = read("LICENSE-MIT");
    assert!(
        mit.starts_with("MIT License"),
        "LICENSE-MIT holds the MIT licence"
    );
    assert!(mit.contains("Permission is hereby granted, free of charge"));
    let apache = read("LICENSE-APACHE");
    assert!(apache.contains("Apache License") && apache.contains("Version 2.0, January 2004"));
    assert!(
        apache.contains("END OF TERMS AND CONDITIONS"),
        "the whole Apache licence text"
    );
    for rel in PACKAGING_FILES.iter().copied().chain([
        "Cargo.toml",
        "charts/rkms/Chart.yaml",
        "crates/rkms/Cargo.toml",
    ]) {
        assert!(
            !read(rel).contains("example.invalid"),
            "{rel} names a placeholder URL"
        );
    }
}

#[cfg(feature = "completions")]
#[test]
fn manual_pages_for_every_subcommand_and_level_completions() {
    let dir = std::env::temp_dir().join(format!("rkms-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = rkms()
        .args(["completions", "man", "--dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for page in [
        "rkms.1",
        "rkms-serve.1",
        "rkms-config-check.1",
        "rkms-activate.1",
    ] {
        assert!(dir.join(page).exists(), "{page} missing");
    }
    let serve = std::fs::read_to_string(dir.join("rkms-serve.1")).unwrap();
    assert!(serve.contains("rkms\\-serve") && serve.contains("\\-\\-listen"));
    // One page on standard output, from the same definitions.
    let out = rkms()
        .args(["completions", "man", "config", "check"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH rkms-config-check 1"));
    let out = rkms()
        .args(["completions", "man", "nonesuch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
    // Level options complete their values, not file names.
    let out = rkms().args(["completions", "bash"]).output().unwrap();
    let bash = String::from_utf8_lossy(&out.stdout);
    assert!(
        bash.contains("compgen -W \"fixed start request\""),
        "randomize"
    );
    assert!(
        bash.contains("compgen -W \"any known volume known-volume\""),
        "allow"
    );
}

/// The options only a running host reads (its log file, its configuration file) show in the
/// help and manuals of `serve`, and not in those of the other subcommands, which still accept
/// them (existing command lines keep working).
#[test]
fn host_only_options_are_shown_where_a_host_runs() {
    let host_only = [
        "--log-file",
        "--log-max-size",
        "--log-keep",
        "--log-stderr",
        "--config",
    ];
    for args in [&["serve", "--help"][..], &["config", "check", "--help"]] {
        let help = output(args);
        for o in host_only {
            assert!(help.contains(o), "rkms {args:?} lacks {o}");
        }
    }
    for args in [
        &["products", "--help"][..],
        &["activate", "--help"],
        &["clients", "--help"],
        &["clients", "prune", "--help"],
        &["completions", "--help"],
    ] {
        let help = output(args);
        for o in host_only {
            assert!(!help.contains(o), "rkms {args:?} shows {o}");
        }
        // The options every subcommand reads stay.
        assert!(help.contains("--log-level"), "rkms {args:?}");
        assert!(help.contains("--products"), "rkms {args:?}");
    }
    if cfg!(feature = "completions") {
        let page = output(&["completions", "man", "products"]);
        assert!(!page.contains("log\\-file"), "{page}");
    }
    // Still accepted where hidden, before and after the subcommand.
    let log = std::env::temp_dir().join(format!("rkms-hidden-{}.log", std::process::id()));
    let log = log.to_str().unwrap();
    output(&["products", "--log-file", log, "--json"]);
    output(&["--log-file", log, "products", "--json"]);
    let _ = std::fs::remove_file(log);
}
