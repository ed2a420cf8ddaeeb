//! [`open_store`]: turns the `--db` option into a store.

use std::path::Path;

use crate::{ClientStore, MemoryStore, SqliteStore, StoreError};

/// The `--db` value that selects the in-memory store.
pub const NO_DATABASE: &str = "none";

/// Opens the store `spec` names: [`NO_DATABASE`] (`"none"`) gives a [`MemoryStore`], anything
/// else is the path of an SQLite file opened with [`SqliteStore::open`] (its directory must
/// exist: it is never created).
pub fn open_store(spec: &str) -> Result<Box<dyn ClientStore>, StoreError> {
    if spec == NO_DATABASE {
        Ok(Box::new(MemoryStore::new()))
    } else {
        Ok(Box::new(SqliteStore::open(Path::new(spec))?))
    }
}
