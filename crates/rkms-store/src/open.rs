//! [`open_store`]: turns the `--db` option into a store. The one place a `--db` value reaches
//! a backend, so the one place a backend left out of the build (Cargo features `sqlite`,
//! `postgres`) is refused by name ([`StoreError::NotBuilt`]).

use std::path::Path;

use crate::{ClientStore, MemoryStore, StoreError};

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

    /// The Cargo feature this kind of store needs, if this build left it out
    /// ([`StoreError::NotBuilt`] then); `Ok` when it is built.
    pub fn check_built(&self) -> Result<(), StoreError> {
        let (feature, what) = match self {
            Self::Sqlite(path) if !cfg!(feature = "sqlite") => {
                ("sqlite", format!("the SQLite file {}", path.display()))
            }
            Self::Postgres(url) if !cfg!(feature = "postgres") => (
                "postgres",
                format!("the PostgreSQL database {}", redact_url(url)),
            ),
            _ => return Ok(()),
        };
        Err(StoreError::NotBuilt { feature, what })
    }
}

/// The store a `--db` value names, once [`StoreKind::check_built`] passed: what [`open_store`]
/// and the others dispatch on.
enum Backend<'a> {
    Memory,
    #[cfg(feature = "sqlite")]
    Sqlite(&'a Path),
    #[cfg(feature = "postgres")]
    Postgres(&'a str),
    /// Never made: keeps the lifetime used in a build without either backend.
    #[allow(dead_code)]
    None(std::marker::PhantomData<&'a ()>),
}

impl<'a> Backend<'a> {
    fn of(spec: &'a str) -> Result<Self, StoreError> {
        let kind = StoreKind::parse(spec);
        kind.check_built()?;
        Ok(match kind {
            #[cfg(feature = "sqlite")]
            StoreKind::Sqlite(path) => Self::Sqlite(path),
            #[cfg(feature = "postgres")]
            StoreKind::Postgres(url) => Self::Postgres(url),
            _ => Self::Memory,
        })
    }
}

/// The `--db` value `spec` as it may be logged or shown (dashboard settings, error messages):
/// a PostgreSQL connection string without its password (`postgres://user@host:port/db`),
/// anything else unchanged.
pub fn describe_spec(spec: &str) -> String {
    match StoreKind::parse(spec) {
        #[cfg(feature = "postgres")]
        StoreKind::Postgres(url) => crate::pg::describe_url(url),
        #[cfg(not(feature = "postgres"))]
        StoreKind::Postgres(url) => redact_url(url),
        _ => spec.to_string(),
    }
}

/// `url` with any password replaced by `***` (for a connection string that does not parse).
pub(crate) fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let start = scheme_end + 3;
        let authority_end = out[start..].find('/').map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..authority_end].rfind('@') {
            if let Some(colon) = out[start..start + at].find(':') {
                out.replace_range(start + colon + 1..start + at, "***");
            }
        }
    }
    // Query or key=value `password=…`.
    let mut result = String::new();
    let mut rest = out.as_str();
    while let Some(i) = rest.find("password=") {
        result.push_str(&rest[..i + 9]);
        result.push_str("***");
        rest = &rest[i + 9..];
        let end = rest.find(['&', ' ']).unwrap_or(rest.len());
        rest = &rest[end..];
    }
    result.push_str(rest);
    result
}

/// Checks the `--db` value `spec` without opening anything: a PostgreSQL connection string
/// must parse, and its TLS files (`sslrootcert`, `sslcert`, `sslkey`) must be readable and
/// usable. Nothing else is checked for SQLite and memory. A backend this build left out is
/// refused ([`StoreError::NotBuilt`]).
pub fn check_spec(spec: &str) -> Result<(), StoreError> {
    match Backend::of(spec)? {
        #[cfg(feature = "postgres")]
        Backend::Postgres(url) => crate::PgStore::check(url),
        _ => Ok(()),
    }
}

/// Opens the store `spec` names (see [`StoreKind::parse`]) read-write: [`NO_DATABASE`]
/// (`"none"`) gives a [`MemoryStore`]; `postgres://user:password@host:port/db` (or
/// `postgresql://…`) a [`PgStore`] (schema migrated); `sqlite:PATH` or any other value the
/// SQLite file at that path, opened with [`SqliteStore::open`] (its directory must exist: it
/// is never created).
///
/// A new SQLite file is created readable by its owner only ([`DB_MODE`]); see
/// [`open_store_with_mode`].
pub fn open_store(spec: &str) -> Result<Box<dyn ClientStore>, StoreError> {
    open_store_with_mode(spec, DB_MODE)
}

/// The permissions of a new SQLite database: read and write for its owner only (client
/// names, addresses and CMIDs are nobody else's business).
pub const DB_MODE: u32 = 0o600;

/// [`open_store`], a new SQLite file created with the Unix permission bits `mode` whatever
/// the umask (SQLite gives its `-wal` and `-shm` files the database's permissions). An
/// existing file keeps its permissions. `mode` is ignored on other systems.
pub fn open_store_with_mode(spec: &str, mode: u32) -> Result<Box<dyn ClientStore>, StoreError> {
    open_store_with(spec, mode, None)
}

/// [`open_store_with_mode`], an SQLite file's writing connection with a page cache of
/// `sqlite_cache_kib` KiB ([`crate::SqliteStore::open_with_cache`]; `None`: the default of
/// [`crate::SqliteStore::open`]). Other stores ignore it.
pub fn open_store_with(
    spec: &str,
    mode: u32,
    sqlite_cache_kib: Option<u64>,
) -> Result<Box<dyn ClientStore>, StoreError> {
    Ok(match Backend::of(spec)? {
        #[cfg(feature = "postgres")]
        Backend::Postgres(url) => Box::new(crate::PgStore::open(url)?),
        #[cfg(feature = "sqlite")]
        Backend::Sqlite(path) => {
            create_database_file(path, mode);
            let cache = sqlite_cache_kib.unwrap_or(crate::DEFAULT_PAGE_CACHE_KIB);
            Box::new(crate::SqliteStore::open_with_cache(path, cache)?)
        }
        _ => {
            let _ = (mode, sqlite_cache_kib);
            Box::new(MemoryStore::new())
        }
    })
}

/// Creates an empty database file at `path` with permissions `mode`, unless something is
/// there already. A failure is left for SQLite's open to report (it would fail the same way).
#[cfg(feature = "sqlite")]
fn create_database_file(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if path.as_os_str().is_empty() || path == Path::new(":memory:") {
            return;
        }
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path);
        if let Ok(file) = created {
            // The umask may have taken bits away from `mode`.
            let _ = file.set_permissions(std::fs::Permissions::from_mode(mode));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

/// Opens the store `spec` names for reading (reporting tools such as `rkms clients`): nothing
/// is created or migrated ([`SqliteStore::open_read_only`], [`PgStore::open_read_only`]).
/// [`NO_DATABASE`] gives an empty [`MemoryStore`].
pub fn open_store_read_only(spec: &str) -> Result<Box<dyn ClientStore>, StoreError> {
    Ok(match Backend::of(spec)? {
        #[cfg(feature = "postgres")]
        Backend::Postgres(url) => Box::new(crate::PgStore::open_read_only(url)?),
        #[cfg(feature = "sqlite")]
        Backend::Sqlite(path) => Box::new(crate::SqliteStore::open_read_only(path)?),
        _ => Box::new(MemoryStore::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(unix, feature = "sqlite"))]
    #[test]
    fn new_databases_are_private_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("rkms-store-mode-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mode_of = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for (name, mode) in [("private.db", DB_MODE), ("group.db", 0o640)] {
            let path = dir.join(name);
            let store = open_store_with_mode(path.to_str().unwrap(), mode).unwrap();
            // A write makes SQLite create the -wal and -shm files.
            store
                .prune_older_than(0)
                .and_then(|_| store.probe_writable())
                .unwrap();
            assert_eq!(mode_of(&path), mode, "{name}");
            for suffix in ["-wal", "-shm"] {
                let side = dir.join(format!("{name}{suffix}"));
                assert_eq!(mode_of(&side), mode, "{name}{suffix}");
            }
            drop(store);
        }
        // An existing database keeps its permissions.
        let existing = dir.join("existing.db");
        std::fs::write(&existing, b"").unwrap();
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(open_store(existing.to_str().unwrap()).unwrap());
        assert_eq!(mode_of(&existing), 0o644);
        let _ = std::fs::remove_dir_all(&dir);
    }

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
        #[cfg(feature = "postgres")]
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

    /// A backend left out of the build is refused by name, with the value shown (no
    /// password), whichever way the store is opened; the memory store is always there.
    #[test]
    fn backends_left_out_are_refused_by_name() {
        assert!(open_store(NO_DATABASE).is_ok());
        let dir = std::env::temp_dir().join(format!("rkms-store-built-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.db");
        let file = file.to_str().unwrap();
        let url = "postgres://rkms:s3cret@127.0.0.1:1/rkms?connect_timeout=1";
        for (spec, feature, built) in [
            (file, "sqlite", cfg!(feature = "sqlite")),
            (url, "postgres", cfg!(feature = "postgres")),
        ] {
            let results = [
                check_spec(spec).err(),
                open_store(spec).err(),
                open_store_read_only(spec).err(),
            ];
            for err in results {
                let refused =
                    matches!(err, Some(StoreError::NotBuilt { feature: f, .. }) if f == feature);
                assert_eq!(refused, !built, "{spec}: {err:?}");
                if let Some(e) = err.filter(|_| !built) {
                    let msg = e.to_string();
                    assert!(
                        msg.starts_with(&format!(
                            "this rkms was built without the `{feature}` feature"
                        )),
                        "{msg}"
                    );
                    assert!(!msg.contains("s3cret"), "{msg}");
                }
            }
        }
        if !cfg!(feature = "sqlite") {
            assert!(!dir.join("c.db").exists(), "nothing is created");
            let err = crate::read_pykms(&dir.join("pykms_database.db"), &|_| None).unwrap_err();
            assert!(
                matches!(
                    err,
                    StoreError::NotBuilt {
                        feature: "sqlite",
                        ..
                    }
                ),
                "{err:?}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
