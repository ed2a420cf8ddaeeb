//! [`SqliteStore`]: the client store in an SQLite file (WAL, `synchronous=NORMAL`, migrated schema).

use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, ErrorCode, OpenFlags, Row, Statement};
use uuid::fmt::Hyphenated;
use uuid::Uuid;

use crate::schema::{self, SCHEMA_VERSION};
use crate::{
    Activation, ActivationEvent, ClientFilter, ClientRecord, ClientStore, DailyCount, StoreError,
};

/// How long a statement waits for another connection's lock before failing with "busy".
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The columns every query reads, in the order [`decode`] expects.
const COLUMNS: &str = "cmid, application_id, sku_id, kms_id, workstation, license_status, \
     grace_minutes, is_vm, protocol, first_seen, last_seen, requests, last_address, last_epid, \
     last_hresult";

/// The history columns every event query reads, in the order [`decode_event`] expects.
const EVENT_COLUMNS: &str = "time, cmid, application_id, sku_id, kms_id, workstation, \
     license_status, protocol, address, hresult";

/// The history event every recorded request adds (same transaction as its upsert).
const INSERT_EVENT: &str = "INSERT INTO activations (time, cmid, application_id, sku_id, kms_id, \
         workstation, license_status, protocol, address, hresult)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// Runs [`INSERT_EVENT`] on `$stmt` for `$e`, an [`Activation`] or an [`ActivationEvent`]
/// (the event columns have the same field names in both), with its four UUIDs already
/// formatted (see [`uuid_texts`]).
macro_rules! insert_event {
    ($stmt:expr, $e:expr, $ids:expr) => {{
        let [cmid, application_id, sku_id, kms_id]: [&str; 4] = $ids;
        $stmt.execute(params![
            $e.time,
            cmid,
            application_id,
            sku_id,
            kms_id,
            $e.workstation,
            i64::from($e.license_status),
            $e.protocol,
            $e.address,
            i64::from($e.hresult),
        ])
    }};
}

/// The columns both upserts take from whichever side was seen last (the rules of
/// [`ClientRecord::merge`] and [`ClientRecord::absorb`]).
macro_rules! newest_wins {
    () => {
        "
         first_seen     = min(first_seen, excluded.first_seen),
         sku_id         = iif(excluded.last_seen >= last_seen, excluded.sku_id, sku_id),
         kms_id         = iif(excluded.last_seen >= last_seen, excluded.kms_id, kms_id),
         workstation    = iif(excluded.last_seen >= last_seen, excluded.workstation, workstation),
         license_status = iif(excluded.last_seen >= last_seen, excluded.license_status, license_status),
         grace_minutes  = iif(excluded.last_seen >= last_seen, excluded.grace_minutes, grace_minutes),
         is_vm          = iif(excluded.last_seen >= last_seen, excluded.is_vm, is_vm),
         protocol       = iif(excluded.last_seen >= last_seen, excluded.protocol, protocol),
         last_address   = iif(excluded.last_seen >= last_seen, excluded.last_address, last_address),
         last_epid      = iif(excluded.last_seen >= last_seen, excluded.last_epid, last_epid),
         last_hresult   = iif(excluded.last_seen >= last_seen, excluded.last_hresult, last_hresult),
         last_seen      = max(last_seen, excluded.last_seen)"
    };
}

/// The single-statement upsert behind `record`: same rules as [`ClientRecord::merge`].
const UPSERT: &str = concat!(
    "INSERT INTO clients (cmid, application_id, sku_id, kms_id, workstation, \
         license_status, grace_minutes, is_vm, protocol, first_seen, last_seen, requests, \
         last_address, last_epid, last_hresult)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, 1, ?11, ?12, ?13)
     ON CONFLICT (cmid, application_id) DO UPDATE SET
         requests       = requests + 1,",
    newest_wins!()
);

/// The upsert behind `import`: folds a whole record in, like [`ClientRecord::absorb`].
const IMPORT_UPSERT: &str = concat!(
    "INSERT INTO clients (cmid, application_id, sku_id, kms_id, \
         workstation, license_status, grace_minutes, is_vm, protocol, first_seen, last_seen, \
         requests, last_address, last_epid, last_hresult)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
     ON CONFLICT (cmid, application_id) DO UPDATE SET
         requests       = requests + excluded.requests,",
    newest_wins!()
);

/// The client store in one SQLite file. One connection, shared behind a mutex; every
/// statement is prepared once and cached.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    version: u32,
    migrated_from: u32,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("migrated_from", &self.migrated_from)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` read-write: WAL journal,
    /// `synchronous=NORMAL`, 5 s busy timeout, schema migrated to [`SCHEMA_VERSION`].
    ///
    /// The directory must exist ([`StoreError::MissingDirectory`] names it otherwise); a
    /// newer schema gives [`StoreError::TooNew`]; a file that is not an rkms SQLite database,
    /// or a directory that cannot be written, gives [`StoreError::Open`] with the path and
    /// SQLite's message.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        check_directory(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn =
            Connection::open_with_flags(path, flags).map_err(|e| open_error(path, &e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| open_error(path, &e))?;
        // Refuse a newer schema (and a non-database file) before changing anything in it.
        schema::read_version(&conn, path)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(|e| open_error(path, &e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                message: format!("cannot switch to WAL journal mode (SQLite kept {mode:?})"),
            });
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| open_error(path, &e))?;
        // A small page cache: writes touch a few pages each and the operating system caches
        // the file anyway; SQLite's default (2 MB) would be most of the host's memory.
        conn.pragma_update(None, "cache_size", PAGE_CACHE_KIB)
            .map_err(|e| open_error(path, &e))?;
        let migrated_from = schema::migrate(&mut conn, path)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Self {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            version: SCHEMA_VERSION,
            migrated_from,
        })
    }

    /// Opens an existing database read-only (for reporting tools). Nothing is created or
    /// migrated: an older schema gives [`StoreError::NeedsMigration`], a newer one
    /// [`StoreError::TooNew`]. Writes through the store fail with [`StoreError::Sqlite`].
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        check_directory(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, &e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| open_error(path, &e))?;
        let found = schema::read_version(&conn, path)?;
        if found < SCHEMA_VERSION {
            return Err(StoreError::NeedsMigration {
                path: path.to_path_buf(),
                found,
                required: SCHEMA_VERSION,
            });
        }
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Self {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            version: found,
            migrated_from: found,
        })
    }

    /// The schema version of the open database (always [`SCHEMA_VERSION`]).
    pub fn schema_version(&self) -> u32 {
        self.version
    }

    /// The schema version the file had before this open migrated it (0 for a new file; equal
    /// to [`Self::schema_version`] when nothing was migrated).
    pub fn migrated_from(&self) -> u32 {
        self.migrated_from
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open (it rolls back on
        // drop), so the connection is still usable.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ClientStore for SqliteStore {
    fn record(&self, a: &Activation) -> Result<(), StoreError> {
        self.record_batch(std::slice::from_ref(a))
    }

    fn record_batch(&self, batch: &[Activation]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut event = tx.prepare_cached(INSERT_EVENT)?;
            let mut client = tx.prepare_cached(UPSERT)?;
            for a in batch {
                upsert(&mut event, &mut client, a)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn distinct_clients_since(&self, kms_id: &Uuid, since: i64) -> Result<u64, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT COUNT(DISTINCT cmid) FROM clients \
             WHERE kms_id = ?1 AND last_seen >= ?2 AND last_hresult = 0",
        )?;
        let n: i64 = stmt.query_row(params![kms_id.to_string(), since], |row| row.get(0))?;
        non_negative(n, "count")
    }

    fn list(&self, filter: &ClientFilter) -> Result<Vec<ClientRecord>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM clients WHERE 1 = 1");
        let mut args: Vec<Value> = Vec::new();
        let uuid_conditions = [
            ("kms_id", filter.kms_id),
            ("sku_id", filter.sku_id),
            ("application_id", filter.application_id),
            ("cmid", filter.cmid),
        ];
        for (column, value) in uuid_conditions {
            if let Some(id) = value {
                sql.push_str(&format!(" AND {column} = ?"));
                args.push(Value::Text(id.to_string()));
            }
        }
        if let Some(since) = filter.since {
            sql.push_str(" AND last_seen >= ?");
            args.push(Value::Integer(since));
        }
        sql.push_str(" ORDER BY last_seen DESC, cmid, application_id LIMIT ? OFFSET ?");
        args.push(Value::Integer(filter.limit.map_or(-1, saturating_i64)));
        args.push(Value::Integer(filter.offset.map_or(0, saturating_i64)));

        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(args))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(decode(row)?);
        }
        Ok(out)
    }

    fn prune_older_than(&self, cutoff: i64) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx
            .prepare_cached("DELETE FROM clients WHERE last_seen < ?1")?
            .execute(params![cutoff])?;
        tx.prepare_cached("DELETE FROM activations WHERE time < ?1")?
            .execute(params![cutoff])?;
        tx.commit()?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    fn count(&self) -> Result<u64, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT COUNT(*) FROM clients")?;
        let n: i64 = stmt.query_row([], |row| row.get(0))?;
        non_negative(n, "count")
    }

    fn history(&self, cmid: &Uuid, limit: u64) -> Result<Vec<ActivationEvent>, StoreError> {
        self.events("WHERE cmid = ?1", &[Value::Text(cmid.to_string())], limit)
    }

    fn recent_activations(&self, limit: u64) -> Result<Vec<ActivationEvent>, StoreError> {
        self.events("", &[], limit)
    }

    fn activations_since(&self, since: i64) -> Result<u64, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT COUNT(*) FROM activations WHERE time >= ?1")?;
        let n: i64 = stmt.query_row(params![since], |row| row.get(0))?;
        non_negative(n, "count")
    }

    fn daily_counts(&self, since: i64) -> Result<Vec<DailyCount>, StoreError> {
        let conn = self.conn();
        // The day is the Euclidean floor, like `day_start`, also for times before 1970 (and
        // clamped like it, so that no time overflows).
        let mut stmt = conn.prepare_cached(
            "SELECT max(time, -9223372036854720000) - ((max(time, -9223372036854720000) % 86400) + 86400) % 86400 AS day, \
                    application_id, kms_id, \
                    hresult = 0 AS ok, COUNT(*) \
             FROM activations WHERE time >= ?1 \
             GROUP BY day, application_id, kms_id, ok \
             ORDER BY day, application_id, kms_id, ok",
        )?;
        let mut rows = stmt.query(params![since])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(DailyCount {
                day: row.get(0)?,
                application_id: uuid_at(row, 1, "application_id")?,
                kms_id: uuid_at(row, 2, "kms_id")?,
                succeeded: row.get::<_, i64>(3)? != 0,
                count: non_negative(row.get(4)?, "count")?,
            });
        }
        Ok(out)
    }

    fn probe_writable(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // A write statement that changes nothing: fails on a read-only database or file.
        tx.prepare_cached("DELETE FROM activations WHERE 0")?
            .execute([])?;
        tx.rollback()?;
        Ok(())
    }

    fn client_counts_since(&self, since: i64) -> Result<Vec<(Uuid, u64)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT kms_id, COUNT(DISTINCT cmid) FROM clients \
             WHERE last_seen >= ?1 AND last_hresult = 0 GROUP BY kms_id ORDER BY kms_id",
        )?;
        let mut rows = stmt.query(params![since])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push((
                uuid_at(row, 0, "kms_id")?,
                non_negative(row.get(1)?, "count")?,
            ));
        }
        Ok(out)
    }

    fn events_page(&self, offset: u64, limit: u64) -> Result<Vec<ActivationEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM activations ORDER BY time, rowid LIMIT ?1 OFFSET ?2"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params![saturating_i64(limit), saturating_i64(offset)])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(decode_event(row)?);
        }
        Ok(out)
    }

    fn import(
        &self,
        records: &[ClientRecord],
        events: &[ActivationEvent],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut buf = [[0; Hyphenated::LENGTH]; 4];
            let mut upsert = tx.prepare_cached(IMPORT_UPSERT)?;
            for r in records {
                let [cmid, application_id, sku_id, kms_id] =
                    uuid_texts(&mut buf, [&r.cmid, &r.application_id, &r.sku_id, &r.kms_id]);
                upsert.execute(params![
                    cmid,
                    application_id,
                    sku_id,
                    kms_id,
                    r.workstation,
                    i64::from(r.license_status),
                    i64::from(r.grace_minutes),
                    r.is_vm,
                    r.protocol,
                    r.first_seen,
                    r.last_seen,
                    saturating_i64(r.requests),
                    r.last_address,
                    r.last_epid,
                    i64::from(r.last_hresult),
                ])?;
            }
            let mut insert = tx.prepare_cached(INSERT_EVENT)?;
            for e in events {
                let ids = uuid_texts(&mut buf, [&e.cmid, &e.application_id, &e.sku_id, &e.kms_id]);
                insert_event!(insert, e, ids)?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

impl SqliteStore {
    /// History events matching `condition` (a `WHERE` clause over `args`, or empty), newest
    /// first, at most `limit`.
    fn events(
        &self,
        condition: &str,
        args: &[Value],
        limit: u64,
    ) -> Result<Vec<ActivationEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM activations {condition} \
             ORDER BY time DESC, rowid DESC LIMIT ?"
        );
        let mut args = args.to_vec();
        args.push(Value::Integer(saturating_i64(limit)));
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(args))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(decode_event(row)?);
        }
        Ok(out)
    }
}

/// Writes one request: its history event through `event` ([`INSERT_EVENT`]) and its client
/// record through `client` ([`UPSERT`]), both prepared once per transaction.
fn upsert(
    event: &mut Statement<'_>,
    client: &mut Statement<'_>,
    a: &Activation,
) -> Result<(), StoreError> {
    let mut buf = [[0; Hyphenated::LENGTH]; 4];
    let ids = uuid_texts(&mut buf, [&a.cmid, &a.application_id, &a.sku_id, &a.kms_id]);
    insert_event!(event, a, ids)?;
    let [cmid, application_id, sku_id, kms_id] = ids;
    client.execute(params![
        cmid,
        application_id,
        sku_id,
        kms_id,
        a.workstation,
        i64::from(a.license_status),
        i64::from(a.grace_minutes),
        a.is_vm,
        a.protocol,
        a.time,
        a.address,
        a.epid,
        i64::from(a.hresult),
    ])?;
    Ok(())
}

/// Four UUIDs as stored (lowercase hyphenated text, like `to_string`), formatted into `buf`
/// instead of four new strings.
fn uuid_texts<'b>(buf: &'b mut [[u8; Hyphenated::LENGTH]; 4], ids: [&Uuid; 4]) -> [&'b str; 4] {
    let [b0, b1, b2, b3] = buf;
    [
        ids[0].hyphenated().encode_lower(b0),
        ids[1].hyphenated().encode_lower(b1),
        ids[2].hyphenated().encode_lower(b2),
        ids[3].hyphenated().encode_lower(b3),
    ]
}

/// The UUID stored as text in column `i` of `row`.
fn uuid_at(row: &Row<'_>, i: usize, name: &str) -> Result<Uuid, StoreError> {
    let text: String = row.get(i)?;
    Uuid::parse_str(&text).map_err(|e| StoreError::Corrupt(format!("{name} {text:?}: {e}")))
}

/// The `u32` stored in column `i` of `row`.
fn u32_at(row: &Row<'_>, i: usize, name: &str) -> Result<u32, StoreError> {
    let n: i64 = row.get(i)?;
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("{name} {n} out of range")))
}

/// Turns a row of [`EVENT_COLUMNS`] into a history event.
fn decode_event(row: &Row<'_>) -> Result<ActivationEvent, StoreError> {
    Ok(ActivationEvent {
        time: row.get(0)?,
        cmid: uuid_at(row, 1, "cmid")?,
        application_id: uuid_at(row, 2, "application_id")?,
        sku_id: uuid_at(row, 3, "sku_id")?,
        kms_id: uuid_at(row, 4, "kms_id")?,
        workstation: row.get(5)?,
        license_status: u32_at(row, 6, "license_status")?,
        protocol: row.get(7)?,
        address: row.get(8)?,
        hresult: u32_at(row, 9, "hresult")?,
    })
}

/// Turns a row of [`COLUMNS`] into a record.
fn decode(row: &Row<'_>) -> Result<ClientRecord, StoreError> {
    let uuid = |i: usize, name: &str| uuid_at(row, i, name);
    let u32_at = |i: usize, name: &str| u32_at(row, i, name);
    Ok(ClientRecord {
        cmid: uuid(0, "cmid")?,
        application_id: uuid(1, "application_id")?,
        sku_id: uuid(2, "sku_id")?,
        kms_id: uuid(3, "kms_id")?,
        workstation: row.get(4)?,
        license_status: u32_at(5, "license_status")?,
        grace_minutes: u32_at(6, "grace_minutes")?,
        is_vm: row.get::<_, i64>(7)? != 0,
        protocol: row.get(8)?,
        first_seen: row.get(9)?,
        last_seen: row.get(10)?,
        requests: non_negative(row.get(11)?, "requests")?,
        last_address: row.get(12)?,
        last_epid: row.get(13)?,
        last_hresult: u32_at(14, "last_hresult")?,
    })
}

fn non_negative(n: i64, name: &str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{name} {n} is negative")))
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Fails unless the directory that will hold `path` exists (the store never creates it).
pub(crate) fn check_directory(path: &Path) -> Result<(), StoreError> {
    if path.as_os_str().is_empty() {
        return Err(StoreError::Open {
            path: path.to_path_buf(),
            message: "empty database path".into(),
        });
    }
    if path.is_dir() {
        return Err(StoreError::Open {
            path: path.to_path_buf(),
            message: "this is a directory, not a database file".into(),
        });
    }
    let directory = parent_directory(path);
    match std::fs::metadata(directory) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(StoreError::Open {
            path: path.to_path_buf(),
            message: format!("{} is not a directory", directory.display()),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(StoreError::MissingDirectory {
            path: path.to_path_buf(),
            directory: directory.to_path_buf(),
        }),
        Err(e) => Err(StoreError::Open {
            path: path.to_path_buf(),
            message: format!("cannot access directory {}: {e}", directory.display()),
        }),
    }
}

fn parent_directory(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// SQLite's page cache size (`PRAGMA cache_size`, negative: in KiB).
const PAGE_CACHE_KIB: i64 = -256;

/// [`StoreError::Open`] for a failure while opening `path`, with SQLite's message and, when
/// the file could not be opened or written, a hint naming the directory.
pub(crate) fn open_error(path: &Path, e: &rusqlite::Error) -> StoreError {
    let mut message = e.to_string();
    if matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied)
    ) {
        message.push_str(&format!(
            " (check that {} and directory {} are readable and writable)",
            path.display(),
            parent_directory(path).display()
        ));
    }
    StoreError::Open {
        path: path.to_path_buf(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_file_name_lives_in_the_current_directory() {
        assert_eq!(parent_directory(Path::new("clients.db")), Path::new("."));
        assert_eq!(
            parent_directory(Path::new("/var/lib/rkms/c.db")),
            Path::new("/var/lib/rkms")
        );
        assert!(check_directory(Path::new("clients.db")).is_ok());
        assert!(matches!(
            check_directory(Path::new("")),
            Err(StoreError::Open { .. })
        ));
    }
}
