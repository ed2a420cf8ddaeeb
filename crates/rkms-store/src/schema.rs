//! The versioned SQLite schema: the ordered list of migrations (shared with PostgreSQL) and
//! their application at open (with the `sqlite` feature).
//!
//! The schema version lives in `PRAGMA user_version`. Opening read-write applies every
//! migration newer than the file's version, in order, in one `IMMEDIATE` transaction together
//! with the version bump, so a database is never left half-migrated and two processes opening
//! it at once cannot both migrate. Migrations are append-only: never edit a shipped one.

#[cfg(feature = "sqlite")]
use {
    crate::StoreError,
    rusqlite::{Connection, TransactionBehavior},
    std::path::Path,
};

/// One step of the schema: applied to databases whose version is `version - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// The schema version this step produces (1, 2, …, without gaps).
    pub version: u32,
    /// What the step does, for humans.
    pub description: &'static str,
    /// The SQL run (may hold several statements).
    pub sql: &'static str,
}

/// Every migration, in order. `MIGRATIONS[i].version == i + 1`.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "clients table, one row per (cmid, application_id)",
        sql: "CREATE TABLE clients (
                  cmid           TEXT    NOT NULL,
                  application_id TEXT    NOT NULL,
                  sku_id         TEXT    NOT NULL,
                  kms_id         TEXT    NOT NULL,
                  workstation    TEXT    NOT NULL,
                  license_status INTEGER NOT NULL,
                  protocol       TEXT    NOT NULL,
                  first_seen     INTEGER NOT NULL,
                  last_seen      INTEGER NOT NULL,
                  requests       INTEGER NOT NULL,
                  last_address   TEXT    NOT NULL,
                  last_epid      TEXT    NOT NULL,
                  PRIMARY KEY (cmid, application_id)
              );",
    },
    Migration {
        version: 2,
        description: "is_vm, grace_minutes, last_hresult columns; (kms_id, last_seen) index",
        sql: "ALTER TABLE clients ADD COLUMN is_vm         INTEGER NOT NULL DEFAULT 0;
              ALTER TABLE clients ADD COLUMN grace_minutes INTEGER NOT NULL DEFAULT 0;
              ALTER TABLE clients ADD COLUMN last_hresult  INTEGER NOT NULL DEFAULT 0;
              CREATE INDEX clients_kms_last_seen ON clients (kms_id, last_seen);",
    },
    Migration {
        version: 3,
        description: "activations table: one row per request (history, per-day counts)",
        sql: "CREATE TABLE activations (
                  time           INTEGER NOT NULL,
                  cmid           TEXT    NOT NULL,
                  application_id TEXT    NOT NULL,
                  sku_id         TEXT    NOT NULL,
                  kms_id         TEXT    NOT NULL,
                  workstation    TEXT    NOT NULL,
                  license_status INTEGER NOT NULL,
                  protocol       TEXT    NOT NULL,
                  address        TEXT    NOT NULL,
                  hresult        INTEGER NOT NULL
              );
              CREATE INDEX activations_time ON activations (time);
              CREATE INDEX activations_cmid ON activations (cmid, time);",
    },
    Migration {
        version: 4,
        description: "compact schema: GUIDs as 16-byte blobs, application/SKU/KMS IDs as \
                      integer keys (guids table), per-day counts kept in activation_days, \
                      indexes for paged reads",
        sql: MIGRATION_4,
    },
    Migration {
        version: SEARCH_INDEX_VERSION,
        description: SEARCH_INDEX_DESCRIPTION,
        sql: MIGRATION_SEARCH_INDEX,
    },
    Migration {
        version: LAST_ACTIVATED_VERSION,
        description: LAST_ACTIVATED_DESCRIPTION,
        sql: LAST_ACTIVATED_SQL,
    },
    Migration {
        version: DEFERRED_SEARCH_VERSION,
        description: DEFERRED_SEARCH_DESCRIPTION,
        sql: DEFERRED_SEARCH_SQL,
    },
    Migration {
        version: LISTING_TRIGGERS_VERSION,
        description: LISTING_TRIGGERS_DESCRIPTION,
        sql: LISTING_TRIGGERS_SQL,
    },
    Migration {
        version: CLIENT_EVENTS_VERSION,
        description: CLIENT_EVENTS_DESCRIPTION,
        sql: CLIENT_EVENTS_SQL,
    },
];

/// The schema version that adds the search index (one self-contained migration, here and
/// in [`crate::pg_schema`]).
pub const SEARCH_INDEX_VERSION: u32 = 5;

/// What the search-index migration does (SQLite and PostgreSQL alike).
pub const SEARCH_INDEX_DESCRIPTION: &str =
    "search index: the searched text of every client record (workstation name, address host, \
     ePID) in a trigram index kept up to date by triggers when that text changes";

/// The host part of column `last_address` of row `$row` (`"new."`, `"c."`, `""` …) in SQL,
/// as [`crate::address_host`] computes it: `"192.0.2.7:50123"` → `"192.0.2.7"`,
/// `"[2001:db8::7]:50123"` → `"2001:db8::7"`, anything else whole. `$pos` names the dialect's
/// `strpos` (SQLite: `instr(haystack, needle)`; PostgreSQL: `strpos(haystack, needle)`).
macro_rules! address_host_sql {
    ($pos:literal, $row:literal) => {
        concat!(
            "(CASE WHEN substr(",
            $row,
            "last_address, 1, 1) = '[' THEN (CASE WHEN ",
            $pos,
            "(",
            $row,
            "last_address, ']:') > 0 THEN substr(",
            $row,
            "last_address, 2, ",
            $pos,
            "(",
            $row,
            "last_address, ']:') - 2) ELSE ",
            $row,
            "last_address END) WHEN ",
            $pos,
            "(",
            $row,
            "last_address, ':') > 0 AND ",
            $pos,
            "(substr(",
            $row,
            "last_address, ",
            $pos,
            "(",
            $row,
            "last_address, ':') + 1), ':') = 0 THEN substr(",
            $row,
            "last_address, 1, ",
            $pos,
            "(",
            $row,
            "last_address, ':') - 1) ELSE ",
            $row,
            "last_address END)"
        )
    };
}
pub(crate) use address_host_sql;

/// The text the search index holds for row `$row`: workstation name, address host and ePID,
/// one a line (`$nl`: the dialect's newline, `$pos` as in [`address_host_sql`]).
macro_rules! search_text_sql {
    ($pos:literal, $nl:literal, $row:literal) => {
        concat!(
            $row,
            "workstation || ",
            $nl,
            " || ",
            crate::schema::address_host_sql!($pos, $row),
            " || ",
            $nl,
            " || ",
            $row,
            "last_epid"
        )
    };
}

/// The `WHEN` clause of the SQLite trigger `clients_search_update`: the searched text of the
/// updated row (workstation name, ePID, address host) changed.
macro_rules! search_text_changed_sql {
    () => {
        concat!(
            "WHEN new.workstation IS NOT old.workstation OR new.last_epid IS NOT old.last_epid
             OR ",
            address_host_sql!("instr", "new."),
            " IS NOT ",
            address_host_sql!("instr", "old."),
        )
    };
}

/// The search index's table (SQLite): a contentless FTS5 table with the trigram tokenizer.
/// Created by schema 5, and by [`crate::search_index`] where a database has none.
macro_rules! search_table_sql {
    () => {
        "CREATE VIRTUAL TABLE clients_search USING fts5(
         text, content = '', contentless_delete = 1, detail = none, tokenize = 'trigram');"
    };
}
#[cfg(feature = "sqlite")]
pub(crate) use search_table_sql;

/// The trigger of a deleted record with the deferred index (SQLite): its text leaves the
/// index at once (unless it was never indexed), and the record leaves the list. Created by
/// schema 7, and put back by [`crate::search_index`] after a build without FTS5.
macro_rules! indexed_delete_trigger_sql {
    () => {
        "CREATE TRIGGER clients_search_delete AFTER DELETE ON clients BEGIN
         DELETE FROM clients_search WHERE rowid = old.id
             AND NOT EXISTS (SELECT 1 FROM search_pending WHERE id = old.id AND indexed = 0);
         DELETE FROM search_pending WHERE id = old.id;
     END;"
    };
}
#[cfg(feature = "sqlite")]
pub(crate) use indexed_delete_trigger_sql;

/// Schema 5 (SQLite): a contentless FTS5 table with the trigram tokenizer (case-insensitive)
/// holds, for every client record (same rowid), its workstation name, address host and ePID.
/// Triggers keep it in step: a new record adds its row, a deleted one removes it, and an
/// update replaces it only when one of those three changed (a renewal from the same machine
/// and host, however its port changed, leaves the index alone). Every record is kept.
const MIGRATION_SEARCH_INDEX: &str = concat!(
    search_table_sql!(),
    "
     INSERT INTO clients_search (rowid, text) SELECT id, ",
    search_text_sql!("instr", "char(10)", ""),
    " FROM clients;
     CREATE TRIGGER clients_search_insert AFTER INSERT ON clients BEGIN
         INSERT INTO clients_search (rowid, text) VALUES (new.id, ",
    search_text_sql!("instr", "char(10)", "new."),
    ");
     END;
     CREATE TRIGGER clients_search_update
         AFTER UPDATE OF workstation, last_address, last_epid ON clients
         ",
    search_text_changed_sql!(),
    "
     BEGIN
         DELETE FROM clients_search WHERE rowid = old.id;
         INSERT INTO clients_search (rowid, text) VALUES (new.id, ",
    search_text_sql!("instr", "char(10)", "new."),
    ");
     END;
     CREATE TRIGGER clients_search_delete AFTER DELETE ON clients BEGIN
         DELETE FROM clients_search WHERE rowid = old.id;
     END;"
);

/// The schema version that adds `clients.last_activated`, the time of each record's latest
/// successful request (fleet health: when its activation runs out). One self-contained
/// migration: renumbering it means changing this constant only.
pub const LAST_ACTIVATED_VERSION: u32 = 6;

/// What the [`LAST_ACTIVATED_VERSION`] migration does (the same for PostgreSQL).
pub const LAST_ACTIVATED_DESCRIPTION: &str =
    "clients.last_activated: time of the latest successful request (fleet health), \
     health indexes";

/// The value of `clients.last_activated` of a record never activated (no successful
/// request known): the smallest integer, so that "activated before T" ranges include it and
/// the indexes order it first. The store reads it as `None`.
pub const NEVER_ACTIVATED: i64 = i64::MIN;

/// The [`LAST_ACTIVATED_VERSION`] migration. Every record is kept; `last_activated` is derived
/// from what the database knows: `last_seen` when the latest request succeeded, else the
/// latest successful event of the record in the history ([`NEVER_ACTIVATED`] when there is
/// none: never activated, or its history was pruned). Indexes: `clients_expiry`
/// (`last_activated`, `last_hresult`, `cmid`) for the client list by state or in expiry order
/// and its counts (covering: no table read); `clients_family_health` (`app`, `kms`,
/// `last_hresult`, `last_activated`) for counting the states per product in index ranges.
/// Neither leads with `last_hresult`, so the queries of `clients_active` keep it.
const LAST_ACTIVATED_SQL: &str = "
    ALTER TABLE clients ADD COLUMN last_activated INTEGER NOT NULL
        DEFAULT -9223372036854775808;
    UPDATE clients SET last_activated = last_seen WHERE last_hresult = 0;
    UPDATE clients SET last_activated = coalesce(
        (SELECT max(a.time) FROM activations a
         WHERE a.cmid = clients.cmid AND a.app = clients.app AND a.hresult = 0),
        -9223372036854775808)
        WHERE last_hresult <> 0;
    CREATE INDEX clients_expiry ON clients (last_activated, last_hresult, cmid);
    CREATE INDEX clients_family_health ON clients (app, kms, last_hresult, last_activated);
";

/// The schema version that moves the search index's upkeep out of the write that changes a
/// record (SQLite): one self-contained migration, renumbered by changing this constant only.
pub const DEFERRED_SEARCH_VERSION: u32 = 7;

/// What the [`DEFERRED_SEARCH_VERSION`] migration does (PostgreSQL has the step too, and
/// changes nothing: its search table is kept by triggers as before).
pub const DEFERRED_SEARCH_DESCRIPTION: &str =
    "search index kept up to date in the background (SQLite): a new or changed record is \
     listed in search_pending and indexed later in batches, searches test the listed records \
     directly meanwhile; nothing changes on PostgreSQL";

/// The [`DEFERRED_SEARCH_VERSION`] migration (SQLite). Writing a record's trigrams into the
/// FTS5 index in the transaction that answers its activation cost more than the rest of the
/// record (each small transaction adds a segment for the index to merge). Now the triggers
/// only list the record in `search_pending` (`indexed`: whether the index holds an older
/// text of it, to be deleted first), and [`crate::SqliteStore`] indexes the listed records
/// in batches when its writer has time ([`crate::ClientStore::upkeep`]). (A record listed
/// already stays listed as it is: `NOT EXISTS` rather than `OR IGNORE`, which the upsert
/// that fires the trigger would override.) A search tests the
/// listed records as well as the index's candidates, so it finds a record as soon as its
/// write commits. A deleted record leaves the index and the list at once. Every record is
/// kept; the index is as it was.
const DEFERRED_SEARCH_SQL: &str = concat!(
    "CREATE TABLE search_pending (
         id      INTEGER PRIMARY KEY,
         indexed INTEGER NOT NULL
     );
     DROP TRIGGER clients_search_insert;
     DROP TRIGGER clients_search_update;
     DROP TRIGGER clients_search_delete;
     CREATE TRIGGER clients_search_insert AFTER INSERT ON clients BEGIN
         INSERT INTO search_pending (id, indexed) SELECT new.id, 0
             WHERE NOT EXISTS (SELECT 1 FROM search_pending WHERE id = new.id);
     END;
     CREATE TRIGGER clients_search_update
         AFTER UPDATE OF workstation, last_address, last_epid ON clients
         ",
    search_text_changed_sql!(),
    "
     BEGIN
         INSERT INTO search_pending (id, indexed) SELECT new.id, 1
             WHERE NOT EXISTS (SELECT 1 FROM search_pending WHERE id = new.id);
     END;
     ",
    indexed_delete_trigger_sql!()
);

/// The schema version whose triggers list a record for the search index with an upsert
/// (SQLite): one self-contained migration, renumbered by changing this constant only.
pub const LISTING_TRIGGERS_VERSION: u32 = 8;

/// What the [`LISTING_TRIGGERS_VERSION`] migration does (PostgreSQL has the step too, and
/// changes nothing).
pub const LISTING_TRIGGERS_DESCRIPTION: &str =
    "search_pending listing without a temporary table (SQLite): the triggers of schema 7 \
     insert with ON CONFLICT DO NOTHING instead of INSERT … SELECT … WHERE NOT EXISTS; \
     nothing changes on PostgreSQL";

/// The [`LISTING_TRIGGERS_VERSION`] migration (SQLite). The triggers of schema 7 listed a
/// record with `INSERT INTO search_pending … SELECT … WHERE NOT EXISTS (SELECT … FROM
/// search_pending …)`: an insert that reads the table it writes, which SQLite runs by first
/// copying the selected row into a temporary table, with a page cache of its own created
/// and freed for every record written (about a quarter of the CPU time of a write of 16
/// new records). An upsert that does nothing on conflict lists the same records (one
/// already listed stays listed as it is) without it; unlike `INSERT OR IGNORE`, the upsert
/// clause is not overridden by the conflict handling of the update that fires the trigger.
/// Every record and the list are kept.
const LISTING_TRIGGERS_SQL: &str = concat!(
    "DROP TRIGGER clients_search_insert;
     DROP TRIGGER clients_search_update;
     CREATE TRIGGER clients_search_insert AFTER INSERT ON clients BEGIN
         INSERT INTO search_pending (id, indexed) VALUES (new.id, 0)
             ON CONFLICT (id) DO NOTHING;
     END;
     CREATE TRIGGER clients_search_update
         AFTER UPDATE OF workstation, last_address, last_epid ON clients
         ",
    search_text_changed_sql!(),
    "
     BEGIN
         INSERT INTO search_pending (id, indexed) VALUES (new.id, 1)
             ON CONFLICT (id) DO NOTHING;
     END;"
);

/// The schema version that finds a client's history through `client_events` instead of an
/// index on the events' CMIDs (SQLite): one self-contained migration, renumbered by changing
/// this constant only.
pub const CLIENT_EVENTS_VERSION: u32 = 9;

/// What the [`CLIENT_EVENTS_VERSION`] migration does (PostgreSQL has the step too, and
/// changes nothing).
pub const CLIENT_EVENTS_DESCRIPTION: &str =
    "a client record's history found through client_events (record id, second, events) instead of \
     the activations_cmid index (SQLite): a new client's events are appended instead of \
     written on random pages of an index as large as the history; nothing changes on \
     PostgreSQL";

/// The [`CLIENT_EVENTS_VERSION`] migration (SQLite). `activations_cmid` (CMID, time) put each
/// new event on a random page of an index as large as the history (some 300 MB for
/// 10,000,000 events): on a database that size most of a host's time per activation went to
/// reading and rewriting those pages. `client_events` holds, for each client record (by its
/// id, which grows with new records, so that a new client's entries are appended), the
/// seconds at which it has events and how many (`events`); its history is the events at
/// those seconds with its CMID and application (`activations_time` finds them). Entries are
/// a third of the size, and no history row is rewritten: the table is filled from them once,
/// in key order. Triggers keep it in step: a deleted event takes one off its record's second
/// (the second goes with its last event), and every second of a deleted record goes (a
/// client's history is that of its records; an event whose record is gone stays in the
/// history, found by time and workstation).
const CLIENT_EVENTS_SQL: &str = "
    CREATE TABLE client_events (
        client INTEGER NOT NULL,
        time   INTEGER NOT NULL,
        events INTEGER NOT NULL,
        PRIMARY KEY (client, time)
    ) WITHOUT ROWID;
    INSERT INTO client_events (client, time, events)
        SELECT c.id, a.time, COUNT(*) FROM activations a
            JOIN clients c ON c.cmid = a.cmid AND c.app = a.app
        GROUP BY 1, 2 ORDER BY 1, 2;
    DROP INDEX activations_cmid;
    CREATE TRIGGER activations_forget AFTER DELETE ON activations BEGIN
        UPDATE client_events SET events = events - 1
            WHERE client = (SELECT id FROM clients WHERE cmid = old.cmid AND app = old.app)
              AND time = old.time;
        DELETE FROM client_events
            WHERE client = (SELECT id FROM clients WHERE cmid = old.cmid AND app = old.app)
              AND time = old.time AND events <= 0;
    END;
    CREATE TRIGGER clients_forget AFTER DELETE ON clients BEGIN
        DELETE FROM client_events WHERE client = old.id;
    END;
";

/// Indexes the records listed in `search_pending` up to id `?1` (a batch: see
/// [`crate::ClientStore::upkeep`]), then takes them off the list: an older text leaves the
/// index, the current one enters it. Three statements, run in order in one transaction.
/// The join reads the list first (`CROSS JOIN` fixes SQLite's join order): left to choose,
/// the planner carried `p.id <= ?1` over to `c.id` and read every record up to the batch's
/// last id, which is all of them, for each batch (70% of a host's writer thread with a
/// million records).
#[cfg(feature = "sqlite")]
pub(crate) const INDEX_PENDING_SQL: [&str; 3] = [
    "DELETE FROM clients_search WHERE rowid IN
         (SELECT id FROM search_pending WHERE id <= ?1 AND indexed = 1)",
    concat!(
        "INSERT INTO clients_search (rowid, text) SELECT c.id, ",
        search_text_sql!("instr", "char(10)", "c."),
        " FROM search_pending p CROSS JOIN clients c ON c.id = p.id WHERE p.id <= ?1"
    ),
    "DELETE FROM search_pending WHERE id <= ?1",
];

/// Schema 4: every GUID of the tables becomes a 16-byte blob (CMIDs) or an integer key into
/// `guids` (application, SKU and KMS IDs, a few hundred distinct values), and the per-day
/// counts the dashboard charts are kept in `activation_days` (one row per day, application,
/// KMS ID and outcome) instead of being counted from the history at every read. Every record
/// and event is kept (events in the order they were recorded).
const MIGRATION_4: &str = "
    CREATE TABLE guids (
        id   INTEGER PRIMARY KEY,
        guid BLOB    NOT NULL UNIQUE
    );
    INSERT INTO guids (guid)
        SELECT unhex(replace(application_id, '-', '')) FROM clients
        UNION SELECT unhex(replace(sku_id, '-', '')) FROM clients
        UNION SELECT unhex(replace(kms_id, '-', '')) FROM clients
        UNION SELECT unhex(replace(application_id, '-', '')) FROM activations
        UNION SELECT unhex(replace(sku_id, '-', '')) FROM activations
        UNION SELECT unhex(replace(kms_id, '-', '')) FROM activations;
    CREATE TABLE clients_v4 (
        id             INTEGER PRIMARY KEY,
        cmid           BLOB    NOT NULL,
        app            INTEGER NOT NULL,
        sku            INTEGER NOT NULL,
        kms            INTEGER NOT NULL,
        workstation    TEXT    NOT NULL,
        license_status INTEGER NOT NULL,
        grace_minutes  INTEGER NOT NULL,
        is_vm          INTEGER NOT NULL,
        protocol       TEXT    NOT NULL,
        first_seen     INTEGER NOT NULL,
        last_seen      INTEGER NOT NULL,
        requests       INTEGER NOT NULL,
        last_address   TEXT    NOT NULL,
        last_epid      TEXT    NOT NULL,
        last_hresult   INTEGER NOT NULL
    );
    INSERT INTO clients_v4 (cmid, app, sku, kms, workstation, license_status, grace_minutes,
                            is_vm, protocol, first_seen, last_seen, requests, last_address,
                            last_epid, last_hresult)
        SELECT unhex(replace(c.cmid, '-', '')),
               (SELECT id FROM guids WHERE guid = unhex(replace(c.application_id, '-', ''))),
               (SELECT id FROM guids WHERE guid = unhex(replace(c.sku_id, '-', ''))),
               (SELECT id FROM guids WHERE guid = unhex(replace(c.kms_id, '-', ''))),
               workstation, license_status, grace_minutes, is_vm, protocol, first_seen,
               last_seen, requests, last_address, last_epid, last_hresult
        FROM clients c ORDER BY last_seen;
    CREATE TABLE activations_v4 (
        time           INTEGER NOT NULL,
        cmid           BLOB    NOT NULL,
        app            INTEGER NOT NULL,
        sku            INTEGER NOT NULL,
        kms            INTEGER NOT NULL,
        workstation    TEXT    NOT NULL,
        license_status INTEGER NOT NULL,
        protocol       TEXT    NOT NULL,
        address        TEXT    NOT NULL,
        hresult        INTEGER NOT NULL
    );
    INSERT INTO activations_v4 (time, cmid, app, sku, kms, workstation, license_status,
                                protocol, address, hresult)
        SELECT time, unhex(replace(e.cmid, '-', '')),
               (SELECT id FROM guids WHERE guid = unhex(replace(e.application_id, '-', ''))),
               (SELECT id FROM guids WHERE guid = unhex(replace(e.sku_id, '-', ''))),
               (SELECT id FROM guids WHERE guid = unhex(replace(e.kms_id, '-', ''))),
               workstation, license_status, protocol, address, hresult
        FROM activations e ORDER BY rowid;
    DROP TABLE clients;
    DROP TABLE activations;
    ALTER TABLE clients_v4 RENAME TO clients;
    ALTER TABLE activations_v4 RENAME TO activations;
    CREATE UNIQUE INDEX clients_key ON clients (cmid, app);
    CREATE INDEX clients_last_seen ON clients (last_seen);
    CREATE INDEX clients_active ON clients (kms, last_seen, cmid) WHERE last_hresult = 0;
    CREATE INDEX clients_workstation ON clients (workstation COLLATE NOCASE);
    CREATE INDEX activations_time ON activations (time);
    CREATE INDEX activations_cmid ON activations (cmid, time);
    CREATE TABLE activation_days (
        day   INTEGER NOT NULL,
        app   INTEGER NOT NULL,
        kms   INTEGER NOT NULL,
        ok    INTEGER NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (day, app, kms, ok)
    ) WITHOUT ROWID;
    INSERT INTO activation_days (day, app, kms, ok, count)
        SELECT time - ((time % 86400) + 86400) % 86400, app, kms, hresult = 0, COUNT(*)
        FROM activations GROUP BY 1, 2, 3, 4;
";

/// The newest schema version this binary knows, and the one it reads and writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

const _: () = {
    let mut i = 0;
    while i < MIGRATIONS.len() {
        assert!(
            MIGRATIONS[i].version as usize == i + 1,
            "migrations must be numbered 1, 2, …"
        );
        i += 1;
    }
};

/// Reads `PRAGMA user_version`, refusing versions newer than [`SCHEMA_VERSION`].
#[cfg(feature = "sqlite")]
pub(crate) fn read_version(conn: &Connection, path: &Path) -> Result<u32, StoreError> {
    let raw: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| crate::sqlite::open_error(path, &e))?;
    let found = u32::try_from(raw).map_err(|_| StoreError::Open {
        path: path.to_path_buf(),
        message: format!("invalid schema version {raw} (PRAGMA user_version)"),
    })?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(found)
}

/// Brings the database to [`SCHEMA_VERSION`] in one transaction; returns the version it had.
/// Without `index` (a SQLite without FTS5), schema 5 creates no search index (see
/// [`crate::search_index`]).
#[cfg(feature = "sqlite")]
pub(crate) fn migrate(conn: &mut Connection, path: &Path, index: bool) -> Result<u32, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| crate::sqlite::open_error(path, &e))?;
    // Read again inside the write lock: another process may have migrated meanwhile.
    let found = read_version(&tx, path)?;
    if found == SCHEMA_VERSION {
        return Ok(found);
    }
    if found == 0 {
        let tables: Vec<String> = tx
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
            .map_err(|e| crate::sqlite::open_error(path, &e))?;
        if !tables.is_empty() {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                message: format!(
                    "not an rkms client database (no schema version, but it holds tables: {}); \
                     a py-kms database must be imported, not opened",
                    tables.join(", ")
                ),
            });
        }
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        let sql = if m.version == SEARCH_INDEX_VERSION && !index {
            crate::search_index::UNINDEXED_SEARCH_INDEX_SQL
        } else {
            m.sql
        };
        tx.execute_batch(sql).map_err(|e| StoreError::Migration {
            path: path.to_path_buf(),
            version: m.version,
            message: e.to_string(),
        })?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .and_then(|()| tx.commit())
        .map_err(|e| StoreError::Migration {
            path: path.to_path_buf(),
            version: SCHEMA_VERSION,
            message: e.to_string(),
        })?;
    Ok(found)
}
