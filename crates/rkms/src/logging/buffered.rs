//! A log writer that gathers lines and writes them in few system calls.
//!
//! Every activation logs one info line; writing each with its own `write(2)` to standard
//! error, a file or the journal's socket cost more CPU than answering the request. Here an
//! info, debug or trace line coming within [`QUIET`] of the previous write is appended to a
//! buffer, written out when it holds [`BATCH_BYTES`], and otherwise by a background thread at
//! most [`DELAY`] after the first line was buffered; a line after a quiet spell is written at
//! once (so a lightly loaded host logs as it always did). Warnings and errors are written at
//! once (with every line buffered before them, in order), and [`BufferedLog::flush`] writes
//! what is buffered (the program calls it before it exits).

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

/// A buffer this full is written at once.
pub const BATCH_BYTES: usize = 32 * 1024;

/// Longest time a buffered line waits before it is written.
pub const DELAY: Duration = Duration::from_millis(20);

/// A line coming this long after the previous write (with nothing buffered) is written at once.
pub const QUIET: Duration = Duration::from_millis(1);

struct Pending {
    lines: Vec<u8>,
    /// When the output was last written.
    last_write: Option<Instant>,
    /// Whether the background thread waits for a first line (and must be woken for it).
    idle: bool,
}

struct Inner {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Held while writing, so lines reach the output in the order they were logged.
    out: Mutex<Box<dyn Write + Send>>,
    /// Largest write of several lines (a size-rotated file rotates after the write that
    /// passes its size, so it overshoots by at most this, or one line).
    piece: usize,
}

/// Writes `data` (whole lines) to `out` in writes of at most `piece` bytes cut after a newline,
/// or of one line when a line alone is longer.
fn write_pieces(out: &mut dyn Write, mut data: &[u8], piece: usize) {
    while !data.is_empty() {
        let mut end = data.len();
        if end > piece {
            // The last line end within the piece (searched back from its end: one line, not
            // every line of the buffer), else the end of the first line.
            end = match data[..piece].iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => data
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(data.len(), |i| i + 1),
            };
        }
        // A log line that cannot be written has nowhere else to go.
        let _ = out.write_all(&data[..end]);
        data = &data[end..];
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while logging leaves nothing half-done here worth refusing to log for.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    /// Writes every buffered line (and `also`) to the output, in order.
    fn write_out(&self, also: &[u8]) {
        let mut out = lock(&self.out);
        let lines = {
            let mut pending = lock(&self.pending);
            pending.last_write = Some(Instant::now());
            std::mem::take(&mut pending.lines)
        };
        write_pieces(&mut **out, &lines, self.piece);
        write_pieces(&mut **out, also, self.piece);
        let _ = out.flush();
        // Keep the buffer's memory for the next lines (unless a burst made it large).
        if lines.capacity() <= 2 * BATCH_BYTES {
            let mut pending = lock(&self.pending);
            if pending.lines.is_empty() {
                let mut lines = lines;
                lines.clear();
                pending.lines = lines;
            }
        }
    }

    fn append(&self, line: &[u8]) {
        let mut pending = lock(&self.pending);
        if pending.lines.is_empty() && pending.last_write.is_none_or(|t| t.elapsed() >= QUIET) {
            drop(pending);
            self.write_out(line);
            return;
        }
        pending.lines.extend_from_slice(line);
        if pending.lines.len() >= BATCH_BYTES {
            drop(pending);
            self.write_out(&[]);
        } else if pending.idle {
            pending.idle = false;
            self.wake.notify_one();
        }
    }

    /// The background thread: waits for a first buffered line, lets others join it for
    /// [`DELAY`], then writes them.
    fn run(&self) {
        loop {
            {
                let mut pending = lock(&self.pending);
                while pending.lines.is_empty() {
                    pending.idle = true;
                    pending = self.wake.wait(pending).unwrap_or_else(|p| p.into_inner());
                }
                pending.idle = false;
            }
            std::thread::sleep(DELAY);
            self.write_out(&[]);
        }
    }
}

/// A [`MakeWriter`] for the log: see the module documentation. Clones share one buffer.
#[derive(Clone)]
pub struct BufferedLog {
    inner: Arc<Inner>,
    /// Whether the background thread runs (else every line is written at once).
    buffered: bool,
}

impl BufferedLog {
    /// Buffers lines for `out`, written by a background thread (started here); when no
    /// thread can be started, every line is written at once.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self::with_piece(out, usize::MAX)
    }

    /// Like [`BufferedLog::new`], writing at most `piece` bytes at a time (whole lines; a
    /// longer line alone), for a file rotated by size.
    pub fn with_piece(out: Box<dyn Write + Send>, piece: usize) -> Self {
        let inner = Arc::new(Inner {
            pending: Mutex::new(Pending {
                lines: Vec::new(),
                last_write: None,
                idle: false,
            }),
            wake: Condvar::new(),
            out: Mutex::new(out),
            piece: piece.max(1),
        });
        let background = Arc::clone(&inner);
        let buffered = std::thread::Builder::new()
            .name("rkms-log".into())
            .spawn(move || background.run())
            .is_ok();
        Self { inner, buffered }
    }

    /// Writes every buffered line now.
    pub fn flush(&self) {
        self.inner.write_out(&[]);
    }
}

/// One log line on its way to the buffer (or, `urgent`, straight to the output).
pub struct LogLine<'a> {
    inner: &'a Inner,
    urgent: bool,
}

impl Write for LogLine<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.urgent {
            self.inner.write_out(buf);
        } else {
            self.inner.append(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BufferedLog {
    type Writer = LogLine<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LogLine {
            inner: &self.inner,
            urgent: true,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        LogLine {
            inner: &self.inner,
            urgent: !self.buffered || *meta.level() <= Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// An output that keeps what it is given and counts the writes.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut s = lock(&self.0);
            s.0.extend_from_slice(buf);
            s.1 += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(lock(&self.0).0.clone()).unwrap()
        }
        fn writes(&self) -> usize {
            lock(&self.0).1
        }
    }

    /// An output that keeps each write apart.
    struct RecordingSink<'a>(&'a mut Vec<Vec<u8>>);

    impl Write for RecordingSink<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn line(log: &BufferedLog, level: Level, text: &str) {
        let mut w = LogLine {
            inner: &log.inner,
            urgent: !log.buffered || level <= Level::WARN,
        };
        w.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn info_lines_are_gathered_and_written_together_soon_after() {
        let sink = Sink::default();
        let log = BufferedLog::new(Box::new(sink.clone()));
        for i in 0..100 {
            line(&log, Level::INFO, &format!("info {i}\n"));
        }
        // Not written one by one: the first line at once (after a quiet spell), the others
        // gathered (at most the background thread's write has happened since).
        assert!(sink.writes() <= 2, "{} writes", sink.writes());
        assert!(sink.text().starts_with("info 0\n"), "{}", sink.text());
        let started = Instant::now();
        while !sink.text().contains("info 99\n") {
            assert!(started.elapsed() < Duration::from_secs(5), "never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        let expected: String = (0..100).map(|i| format!("info {i}\n")).collect();
        assert_eq!(sink.text(), expected);
        assert!(sink.writes() <= 3, "{} writes", sink.writes());
    }

    #[test]
    fn a_line_after_a_quiet_spell_is_written_at_once() {
        let sink = Sink::default();
        let log = BufferedLog::new(Box::new(sink.clone()));
        line(&log, Level::INFO, "alone\n");
        assert_eq!(sink.text(), "alone\n");
        std::thread::sleep(QUIET * 2);
        log.flush();
        std::thread::sleep(QUIET * 2);
        line(&log, Level::INFO, "again\n");
        assert_eq!(sink.text(), "alone\nagain\n");
    }

    #[test]
    fn a_warning_is_written_at_once_after_the_lines_before_it() {
        let sink = Sink::default();
        let log = BufferedLog::new(Box::new(sink.clone()));
        line(&log, Level::INFO, "first\n");
        line(&log, Level::DEBUG, "second\n");
        line(&log, Level::INFO, "third\n");
        line(&log, Level::WARN, "warned\n");
        assert_eq!(sink.text(), "first\nsecond\nthird\nwarned\n");
        line(&log, Level::ERROR, "failed\n");
        assert_eq!(sink.text(), "first\nsecond\nthird\nwarned\nfailed\n");
    }

    #[test]
    fn flush_writes_what_is_buffered_and_a_full_buffer_goes_out_alone() {
        let sink = Sink::default();
        let log = BufferedLog::new(Box::new(sink.clone()));
        line(&log, Level::INFO, "at once\n");
        line(&log, Level::INFO, "pending\n");
        log.flush();
        assert_eq!(sink.text(), "at once\npending\n");
        // Past BATCH_BYTES the buffer is written by the thread that filled it.
        let long = "x".repeat(1000) + "\n";
        for _ in 0..(BATCH_BYTES / long.len() + 1) {
            line(&log, Level::INFO, &long);
        }
        assert!(sink.text().len() > BATCH_BYTES, "{}", sink.text().len());
    }

    #[test]
    fn pieces_are_whole_lines_within_the_limit() {
        let sink = Sink::default();
        let mut out = sink.clone();
        let data = b"aaaa\nbbbb\ncccccccccccc\ndd\n";
        write_pieces(&mut out, data, 10);
        assert_eq!(sink.text(), String::from_utf8_lossy(data));
        // "aaaa\nbbbb\n" (10), the long line alone (13), "dd\n".
        assert_eq!(sink.writes(), 3);
        let all = Sink::default();
        write_pieces(&mut all.clone(), data, usize::MAX);
        assert_eq!(all.writes(), 1);
        // Every limit: whole lines, each write within the limit unless it is one longer line,
        // and as few writes as that allows (each as long as fits).
        let lines: Vec<String> = (0..40).map(|i| "y".repeat(i * 7 % 23) + "\n").collect();
        let data = lines.concat();
        for piece in 1..=data.len() + 1 {
            let mut written = Vec::new();
            let mut cut = RecordingSink(&mut written);
            write_pieces(&mut cut, data.as_bytes(), piece);
            assert_eq!(written.concat(), data.as_bytes(), "limit {piece}");
            let mut rest = lines.iter();
            for w in &written {
                let mut taken = 0;
                while taken < w.len() {
                    taken += rest.next().expect("no more lines").len();
                }
                assert_eq!(taken, w.len(), "limit {piece}: a write ends at a line end");
                let first = w.iter().position(|&b| b == b'\n').unwrap() + 1;
                assert!(w.len() <= piece || first == w.len(), "limit {piece}");
            }
            for pair in written.windows(2) {
                let next_line = pair[1].iter().position(|&b| b == b'\n').unwrap() + 1;
                assert!(
                    pair[0].len() + next_line > piece,
                    "limit {piece}: could take more"
                );
            }
        }
    }

    #[test]
    fn the_make_writer_sorts_lines_by_level() {
        let log = BufferedLog::new(Box::new(Sink::default()));
        tracing::subscriber::with_default(tracing_subscriber::registry(), || {
            let info = tracing::info_span!("i");
            let warn = tracing::warn_span!("w");
            let error = tracing::error_span!("e");
            assert!(!log.make_writer_for(info.metadata().unwrap()).urgent);
            assert!(log.make_writer_for(warn.metadata().unwrap()).urgent);
            assert!(log.make_writer_for(error.metadata().unwrap()).urgent);
        });
        assert!(log.make_writer().urgent);
    }
}
