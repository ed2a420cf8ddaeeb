//! The service logic against a fake service manager.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use clap::Parser;

use super::*;

/// A service manager in memory. Starting and stopping stay pending for `lag` status queries.
#[derive(Default)]
struct Fake {
    services: RefCell<BTreeMap<String, (ServiceSpec, Status)>>,
    dirs: Vec<(String, Option<String>)>,
    calls: Vec<String>,
    /// Every change is refused (not elevated).
    deny: bool,
    /// The service dies right after it starts.
    crash: bool,
    /// The service never finishes stopping.
    stuck: bool,
    /// A pending service advances its check point at every status query.
    progressing: bool,
    lag: u32,
    pending: Cell<u32>,
}

impl Fake {
    fn lagging(lag: u32) -> Self {
        Fake {
            lag,
            ..Default::default()
        }
    }

    fn check(&mut self, call: String) -> Result<(), ManagerError> {
        self.calls.push(call);
        if self.deny {
            return Err(ManagerError::AccessDenied);
        }
        Ok(())
    }

    fn set_state(&self, name: &str, state: State) {
        let mut services = self.services.borrow_mut();
        let (_, status) = services.get_mut(name).expect("installed");
        status.state = state;
        status.pid = matches!(state, State::Running | State::StopPending).then_some(4242);
        self.pending.set(self.lag);
    }

    fn spec(&self) -> ServiceSpec {
        self.services.borrow()[SERVICE_NAME].0.clone()
    }
}

impl ServiceManager for Fake {
    fn query(&self, name: &str) -> Result<Option<Status>, ManagerError> {
        let Some(status) = self.services.borrow().get(name).map(|(_, s)| *s) else {
            return Ok(None);
        };
        if self.pending.get() > 0 {
            self.pending.set(self.pending.get() - 1);
            if self.progressing {
                let mut services = self.services.borrow_mut();
                let (_, s) = services.get_mut(name).expect("installed");
                s.checkpoint += 1;
                return Ok(Some(*s));
            }
            return Ok(Some(status));
        }
        let next = match status.state {
            State::StartPending if self.crash => Some(State::Stopped),
            State::StartPending => Some(State::Running),
            State::StopPending if !self.stuck => Some(State::Stopped),
            _ => None,
        };
        if let Some(next) = next {
            self.set_state(name, next);
            self.pending.set(0);
        }
        Ok(self.services.borrow().get(name).map(|(_, s)| *s))
    }

    fn install(&mut self, spec: &ServiceSpec) -> Result<(), ManagerError> {
        self.check(format!("install {}", spec.name))?;
        let stopped = Status {
            state: State::Stopped,
            pid: None,
            checkpoint: 0,
        };
        let mut services = self.services.borrow_mut();
        if services.contains_key(&spec.name) {
            return Err(ManagerError::Other("the service already exists".into()));
        }
        services.insert(spec.name.clone(), (spec.clone(), stopped));
        Ok(())
    }

    fn reconfigure(&mut self, spec: &ServiceSpec) -> Result<(), ManagerError> {
        self.check(format!("reconfigure {}", spec.name))?;
        let mut services = self.services.borrow_mut();
        let entry = services
            .get_mut(&spec.name)
            .ok_or(ManagerError::NotInstalled)?;
        entry.0 = spec.clone();
        Ok(())
    }

    fn uninstall(&mut self, name: &str) -> Result<(), ManagerError> {
        self.check(format!("uninstall {name}"))?;
        let mut services = self.services.borrow_mut();
        match services.get(name) {
            None => Err(ManagerError::NotInstalled),
            Some((_, s)) if s.state != State::Stopped => {
                Err(ManagerError::Other("the service is running".into()))
            }
            Some(_) => {
                services.remove(name);
                Ok(())
            }
        }
    }

    fn start(&mut self, name: &str) -> Result<(), ManagerError> {
        self.check(format!("start {name}"))?;
        if !self.services.borrow().contains_key(name) {
            return Err(ManagerError::NotInstalled);
        }
        self.set_state(name, State::StartPending);
        Ok(())
    }

    fn stop(&mut self, name: &str) -> Result<(), ManagerError> {
        self.check(format!("stop {name}"))?;
        if !self.services.borrow().contains_key(name) {
            return Err(ManagerError::NotInstalled);
        }
        self.set_state(name, State::StopPending);
        Ok(())
    }

    fn prepare_directory(&mut self, path: &str, grantee: Option<&str>) -> Result<(), ManagerError> {
        self.check(format!("directory {path}"))?;
        self.dirs
            .push((path.to_string(), grantee.map(str::to_string)));
        Ok(())
    }
}

const EXE: &str = r"C:\Program Files\rkms\rkms.exe";

fn ctx(args: &[&str]) -> Context {
    Context {
        argv: args.iter().map(OsString::from).collect(),
        executable: PathBuf::from(EXE),
        cwd: r"C:\Users\me\kms".into(),
        user_profile: Some(r"C:\Users\me".into()),
        paths: WindowsPaths::from_env(&|k| (k == "ProgramData").then(|| r"C:\ProgramData".into())),
        poll: Duration::ZERO,
        polls: 20,
    }
}

fn command(ctx: &Context) -> ServiceCommand {
    match Cli::try_parse_from(&ctx.argv).expect("parses").command {
        Command::Service { command } => command,
        other => panic!("not a service command: {other:?}"),
    }
}

/// Runs a command line through `execute`: (exit status or error, output).
fn run(mgr: &mut Fake, args: &[&str]) -> (Result<u8, String>, String) {
    let c = ctx(args);
    let mut out = Vec::new();
    let result = execute(&command(&c), mgr, &c, &mut out);
    (result, String::from_utf8(out).unwrap())
}

fn words(v: &[OsString]) -> Vec<String> {
    v.iter().map(|w| w.to_string_lossy().into_owned()).collect()
}

#[test]
fn install_registers_serve_as_local_service_with_programdata_paths() {
    let mut m = Fake::default();
    let (r, out) = run(&mut m, &["rkms", "service", "install"]);
    assert_eq!(r, Ok(0), "{out}");
    let spec = m.spec();
    assert_eq!(spec.name, "rkms");
    assert_eq!(spec.account, r"NT AUTHORITY\LocalService");
    assert_eq!(spec.executable, PathBuf::from(EXE));
    assert_eq!(
        words(&spec.arguments),
        [
            "service",
            "run",
            "--log-file",
            r"C:\ProgramData\rkms\logs\rkms.log",
            "--db",
            r"C:\ProgramData\rkms\clients.db",
        ]
    );
    // The state and log directories exist and LocalService (by SID) may write them.
    assert_eq!(
        m.dirs,
        [
            (r"C:\ProgramData\rkms".into(), Some("*S-1-5-19".into())),
            (r"C:\ProgramData\rkms\logs".into(), Some("*S-1-5-19".into())),
        ]
    );
    assert!(out.contains(
        "\n  netsh advfirewall firewall add rule name=\"rkms KMS\" dir=in action=allow protocol=TCP localport=1688\n"
    ), "{out}");
    assert!(
        out.contains(&format!(
            "runs:     \"{EXE}\" service run --log-file C:\\ProgramData\\rkms\\logs\\rkms.log"
        )),
        "{out}"
    );
    assert!(out.contains("start it now: rkms service start"), "{out}");
    assert!(!out.contains("warning"), "{out}");
}

#[test]
fn install_keeps_serve_options_and_makes_paths_absolute() {
    let mut m = Fake::default();
    let (r, out) = run(
        &mut m,
        &[
            "rkms",
            "-v",
            "service",
            "install",
            "--listen",
            "0.0.0.0:1688",
            "--account",
            r"NT AUTHORITY\NetworkService",
            "--client-count",
            "50",
            "--products",
            "extra.toml",
            r"--db=state\c.db",
            "--log-file",
            r"D:\logs\kms.log",
            "--web",
            "off",
        ],
    );
    assert_eq!(r, Ok(0), "{out}");
    let spec = m.spec();
    assert_eq!(spec.account, r"NT AUTHORITY\NetworkService");
    assert_eq!(
        words(&spec.arguments),
        [
            "service",
            "run",
            "-v",
            "--listen",
            "0.0.0.0:1688",
            "--client-count",
            "50",
            "--products",
            r"C:\Users\me\kms\extra.toml",
            r"--db=C:\Users\me\kms\state\c.db",
            "--log-file",
            r"D:\logs\kms.log",
            "--web",
            "off",
        ]
    );
    assert!(m
        .dirs
        .iter()
        .all(|(_, g)| g.as_deref() == Some("*S-1-5-20")));
    assert!(out.contains(r"logs:     D:\logs\kms.log"), "{out}");
    assert!(
        out.contains(r"clients:  C:\Users\me\kms\state\c.db"),
        "{out}"
    );
    // What the service manager starts is `rkms serve` with these options.
    let mut argv = vec![OsString::from("rkms.exe")];
    argv.extend(spec.arguments.iter().cloned());
    let serve = serve_argv(&argv).expect("service run");
    assert_eq!(words(&serve[..2]), ["rkms.exe", "serve"]);
    let cli = Cli::try_parse_from(&serve).unwrap();
    assert_eq!(cli.verbose, 1);
    assert_eq!(cli.log_file, Some(PathBuf::from(r"D:\logs\kms.log")));
    let Command::Serve(args) = cli.command else {
        panic!("serve")
    };
    assert_eq!(args.listen, ["0.0.0.0:1688".parse().unwrap()]);
    assert_eq!(args.db.as_deref(), Some(r"C:\Users\me\kms\state\c.db"));
}

#[test]
fn install_twice_updates_the_registration() {
    let mut m = Fake::default();
    assert_eq!(run(&mut m, &["rkms", "service", "install"]).0, Ok(0));
    let first = m.spec();
    let (r, out) = run(&mut m, &["rkms", "service", "install"]);
    assert_eq!(r, Ok(0));
    assert!(
        out.contains("already installed: its settings are updated"),
        "{out}"
    );
    assert_eq!(m.spec(), first);
    assert_eq!(m.services.borrow().len(), 1);
    // New options replace the old; a running service is told to restart.
    assert_eq!(run(&mut m, &["rkms", "service", "start"]).0, Ok(0));
    let (r, out) = run(
        &mut m,
        &[
            "rkms",
            "service",
            "install",
            "--db",
            "none",
            "--client-count",
            "30",
        ],
    );
    assert_eq!(r, Ok(0));
    assert!(out.contains("restart it to apply"), "{out}");
    let args = words(&m.spec().arguments);
    assert!(
        args.ends_with(&[
            "--db".into(),
            "none".into(),
            "--client-count".into(),
            "30".into()
        ]),
        "{args:?}"
    );
    assert!(!args.contains(&r"C:\ProgramData\rkms\clients.db".to_string()));
    assert_eq!(
        m.calls.iter().filter(|c| c.starts_with("install")).count(),
        1
    );
}

#[test]
fn install_refuses_unix_only_and_invalid_options_before_registering() {
    for (args, expect) in [
        (vec!["--user", "nobody"], "--user exists on Unix only"),
        (vec!["--inetd"], "--inetd exists on Unix only"),
        (
            vec!["--group", "kms", "--user", "kms"],
            "--user, --group exist on Unix only",
        ),
        (vec!["--account"], "--account needs a value"),
        (vec!["--account="], "--account must name an account"),
    ] {
        let mut argv = vec!["rkms", "service", "install"];
        argv.extend(&args);
        let c = ctx(&argv);
        let err = install_spec(&c).unwrap_err();
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    // Values are checked by the same parsers as `serve`.
    let err = install_spec(&ctx(&["rkms", "service", "install", "--lcid", "0"])).unwrap_err();
    assert!(err.contains("--lcid"), "{err}");
    // Through `execute`, nothing is registered.
    let mut m = Fake::default();
    let (r, _) = run(&mut m, &["rkms", "service", "install", "--inetd"]);
    assert!(r.is_err());
    assert!(m.services.borrow().is_empty());
    assert!(m.calls.iter().all(|c| !c.starts_with("install")));
}

#[test]
fn refusals_of_the_service_manager_say_to_elevate() {
    let mut m = Fake {
        deny: true,
        ..Default::default()
    };
    for cmd in ["install", "start", "stop", "uninstall"] {
        if cmd != "install" {
            m.deny = false;
            m.services.borrow_mut().clear();
            assert_eq!(run(&mut m, &["rkms", "service", "install"]).0, Ok(0));
            if cmd != "start" {
                assert_eq!(run(&mut m, &["rkms", "service", "start"]).0, Ok(0));
            }
            m.deny = true;
        }
        let (r, _) = run(&mut m, &["rkms", "service", cmd]);
        let err = r.unwrap_err();
        assert!(err.contains("elevated prompt"), "{cmd}: {err}");
    }
}

#[test]
fn start_status_stop_round_trip() {
    let mut m = Fake::lagging(2);
    let status = |m: &mut Fake| run(m, &["rkms", "service", "status"]);
    assert_eq!(
        status(&mut m),
        (Ok(EXIT_NOT_INSTALLED), "rkms: not installed\n".into())
    );
    let err = run(&mut m, &["rkms", "service", "start"]).0.unwrap_err();
    assert!(
        err.contains("not installed: run `rkms service install` first"),
        "{err}"
    );
    assert!(run(&mut m, &["rkms", "service", "stop"]).0.is_err());

    assert_eq!(run(&mut m, &["rkms", "service", "install"]).0, Ok(0));
    assert_eq!(
        status(&mut m),
        (Ok(EXIT_NOT_RUNNING), "rkms: stopped\n".into())
    );
    let (r, out) = run(&mut m, &["rkms", "service", "start"]);
    assert_eq!(r, Ok(0));
    assert_eq!(out, "the service \"rkms\" is running (process 4242)\n");
    assert_eq!(
        status(&mut m),
        (Ok(0), "rkms: running (process 4242)\n".into())
    );
    let (r, out) = run(&mut m, &["rkms", "service", "start"]);
    assert_eq!(
        (r, out.as_str()),
        (Ok(0), "the service \"rkms\" is already running\n")
    );

    let (r, out) = run(&mut m, &["rkms", "service", "stop"]);
    assert_eq!((r, out.as_str()), (Ok(0), "stopped the service \"rkms\"\n"));
    assert_eq!(status(&mut m).0, Ok(EXIT_NOT_RUNNING));
    let (r, out) = run(&mut m, &["rkms", "service", "stop"]);
    assert_eq!(
        (r, out.as_str()),
        (Ok(0), "the service \"rkms\" is not running\n")
    );
    assert_eq!(
        m.calls
            .iter()
            .filter(|c| *c == "start rkms" || *c == "stop rkms")
            .count(),
        2
    );
}

/// A start that takes longer than `rkms service start` waits (a large database migrating) is
/// waited for as long as the service reports progress; without progress the command gives up
/// after its wait and says where to look.
#[test]
fn a_slow_start_is_waited_for_while_it_reports_progress() {
    // Pending for 60 status queries, three times the 20 that `ctx` allows without progress.
    let mut m = Fake {
        progressing: true,
        ..Fake::lagging(60)
    };
    assert_eq!(run(&mut m, &["rkms", "service", "install"]).0, Ok(0));
    let (r, out) = run(&mut m, &["rkms", "service", "start"]);
    assert_eq!(
        (r, out.as_str()),
        (Ok(0), "the service \"rkms\" is running (process 4242)\n")
    );

    let mut m = Fake::lagging(60);
    assert_eq!(run(&mut m, &["rkms", "service", "install"]).0, Ok(0));
    let err = run(&mut m, &["rkms", "service", "start"]).0.unwrap_err();
    assert!(
        err.contains("still starting, with no progress")
            && err.contains(r"C:\ProgramData\rkms\logs\rkms.log"),
        "{err}"
    );
}

#[test]
fn a_service_that_dies_at_start_points_to_its_log() {
    let mut m = Fake {
        crash: true,
        ..Default::default()
    };
    assert_eq!(run(&mut m, &["rkms", "service", "install"]).0, Ok(0));
    let err = run(&mut m, &["rkms", "service", "start"]).0.unwrap_err();
    assert!(
        err.contains("stopped right after starting")
            && err.contains(r"C:\ProgramData\rkms\logs\rkms.log"),
        "{err}"
    );
}

#[test]
fn uninstall_stops_first_and_is_idempotent() {
    let mut m = Fake::lagging(1);
    let (r, out) = run(&mut m, &["rkms", "service", "uninstall"]);
    assert_eq!(
        (r, out.as_str()),
        (Ok(0), "the service \"rkms\" is not installed\n")
    );
    assert_eq!(run(&mut m, &["rkms", "service", "install"]).0, Ok(0));
    assert_eq!(run(&mut m, &["rkms", "service", "start"]).0, Ok(0));
    let (r, out) = run(&mut m, &["rkms", "service", "uninstall"]);
    assert_eq!(r, Ok(0), "{out}");
    assert!(
        out.starts_with("stopped the service \"rkms\"\nremoved the service"),
        "{out}"
    );
    assert!(out.contains(r"stay in C:\ProgramData\rkms"), "{out}");
    assert!(m.services.borrow().is_empty());

    // A service that never stops is left installed, with an error.
    let mut m = Fake {
        stuck: true,
        ..Default::default()
    };
    assert_eq!(run(&mut m, &["rkms", "service", "install"]).0, Ok(0));
    assert_eq!(run(&mut m, &["rkms", "service", "start"]).0, Ok(0));
    let err = run(&mut m, &["rkms", "service", "uninstall"])
        .0
        .unwrap_err();
    assert!(err.contains("did not stop"), "{err}");
    assert_eq!(m.services.borrow().len(), 1);
    assert!(run(&mut m, &["rkms", "service", "stop"]).0.is_err());
}

#[test]
fn run_is_only_for_the_service_manager() {
    let mut m = Fake::default();
    let err = run(&mut m, &["rkms", "service", "run"]).0.unwrap_err();
    assert!(err.contains("use `rkms serve`"), "{err}");
    assert!(m.calls.is_empty());
}

#[test]
fn warns_when_rkms_exe_is_in_the_user_profile() {
    let mut m = Fake::default();
    let mut c = ctx(&["rkms", "service", "install"]);
    c.executable = PathBuf::from(r"C:\Users\Me\Downloads\rkms.exe");
    let mut out = Vec::new();
    assert_eq!(execute(&command(&c), &mut m, &c, &mut out), Ok(0));
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("warning: ") && out.contains(r"C:\Program Files\rkms\"),
        "{out}"
    );
}

#[test]
fn serve_argv_maps_only_service_run() {
    let argv = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
    assert_eq!(
        serve_argv(&argv(&["x.exe", "service", "run", "--db", "none"])),
        Some(argv(&["x.exe", "serve", "--db", "none"]))
    );
    assert_eq!(serve_argv(&argv(&["x.exe", "service", "install"])), None);
    assert_eq!(serve_argv(&argv(&["x.exe", "serve"])), None);
    assert_eq!(serve_argv(&argv(&["x.exe"])), None);
}

#[test]
fn command_lines_are_quoted_as_windows_reads_them() {
    assert_eq!(quote(OsStr::new("plain")), "plain");
    assert_eq!(quote(OsStr::new("")), "\"\"");
    assert_eq!(quote(OsStr::new(r"C:\a b\c")), r#""C:\a b\c""#);
    assert_eq!(quote(OsStr::new(r"C:\a b\")), r#""C:\a b\\""#);
    assert_eq!(quote(OsStr::new(r#"say "hi""#)), r#""say \"hi\"""#);
}

#[test]
fn programdata_paths_and_acl_grantees() {
    let p = WindowsPaths::from_env(&|k| (k == "ProgramData").then(|| r"D:\Data\".into()));
    assert_eq!(p.root, r"D:\Data\rkms");
    assert_eq!(p.log_file, r"D:\Data\rkms\logs\rkms.log");
    assert_eq!(p.config, r"D:\Data\rkms\rkms.toml");
    let p = WindowsPaths::from_env(&|_| None);
    assert_eq!(p.db, r"C:\ProgramData\rkms\clients.db");
    assert_eq!(
        acl_grantee(r"NT AUTHORITY\LocalService").as_deref(),
        Some("*S-1-5-19")
    );
    assert_eq!(
        acl_grantee(r"NT AUTHORITY\NETWORK SERVICE").as_deref(),
        Some("*S-1-5-20")
    );
    assert_eq!(acl_grantee("LocalSystem"), None);
    assert_eq!(
        acl_grantee(r"NT SERVICE\rkms").as_deref(),
        Some(r"NT SERVICE\rkms")
    );
    assert!(is_absolute_windows(r"C:\x") && is_absolute_windows(r"\\srv\share"));
    assert!(!is_absolute_windows("x.toml") && !is_absolute_windows(r"C:x"));
}

#[test]
fn database_urls_are_not_taken_for_paths() {
    let spec = |db: &str| {
        let c = ctx(&["rkms", "service", "install", "--db", db]);
        words(&install_spec(&c).unwrap().arguments)
            .last()
            .cloned()
            .unwrap()
    };
    assert_eq!(spec("postgres://kms@db/kms"), "postgres://kms@db/kms");
    assert_eq!(spec("sqlite:c.db"), r"sqlite:C:\Users\me\kms\c.db");
    assert_eq!(spec(r"sqlite:D:\c.db"), r"sqlite:D:\c.db");
    assert_eq!(spec("NONE"), "NONE");
    assert_eq!(spec(r"C:\c.db"), r"C:\c.db");
}
