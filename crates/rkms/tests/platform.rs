//! What differs by platform, seen from the command line on Linux: `rkms service` exists but is
//! Windows-only (exit status 2), and the Unix-only options say so in their help. (The Windows
//! side runs under Wine in scripts/windows-check.sh; the service logic is unit-tested in
//! `rkms::service` with a fake service manager.)
#![cfg(unix)]

mod common;

use std::process::Command;

use common::rkms_bin;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(rkms_bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn service_commands_are_windows_only_elsewhere() {
    for args in [
        &["service", "status"][..],
        &["service", "install", "--listen", "0.0.0.0:1688"],
        &["service", "uninstall"],
        &["service", "start"],
        &["service", "stop"],
        &["service", "run", "--db", "none"],
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains("works on Windows only"), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
    }
    // Help is there on every platform, `run` (for the service manager) hidden.
    let (code, out, _) = run(&["service", "--help"]);
    assert_eq!(code, 0);
    for cmd in ["install", "uninstall", "start", "stop", "status"] {
        assert!(out.contains(cmd), "{cmd}: {out}");
    }
    assert!(!out.contains("\n  run "), "{out}");
    let (_, out, _) = run(&["service", "install", "--help"]);
    assert!(out.contains(r"NT AUTHORITY\LocalService"), "{out}");
    assert!(
        out.contains("--listen"),
        "install takes the options of serve: {out}"
    );
    let (_, out, _) = run(&["--help"]);
    // Help lines wrap where the widest subcommand name puts them.
    let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("Windows only"), "{out}");
}

#[test]
fn unix_only_options_say_so() {
    let (code, out, _) = run(&["serve", "--help"]);
    assert_eq!(code, 0);
    let help = out.split_whitespace().collect::<Vec<_>>().join(" ");
    for (option, words) in [
        ("--user", "(Unix only;"),
        ("--group", "(Unix only;"),
        ("--inetd", "Unix only)"),
    ] {
        let at = help
            .find(&format!("{option} <"))
            .or_else(|| help.find(option));
        let text = &help[at.unwrap_or_else(|| panic!("{option} missing"))..];
        let next = text[2..].find(" --").map_or(text.len(), |i| i + 2);
        assert!(text[..next].contains(words), "{option}: {}", &text[..next]);
    }
}
