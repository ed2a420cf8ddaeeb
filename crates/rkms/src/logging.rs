//! Log output: level from -v / --log-level / RUST_LOG; text or JSON lines; standard error or a
//! size-rotated file; plain lines without time stamps when journald already adds them.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::OnceLock;

use file_rotate::compression::Compression;
use file_rotate::suffix::AppendCount;
use file_rotate::{ContentLimit, FileRotate};
use tracing_subscriber::EnvFilter;

mod buffered;
pub use buffered::BufferedLog;

/// The log's writer, for [`flush`].
static WRITER: OnceLock<BufferedLog> = OnceLock::new();

/// Writes the log lines still buffered (info and below wait up to [`buffered::DELAY`]); call
/// before the program exits.
pub fn flush() {
    if let Some(w) = WRITER.get() {
        w.flush();
    }
}

/// How and where to log.
#[derive(Debug, Clone, Default)]
pub struct LogSettings {
    /// -v count.
    pub verbose: u8,
    /// --log-level.
    pub level: Option<String>,
    /// Level without -v.
    pub default_level: &'static str,
    /// JSON lines instead of text.
    pub json: bool,
    /// Log file (rotated by size) instead of standard error.
    pub file: Option<PathBuf>,
    /// Rotate the file at this size.
    pub max_size: u64,
    /// Rotated files kept.
    pub keep: usize,
}

/// Sets up logging; fails with a message when the log file cannot be opened.
pub fn init(s: &LogSettings) -> Result<(), String> {
    let levels = ["error", "warn", "info", "debug", "trace"];
    let base = levels
        .iter()
        .position(|l| *l == s.default_level)
        .unwrap_or(2);
    let chosen = s
        .level
        .as_deref()
        .unwrap_or(levels[(base + s.verbose as usize).min(levels.len() - 1)]);
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if s.level.is_none() && s.verbose == 0 => {
            EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new(chosen))
        }
        _ => EnvFilter::new(format!("{chosen},rkms={chosen}")),
    };
    let (writer, ansi, piece) = match &s.file {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if !dir.is_dir() {
                    return Err(format!(
                        "--log-file {}: directory {} does not exist",
                        path.display(),
                        dir.display()
                    ));
                }
            }
            // Probe that the file can be written before handing it to the rotator.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("--log-file {}: {e}", path.display()))?;
            let rotate = FileRotate::new(
                path,
                AppendCount::new(s.keep.max(1)),
                ContentLimit::BytesSurpassed(s.max_size.max(1024) as usize),
                Compression::None,
                #[cfg(unix)]
                None,
            );
            // Written in pieces of at most an eighth of the size, so that each file stays
            // within the size and a piece (or one line).
            let piece = (s.max_size.max(1024) / 8).min(buffered::BATCH_BYTES as u64) as usize;
            (
                Box::new(rotate) as Box<dyn std::io::Write + Send>,
                false,
                piece,
            )
        }
        None => (
            Box::new(std::io::stderr()) as Box<dyn std::io::Write + Send>,
            std::io::stderr().is_terminal(),
            usize::MAX,
        ),
    };
    // Lines are gathered and written in few system calls (warnings and errors at once).
    let writer = WRITER
        .get_or_init(|| BufferedLog::with_piece(writer, piece))
        .clone();
    // Under systemd, journald stamps each line itself.
    let journald = s.file.is_none() && std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    let result = if s.json {
        builder.json().flatten_event(true).try_init()
    } else if journald {
        builder.with_ansi(false).without_time().try_init()
    } else {
        builder.with_ansi(ansi).try_init()
    };
    result.map_err(|e| format!("cannot set up logging: {e}"))
}
