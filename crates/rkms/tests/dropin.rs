//! Drop-in command lines against live hosts: py-kms' and vlmcsd's server command lines run
//! (through `rkms pykms-server` / `rkms vlmcsd` and through links named like the original
//! programs) and are answered by `rkms activate`; their client command lines (`pykms_Client.py`,
//! `vlmcs`) run against `rkms serve`. Addresses of the originals' examples that would listen
//! on every interface (0.0.0.0, ::) are replaced by loopback ones, and port 1688 by a free port.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{rkms_bin, Server};

const EPID: &str = "03612-00206-684-137669-03-1049-17763.0000-2972018";
const CMID: &str = "6e8b9c3f-5a8b-4f6e-9a53-6d1f3b1a2c4d";

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rkms-dropin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A port free on 127.0.0.1 and [::1] (when IPv6 is there), below the kernel's ephemeral
/// range (32768 and up by default), so that no outgoing connection of another test takes it
/// between this check and the host's bind.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 12000 + (std::process::id() % 1000) as u16 * 20;
    for _ in 0..2000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 12000 + (start - 12000 + n) % 20000;
        let v4 = std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        if v4 && (!ipv6_loopback() || std::net::TcpListener::bind(("::1", port)).is_ok()) {
            return port;
        }
    }
    panic!("no free port");
}

fn ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

/// A link named `name` to the rkms binary in `dir` (multi-call).
#[cfg(unix)]
fn link(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    std::os::unix::fs::symlink(rkms_bin(), &p).unwrap();
    p
}

/// A command with none of the environment that would change a host's settings.
fn clean(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    for v in [
        "IP",
        "PORT",
        "EPID",
        "LCID",
        "CLIENT_COUNT",
        "HWID",
        "LOGLEVEL",
        "ACTIVATION_INTERVAL",
        "RENEWAL_INTERVAL",
        "RKMS_CONFIG",
        "RKMS_COMPAT_PRINT",
    ] {
        c.env_remove(v);
    }
    // Many hosts run at once in tests: no dashboards.
    c.env("RKMS_WEB", "off");
    c
}

/// Starts a server from a foreign command line (program and arguments).
fn start(program: impl AsRef<std::ffi::OsStr>, args: &[&str], dir: &Path) -> Server {
    let mut c = clean(program);
    c.args(args).current_dir(dir);
    Server::spawn(&mut c)
}

fn rkms_serve(args: &[&str]) -> Server {
    let mut c = clean(rkms_bin());
    c.args(["serve", "--listen", "127.0.0.1:0", "--db", "none"])
        .args(args);
    Server::spawn(&mut c)
}

/// `rkms activate --json HOST [args]`: the exit status and the response objects.
fn activate(host: &str, args: &[&str]) -> (i32, Vec<serde_json::Value>) {
    let out = clean(rkms_bin())
        .args(["activate", "--json", "--timeout", "5", host])
        .args(args)
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (out.status.code().unwrap_or(-1), lines)
}

fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
    clean(program).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `python3 pykms_Server.py 0.0.0.0 1688 -e EPID -l 1049 -c 26 -s -v INFO` (the issue's
/// example; `-v` is older py-kms' spelling of `-V`), through a link named pykms_Server.py.
#[cfg(unix)]
#[test]
fn pykms_server_line_answers_rkms_activate() {
    let dir = temp_dir("pykms-server");
    let program = link(&dir, "pykms_Server.py");
    let port = free_port().to_string();
    let server = start(
        &program,
        &[
            "127.0.0.1",
            &port,
            "-e",
            EPID,
            "-l",
            "1049",
            "-c",
            "26",
            "-s",
            "-v",
            "INFO",
        ],
        &dir,
    );
    let (code, r) = activate(
        &server.addr.to_string(),
        &["--product", "Windows 10/11 Pro"],
    );
    assert_eq!(code, 0, "{r:?}");
    assert_eq!(r[0]["epid"], EPID);
    // py-kms' -c N: below a request's need (25) reports need+1 = 26.
    assert_eq!(r[0]["current_count"], 26);
    // -s: the records are kept next to py-kms' default database name.
    server.wait_log("pykms_database.rkms.db");
    server.wait_log("pykms_Server.py command line, run as: rkms --log-level info serve");
    drop(server);
    assert!(dir.join("pykms_database.rkms.db").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// py-kms' documented forms: host name as ip, `-F FILE -V INFO -w RANDOM`, connect options.
#[test]
fn pykms_server_documented_forms() {
    let dir = temp_dir("pykms-forms");
    let port = free_port().to_string();
    let extra = free_port();
    let log = dir.join("newlogfile.log");
    // `python3 pykms_Server.py 192.168.1.102 1688 -F …/newlogfile.log -V INFO -w RANDOM`, with
    // a host name for the address (resolved, as py-kms does) and extra connect options.
    let mut c = clean(rkms_bin());
    c.args([
        "pykms-server",
        "localhost",
        &port,
        "-F",
        log.to_str().unwrap(),
        "-V",
        "INFO",
        "-w",
        "RANDOM",
        "-t0",
        "20",
        "-t1",
        "5",
        "-y",
        "connect",
        "-n",
        &format!("127.0.0.1,{extra}"),
        "-b",
        "12",
        "-u",
    ])
    .current_dir(&dir)
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut logged = String::new();
    while Instant::now() < deadline {
        logged = std::fs::read_to_string(&log).unwrap_or_default();
        if logged.matches("listening").count() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{extra}")] {
        let (code, r) = activate(&host, &[]);
        assert_eq!(code, 0, "{host}: {r:?}\n{logged}");
        assert_ne!(r[0]["hwid"], "3A1C049600B60076", "-w RANDOM");
    }
    let _ = child.kill();
    let _ = child.wait();
    let logged = std::fs::read_to_string(&log).unwrap();
    // Accepted without effect, and said once.
    assert_eq!(
        logged.matches("-t1/--timeout-sndrcv is ignored").count(),
        1,
        "{logged}"
    );
    assert_eq!(logged.matches("-y/--async-msg").count(), 1, "{logged}");
    assert!(logged.contains("-u/--no-reuse"), "{logged}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts `rkms pykms-server ARGS…` in `dir`, standard error to `dir/stderr.txt`, and waits
/// (at most 10 s) until `log` says it listens.
fn start_logged(args: &[&str], dir: &Path, log: &Path) -> std::process::Child {
    let child = clean(rkms_bin())
        .arg("pykms-server")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.txt")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && !std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains("listening")
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// `-F FILESTDOUT FILE` logs to the file and to standard error.
#[test]
fn pykms_server_filestdout_logs_to_the_file_and_standard_error() {
    let dir = temp_dir("pykms-filestdout");
    let port = free_port().to_string();
    let log = dir.join("server.log");
    let args = [
        "127.0.0.1",
        &port,
        "-F",
        "FILESTDOUT",
        log.to_str().unwrap(),
        "-V",
        "INFO",
    ];
    let mut child = start_logged(&args, &dir, &log);
    let (code, r) = activate(&format!("127.0.0.1:{port}"), &[]);
    assert_eq!(code, 0, "{r:?}");
    let _ = child.kill();
    let _ = child.wait();
    let file = std::fs::read_to_string(&log).unwrap();
    let err = std::fs::read_to_string(dir.join("stderr.txt")).unwrap();
    for (name, text) in [("file", &file), ("standard error", &err)] {
        assert!(text.contains("listening"), "{name}: {text}");
        assert!(text.contains("activated"), "{name}: {text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `connect -d false` on '::' serves IPv6 clients only; on a machine without IPv6 the host
/// says it cannot listen (rather than serving IPv4 instead).
#[test]
fn pykms_server_dual_false_on_every_address_serves_ipv6_only() {
    let dir = temp_dir("pykms-v6only");
    let port = free_port();
    let log = dir.join("server.log");
    let p = port.to_string();
    let args = [
        "::",
        &p,
        "-F",
        log.to_str().unwrap(),
        "-V",
        "INFO",
        "connect",
        "-d",
        "false",
    ];
    let mut child = start_logged(&args, &dir, &log);
    if !ipv6_loopback() {
        let status = child.wait().unwrap();
        let err = std::fs::read_to_string(dir.join("stderr.txt")).unwrap()
            + &std::fs::read_to_string(&log).unwrap_or_default();
        assert!(!status.success(), "started without IPv6: {err}");
        assert!(err.contains("cannot listen on [::]"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let (code, r) = activate(&format!("[::1]:{port}"), &[]);
    assert_eq!(code, 0, "{r:?}");
    // IPv4 clients are not accepted by the IPv6-only listener.
    let v4 = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    );
    assert!(v4.is_err(), "an IPv4 connection was accepted");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `-s FILE` naming a py-kms database: imported once into FILE's neighbour, then used.
#[test]
fn pykms_sqlite_database_is_imported_once() {
    let dir = temp_dir("pykms-db");
    let pykms = dir.join("clients.db");
    {
        let conn = rusqlite::Connection::open(&pykms).unwrap();
        conn.execute_batch(
            "CREATE TABLE clients(clientMachineId TEXT, machineName TEXT, applicationId TEXT, skuId TEXT, \
             licenseStatus TEXT, lastRequestTime INTEGER, kmsEpid TEXT, requestCount INTEGER);",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO clients VALUES ('11111111-1111-4111-8111-111111111111', 'OLDPC', 'Windows', \
             'Windows 10 Professional', 'Activated', ?1, 'x', 3)",
            rusqlite::params![rkms::clock::now_unix() - 3600],
        )
        .unwrap();
    }
    let port = free_port().to_string();
    let args = [
        "pykms-server",
        "127.0.0.1",
        &port,
        "-s",
        "clients.db",
        "-V",
        "INFO",
    ];
    let server = start(rkms_bin(), &args, &dir);
    server.wait_log("imported 1 client of the py-kms database");
    let (code, _) = activate(&server.addr.to_string(), &["--name", "NEWPC"]);
    assert_eq!(code, 0);
    drop(server);
    let target = dir.join("clients.rkms.db");
    let list = run(
        rkms_bin(),
        &["clients", "--db", target.to_str().unwrap(), "--json"],
    );
    let listed = text(&list);
    assert!(
        listed.contains("OLDPC") && listed.contains("NEWPC"),
        "{listed}"
    );
    // A second start does not import again.
    let server = start(rkms_bin(), &args, &dir);
    server.wait_log("were imported before");
    assert!(!server
        .log()
        .iter()
        .any(|l| l.contains("imported 1 client ")));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `vlmcsd -L 0.0.0.0:1688 -L [::]:1688 -e -D -t 30` (the example, on loopback),
/// through a link named vlmcsd; both addresses answer.
#[cfg(unix)]
#[test]
fn vlmcsd_line_answers_rkms_activate() {
    let dir = temp_dir("vlmcsd");
    let program = link(&dir, "vlmcsd");
    let port = free_port();
    let v4 = format!("127.0.0.1:{port}");
    let v6 = format!("[::1]:{port}");
    let mut args = vec!["-L", &v4];
    if ipv6_loopback() {
        args.extend(["-L", &v6]);
    }
    args.extend(["-e", "-D", "-t", "30"]);
    let server = start(&program, &args, &dir);
    let (code, r) = activate(&v4, &[]);
    assert_eq!(code, 0, "{r:?}");
    if ipv6_loopback() {
        let (code, r) = activate(&v6, &[]);
        assert_eq!(code, 0, "{r:?}");
    }
    server.wait_log("--idle-timeout 30");
    drop(server);
    // On every address, 0.0.0.0 and [::] become one dual-stack [::] listener.
    let out = clean(&program)
        .env("RKMS_COMPAT_PRINT", "1")
        .args([
            "-L",
            "0.0.0.0:1688",
            "-L",
            "[::]:1688",
            "-e",
            "-D",
            "-t",
            "30",
        ])
        .output()
        .unwrap();
    let t = text(&out);
    assert!(
        t.starts_with("rkms serve --idle-timeout 30 --listen '[::]:1688' --db none"),
        "{t}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// vlmcsd's options that change answers: -a (ePID per CSVLK), -r0, -C, -H, -K3, -N0, -B0,
/// -R/-A with units, -M1 -E1 (an empty genuine count), glued and grouped.
#[test]
fn vlmcsd_options_change_the_answers() {
    let dir = temp_dir("vlmcsd-opts");
    let port = free_port().to_string();
    let office = "06401-00206-666-666666-03-1033-17763.0000-2822018";
    let a = format!("Office2019={office}/01 02 03 04 05 06 07 08");
    let server = start(
        rkms_bin(),
        &[
            "vlmcsd",
            "-De",
            "-P",
            &port,
            "-L",
            "127.0.0.1",
            "-a",
            &a,
            "-r0",
            "-N0",
            "-B0",
            "-K3",
            "-R3d",
            "-A",
            "90m",
            "-M1",
            "-E1",
        ],
        &dir,
    );
    let host = format!("127.0.0.1:{port}");
    let (_, r) = activate(&host, &["--product", "Office Professional Plus 2019"]);
    assert_eq!(r[0]["epid"], office, "{r:?}");
    assert_eq!(r[0]["hwid"], "0102030405060708");
    assert_eq!(r[0]["renewal_interval"], 4320);
    assert_eq!(r[0]["activation_interval"], 90);
    // -M1 -E1: the count starts empty.
    assert_eq!(r[0]["current_count"], 1, "{r:?}");
    assert_eq!(r[0]["syntax"], "NDR32");
    // -K3: an unknown KMS ID is refused.
    let (_, r) = activate(&host, &["--kms-id", "11111111-2222-3333-4444-555555555555"]);
    assert_eq!(r[0]["hresult"], "0xC004F042", "{r:?}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// vlmcsd's man page examples: `vlmcsd -De`, `vlmcsd -l /var/log/vlmcsd.log` (a file here),
/// `vlmcsd -L 192.168.1.17` (a loopback address here), and `-i vlmcsd.ini`.
#[test]
fn vlmcsd_man_page_examples_and_ini_file() {
    let dir = temp_dir("vlmcsd-man");
    let port = free_port();
    let ini = dir.join("vlmcsd.ini");
    std::fs::write(
        &ini,
        format!(
            "# vlmcsd.ini\nListen = 127.0.0.1:{port}\nConnectionTimeout = 10\nRandomizationLevel = 0\nLCID = 1049\n\
             Windows = {EPID} / 11 22 33 44 55 66 77 88\nLogVerbose = false\n"
        ),
    )
    .unwrap();
    let server = start(
        rkms_bin(),
        &["vlmcsd", "-De", "-i", ini.to_str().unwrap()],
        &dir,
    );
    let (code, r) = activate(&format!("127.0.0.1:{port}"), &[]);
    assert_eq!(code, 0);
    assert_eq!(r[0]["epid"], EPID);
    assert_eq!(r[0]["hwid"], "1122334455667788");
    drop(server);
    // -l FILE: the log goes to the file.
    let log = dir.join("vlmcsd.log");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = clean(rkms_bin())
        .args(["vlmcsd", "-D", "-l", log.to_str().unwrap(), "-L", &listen])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening")
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, _) = activate(&listen, &["--name", "LOGGED-PC"]);
    assert_eq!(code, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("LOGGED-PC")
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("LOGGED-PC"), "{logged}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without -D vlmcsd detaches into the background (init scripts, `Type=forking` units): the
/// command returns once the host runs, with the pid file written; a host that cannot start
/// makes it fail.
#[cfg(unix)]
#[test]
fn vlmcsd_without_d_runs_in_the_background() {
    let dir = temp_dir("vlmcsd-bg");
    let pidfile = dir.join("vlmcsd.pid");
    let listen = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let log = dir.join("vlmcsd.log");
    let out = run(
        rkms_bin(),
        &[
            "vlmcsd",
            "-L",
            &listen,
            "-p",
            pidfile.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(5));
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    let (code, r) = activate(&listen, &[]);
    // A taken port: the background host stops at once and the command says so.
    let taken = run(rkms_bin(), &["vlmcsd", "-L", &listen]);
    let _ = Command::new("kill").arg(&pid).status();
    assert!(!pid.is_empty(), "no pid file");
    assert_eq!(code, 0, "{r:?}");
    // The background host logs what it runs, as the foreground one does.
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logged.contains("vlmcsd command line, run as: rkms --log-file"),
        "{logged}"
    );
    assert_ne!(taken.status.code(), Some(0));
    assert!(
        text(&taken).contains("run the same command line with -D"),
        "{}",
        text(&taken)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Options without an rkms equivalent are refused, naming vlmcsd's letter and what to use.
#[test]
fn vlmcsd_refuses_what_rkms_cannot_do() {
    for (args, needles) in [
        (
            &["-j", "/etc/vlmcsd.kmd"][..],
            &["vlmcsd option -j", "--products FILE"][..],
        ),
        (&["-o1"], &["-o1", "--private-only"]),
        (&["-s"], &["-s", "rkms service install"]),
        (&["-Q"], &["unknown option -Q"]),
        (&["-t"], &["option -t requires an argument"]),
    ] {
        let out = run(rkms_bin(), &[&["vlmcsd"][..], args].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let t = text(&out);
        for n in needles {
            assert!(t.contains(n), "{args:?}: {t}");
        }
    }
}

/// `python3 pykms_Client.py 192.168.1.2 1688 -m Windows10 -c CMID -n PC01` (the issue's
/// example, against a loopback `rkms serve`), through a link named pykms_Client.py.
#[cfg(unix)]
#[test]
fn pykms_client_line_activates_against_rkms_serve() {
    let dir = temp_dir("pykms-client");
    let program = link(&dir, "pykms_Client.py");
    let server = rkms_serve(&[]);
    let ip = server.addr.ip().to_string();
    let port = server.addr.port().to_string();
    let out = run(
        &program,
        &[&ip, &port, "-m", "Windows10", "-c", CMID, "-n", "PC01"],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("Windows 10/11 Enterprise") && t.contains("activated"),
        "{t}"
    );
    let line = server.wait_log("workstation=PC01");
    assert!(line.contains(CMID), "{line}");
    // py-kms' documentation: `python3 pykms_Client.py <YOUR_IPADDRESS> 1688 -V DEBUG` (default
    // product Windows 8.1), and the py-kms-client name.
    let program = link(&dir, "py-kms-client");
    let out = run(&program, &[&ip, &port, "-V", "DEBUG"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("Windows 8.1 Enterprise"), "{t}");
    // A product py-kms does not have.
    let out = run(rkms_bin(), &["pykms-client", &ip, &port, "-m", "Windows95"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("-m/--mode"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// vlmcs against `rkms serve`, with vlmcs' exit status: 0 once answered (a refusal too), 103
/// when no host answers, 22 for bad options.
#[cfg(unix)]
#[test]
fn vlmcs_forms_and_exit_status() {
    let dir = temp_dir("vlmcs");
    let program = link(&dir, "vlmcs");
    let server = rkms_serve(&["--allow", "known-volume"]);
    let host = server.addr.to_string();
    // `vlmcs kms.example.com` (here the loopback host): Windows Vista Business, protocol 4.
    let out = run(&program, &[&host]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("Windows Vista Business") && t.contains("KMS V4"),
        "{t}"
    );
    // `vlmcs -6 -l Office2013 -v -n 1`.
    let out = run(
        &program,
        &["-6", "-l", "Office2013", "-v", "-n", "1", &host],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("Office Professional Plus 2013") && t.contains("KMS V6"),
        "{t}"
    );
    // Grouped flags, glued values, several requests on new connections.
    let out = run(
        &program,
        &[
            "-5Tp", "-N0", "-B0", "-n3", "-w", "VLMCS-PC", "-c", CMID, &host,
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert_eq!(t.matches("Result           : activated").count(), 3, "{t}");
    server.wait_log("workstation=VLMCS-PC");
    // A refusal is an answer: vlmcs exits 0 where rkms activate exits 1.
    let out = run(
        &program,
        &["-k", "11111111-2222-3333-4444-555555555555", &host],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("0xC004F042"));
    let (code, _) = activate(&host, &["--kms-id", "11111111-2222-3333-4444-555555555555"]);
    assert_eq!(code, 1);
    drop(server);
    // Nobody listening: 103.
    let out = run(&program, &[&format!("127.0.0.1:{}", free_port())]);
    assert_eq!(out.status.code(), Some(103), "{}", text(&out));
    // Bad options: 22.
    for bad in [&["-l", "NoSuchProduct"][..], &["-c", "not-a-guid"], &["-Z"]] {
        let out = run(&program, bad);
        assert_eq!(out.status.code(), Some(22), "{bad:?}: {}", text(&out));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `vlmcs -G FILE HOST` writes the host's ePIDs as vlmcsd.ini lines, and `rkms vlmcsd -i FILE`
/// then answers with the same ePIDs.
#[test]
fn vlmcs_grab_then_vlmcsd_ini_round_trip() {
    let dir = temp_dir("grab");
    let office = "06401-00206-666-666666-03-1033-17763.0000-2822018";
    let source = rkms_serve(&["--epid", &format!("Office2019={office}/0102030405060708")]);
    let ini = dir.join("grabbed.ini");
    std::fs::write(&ini, "# mine\nConnectionTimeout = 10\nOffice2019 = old\n").unwrap();
    let out = run(
        rkms_bin(),
        &[
            "vlmcs",
            "-G",
            ini.to_str().unwrap(),
            &source.addr.to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    drop(source);
    let written = std::fs::read_to_string(&ini).unwrap();
    assert!(
        written.contains(&format!("Office2019 = {office} / 01 02 03 04 05 06 07 08")),
        "{written}"
    );
    assert!(written.contains("Windows = ") && written.contains("ConnectionTimeout = 10"));
    assert!(!written.contains("= old"), "{written}");
    assert!(std::fs::read_to_string(dir.join("grabbed.ini~"))
        .unwrap()
        .contains("= old"));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = start(
        rkms_bin(),
        &["vlmcsd", "-De", "-L", &listen, "-i", ini.to_str().unwrap()],
        &dir,
    );
    let (_, r) = activate(&listen, &["--product", "Office Professional Plus 2019"]);
    assert_eq!(r[0]["epid"], office, "{r:?}");
    assert_eq!(r[0]["hwid"], "0102030405060708");
    drop(server);
    // Nobody listening: vlmcs' 103.
    let out = run(
        rkms_bin(),
        &[
            "vlmcs",
            "-G",
            ini.to_str().unwrap(),
            &format!("127.0.0.1:{}", free_port()),
        ],
    );
    assert_eq!(out.status.code(), Some(103), "{}", text(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A hostile host's ePID (control characters, escape sequences) never reaches the vlmcsd.ini
/// that `vlmcs -G` writes, nor the terminal raw.
#[test]
fn vlmcs_grab_leaves_out_an_epid_that_is_not_plain() {
    let dir = temp_dir("grab-hostile");
    let source = rkms_serve(&["--epid", "X\u{1b}]0;pwned\u{7}\u{1b}[2J"]);
    let ini = dir.join("grabbed.ini");
    let out = run(
        rkms_bin(),
        &[
            "vlmcs",
            "-G",
            ini.to_str().unwrap(),
            &source.addr.to_string(),
        ],
    );
    drop(source);
    let all = text(&out);
    assert!(!all.contains('\u{1b}'), "{all}");
    assert!(all.contains("Windows: the ePID"), "{all}");
    let written = std::fs::read_to_string(&ini).unwrap_or_default();
    assert!(!written.contains('\u{1b}'), "{written}");
    assert!(!written.contains("Windows = X"), "{written}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rkms config import vlmcsd.ini` and `--pykms-env` write a configuration `rkms config
/// check` accepts, with the same settings.
#[test]
fn config_import_writes_equivalent_rkms_toml() {
    let dir = temp_dir("import");
    let ini = dir.join("vlmcsd.ini");
    std::fs::write(
        &ini,
        format!(
            "Listen = 127.0.0.1:1700\nListen = [::1]:1700\nUseNDR64 = false\nMaintainClients = true\n\
             StartEmpty = true\nRenewalInterval = 3d\nWhitelistingLevel = 3\nOffice2019 = {EPID}\nPidFile = /tmp/x.pid\n"
        ),
    )
    .unwrap();
    let toml = dir.join("rkms.toml");
    let out = run(
        rkms_bin(),
        &[
            "config",
            "import",
            ini.to_str().unwrap(),
            "-o",
            toml.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let written = std::fs::read_to_string(&toml).unwrap();
    assert!(
        written.contains("listen = [\"127.0.0.1:1700\", \"[::1]:1700\"]"),
        "{written}"
    );
    assert!(written.contains("no-ndr64 = true"), "{written}");
    // Never overwritten.
    let again = run(
        rkms_bin(),
        &[
            "config",
            "import",
            ini.to_str().unwrap(),
            "-o",
            toml.to_str().unwrap(),
        ],
    );
    assert_eq!(again.status.code(), Some(1));
    let check = run(
        rkms_bin(),
        &["--config", toml.to_str().unwrap(), "config", "check"],
    );
    let t = text(&check);
    assert!(check.status.success(), "{t}");
    for row in [
        "client-count",
        "auto",
        "renewal-interval",
        "4320",
        "known-volume",
        &format!("Office2019={EPID}"),
    ] {
        assert!(t.contains(row), "{row}: {t}");
    }
    // py-kms' container variables.
    let out = clean(rkms_bin())
        .args(["config", "import", "--pykms-env"])
        .env("IP", "127.0.0.1")
        .env("PORT", "1700")
        .env("EPID", EPID)
        .env("CLIENT_COUNT", "30")
        .env("LOGLEVEL", "DEBUG")
        .output()
        .unwrap();
    let written = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        written.contains("listen = [\"127.0.0.1:1700\"]"),
        "{written}"
    );
    assert!(written.contains("client-count = 30"), "{written}");
    assert!(written.contains("log-level = \"debug\""), "{written}");
    let toml = dir.join("pykms.toml");
    std::fs::write(&toml, &written).unwrap();
    let check = run(
        rkms_bin(),
        &["--config", toml.to_str().unwrap(), "config", "check"],
    );
    assert!(check.status.success(), "{}", text(&check));
    // Nothing to import.
    let out = run(rkms_bin(), &["config", "import", "--pykms-env"]);
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rkms serve --listen` takes a host name (resolved at start).
#[test]
fn serve_listen_accepts_a_host_name() {
    let port = free_port();
    let mut c = clean(rkms_bin());
    c.args([
        "serve",
        "--db",
        "none",
        "--listen",
        &format!("localhost:{port}"),
    ]);
    let server = Server::spawn(&mut c);
    assert!(server.addr.ip().is_loopback());
    let (code, _) = activate(&server.addr.to_string(), &[]);
    assert_eq!(code, 0);
    let out = run(
        rkms_bin(),
        &[
            "serve",
            "--listen",
            "no-such-host.invalid:1688",
            "--db",
            "none",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("cannot be resolved"), "{}", text(&out));
}
