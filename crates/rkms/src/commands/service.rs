//! `rkms service install|uninstall|start|stop|status`: the Windows service (see `crate::service`;
//! on other platforms these exit with status 2).

use std::ffi::OsString;

use super::usage;
use crate::cli::ServiceCommand;
#[cfg(windows)]
use crate::service::{execute, system_manager, Context};

/// Runs an `rkms service` command; `argv` is the whole command line (install keeps the `serve`
/// options as written).
pub fn run(command: ServiceCommand, argv: &[OsString]) -> u8 {
    #[cfg(not(windows))]
    {
        // Elsewhere every command says so, and the code that installs and controls the
        // service (tested on every platform with a stand-in manager) stays out of the binary.
        let _ = (command, argv);
        usage(crate::service::WINDOWS_ONLY)
    }
    #[cfg(windows)]
    run_windows(command, argv)
}

#[cfg(windows)]
fn run_windows(command: ServiceCommand, argv: &[OsString]) -> u8 {
    let mut manager = match system_manager() {
        Ok(m) => m,
        Err(e) => return usage(&e),
    };
    if matches!(command, ServiceCommand::Run(_)) {
        return usage(
            "`rkms service run` is started by the Windows service manager; to run rkms in this \
             console use `rkms serve`",
        );
    }
    let ctx = match Context::current(argv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    match execute(&command, manager.as_mut(), &ctx, &mut std::io::stdout()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
