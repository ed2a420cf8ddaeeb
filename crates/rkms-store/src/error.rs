//! The error type every store operation returns.

use std::path::PathBuf;

/// Why a client store could not be opened, migrated, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The directory that should hold the database file does not exist (it is never created).
    #[error("cannot open client database {}: directory {} does not exist", .path.display(), .directory.display())]
    MissingDirectory {
        /// The database file that was asked for.
        path: PathBuf,
        /// The missing directory.
        directory: PathBuf,
    },
    /// The database could not be opened or set up: not an SQLite file, unreadable, read-only
    /// directory, locked, … `message` carries SQLite's own message (and a hint where useful).
    #[error("cannot open client database {}: {message}", .path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What went wrong, including SQLite's message.
        message: String,
    },
    /// The database was written by a newer rkms: its schema version is unknown to this binary.
    #[error("client database schema version {found} is newer than this rkms supports ({supported}); upgrade rkms or use another database")]
    TooNew {
        /// `PRAGMA user_version` found in the file.
        found: u32,
        /// The newest schema version this binary knows.
        supported: u32,
    },
    /// A database opened read-only has an older schema than this binary needs, and a read-only
    /// connection cannot migrate it (open it once read-write to migrate).
    #[error("client database {} has schema version {found}, this rkms needs {required}; open it read-write once to migrate it", .path.display())]
    NeedsMigration {
        /// The database file.
        path: PathBuf,
        /// `PRAGMA user_version` found in the file.
        found: u32,
        /// The schema version this binary reads.
        required: u32,
    },
    /// Applying a schema migration failed (the whole upgrade was rolled back).
    #[error("cannot migrate client database {} to schema version {version}: {message}", .path.display())]
    Migration {
        /// The database file.
        path: PathBuf,
        /// The migration that failed.
        version: u32,
        /// SQLite's message.
        message: String,
    },
    /// A stored row holds a value this binary cannot decode (bad UUID text, out-of-range number).
    #[error("corrupt client record: {0}")]
    Corrupt(String),
    /// A py-kms database could not be read: missing `clients` table or a required column.
    #[error("cannot import py-kms database {}: {message}", .path.display())]
    Import {
        /// The py-kms database file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Any other SQLite failure while reading or writing an open database.
    #[error("client database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}
