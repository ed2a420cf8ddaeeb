//! [`open_store`]: turns the `--db` option into a store.

use std::path::Path;

use crate::{ClientStore, MemoryStore, PgStore, SqliteStore, StoreError};

/// The `--db` value that selects the in-memory store.
pub const NO_DATABASE: &str = "none";

/// What a `--db` value names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind<'a> {
    /// [`NO_DATABASE`]: records kept in memory.
    Memory,
    /// An SQLite file (the value, or what follows `sqlite:`).
    Sqlite(&'a Path),
    /// A PostgreSQL connection string (`postgres://…` or `postgresql://…`).
    Postgres(&'a str),
}

impl<'a> StoreKind<'a> {
    /// Reads a `--db` value: [`NO_DATABASE`]; `postgres://…` or `postgresql://…`; `sqlite:PATH`;
    /// anything else is the path of an SQLite file.
    pub fn parse(spec: &'a str) -> Self {
        if spec == NO_DATABASE {
            Self::Memory
        } else if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
            Self::Postgres(spec)
        } else if let Some(path) = spec.strip_prefix("sqlite:") {
            Self::Sqlite(Path::new(path))
        } else {
            Self::Sqlite(Path::new(spec))
        }
    }

    /// Whether the store lives outside the process, shared with other hosts (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

/// The `--db` value `spec` as it may be logged or shown (dashboard settings, error messages):
/// a PostgreSQL connection string without its password (`postgres://user@host:port/db`),
/// anything else unchanged.
pub fn describe_spec(spec: &str) -> String {
    match StoreKind::parse(spec) {
        StoreKind::Postgres(url) => crate::pg::describe_url(url),
        _ => spec.to_string(),
    }
}

/// Checks the `--db` value `spec` without opening anything: a PostgreSQL connection string
/// must parse, and its TLS files (`sslrootcert`, `sslcert`, `sslkey`) must be readable and
/// usable. Nothing is checked for SQLite and memory.
pub fn check_spec(spec: &str) -> Result<(), StoreError> {
    match StoreKind::parse(spec) {
        StoreKind::Postgres(url) => PgStore::check(url),
        _ => Ok(()),
    }
}

/// Opens the store `spec` names (see [`StoreKind::parse`]) read-write: [`NO_DATABASE`]
/// (`"none"`) gives a [`MemoryStore`]; `postgres://user:password@host:port/db` (or
/// `postgresql://…`) a [`PgStore`] (schema migrated); `sqlite:PATH` or any other value the
/// SQLite file at that path, opened with [`SqliteStore::open`] (its directory must exist: it
/// is never created).
pub fn open_store(spec: &str) -> Result<Box<dyn ClientStore>, StoreError> {
    Ok(match StoreKind::parse(spec) {
        StoreKind::Memory => Box::new(MemoryStore::new()),
        StoreKind::Postgres(url) => Box::new(PgStore::open(url)?),
        StoreKind::Sqlite(path) => Box::new(SqliteStore::open(path)?),
    })
}

/// Opens the store `spec` names for reading (reporting tools such as `rkms clients`): nothing
/// is created or migrated ([`SqliteStore::open_read_only`], [`PgStore::open_read_only`]).
/// [`NO_DATABASE`] gives an empty [`MemoryStore`].
pub fn open_store_read_only(spec: &str) -> Result<Box<dyn ClientStore>, StoreError> {
    Ok(match StoreKind::parse(spec) {
        StoreKind::Memory => Box::new(MemoryStore::new()),
        StoreKind::Postgres(url) => Box::new(PgStore::open_read_only(url)?),
        StoreKind::Sqlite(path) => Box::new(SqliteStore::open_read_only(path)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(StoreKind::parse("none"), StoreKind::Memory);
        assert_eq!(
            StoreKind::parse("postgres://u:p@h/d"),
            StoreKind::Postgres("postgres://u:p@h/d")
        );
        assert_eq!(
            StoreKind::parse("postgresql://h/d"),
            StoreKind::Postgres("postgresql://h/d")
        );
        assert_eq!(
            StoreKind::parse("sqlite:/var/lib/rkms/clients.db"),
            StoreKind::Sqlite(Path::new("/var/lib/rkms/clients.db"))
        );
        assert_eq!(
            StoreKind::parse("clients.db"),
            StoreKind::Sqlite(Path::new("clients.db"))
        );
        assert_eq!(
            describe_spec("postgres://rkms:s3cret@db:5433/clients?connect_timeout=3"),
            "postgres://rkms@db:5433/clients"
        );
        assert_eq!(
            describe_spec("postgresql://rkms:s3cret@db:bad/x"),
            "postgresql://rkms:***@db:bad/x"
        );
        assert_eq!(describe_spec("/var/lib/rkms/c.db"), "/var/lib/rkms/c.db");
        assert!(StoreKind::parse("postgres://h/d").is_shared());
        assert!(!StoreKind::parse("x.db").is_shared());
    }
}
