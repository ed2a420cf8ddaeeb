//! The versioned PostgreSQL schema: the same migrations as [`crate::schema`] (same version
//! numbers, same tables, columns and meaning) in PostgreSQL's dialect, and their application at
//! open.
//!
//! PostgreSQL has no `user_version`: the schema version is the highest `version` of the
//! `rkms_schema_version` table, which holds one row per migration applied (version,
//! description, time). Opening read-write applies every missing migration, together with its
//! rows, in one transaction that first takes the transaction-level advisory lock
//! [`MIGRATION_LOCK`] (`pg_advisory_xact_lock`) and only then reads the version: when several
//! hosts start at once, one migrates and the others wait for it, then find the schema up to
//! date. The tables live in the connection's current schema (the first existing schema of
//! `search_path`, normally `public`).
//!
//! Differences from the SQLite dialect: IDs are `uuid` (ordered like their text form), numbers
//! `bigint`, `is_vm` `boolean`, and the history has an identity column `id` that orders
//! events recorded at the same second (SQLite's `rowid`). Migrations are append-only: never
//! edit a shipped one, and add each new one here and in [`crate::schema`] alike.

use crate::schema::{Migration, LAST_ACTIVATED_DESCRIPTION, LAST_ACTIVATED_VERSION, MIGRATIONS};

/// The key of the advisory lock held while checking and migrating the schema (the bytes
/// `"rkms-sch"`). Shared by every rkms host on a database, whatever its schema.
pub const MIGRATION_LOCK: i64 = i64::from_be_bytes(*b"rkms-sch");

/// The table holding the schema version (one row per applied migration).
pub const VERSION_TABLE: &str = "rkms_schema_version";

/// Every migration, in order, in PostgreSQL's dialect. `PG_MIGRATIONS[i].version == i + 1`, and
/// each matches [`MIGRATIONS`]`[i]` (same version and description).
pub const PG_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: MIGRATIONS[0].description,
        sql: "CREATE TABLE clients (
                  cmid           uuid   NOT NULL,
                  application_id uuid   NOT NULL,
                  sku_id         uuid   NOT NULL,
                  kms_id         uuid   NOT NULL,
                  workstation    text   NOT NULL,
                  license_status bigint NOT NULL,
                  protocol       text   NOT NULL,
                  first_seen     bigint NOT NULL,
                  last_seen      bigint NOT NULL,
                  requests       bigint NOT NULL,
                  last_address   text   NOT NULL,
                  last_epid      text   NOT NULL,
                  PRIMARY KEY (cmid, application_id)
              );",
    },
    Migration {
        version: 2,
        description: MIGRATIONS[1].description,
        sql: "ALTER TABLE clients ADD COLUMN is_vm         boolean NOT NULL DEFAULT false;
              ALTER TABLE clients ADD COLUMN grace_minutes bigint  NOT NULL DEFAULT 0;
              ALTER TABLE clients ADD COLUMN last_hresult  bigint  NOT NULL DEFAULT 0;
              CREATE INDEX clients_kms_last_seen ON clients (kms_id, last_seen);",
    },
    Migration {
        version: 3,
        description: MIGRATIONS[2].description,
        sql: "CREATE TABLE activations (
                  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                  time           bigint NOT NULL,
                  cmid           uuid   NOT NULL,
                  application_id uuid   NOT NULL,
                  sku_id         uuid   NOT NULL,
                  kms_id         uuid   NOT NULL,
                  workstation    text   NOT NULL,
                  license_status bigint NOT NULL,
                  protocol       text   NOT NULL,
                  address        text   NOT NULL,
                  hresult        bigint NOT NULL
              );
              CREATE INDEX activations_time ON activations (time, id);
              CREATE INDEX activations_cmid ON activations (cmid, time, id);",
    },
    Migration {
        version: 4,
        description: MIGRATIONS[3].description,
        // PostgreSQL's uuid is already 16 bytes: the tables keep their columns, and gain the
        // per-day counts and the indexes of paged reads.
        sql: "DROP INDEX clients_kms_last_seen;
              CREATE INDEX clients_last_seen ON clients (last_seen);
              CREATE INDEX clients_active ON clients (kms_id, last_seen, cmid)
                  WHERE last_hresult = 0;
              CREATE INDEX clients_workstation ON clients ((lower(workstation) COLLATE \"C\"));
              CREATE TABLE activation_days (
                  day            bigint  NOT NULL,
                  application_id uuid    NOT NULL,
                  kms_id         uuid    NOT NULL,
                  ok             boolean NOT NULL,
                  count          bigint  NOT NULL,
                  PRIMARY KEY (day, application_id, kms_id, ok)
              );
              INSERT INTO activation_days (day, application_id, kms_id, ok, count)
                  SELECT time - ((time % 86400) + 86400) % 86400, application_id, kms_id,
                         hresult = 0, COUNT(*)
                  FROM activations GROUP BY 1, 2, 3, 4;",
    },
    Migration {
        version: LAST_ACTIVATED_VERSION,
        description: LAST_ACTIVATED_DESCRIPTION,
        // As in SQLite: last_seen when the latest request succeeded, else the latest
        // successful event of the record in the history, else NEVER_ACTIVATED.
        sql: "ALTER TABLE clients ADD COLUMN last_activated bigint NOT NULL
                  DEFAULT -9223372036854775808;
              UPDATE clients SET last_activated = last_seen WHERE last_hresult = 0;
              UPDATE clients c SET last_activated = COALESCE(
                  (SELECT max(a.time) FROM activations a
                   WHERE a.cmid = c.cmid AND a.application_id = c.application_id
                     AND a.hresult = 0),
                  -9223372036854775808)
                  WHERE c.last_hresult <> 0;
              CREATE INDEX clients_expiry ON clients (last_activated, last_hresult, cmid);
              CREATE INDEX clients_family_health
                  ON clients (application_id, kms_id, last_hresult, last_activated);",
    },
];

const _: () = {
    assert!(
        PG_MIGRATIONS.len() == MIGRATIONS.len(),
        "every SQLite migration has its PostgreSQL twin"
    );
    let mut i = 0;
    while i < PG_MIGRATIONS.len() {
        assert!(
            PG_MIGRATIONS[i].version == MIGRATIONS[i].version,
            "migrations must be numbered like SQLite's"
        );
        i += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_key_and_descriptions() {
        assert_eq!(MIGRATION_LOCK, 0x726b_6d73_2d73_6368);
        for (pg, lite) in PG_MIGRATIONS.iter().zip(MIGRATIONS) {
            assert_eq!(pg.description, lite.description);
        }
    }
}
