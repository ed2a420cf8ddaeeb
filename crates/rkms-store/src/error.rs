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
    /// directory, locked, an invalid PostgreSQL connection string, a PostgreSQL schema holding
    /// other tables … `message` carries the database's own message (and a hint where useful).
    /// For PostgreSQL, `path` is the database as `postgres://user@host:port/db`.
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
        /// The version found (SQLite: `PRAGMA user_version`; PostgreSQL: the highest
        /// version in `rkms_schema_version`).
        found: u32,
        /// The newest schema version this binary knows.
        supported: u32,
    },
    /// A database opened read-only has an older schema than this binary needs, and a read-only
    /// connection cannot migrate it (open it once read-write to migrate).
    #[error("client database {} has schema version {found}, this rkms needs {required}; open it read-write once to migrate it", .path.display())]
    NeedsMigration {
        /// The database file (PostgreSQL: `postgres://user@host:port/db`).
        path: PathBuf,
        /// The version found (0: an empty PostgreSQL database).
        found: u32,
        /// The schema version this binary reads.
        required: u32,
    },
    /// Applying a schema migration failed (the whole upgrade was rolled back).
    #[error("cannot migrate client database {} to schema version {version}: {message}", .path.display())]
    Migration {
        /// The database file (PostgreSQL: `postgres://user@host:port/db`).
        path: PathBuf,
        /// The migration that failed.
        version: u32,
        /// The database's message.
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
    #[cfg(feature = "sqlite")]
    #[error("client database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The `--db` value names a backend this build left out (Cargo feature `sqlite` or
    /// `postgres`).
    #[error("this rkms was built without the `{feature}` feature, so it cannot open {what}; use a build with it (the default build has every feature), or --db none to keep records in memory only")]
    NotBuilt {
        /// The missing Cargo feature.
        feature: &'static str,
        /// What was asked for: "the SQLite file PATH" or "the PostgreSQL database URL".
        what: String,
    },
    /// The PostgreSQL server cannot be reached: connecting failed, or the connection was lost
    /// (server restarted, network down, backend terminated). The next call reconnects.
    #[error("client database {target} is unreachable: {message}")]
    Unavailable {
        /// The database, as `postgres://user@host:port/db` (never with the password).
        target: String,
        /// Why, as the client library or the server said it.
        message: String,
    },
    /// PostgreSQL refused a statement on an open connection.
    #[error("client database error: {message}")]
    Postgres {
        /// The server's message (severity, text, detail and hint).
        message: String,
        /// The SQLSTATE code, e.g. `"40P01"`, when the server sent one.
        code: Option<String>,
    },
    /// The store does not implement this operation (a [`crate::ClientStore`] of another crate
    /// that keeps a trait method's default).
    #[error("this client store does not support {0}")]
    Unsupported(&'static str),
    /// Copying one store into another ([`crate::copy_all`]) was refused or came out incomplete.
    #[error("cannot copy the client store: {0}")]
    Copy(String),
}

/// SQLSTATE codes (or classes, ending in `*`) of PostgreSQL failures that go away on their own:
/// lost connections, a server starting or shutting down, deadlocks and serialization
/// failures, exhausted resources, a read-only standby during fail-over, a cancelled statement.
const TRANSIENT_SQLSTATES: &[&str] = &[
    "08*", "40001", "40P01", "53*", "57P01", "57P02", "57P03", "57014", "55P03", "25006",
];

impl StoreError {
    /// Whether the failure is likely to go away by itself (the database is unreachable, busy,
    /// out of space, restarting …) so that retrying the same write later makes sense, as
    /// opposed to a failure of the data or the schema, which retrying would repeat forever.
    /// [`crate::Writer`] keeps the activations of a transiently failed write in its retry
    /// buffer and drops those of a permanently failed one.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable { .. } => true,
            Self::Postgres {
                code: Some(code), ..
            } => TRANSIENT_SQLSTATES
                .iter()
                .any(|t| match t.strip_suffix('*') {
                    Some(class) => code.starts_with(class),
                    None => code == t,
                }),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(
                    rusqlite::ErrorCode::DatabaseBusy
                        | rusqlite::ErrorCode::DatabaseLocked
                        | rusqlite::ErrorCode::SystemIoFailure
                        | rusqlite::ErrorCode::DiskFull
                        | rusqlite::ErrorCode::CannotOpen
                        | rusqlite::ErrorCode::OutOfMemory
                )
            ),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors() {
        let unavailable = StoreError::Unavailable {
            target: "postgres://rkms@db:5432/rkms".into(),
            message: "connection refused".into(),
        };
        assert!(unavailable.is_transient());
        let pg = |code: &str| StoreError::Postgres {
            message: String::new(),
            code: Some(code.into()),
        };
        for code in ["08006", "40P01", "53100", "57P01", "25006"] {
            assert!(pg(code).is_transient(), "{code}");
        }
        for code in ["23505", "42P01", "22021", "57P04"] {
            assert!(!pg(code).is_transient(), "{code}");
        }
        assert!(!StoreError::Corrupt("x".into()).is_transient());
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn busy_sqlite_is_transient() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(StoreError::Sqlite(busy).is_transient());
    }
}
