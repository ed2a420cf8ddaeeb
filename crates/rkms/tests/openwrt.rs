//! The OpenWrt service files (contrib/openwrt): the procd init script is sourced by `/bin/sh`
//! with stand-ins for OpenWrt's UCI (`config_load`, `config_get`, …) and procd
//! (`procd_open_instance`, `procd_set_param`, …) functions and `mkdir` (done only inside the
//! test's directory), its `start_service` run, and the command line it hands procd checked:
//! against the expected options, and by running it with the built binary and activating
//! against it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// OpenWrt's UCI and procd shell functions, reduced to what an init script calls: a UCI file is
/// shell syntax (`config TYPE 'NAME'`, `option KEY 'VALUE'`, `list KEY 'VALUE'`), loaded by
/// sourcing it as /lib/functions.sh does; procd's calls (and mkdir's) are written one argument
/// per line (in hex after an `x`, so any value survives) to $PROCD_LOG.
const STUBS: &str = r#"
config() { _section="$2"; }
option() { eval "CONFIG_${_section}_$1=\$2"; }
list() {
    eval "_n=\${CONFIG_${_section}_$1_N:-0}"
    _n=$((_n + 1))
    eval "CONFIG_${_section}_$1_N=$_n; CONFIG_${_section}_$1_ITEM$_n=\$2"
}
config_load() { . "$UCI_CONFIG_DIR/$1"; }
config_get() {
    eval "_v=\${CONFIG_$2_$3-}"
    [ -n "$_v" ] || _v="${4-}"
    eval "$1=\$_v"
}
config_get_bool() {
    config_get _b "$2" "$3" "${4-0}"
    case "$_b" in
    1 | on | true | yes | enabled) _b=1 ;;
    *) _b=0 ;;
    esac
    eval "$1=\$_b"
}
config_list_foreach() {
    eval "_count=\${CONFIG_$1_$2_N:-0}"
    _i=1
    while [ "$_i" -le "$_count" ]; do
        eval "_item=\$CONFIG_$1_$2_ITEM$_i"
        "$3" "$_item"
        _i=$((_i + 1))
    done
}
procd_record() {
    for _a in "$@"; do
        printf 'x' >>"$PROCD_LOG"
        printf '%s' "$_a" | od -An -v -tx1 | tr -d ' \n' >>"$PROCD_LOG"
        echo >>"$PROCD_LOG"
    done
    echo "--" >>"$PROCD_LOG"
}
# mkdir is recorded, and done only inside the test's directory (never /etc/rkms here).
mkdir() {
    procd_record mkdir "$@"
    case "$*" in
    *"$UCI_CONFIG_DIR"*) command mkdir "$@" ;;
    esac
}
procd_open_instance() { procd_record open_instance; }
procd_close_instance() { procd_record close_instance; }
procd_set_param() { procd_record set_param "$@"; }
procd_append_param() { procd_record append_param "$@"; }
procd_add_reload_trigger() { procd_record reload_trigger "$@"; }
"#;

/// One procd call: its name and arguments.
type Call = Vec<String>;

/// What the init script did: its procd calls, from `start_service` then `service_triggers`.
struct Run {
    calls: Vec<Call>,
    /// The directory the script was run in (the UCI file, the database path's parent).
    dir: PathBuf,
}

impl Run {
    /// The instance's command: `set_param command …` then every `append_param command …`.
    fn command(&self) -> Vec<String> {
        let mut cmd = Vec::new();
        for c in &self.calls {
            match (c[0].as_str(), c.get(1).map(String::as_str)) {
                ("set_param", Some("command")) => cmd = c[2..].to_vec(),
                ("append_param", Some("command")) => cmd.extend(c[2..].iter().cloned()),
                _ => {}
            }
        }
        cmd
    }

    fn param(&self, name: &str) -> Option<Vec<String>> {
        self.calls
            .iter()
            .rev()
            .find(|c| c[0] == "set_param" && c[1] == name)
            .map(|c| c[2..].to_vec())
    }

    fn names(&self) -> Vec<&str> {
        self.calls.iter().map(|c| c[0].as_str()).collect()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sources contrib/openwrt/rkms.init with the stubs and the UCI file `uci` as /etc/config/rkms
/// (`@DIR@` in it replaced by the run's directory), then runs start_service and
/// service_triggers.
fn run_init(name: &str, uci: &str) -> Run {
    let dir = std::env::temp_dir().join(format!("rkms-openwrt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("empty.toml"), "").unwrap();
    std::fs::write(
        dir.join("rkms"),
        uci.replace("@DIR@", dir.to_str().unwrap()),
    )
    .unwrap();
    let log = dir.join("procd.log");
    let init = repo().join("contrib/openwrt/rkms.init");
    let script = format!("set -e\n{STUBS}\n. \"$INIT\"\nstart_service\nservice_triggers\n",);
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .env("INIT", &init)
        .env("UCI_CONFIG_DIR", &dir)
        .env("PROCD_LOG", &log)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the init script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let mut calls = Vec::new();
    let mut call = Vec::new();
    for line in text.lines() {
        if line == "--" {
            calls.push(std::mem::take(&mut call));
        } else {
            call.push(decode_hex(line));
        }
    }
    Run { calls, dir }
}

fn decode_hex(line: &str) -> String {
    let digits = line
        .strip_prefix('x')
        .expect("a recorded argument starts with x");
    String::from_utf8(hex::decode(digits).unwrap()).unwrap()
}

fn shipped_config() -> String {
    std::fs::read_to_string(repo().join("contrib/openwrt/rkms.config")).unwrap()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `rkms` with no inherited RKMS_* variable and an empty configuration file (not this
/// machine's /etc/rkms/rkms.toml).
fn rkms(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rkms"));
    for (k, _) in std::env::vars() {
        if k.starts_with("RKMS_") {
            c.env_remove(k);
        }
    }
    c.env("RKMS_CONFIG", dir.join("empty.toml"));
    c.env("HOME", dir);
    c.stdin(Stdio::null());
    c
}

#[test]
fn shipped_uci_config_gives_serve_with_listen_persistent_db_web_off_and_respawn() {
    let run = run_init("shipped", &shipped_config());
    assert_eq!(
        run.command(),
        strs(&[
            "/usr/bin/rkms",
            "serve",
            "--listen",
            "[::]:1688",
            "--db",
            "/etc/rkms/clients.db",
            "--web",
            "off",
            "--log-level",
            "info",
        ])
    );
    assert_eq!(
        run.names(),
        [
            "mkdir",
            "open_instance",
            "set_param",
            "append_param",
            "append_param",
            "append_param",
            "append_param",
            "set_param",
            "set_param",
            "set_param",
            "set_param",
            "close_instance",
            "reload_trigger",
        ]
    );
    // The database's directory, on the flash overlay.
    assert_eq!(run.calls[0], strs(&["mkdir", "-p", "/etc/rkms"]));
    assert_eq!(run.param("respawn"), Some(vec![]));
    assert_eq!(run.param("stdout"), Some(strs(&["1"])));
    assert_eq!(run.param("stderr"), Some(strs(&["1"])));
    assert_eq!(run.param("file"), Some(strs(&["/etc/config/rkms"])));
    assert_eq!(run.param("env"), None, "no token, no environment");
    assert_eq!(
        run.calls.last().unwrap(),
        &strs(&["reload_trigger", "rkms"])
    );
}

#[test]
fn every_uci_option_reaches_the_command_line_and_the_token_the_environment() {
    let uci = "\
config rkms 'main'
\toption enabled 'yes'
\tlist listen '127.0.0.1:1688'
\tlist listen '[::1]:1688'
\toption db '@DIR@/data/sub/clients.db'
\tlist epid '03612-00206-556-123727-03-1033-9200.0000-0452015'
\tlist epid 'windows=05426-00206-271-298329-03-1033-9600.0000-3652015'
\toption hwid '3A1C049600B60076'
\toption lcid '1031'
\toption web '127.0.0.1:8080'
\toption web_token 'secret token'
\toption log_level 'debug'
";
    let run = run_init("all", uci);
    let db = format!("{}/data/sub/clients.db", run.dir.display());
    assert_eq!(
        run.command(),
        strs(&[
            "/usr/bin/rkms",
            "serve",
            "--listen",
            "127.0.0.1:1688",
            "--listen",
            "[::1]:1688",
            "--db",
            &db,
            "--epid",
            "03612-00206-556-123727-03-1033-9200.0000-0452015",
            "--epid",
            "windows=05426-00206-271-298329-03-1033-9600.0000-3652015",
            "--hwid",
            "3A1C049600B60076",
            "--lcid",
            "1031",
            "--web",
            "127.0.0.1:8080",
            "--log-level",
            "debug",
        ])
    );
    assert_eq!(
        run.param("env"),
        Some(strs(&["RKMS_WEB_TOKEN=secret token"]))
    );
    // The database's directory is made for rkms.
    assert!(run.dir.join("data/sub").is_dir());
}

#[test]
fn disabled_service_starts_nothing() {
    let uci = shipped_config().replace("option enabled '1'", "option enabled '0'");
    assert!(uci.contains("option enabled '0'"));
    let run = run_init("disabled", &uci);
    assert_eq!(run.names(), ["reload_trigger"]);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs the command the init script built (the built binary in place of /usr/bin/rkms, with
/// the environment it set for procd), activates against each of `addrs` once it listens, and
/// returns each activation's JSON.
fn serve_and_activate(run: &Run, addrs: &[String]) -> Vec<String> {
    let cmd = run.command();
    assert_eq!(cmd[..2], ["/usr/bin/rkms", "serve"]);
    let mut serve = rkms(&run.dir);
    serve.args(&cmd[1..]);
    for kv in run.param("env").unwrap_or_default() {
        let (k, v) = kv.split_once('=').unwrap();
        serve.env(k, v);
    }
    let log = run.dir.join("serve.log");
    let mut child = serve
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut answers = Vec::new();
    for addr in addrs {
        while std::net::TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "rkms {cmd:?} exited: {status}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("rkms {cmd:?} did not listen on {addr} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = rkms(&run.dir)
            .args(["activate", addr, "--json"])
            .output()
            .unwrap();
        let json = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "activate {addr}: {json}");
        assert!(json.contains("\"verified\":true"), "{json}");
        answers.push(json);
    }
    let _ = child.kill();
    let _ = child.wait();
    answers
}

/// The shipped configuration's command, run with the built binary (on a free loopback port,
/// the database in the run's directory): it serves a verified activation and keeps its
/// database where the UCI file says.
#[cfg_attr(
    not(feature = "sqlite"),
    ignore = "keeps its records in an SQLite file: needs the `sqlite` feature"
)]
#[test]
fn shipped_config_command_serves_an_activation_with_its_database() {
    let addr = format!("127.0.0.1:{}", free_port());
    let uci = shipped_config()
        .replace("[::]:1688", &addr)
        .replace("/etc/rkms/clients.db", "@DIR@/state/clients.db");
    let run = run_init("serve", &uci);
    serve_and_activate(&run, std::slice::from_ref(&addr));
    assert!(
        run.dir.join("state/clients.db").is_file(),
        "the database is where the UCI file says"
    );
}

/// Every option set in UCI is accepted by `rkms serve` and takes effect: both listen addresses
/// answer, with the configured ePID and HwId, and the database is where `db` says; the
/// dashboard runs with the token procd's environment gives it.
#[test]
#[cfg_attr(
    not(feature = "web"),
    ignore = "the UCI web option needs a build with the web feature"
)]
fn every_uci_option_is_accepted_by_rkms_serve_and_takes_effect() {
    let (a, b) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let web = format!("127.0.0.1:{}", free_port());
    let uci = format!(
        "\
config rkms 'main'
\toption enabled 'on'
\tlist listen '{a}'
\tlist listen '{b}'
\toption db '@DIR@/db/clients.db'
\tlist epid '03612-00206-556-123727-03-1031-9200.0000-0452015'
\toption hwid '3A1C049600B60076'
\toption lcid '1031'
\toption web '{web}'
\toption web_token 'a-token'
\toption log_level 'debug'
"
    );
    let run = run_init("options", &uci);
    for json in serve_and_activate(&run, &[a, b]) {
        assert!(
            json.contains("\"epid\":\"03612-00206-556-123727-03-1031-9200.0000-0452015\""),
            "{json}"
        );
        assert!(json.contains("\"hwid\":\"3A1C049600B60076\""), "{json}");
    }
    assert!(run.dir.join("db/clients.db").is_file());
}
