//! Whether a SQLite database keeps its search index, and the trigger that goes with each case.
//!
//! The search index (`clients_search`: FTS5 with trigrams, schema 5, kept up to date in the
//! background since schema 7) serves the searches of the dashboard and the API. A SQLite built
//! without FTS5 (the lean release binary, which has no dashboard: about 124 kB less code, see
//! `scripts/build-static.sh`) cannot create the index or write to it, yet shares databases with
//! builds that can:
//! - its migrations create no index (schema 5 creates only stand-ins of its triggers, which
//!   schema 7 replaces as everywhere);
//! - records it inserts or changes are listed in `search_pending` as in every build, and
//!   nothing is indexed; a record it deletes is listed as one whose older text the index may
//!   hold (`indexed = 1`), and one listed as never indexed leaves the list;
//! - a build with FTS5 that opens a database without the index creates it and lists every
//!   record (indexed in the background, as new records are), and one that finds the other
//!   trigger puts its own back.
//!
//! Searches stay right throughout: they test the listed records as well as the index's
//! candidates, and a listed record that is gone matches nothing.

use std::path::Path;
use std::sync::OnceLock;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::StoreError;

/// Whether this SQLite has FTS5 (tried once, on a database in memory).
pub(crate) fn fts5_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        Connection::open_in_memory()
            .and_then(|c| c.execute_batch("CREATE VIRTUAL TABLE probe USING fts5(text)"))
            .is_ok()
    })
}

/// Schema 5 where there is no FTS5: stand-ins of the three triggers of the index, which the
/// migration to schema 7 drops and replaces (nothing runs them in between: migrations apply
/// together).
pub(crate) const UNINDEXED_SEARCH_INDEX_SQL: &str = "
    CREATE TRIGGER clients_search_insert AFTER INSERT ON clients BEGIN SELECT 1; END;
    CREATE TRIGGER clients_search_update AFTER UPDATE ON clients BEGIN SELECT 1; END;
    CREATE TRIGGER clients_search_delete AFTER DELETE ON clients BEGIN SELECT 1; END;
";

/// The trigger of a deleted record with the index: schema 7's.
pub(crate) const INDEXED_DELETE_TRIGGER: &str = crate::schema::indexed_delete_trigger_sql!();

/// The trigger of a deleted record without the index: listed as possibly indexed (a build
/// with the index then deletes its text), except a record listed as never indexed, which
/// leaves the list.
const UNINDEXED_DELETE_TRIGGER: &str =
    "CREATE TRIGGER clients_search_delete AFTER DELETE ON clients BEGIN
         INSERT INTO search_pending (id, indexed) VALUES (old.id, 1)
             ON CONFLICT (id) DO NOTHING;
         DELETE FROM search_pending WHERE id = old.id AND indexed = 0;
     END;";

/// A new, empty index, and every record listed to enter it.
const CREATE_INDEX_SQL: &str = concat!(
    crate::schema::search_table_sql!(),
    "
    DELETE FROM search_pending;
    INSERT INTO search_pending (id, indexed) SELECT id, 0 FROM clients;"
);

/// Whether the database holds the index table (whatever its module).
pub(crate) fn index_exists(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'clients_search')",
        [],
        |row| row.get(0),
    )
}

/// Fits a migrated database to this build (`index`: whether it keeps the index): creates a
/// missing index, and puts in this build's trigger of deleted records; nothing is written
/// when both are already as they should be.
pub(crate) fn fit(conn: &mut Connection, path: &Path, index: bool) -> Result<(), StoreError> {
    let failed = |e: rusqlite::Error| crate::sqlite::open_error(path, &e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    let trigger: Option<String> = tx
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name = 'clients_search_delete'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(failed)?;
    let indexed_trigger = trigger
        .as_deref()
        .is_some_and(|sql| sql.contains("DELETE FROM clients_search"));
    let create = index && !index_exists(&tx).map_err(failed)?;
    if create {
        tx.execute_batch(CREATE_INDEX_SQL).map_err(failed)?;
    }
    if indexed_trigger != index {
        tx.execute_batch("DROP TRIGGER IF EXISTS clients_search_delete")
            .map_err(failed)?;
        tx.execute_batch(if index {
            INDEXED_DELETE_TRIGGER
        } else {
            UNINDEXED_DELETE_TRIGGER
        })
        .map_err(failed)?;
    }
    tx.commit().map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trigger put back with the index is schema 7's own.
    #[test]
    fn indexed_trigger_is_schema_7s() {
        let v7 = crate::schema::MIGRATIONS
            .iter()
            .find(|m| m.version == crate::schema::DEFERRED_SEARCH_VERSION)
            .unwrap();
        assert!(v7.sql.contains(INDEXED_DELETE_TRIGGER), "{}", v7.sql);
    }

    /// The SQLite of the tests (every build but the lean release binary) has FTS5.
    #[test]
    fn fts5_is_found_where_it_is_built() {
        assert!(fts5_available());
    }
}
