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

use crate::schema::{
    Migration, DEFERRED_SEARCH_DESCRIPTION, DEFERRED_SEARCH_VERSION, LAST_ACTIVATED_DESCRIPTION, LAST_ACTIVATED_VERSION, LISTING_TRIGGERS_DESCRIPTION, LISTING_TRIGGERS_VERSION, CLIENT_EVENTS_DESCRIPTION, CLIENT_EVENTS_VERSION, MIGRATIONS, SEARCH_INDEX_DESCRIPTION,
    SEARCH_INDEX_VERSION,
};

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
        version: SEARCH_INDEX_VERSION,
        description: SEARCH_INDEX_DESCRIPTION,
        sql: PG_MIGRATION_SEARCH_INDEX,
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
    Migration {
        version: DEFERRED_SEARCH_VERSION,
        description: DEFERRED_SEARCH_DESCRIPTION,
        // SQLite's step only; PostgreSQL's search table stays kept by its triggers (GIN's
        // own pending list already batches the index's upkeep).
        sql: "SELECT 1;",
    },
    Migration {
        version: LISTING_TRIGGERS_VERSION,
        description: LISTING_TRIGGERS_DESCRIPTION,
        // SQLite's triggers only.
        sql: "SELECT 1;",
    },
    Migration {
        version: CLIENT_EVENTS_VERSION,
        description: CLIENT_EVENTS_DESCRIPTION,
        // SQLite's history index only (PostgreSQL's index on the events' CMIDs stays).
        sql: "SELECT 1;",
    },
];

/// Schema 5 (PostgreSQL): the searched text of every client record (lower case) in a table
/// of its own, `client_search`, and the number of client records in `client_totals` (one
/// row), both kept in step by triggers: rows added or deleted by a statement are handled
/// once per statement (and only when there are some), and an update rewrites the searched
/// text only when the workstation name, address host or ePID changed, so a renewal writes
/// neither table. The trigram index on `client_search` needs the `pg_trgm` extension, which
/// is created after the migration when the database allows it ([`SEARCH_TRIGRAM_INDEX`]).
const PG_MIGRATION_SEARCH_INDEX: &str = concat!(
    "CREATE FUNCTION rkms_address_host(last_address text) RETURNS text
         LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT ",
    crate::schema::address_host_sql!("strpos", ""),
    " $$;
     CREATE FUNCTION rkms_search_text(workstation text, last_address text, last_epid text)
         RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
         SELECT lower(workstation || chr(10) || rkms_address_host(last_address) || chr(10)
                      || last_epid) $$;
     CREATE TABLE client_search (
         cmid           uuid NOT NULL,
         application_id uuid NOT NULL,
         text           text NOT NULL,
         PRIMARY KEY (cmid, application_id)
     );
     INSERT INTO client_search (cmid, application_id, text)
         SELECT cmid, application_id, rkms_search_text(workstation, last_address, last_epid)
         FROM clients;
     CREATE TABLE client_totals (records bigint NOT NULL);
     INSERT INTO client_totals (records) SELECT COUNT(*) FROM clients;
     CREATE FUNCTION rkms_clients_added() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
         IF EXISTS (SELECT 1 FROM added) THEN
             INSERT INTO client_search (cmid, application_id, text)
                 SELECT cmid, application_id,
                        rkms_search_text(workstation, last_address, last_epid)
                 FROM added;
             UPDATE client_totals SET records = records + (SELECT COUNT(*) FROM added);
         END IF;
         RETURN NULL;
     END $$;
     CREATE TRIGGER clients_added AFTER INSERT ON clients REFERENCING NEW TABLE AS added
         FOR EACH STATEMENT EXECUTE FUNCTION rkms_clients_added();
     CREATE FUNCTION rkms_clients_removed() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
         IF EXISTS (SELECT 1 FROM removed) THEN
             DELETE FROM client_search s USING removed r
                 WHERE s.cmid = r.cmid AND s.application_id = r.application_id;
             UPDATE client_totals SET records = records - (SELECT COUNT(*) FROM removed);
         END IF;
         RETURN NULL;
     END $$;
     CREATE TRIGGER clients_removed AFTER DELETE ON clients REFERENCING OLD TABLE AS removed
         FOR EACH STATEMENT EXECUTE FUNCTION rkms_clients_removed();
     CREATE FUNCTION rkms_client_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
         UPDATE client_search
             SET text = rkms_search_text(NEW.workstation, NEW.last_address, NEW.last_epid)
             WHERE cmid = NEW.cmid AND application_id = NEW.application_id;
         RETURN NULL;
     END $$;
     CREATE TRIGGER clients_renamed
         AFTER UPDATE OF workstation, last_address, last_epid ON clients FOR EACH ROW
         WHEN (OLD.workstation IS DISTINCT FROM NEW.workstation
               OR OLD.last_epid IS DISTINCT FROM NEW.last_epid
               OR rkms_address_host(OLD.last_address)
                  IS DISTINCT FROM rkms_address_host(NEW.last_address))
         EXECUTE FUNCTION rkms_client_renamed();"
);

/// Creates the trigram index of the search (and the `pg_trgm` extension it needs) unless it
/// exists: run after the migrations, in a transaction of its own holding
/// [`MIGRATION_LOCK`]. When the extension cannot be created (not installed, or not allowed),
/// searches still work, reading every record, and the store says so
/// ([`crate::ClientStore::notices`]).
pub const SEARCH_TRIGRAM_INDEX: &str = "CREATE EXTENSION IF NOT EXISTS pg_trgm;
     CREATE INDEX IF NOT EXISTS client_search_trigrams ON client_search
         USING gin (text gin_trgm_ops);";

/// The name of the trigram index [`SEARCH_TRIGRAM_INDEX`] creates.
pub const SEARCH_TRIGRAM_INDEX_NAME: &str = "client_search_trigrams";

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
