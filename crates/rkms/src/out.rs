//! Standard output of the commands. A closed pipe (`rkms products --json | head -1`) ends the
//! command quietly with exit status 0, as the reader wants no more; any other write error is
//! reported on standard error with exit status 1. Never a panic.

use std::io::Write;

/// Writes `args` to standard output and flushes it (see the module documentation).
pub fn print(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        failed(&e);
    }
}

/// Writes `bytes` to standard output and flushes it (see the module documentation).
pub fn print_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        failed(&e);
    }
}

/// Ends the process after a failed write to standard output.
fn failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(1);
}

/// `print!` that ends quietly on a closed pipe ([`crate::out`]).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::print(format_args!($($arg)*))
    };
}

/// `println!` that ends quietly on a closed pipe ([`crate::out`]).
#[macro_export]
macro_rules! outln {
    () => {
        $crate::out::print(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}
