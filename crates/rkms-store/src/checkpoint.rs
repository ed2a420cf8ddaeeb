//! Checkpoints an SQLite database's write-ahead log from a thread of its own.
//!
//! With SQLite's automatic checkpoint, the commit that fills the log past its threshold copies
//! the log into the database and waits for two `fsync`s, so the activations waiting for that
//! commit wait for the disk. The writer's connection turns the automatic checkpoint off and
//! this thread checkpoints instead, on its own connection, every [`INTERVAL`]: commits only
//! append to the log, and the log stays small. A passive checkpoint never blocks the writer
//! or readers; what it cannot copy yet it copies the next time.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How often the log is checkpointed.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// The background checkpoint of one database; stops (after a last checkpoint) when dropped.
#[derive(Debug)]
pub struct Checkpointer {
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
        conn.busy_timeout(Duration::from_secs(5))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("rkms-sqlite-checkpoint".into())
            .spawn(move || loop {
                let last = !matches!(
                    stopped.recv_timeout(INTERVAL),
                    Err(RecvTimeoutError::Timeout)
                );
                // A failure (the disk full, say) leaves the log to the next attempt; the
                // writer reports its own write errors.
                let _ = checkpoint(&conn);
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
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// One passive checkpoint: (log frames, frames copied into the database).
pub fn checkpoint(conn: &Connection) -> Result<(i64, i64), rusqlite::Error> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get(1)?, row.get(2)?))
    })
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
