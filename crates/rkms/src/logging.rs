//! Log output: level from -v / --log-level / RUST_LOG; text or JSON lines; standard error or a
//! size-rotated file; plain lines without time stamps when journald already adds them.
//!
//! Text lines escape what clients control ([`SafeFields`]): one event is always one line with
//! one of each field. Colours only on a terminal, never with `NO_COLOR` set.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::escape;

mod buffered;
mod rotate;
mod stamp;
pub use buffered::BufferedLog;
pub use rotate::RotatingFile;

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
    /// With `file`, standard error gets every line too.
    pub also_stderr: bool,
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
    // `--log-level` is case-insensitive (`DEBUG`, `Info`).
    let given = s.level.as_deref().map(str::to_ascii_lowercase);
    let chosen = given
        .as_deref()
        .unwrap_or(levels[(base + s.verbose as usize).min(levels.len() - 1)]);
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if s.level.is_none() && s.verbose == 0 && !spec.trim().is_empty() => {
            rust_log_filter(&spec)?
        }
        _ => Targets::new().with_default(level_filter(chosen)),
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
            let rotate = RotatingFile::open(path, s.max_size.max(1024), s.keep)
                .map_err(|e| format!("--log-file {}: {e}", path.display()))?;
            // Written in pieces of at most an eighth of the size, so that each file stays
            // within the size and a piece (or one line).
            let piece = (s.max_size.max(1024) / 8).min(buffered::BATCH_BYTES as u64) as usize;
            let writer: Box<dyn std::io::Write + Send> = if s.also_stderr {
                Box::new(Tee(rotate, std::io::stderr()))
            } else {
                Box::new(rotate)
            };
            (writer, false, piece)
        }
        None => (
            Box::new(std::io::stderr()) as Box<dyn std::io::Write + Send>,
            use_colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            ),
            usize::MAX,
        ),
    };
    // Lines are gathered and written in few system calls (warnings and errors at once).
    let writer = WRITER
        .get_or_init(|| BufferedLog::with_piece(writer, piece))
        .clone();
    // Under systemd, journald stamps each line itself.
    let journald = s.file.is_none() && std::env::var_os("JOURNAL_STREAM").is_some();
    // The builder's own level (info unless told) would come before `filter`: all levels
    // pass it, `filter` chooses.
    let builder = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_writer(writer)
        .with_timer(stamp::CachedSystemTime)
        .with_target(false);
    let result = if s.json {
        builder
            .json()
            .flatten_event(true)
            .finish()
            .with(filter)
            .try_init()
    } else if journald {
        builder
            .fmt_fields(SafeFields)
            .with_ansi(false)
            .without_time()
            .finish()
            .with(filter)
            .try_init()
    } else {
        builder
            .fmt_fields(SafeFields)
            .with_ansi(ansi)
            .finish()
            .with(filter)
            .try_init()
    };
    result.map_err(|e| format!("cannot set up logging: {e}"))
}

/// The level of a name rkms' options give (error … trace), info for another.
fn level_filter(name: &str) -> LevelFilter {
    name.parse().unwrap_or(LevelFilter::INFO)
}

/// The filter `RUST_LOG` asks for: comma-separated directives, each a level (`debug`, also
/// `off`, or 1-5), a target (`rkms`: every level) or `target=level`
/// (`warn,rkms::server=debug`); the most specific target wins. Anything else is refused with
/// the directive at fault (span and field filters, `target[span{field}]=level`, are not
/// supported).
pub fn rust_log_filter(spec: &str) -> Result<Targets, String> {
    let mut filter = Targets::new();
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let bad = |why: &str| {
            format!(
                "RUST_LOG: '{}': {why} (expected LEVEL, TARGET or TARGET=LEVEL, separated by \
                 commas, LEVEL one of off, error, warn, info, debug, trace)",
                escape::terminal(directive)
            )
        };
        let (target, level) = match directive.split_once('=') {
            Some((target, level)) => {
                let level = level
                    .trim()
                    .parse::<LevelFilter>()
                    .map_err(|_| bad("not a level"))?;
                (Some(target.trim()), level)
            }
            None => match directive.parse::<LevelFilter>() {
                Ok(level) => (None, level),
                Err(_) => (Some(directive), LevelFilter::TRACE),
            },
        };
        match target {
            None => filter = filter.with_default(level),
            Some(target) => {
                let valid = !target.is_empty()
                    && target
                        .chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ':' | '.'));
                if !valid {
                    return Err(bad(
                        "not a target (span and field filters are not supported)",
                    ));
                }
                filter = filter.with_target(target, level);
            }
        }
    }
    Ok(filter)
}

/// Writes every piece to both writers (the log file and standard error): a failure of the
/// second does not lose the first's copy.
struct Tee<A, B>(A, B);

impl<A: std::io::Write, B: std::io::Write> std::io::Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf)?;
        let _ = self.1.write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.1.flush();
        self.0.flush()
    }
}

/// Whether log lines are coloured: on a terminal, unless the `NO_COLOR` convention
/// (<https://no-color.org>) asks for none (the variable `no_color` set and not empty).
pub fn use_colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// The fields of a text log line, escaped: the message with control characters escaped
/// ([`escape::terminal`]), then `name=value` with each value through [`escape::log_value`]
/// (quoted when it holds white space, `=`, `"` or an escaped character). A client's text can
/// therefore neither start a new line, nor reach the terminal as a control sequence, nor add
/// a field.
#[derive(Debug, Clone, Copy, Default)]
pub struct SafeFields;

impl<'writer> FormatFields<'writer> for SafeFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = SafeVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

thread_local! {
    /// The text of the field being written (see [`SafeVisitor::record_debug`]).
    static DEBUG_TEXT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Largest field text buffer kept for the next field (a longer one is given back).
const DEBUG_TEXT_KEPT: usize = 4096;

/// Writes one event's fields (see [`SafeFields`]).
struct SafeVisitor<'a> {
    writer: Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl SafeVisitor<'_> {
    fn write(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        // Metadata of events coming from the `log` crate, already shown.
        if name.starts_with("log.") {
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        let sep = if std::mem::take(&mut self.first) {
            ""
        } else {
            " "
        };
        // Pieces written as they are (no formatting machinery: one line per activation).
        let w = &mut self.writer;
        self.result = if name == "message" {
            // Borrowed as it is when there is nothing to escape (the usual case).
            w.write_str(sep)
                .and_then(|()| w.write_str(&escape::terminal(value)))
        } else {
            w.write_str(sep)
                .and_then(|()| w.write_str(name))
                .and_then(|()| w.write_str("="))
                .and_then(|()| escape::write_log_value(w, value))
        };
    }
}

impl Visit for SafeVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.write(field, &value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // The value's text goes through a buffer kept by the thread (no allocation per field);
        // a value whose formatting logs itself gets a buffer of its own.
        DEBUG_TEXT.with(|cell| match cell.try_borrow_mut() {
            Ok(mut text) => {
                text.clear();
                let _ = write!(text, "{value:?}");
                self.write(field, &text);
                if text.capacity() > DEBUG_TEXT_KEPT {
                    *text = String::new();
                }
            }
            Err(_) => self.write(field, &format!("{value:?}")),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(f: impl FnOnce()) -> String {
        let buf = Buffer::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .fmt_fields(SafeFields)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// The `key=value` tokens of a text log line (spaces inside quotes do not split).
    fn fields(line: &str) -> Vec<(String, String)> {
        let mut tokens = vec![String::new()];
        let (mut quoted, mut escaped) = (false, false);
        for c in line.chars() {
            if escaped {
                escaped = false;
            } else if quoted && c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = !quoted;
            } else if c == ' ' && !quoted {
                tokens.push(String::new());
                continue;
            }
            tokens.last_mut().unwrap().push(c);
        }
        tokens
            .into_iter()
            .filter_map(|t| {
                let (k, v) = t.split_once('=')?;
                (!k.contains('"')).then(|| (k.to_string(), v.to_string()))
            })
            .collect()
    }

    #[test]
    fn a_hostile_value_stays_one_field_on_one_line() {
        let ws = "PC01 cmid=forged product=forged\n2026-01-01T00:00:00Z  INFO forged line \
                  \u{1b}]0;title\u{7}\u{1b}[2J\u{9b}1m\u{202e}\u{2028}x=\"y\"\r";
        let text = logged(|| {
            tracing::info!(workstation = %ws, cmid = "real", "activated");
        });
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(
            !text.trim_end_matches('\n').chars().any(escape::is_unsafe),
            "{text:?}"
        );
        let keys: Vec<String> = fields(text.trim_end()).into_iter().map(|f| f.0).collect();
        assert_eq!(keys, ["workstation", "cmid"], "{text}");
        assert!(text.contains("workstation=\"PC01 cmid=forged"), "{text}");
        assert!(text.trim_end().ends_with(" cmid=real"), "{text}");
    }

    #[test]
    fn the_message_and_every_kind_of_value_are_escaped() {
        let text = logged(|| {
            let err = std::io::Error::other("bad\nline");
            tracing::warn!(
                s = "tab\there",
                d = ?"quo\"te",
                e = &err as &(dyn std::error::Error + 'static),
                n = 5,
                "message\u{1b}[31m with\nnewline"
            );
        });
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("message\\u{1b}[31m with\\nnewline"), "{text}");
        assert!(text.contains(" s=\"tab\\there\""), "{text}");
        assert!(text.contains(" e=\"bad\\nline\""), "{text}");
        assert!(text.contains(" n=5"), "{text}");
        assert!(text.contains(" d=\"\\\"quo\\\\\\\"te\\\"\""), "{text}");
    }

    #[test]
    fn rust_log_takes_levels_and_targets() {
        use tracing::Level;
        let f = rust_log_filter("warn, rkms::server=debug,rkms_store").unwrap();
        assert!(f.would_enable("rkms::commands", &Level::WARN));
        assert!(!f.would_enable("rkms::commands", &Level::INFO));
        assert!(f.would_enable("rkms::server::connection", &Level::DEBUG));
        assert!(!f.would_enable("rkms::server", &Level::TRACE));
        assert!(f.would_enable("rkms_store::writer", &Level::TRACE));
        let f = rust_log_filter("INFO,rkms=off").unwrap();
        assert!(f.would_enable("tokio", &Level::INFO));
        assert!(!f.would_enable("rkms::server", &Level::ERROR));
        let f = rust_log_filter("2").unwrap();
        assert!(f.would_enable("rkms", &Level::WARN));
        assert!(!f.would_enable("rkms", &Level::INFO));
    }

    #[test]
    fn a_bad_rust_log_is_refused_naming_the_directive() {
        for (spec, directive) in [
            ("info,rkms=loud", "rkms=loud"),
            ("rkms[conn]=debug", "rkms[conn]=debug"),
            ("=debug", "=debug"),
            ("debug,rkms{a=1}", "rkms{a=1}"),
        ] {
            let e = rust_log_filter(spec).unwrap_err();
            assert!(
                e.starts_with(&format!("RUST_LOG: '{directive}': ")),
                "{spec}: {e}"
            );
            assert!(e.contains("TARGET=LEVEL"), "{e}");
        }
        let e = rust_log_filter("x=\u{1b}[2J").unwrap_err();
        assert!(!e.contains('\u{1b}'), "{e:?}");
    }
}
