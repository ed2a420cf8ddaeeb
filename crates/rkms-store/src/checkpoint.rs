//! Checkpoints an SQLite database's write-ahead log from a thread of its own.
//!
//! With SQLite's automatic checkpoint, the commit that fills the log past its threshold copies
//! the log into the database and waits for two `fsync`s, so the activations waiting for that
//! commit wait for the disk. The writer's connection turns the automatic checkpoint off and
//! this thread checkpoints instead, on its own connection, every [`INTERVAL`]: commits only
//! append to the log, and the log stays small. A passive checkpoint never blocks the writer
//! or readers; what it cannot copy yet it copies the next time.
//!
//! SQLite starts the log over from its beginning only when a write begins with the whole log
//! copied. Under a steady stream of commits that never happens (each passive checkpoint ends
//! behind the commits made while it ran), and the log grows without bound: 485 MB for 32,000
//! records in one benchmark run, every commit appending to a longer file (new pages for the
//! kernel to allocate and zero) and looking frames up in a larger index. So once the log
//! holds more than [`RESTART_FRAMES`] after the passive checkpoint, a `RESTART` checkpoint
//! copies the rest (little, right after the passive one) and starts the log over. It holds
//! off new commits while it runs, and waits at most [`RESTART_WAIT`] for a reader still on
//! an older snapshot (a long dashboard query). A `RESTART` also needs the write lock, which a
//! writer committing back to back may never leave free long enough: then the thread asks the
//! writer ([`Checkpointer::restart_wanted`]) to start the log over itself, between two of its
//! transactions, where nothing competes for that lock.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, ErrorCode, OpenFlags, MAIN_DB};

/// How often the log is checkpointed.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// Log frames (pages of about 4 KB) beyond which the log is started over (about 32 MB).
pub const RESTART_FRAMES: i64 = 8192;

/// Longest wait of a `RESTART` checkpoint for readers of older snapshots (new commits wait
/// meanwhile).
pub const RESTART_WAIT: Duration = Duration::from_millis(20);

/// Busy timeout of the checkpoint connection otherwise.
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// The background checkpoint of one database; stops (after a last checkpoint) when dropped.
#[derive(Debug)]
pub struct Checkpointer {
    /// Set when a `RESTART` could not finish: the writer should start the log over.
    wanted: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` (which exists and is in WAL mode).
    pub fn start(path: &Path) -> Result<Self, rusqlite::Error> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_WAIT)?;
        // This connection checkpoints through `sqlite3_wal_checkpoint_v2`, which never reads
        // the schema (`PRAGMA wal_checkpoint` would parse it, every table, index and trigger,
        // into memory this connection keeps: about 40 kB). It only needs the log opened, which
        // any read does: the header's change counter, read without the schema.
        conn.query_row("PRAGMA data_version", [], |_| Ok(()))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let wanted = Arc::new(AtomicBool::new(false));
        let ask = wanted.clone();
        let thread = std::thread::Builder::new()
            .name("rkms-sqlite-checkpoint".into())
            .spawn(move || loop {
                let last = !matches!(
                    stopped.recv_timeout(INTERVAL),
                    Err(RecvTimeoutError::Timeout)
                );
                // A failure (the disk full, say) leaves the log to the next attempt; the
                // writer reports its own write errors.
                if let Ok((log, _)) = checkpoint(&conn) {
                    if log > RESTART_FRAMES {
                        // The first column of the answer: 1 when the checkpoint could not
                        // finish (a writer or an older reader held it off).
                        let done = restart(&conn).is_ok_and(|(busy, _, _)| busy == 0);
                        if !done {
                            ask.store(true, Ordering::Relaxed);
                        }
                    }
                }
                if last {
                    return;
                }
            })
            .map_err(|e| {
                rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                    Some(format!("cannot start the checkpoint thread: {e}")),
                )
            })?;
        Ok(Checkpointer {
            wanted,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Checkpointer {
    /// Whether the log should be started over by the writer (once: the request is cleared).
    pub fn restart_wanted(&self) -> bool {
        self.wanted.swap(false, Ordering::Relaxed)
    }
}

/// One passive checkpoint: (log frames, frames copied into the database; both -1 when the
/// connection has not opened the log yet).
pub fn checkpoint(conn: &Connection) -> Result<(i64, i64), rusqlite::Error> {
    conn.wal_checkpoint_v2(Some(MAIN_DB), CheckpointMode::PASSIVE)
        .map(|(log, copied)| (log.into(), copied.into()))
}

/// Copies the rest of the log and starts it over, waiting at most [`RESTART_WAIT`] for
/// readers and writers: (busy, log frames, frames copied), `busy` 1 when they kept it from
/// finishing (the next write then does not start the log over).
pub fn restart(conn: &Connection) -> Result<(i64, i64, i64), rusqlite::Error> {
    restart_then(conn, BUSY_WAIT)
}

/// [`restart`], then the connection's busy timeout set back to `busy_wait` (the writer's
/// connection runs it between two transactions when [`Checkpointer::restart_wanted`]).
pub fn restart_then(
    conn: &Connection,
    busy_wait: Duration,
) -> Result<(i64, i64, i64), rusqlite::Error> {
    conn.busy_timeout(RESTART_WAIT)?;
    // As `PRAGMA wal_checkpoint(RESTART)` answers: SQLITE_BUSY is a checkpoint held off.
    let result = match conn.wal_checkpoint_v2(Some(MAIN_DB), CheckpointMode::RESTART) {
        Ok((log, copied)) => Ok((0, log.into(), copied.into())),
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => Ok((1, -1, -1)),
        Err(e) => Err(e),
    };
    conn.busy_timeout(busy_wait)?;
    result
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
