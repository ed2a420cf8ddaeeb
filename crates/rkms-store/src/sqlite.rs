//! [`SqliteStore`]: the client store in an SQLite file (WAL, `synchronous=NORMAL`, migrated schema).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{
    params, params_from_iter, Connection, ErrorCode, OpenFlags, OptionalExtension, Row, Transaction,
};
use uuid::Uuid;

use crate::history::day_start;
use crate::schema::{self, NEVER_ACTIVATED, SCHEMA_VERSION};
use crate::{
    Activation, ActivationEvent, ClientFilter, ClientRecord, ClientSort, ClientState, ClientStore,
    DailyCount, HealthCount, HealthThresholds, IdSet, MatchCount, Search, StoreError,
    MATCH_COUNT_LIMIT, SEARCH_INDEX_MIN_LEN,
};

/// How long a statement waits for another connection's lock before failing with "busy".
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The columns every record query reads (table alias `c`), in the order [`decode`] expects;
/// application, SKU and KMS IDs as their `guids` keys.
const COLUMNS: &str = "c.cmid, c.app, c.sku, c.kms, c.workstation, c.license_status, \
     c.grace_minutes, c.is_vm, c.protocol, c.first_seen, c.last_seen, c.requests, \
     c.last_address, c.last_epid, c.last_hresult, c.last_activated";

/// The history columns every event query reads, in the order [`decode_event`] expects.
const EVENT_COLUMNS: &str = "time, cmid, app, sku, kms, workstation, license_status, protocol, \
     address, hresult";

/// The history event every recorded request adds (same transaction as its upsert).
const INSERT_EVENT: &str = "INSERT INTO activations (time, cmid, app, sku, kms, workstation, \
         license_status, protocol, address, hresult)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// Adds requests to the per-day counts.
const ADD_DAILY: &str = "INSERT INTO activation_days (day, app, kms, ok, count) \
     VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (day, app, kms, ok) DO UPDATE SET count = count + excluded.count";

/// Folds a whole record into the table, like [`ClientRecord::absorb`]: the upsert behind both
/// `record_batch` (a batch is first folded into one record per key) and `import`. The record's
/// id is read afterwards ([`CLIENT_ID`]), not with `RETURNING id`: SQLite gathers a
/// `RETURNING` statement's rows in a temporary table, with a page cache of its own made and
/// dropped at every execution, whose first allocation alone is 20 pages (87 kB), all written
/// to. With one upsert per record that was a serving host's largest memory churn: an
/// allocator that maps blocks that large on their own (Zig's libc) mapped and unmapped it for
/// every record (lean static build, `rkms bench -n 40000 -c 16`: 98-102 µs of server CPU per
/// request with it, 66-75 without). The index seek that replaces it reads pages the upsert
/// has just touched.
const UPSERT: &str = "INSERT INTO clients (cmid, app, sku, kms, workstation, license_status, \
         grace_minutes, is_vm, protocol, first_seen, last_seen, requests, last_address, \
         last_epid, last_hresult, last_activated)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
     ON CONFLICT (cmid, app) DO UPDATE SET
         last_activated = max(last_activated, excluded.last_activated),
         requests       = requests + excluded.requests,
         first_seen     = min(first_seen, excluded.first_seen),
         sku            = iif(excluded.last_seen >= last_seen, excluded.sku, sku),
         kms            = iif(excluded.last_seen >= last_seen, excluded.kms, kms),
         workstation    = iif(excluded.last_seen >= last_seen, excluded.workstation, workstation),
         license_status = iif(excluded.last_seen >= last_seen, excluded.license_status, license_status),
         grace_minutes  = iif(excluded.last_seen >= last_seen, excluded.grace_minutes, grace_minutes),
         is_vm          = iif(excluded.last_seen >= last_seen, excluded.is_vm, is_vm),
         protocol       = iif(excluded.last_seen >= last_seen, excluded.protocol, protocol),
         last_address   = iif(excluded.last_seen >= last_seen, excluded.last_address, last_address),
         last_epid      = iif(excluded.last_seen >= last_seen, excluded.last_epid, last_epid),
         last_hresult   = iif(excluded.last_seen >= last_seen, excluded.last_hresult, last_hresult),
         last_seen      = max(last_seen, excluded.last_seen)";

/// The id of the record of a CMID and application key.
const CLIENT_ID: &str = "SELECT id FROM clients WHERE cmid = ?1 AND app = ?2";

/// Links an event to its client record: the record has one more event at that second.
const LINK_EVENT: &str = "INSERT INTO client_events (client, time, events) VALUES (?1, ?2, 1) \
     ON CONFLICT (client, time) DO UPDATE SET events = events + 1";

/// The keys of the KMS IDs of clients whose latest request succeeded, one index seek each
/// (a skip scan of `clients_active`), in order.
const ACTIVE_KMS_KEYS: &str = "WITH RECURSIVE k(kms) AS (
         SELECT min(kms) FROM clients WHERE last_hresult = 0
         UNION ALL
         SELECT (SELECT min(kms) FROM clients WHERE last_hresult = 0 AND kms > k.kms)
         FROM k WHERE k.kms IS NOT NULL)
     SELECT kms FROM k WHERE kms IS NOT NULL";

/// Most `guids` keys remembered (both ways); beyond it the cache starts over, so made-up IDs
/// cannot grow it without bound.
const GUID_CACHE_LIMIT: usize = 4096;

/// The connection and the `guids` keys already looked up. A key, once committed, never
/// changes (rows of `guids` are never updated or deleted), so the cache stays right whatever
/// other processes write; keys are cached only once their transaction has committed.
struct Inner {
    conn: Connection,
    /// The page cache of the connection (`PRAGMA cache_size`: negative, KiB), restored after
    /// a bulk write.
    cache_kib: i64,
    ids: HashMap<Uuid, i64>,
    guids: HashMap<i64, Uuid>,
    /// At least the number of records listed in `search_pending` (records written since
    /// the list was last counted are added whether they joined it or not); 0 without the
    /// index.
    unindexed: u64,
    /// Whether searches use the search index and the store keeps it up to date (see
    /// [`crate::search_index`]): not with a SQLite without FTS5.
    search_index: bool,
}

impl Inner {
    fn remember(&mut self, pairs: impl IntoIterator<Item = (Uuid, i64)>) {
        for (guid, id) in pairs {
            if self.ids.len() >= GUID_CACHE_LIMIT {
                self.ids.clear();
                self.guids.clear();
            }
            self.ids.insert(guid, id);
            self.guids.insert(id, guid);
        }
    }

    /// The GUID of key `id` (cached, else read).
    fn guid(&mut self, id: i64) -> Result<Uuid, StoreError> {
        if let Some(g) = self.guids.get(&id) {
            return Ok(*g);
        }
        let blob: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT guid FROM guids WHERE id = ?1")?
            .query_row(params![id], |row| row.get(0))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        let Some(blob) = blob else {
            return Err(StoreError::Corrupt(format!("no GUID with key {id}")));
        };
        let guid = uuid_from_blob(&blob, "guid")?;
        self.remember([(guid, id)]);
        Ok(guid)
    }
}

/// Looks up (and creates) `guids` keys inside a write transaction; the new ones are cached
/// by the caller after the commit.
struct Keys<'a, 't> {
    tx: &'t Transaction<'a>,
    cached: &'t HashMap<Uuid, i64>,
    found: HashMap<Uuid, i64>,
}

impl<'a, 't> Keys<'a, 't> {
    fn new(tx: &'t Transaction<'a>, cached: &'t HashMap<Uuid, i64>) -> Self {
        Self {
            tx,
            cached,
            found: HashMap::new(),
        }
    }

    fn key(&mut self, guid: &Uuid) -> Result<i64, StoreError> {
        if let Some(id) = self.cached.get(guid).or_else(|| self.found.get(guid)) {
            return Ok(*id);
        }
        let bytes = guid.as_bytes().as_slice();
        self.tx
            .prepare_cached("INSERT INTO guids (guid) VALUES (?1) ON CONFLICT (guid) DO NOTHING")?
            .execute(params![bytes])?;
        let id: i64 = self
            .tx
            .prepare_cached("SELECT id FROM guids WHERE guid = ?1")?
            .query_row(params![bytes], |row| row.get(0))?;
        self.found.insert(*guid, id);
        Ok(id)
    }
}

/// The client store in one SQLite file. One connection, shared behind a mutex; every
/// statement is prepared once and cached.
pub struct SqliteStore {
    inner: Mutex<Inner>,
    path: PathBuf,
    version: u32,
    migrated_from: u32,
    /// Checkpoints the write-ahead log off the commit path (read-write stores only).
    checkpointer: Option<crate::checkpoint::Checkpointer>,
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
        Self::open_with_cache(path, DEFAULT_PAGE_CACHE_KIB)
    }

    /// [`Self::open`] with a page cache of `cache_kib` KiB for the connection that writes
    /// (a serving host's `--db-cache`): a larger cache keeps more of the indexes in memory,
    /// so each record written reads and rewrites fewer pages. SQLite fills it only as far as
    /// the pages used.
    pub fn open_with_cache(path: &Path, cache_kib: u64) -> Result<Self, StoreError> {
        Self::open_writable(path, cache_kib, crate::search_index::fts5_available())
    }

    /// [`Self::open`] as a build whose SQLite has no FTS5 opens it: no search index is
    /// created, kept or used (see [`crate::search_index`]). For tests of such builds.
    #[doc(hidden)]
    pub fn open_without_search_index(path: &Path) -> Result<Self, StoreError> {
        Self::open_writable(path, DEFAULT_PAGE_CACHE_KIB, false)
    }

    fn open_writable(path: &Path, cache_kib: u64, search_index: bool) -> Result<Self, StoreError> {
        check_directory(path)?;
        let cache_kib = -i64::try_from(cache_kib.max(1)).unwrap_or(i64::MAX);
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
        conn.pragma_update(None, "cache_size", cache_kib)
            .map_err(|e| open_error(path, &e))?;
        let migrated_from = schema::migrate(&mut conn, path, search_index)?;
        crate::search_index::fit(&mut conn, path, search_index)?;
        // Commits only append to the log; a thread of its own copies it into the database
        // (see checkpoint.rs), so no answered activation waits for a checkpoint's fsyncs.
        let checkpointer =
            crate::checkpoint::Checkpointer::start(path).map_err(|e| open_error(path, &e))?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|e| open_error(path, &e))?;
        conn.set_prepared_statement_cache_capacity(64);
        let unindexed = if search_index {
            count_unindexed(&conn).map_err(|e| open_error(path, &e))?
        } else {
            0
        };
        Ok(Self {
            inner: Mutex::new(Inner {
                conn,
                cache_kib,
                ids: HashMap::new(),
                guids: HashMap::new(),
                unindexed,
                search_index,
            }),
            path: path.to_path_buf(),
            version: SCHEMA_VERSION,
            migrated_from,
            checkpointer: Some(checkpointer),
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
        // The index, where this SQLite can read it and the database has one (however far
        // behind: searches test the records listed for it too).
        let search_index = crate::search_index::fts5_available()
            && crate::search_index::index_exists(&conn).map_err(|e| open_error(path, &e))?;
        Ok(Self {
            inner: Mutex::new(Inner {
                conn,
                cache_kib: -2000,
                ids: HashMap::new(),
                guids: HashMap::new(),
                // Read-only: indexing is the writing host's job.
                unindexed: 0,
                search_index,
            }),
            path: path.to_path_buf(),
            version: found,
            migrated_from: found,
            checkpointer: None,
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

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a transaction open (it rolls back on
        // drop), so the connection is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ClientStore for SqliteStore {
    fn record(&self, a: &Activation) -> Result<(), StoreError> {
        self.record_batch(std::slice::from_ref(a))
    }

    fn upkeep(&self, idle: bool) -> Result<bool, StoreError> {
        if self.checkpointer.is_none() {
            // Read-only: indexing is the writing host's job.
            return Ok(false);
        }
        let mut inner = self.inner();
        if inner.unindexed == 0 {
            return Ok(false);
        }
        if !idle && inner.unindexed < UPKEEP_BACKLOG {
            return Ok(true);
        }
        Self::index_pending(&mut inner, UPKEEP_BATCH)
    }

    fn catch_up(&self) -> Result<(), StoreError> {
        if self.checkpointer.is_none() {
            return Ok(());
        }
        let mut guard = self.inner();
        let inner = &mut *guard;
        if !inner.search_index {
            return Ok(());
        }
        inner
            .conn
            .pragma_update(None, "cache_size", BULK_CACHE_KIB)?;
        let mut result = Ok(true);
        while matches!(result, Ok(true)) {
            result = Self::index_pending(inner, CATCH_UP_BATCH);
        }
        inner.conn.pragma_update(None, "cache_size", inner.cache_kib)?;
        result.map(|_| ())
    }

    fn record_batch(&self, batch: &[Activation]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let (records, events) = crate::record::fold_batch(batch);
        self.write(&records, &events)
    }

    fn record_all(
        &self,
        source: crate::BatchSource<'_>,
        expected: u64,
    ) -> Result<u64, StoreError> {
        // Records and events: about two rows a request.
        let rows = usize::try_from(expected.saturating_mul(2)).unwrap_or(usize::MAX);
        self.write_with(rows, |inner| Self::write_all_in(inner, source, rows))
    }

    fn distinct_clients_since(&self, kms_id: &Uuid, since: i64) -> Result<u64, StoreError> {
        let inner = self.inner();
        let mut stmt = inner.conn.prepare_cached(
            "SELECT COUNT(DISTINCT cmid) FROM clients \
             WHERE kms = (SELECT id FROM guids WHERE guid = ?1) AND last_seen >= ?2 \
             AND last_hresult = 0",
        )?;
        let n: i64 = stmt.query_row(params![kms_id.as_bytes().as_slice(), since], |row| {
            row.get(0)
        })?;
        non_negative(n, "count")
    }

    fn list(&self, filter: &ClientFilter) -> Result<Vec<ClientRecord>, StoreError> {
        let mut inner = self.inner();
        let plan = search_plan(&inner, filter)?;
        list_in(&mut inner, filter, &plan)
    }

    fn count_matching(&self, filter: &ClientFilter) -> Result<MatchCount, StoreError> {
        let inner = self.inner();
        let plan = search_plan(&inner, filter)?;
        count_in(&inner, filter, &plan)
    }

    fn list_and_count(
        &self,
        filter: &ClientFilter,
    ) -> Result<(Vec<ClientRecord>, MatchCount), StoreError> {
        let mut inner = self.inner();
        let plan = search_plan(&inner, filter)?;
        let records = list_in(&mut inner, filter, &plan)?;
        Ok((records, count_in(&inner, filter, &plan)?))
    }

    fn prune_older_than(&self, cutoff: i64) -> Result<u64, StoreError> {
        let mut inner = self.inner();
        let tx = inner.conn.transaction()?;
        let n = tx
            .prepare_cached("DELETE FROM clients WHERE last_seen < ?1")?
            .execute(params![cutoff])?;
        tx.prepare_cached("DELETE FROM activations WHERE time < ?1")?
            .execute(params![cutoff])?;
        tx.commit()?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    fn prune_history(&self, cutoff: i64, batch: u64) -> Result<u64, StoreError> {
        let inner = self.inner();
        let n = inner
            .conn
            .prepare_cached(
                "DELETE FROM activations WHERE rowid IN \
                 (SELECT rowid FROM activations WHERE time < ?1 ORDER BY time LIMIT ?2)",
            )?
            .execute(params![cutoff, saturating_i64(batch)])?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    fn prune_clients(&self, cutoff: i64, batch: u64) -> Result<u64, StoreError> {
        let inner = self.inner();
        let n = inner
            .conn
            .prepare_cached(
                "DELETE FROM clients WHERE id IN \
                 (SELECT id FROM clients WHERE last_seen < ?1 ORDER BY last_seen LIMIT ?2)",
            )?
            .execute(params![cutoff, saturating_i64(batch)])?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    fn prune_workstation(&self, workstation: &str) -> Result<(u64, u64), StoreError> {
        let mut inner = self.inner();
        let tx = inner.conn.transaction()?;
        let records = tx
            .prepare_cached("DELETE FROM clients WHERE workstation = ?1 COLLATE NOCASE")?
            .execute(params![workstation])?;
        let events = tx
            .prepare_cached("DELETE FROM activations WHERE workstation = ?1 COLLATE NOCASE")?
            .execute(params![workstation])?;
        tx.commit()?;
        Ok((
            u64::try_from(records).unwrap_or(u64::MAX),
            u64::try_from(events).unwrap_or(u64::MAX),
        ))
    }

    fn count(&self) -> Result<u64, StoreError> {
        let inner = self.inner();
        let mut stmt = inner.conn.prepare_cached("SELECT COUNT(*) FROM clients")?;
        let n: i64 = stmt.query_row([], |row| row.get(0))?;
        non_negative(n, "count")
    }

    fn history(&self, cmid: &Uuid, limit: u64) -> Result<Vec<ActivationEvent>, StoreError> {
        // The seconds at which each record of the CMID has events (`client_events`), then
        // that record's events at those seconds, in that order: `CROSS JOIN` fixes it.
        self.events(
            "WHERE rowid IN (SELECT a.rowid FROM clients c \
                 CROSS JOIN client_events e ON e.client = c.id \
                 CROSS JOIN activations a ON a.time = e.time \
                 WHERE c.cmid = ?1 AND a.cmid = c.cmid AND a.app = c.app)",
            &[Value::Blob(cmid.as_bytes().to_vec())],
            limit,
        )
    }

    fn recent_activations(&self, limit: u64) -> Result<Vec<ActivationEvent>, StoreError> {
        self.events("", &[], limit)
    }

    fn activations_since(&self, since: i64) -> Result<u64, StoreError> {
        let inner = self.inner();
        let mut stmt = inner
            .conn
            .prepare_cached("SELECT COUNT(*) FROM activations WHERE time >= ?1")?;
        let n: i64 = stmt.query_row(params![since], |row| row.get(0))?;
        non_negative(n, "count")
    }

    fn daily_counts(&self, since: i64) -> Result<Vec<DailyCount>, StoreError> {
        let since_day = since.saturating_sub(since.rem_euclid(crate::SECONDS_PER_DAY));
        let mut inner = self.inner();
        let raw: Vec<(i64, i64, i64, bool, i64)> = {
            let mut stmt = inner.conn.prepare_cached(
                "SELECT day, app, kms, ok, count FROM activation_days WHERE day >= ?1",
            )?;
            let rows = stmt.query_map(params![since_day], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get::<_, i64>(3)? != 0,
                    row.get(4)?,
                ))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(raw.len());
        for (day, app, kms, succeeded, count) in raw {
            out.push(DailyCount {
                day,
                application_id: inner.guid(app)?,
                kms_id: inner.guid(kms)?,
                succeeded,
                count: non_negative(count, "count")?,
            });
        }
        out.sort_by_key(|c| (c.day, c.application_id, c.kms_id, c.succeeded));
        Ok(out)
    }

    fn probe_writable(&self) -> Result<(), StoreError> {
        let mut inner = self.inner();
        let tx = inner
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // A write statement that changes nothing: fails on a read-only database or file.
        tx.prepare_cached("DELETE FROM activations WHERE 0")?
            .execute([])?;
        tx.rollback()?;
        Ok(())
    }

    fn client_counts_since(&self, since: i64) -> Result<Vec<(Uuid, u64)>, StoreError> {
        let mut inner = self.inner();
        let raw: Vec<(i64, i64)> = {
            let mut stmt = inner.conn.prepare_cached(
                "SELECT kms, COUNT(DISTINCT cmid) FROM clients \
                 WHERE last_seen >= ?1 AND last_hresult = 0 GROUP BY kms",
            )?;
            let rows = stmt.query_map(params![since], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(raw.len());
        for (kms, n) in raw {
            out.push((inner.guid(kms)?, non_negative(n, "count")?));
        }
        out.sort();
        Ok(out)
    }

    fn client_counts_capped(&self, since: i64, cap: u64) -> Result<Vec<(Uuid, u64)>, StoreError> {
        let mut inner = self.inner();
        let mut raw: Vec<(i64, i64)> = Vec::new();
        {
            let kms_keys: Vec<i64> = {
                let mut stmt = inner.conn.prepare_cached(ACTIVE_KMS_KEYS)?;
                let rows = stmt.query_map([], |row| row.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            let mut stmt = inner.conn.prepare_cached(
                "SELECT COUNT(DISTINCT cmid) FROM (SELECT cmid FROM clients \
                 INDEXED BY clients_active \
                 WHERE kms = ?1 AND last_seen >= ?2 AND last_hresult = 0 LIMIT ?3)",
            )?;
            for kms in kms_keys {
                let n: i64 =
                    stmt.query_row(params![kms, since, saturating_i64(cap)], |row| row.get(0))?;
                if n > 0 {
                    raw.push((kms, n));
                }
            }
        }
        let mut out = Vec::with_capacity(raw.len());
        for (kms, n) in raw {
            out.push((inner.guid(kms)?, non_negative(n, "count")?));
        }
        out.sort();
        Ok(out)
    }

    fn active_clients(
        &self,
        since: i64,
        per_kms: u64,
    ) -> Result<Vec<(Uuid, Uuid, i64)>, StoreError> {
        let mut inner = self.inner();
        let kms_keys: Vec<i64> = {
            let mut stmt = inner.conn.prepare_cached(ACTIVE_KMS_KEYS)?;
            let rows = stmt.query_map([], |row| row.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut raw: Vec<(i64, Vec<u8>, i64)> = Vec::new();
        {
            let mut stmt = inner.conn.prepare_cached(
                "SELECT cmid, last_seen FROM clients INDEXED BY clients_active \
                 WHERE kms = ?1 AND last_seen >= ?2 AND last_hresult = 0 \
                 ORDER BY last_seen DESC LIMIT ?3",
            )?;
            for kms in kms_keys {
                let rows = stmt.query_map(params![kms, since, saturating_i64(per_kms)], |row| {
                    Ok((kms, row.get(0)?, row.get(1)?))
                })?;
                for r in rows {
                    raw.push(r?);
                }
            }
        }
        let mut out = Vec::with_capacity(raw.len());
        for (kms, cmid, seen) in raw {
            out.push((inner.guid(kms)?, uuid_from_blob(&cmid, "cmid")?, seen));
        }
        Ok(out)
    }

    fn health_counts(&self, thresholds: &HealthThresholds) -> Result<Vec<HealthCount>, StoreError> {
        // Every (application, KMS ID) in turn, one index seek each; then each state is one
        // range of the (app, kms, last_hresult, last_activated) index: the work is one step
        // per record in an index, with no sort and no table read.
        let mut inner = self.inner();
        let mut groups: Vec<(i64, i64)> = Vec::new();
        {
            let mut first = inner.conn.prepare_cached(
                "SELECT app, kms FROM clients INDEXED BY clients_family_health \
                 ORDER BY app, kms LIMIT 1",
            )?;
            let mut next = inner.conn.prepare_cached(
                "SELECT app, kms FROM clients INDEXED BY clients_family_health \
                 WHERE (app, kms) > (?1, ?2) ORDER BY app, kms LIMIT 1",
            )?;
            let mut at: Option<(i64, i64)> = first
                .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })?;
            while let Some((app, kms)) = at {
                groups.push((app, kms));
                at = next
                    .query_row(params![app, kms], |row| Ok((row.get(0)?, row.get(1)?)))
                    .map(Some)
                    .or_else(|e| match e {
                        rusqlite::Error::QueryReturnedNoRows => Ok(None),
                        e => Err(e),
                    })?;
            }
        }
        let mut counts: Vec<(i64, i64, [u64; 5])> = Vec::with_capacity(groups.len());
        {
            let mut statements = Vec::new();
            for state in ClientState::ALL {
                let mut args = Vec::new();
                let sql = format!(
                    "SELECT COUNT(*) FROM clients c INDEXED BY clients_family_health \
                     WHERE c.app = ? AND c.kms = ? AND {}",
                    state_condition(state, thresholds, &mut args)
                );
                statements.push((inner.conn.prepare_cached(&sql)?, args));
            }
            for (app, kms) in groups {
                let mut n = [0u64; 5];
                for (slot, (stmt, args)) in n.iter_mut().zip(statements.iter_mut()) {
                    let mut all = vec![Value::Integer(app), Value::Integer(kms)];
                    all.extend(args.iter().cloned());
                    let count: i64 = stmt.query_row(params_from_iter(all), |row| row.get(0))?;
                    *slot = non_negative(count, "count")?;
                }
                counts.push((app, kms, n));
            }
        }
        let mut out = Vec::with_capacity(counts.len());
        for (app, kms, n) in counts {
            out.push((inner.guid(app)?, inner.guid(kms)?, n));
        }
        Ok(crate::health::counts_from_rows(out))
    }

    fn events_page(&self, offset: u64, limit: u64) -> Result<Vec<ActivationEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM activations ORDER BY time, rowid LIMIT ?1 OFFSET ?2"
        );
        self.read_events(
            &sql,
            vec![
                Value::Integer(saturating_i64(limit)),
                Value::Integer(saturating_i64(offset)),
            ],
        )
    }

    fn import(
        &self,
        records: &[ClientRecord],
        events: &[ActivationEvent],
    ) -> Result<(), StoreError> {
        // One row per key: fold duplicates first.
        let mut folded: HashMap<(Uuid, Uuid), ClientRecord> = HashMap::new();
        for r in records {
            folded
                .entry((r.cmid, r.application_id))
                .and_modify(|stored| stored.absorb(r))
                .or_insert_with(|| r.clone());
        }
        let records: Vec<ClientRecord> = folded.into_values().collect();
        self.write(&records, events)
    }
}

impl SqliteStore {
    /// Upserts `records` (at most one per key), appends `events` and adds them to the per-day
    /// counts, in one transaction.
    fn write(
        &self,
        records: &[ClientRecord],
        events: &[ActivationEvent],
    ) -> Result<(), StoreError> {
        if records.is_empty() && events.is_empty() {
            return Ok(());
        }
        self.write_with(records.len() + events.len(), |inner| {
            Self::write_in(inner, records, events)
        })
    }

    /// Runs `write`, one transaction of about `rows` rows, on the connection. A bulk write (an
    /// import) touches index pages all over: it gets a page cache of its own for the
    /// transaction, shrunk back after. Then, when the checkpoint thread could not start the
    /// log over (commits kept the write lock busy), the writer does, between two
    /// transactions; a failure leaves it to later.
    fn write_with<T>(
        &self,
        rows: usize,
        write: impl FnOnce(&mut Inner) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.inner();
        let inner = &mut *guard;
        let bulk = rows > BULK_ROWS;
        if bulk {
            inner
                .conn
                .pragma_update(None, "cache_size", BULK_CACHE_KIB)?;
        }
        let result = write(inner);
        if bulk {
            inner
                .conn
                .pragma_update(None, "cache_size", inner.cache_kib)?;
        }
        if result.is_ok()
            && self
                .checkpointer
                .as_ref()
                .is_some_and(|c| c.restart_wanted())
        {
            let _ = crate::checkpoint::restart_then(&inner.conn, BUSY_TIMEOUT);
        }
        result
    }

    fn write_in(
        inner: &mut Inner,
        records: &[ClientRecord],
        events: &[ActivationEvent],
    ) -> Result<(), StoreError> {
        Self::transaction_of(inner, records.len() + events.len(), |rows| {
            rows.write(records, events)
        })
    }

    /// [`ClientStore::record_all`] in one transaction, each batch written as it comes
    /// (`rows`: about how many rows the whole will write).
    fn write_all_in(
        inner: &mut Inner,
        source: crate::BatchSource<'_>,
        rows: usize,
    ) -> Result<u64, StoreError> {
        Self::transaction_of(inner, rows, |writer| {
            let mut recorded = 0u64;
            source(&mut |batch: Vec<Activation>| {
                let (records, events) = crate::record::fold_batch(&batch);
                writer.write(&records, &events)?;
                recorded += batch.len() as u64;
                Ok(())
            })?;
            Ok(recorded)
        })
    }

    /// One write transaction of about `rows` rows: the secondary indexes dropped first when
    /// that makes it a bulk write (and built again before the commit), `fill` writing the rows
    /// through the [`RowWriter`] it is given; once committed, the GUID keys found are kept and
    /// the records written counted as waiting for the search index.
    fn transaction_of<T>(
        inner: &mut Inner,
        rows: usize,
        fill: impl FnOnce(&mut RowWriter<'_, '_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = inner.conn.transaction()?;
        let rebuilt = drop_indexes_for_bulk(&tx, rows)?;
        let mut writer = RowWriter {
            tx: &tx,
            cached: &inner.ids,
            found: HashMap::new(),
            records: 0,
        };
        let result = fill(&mut writer)?;
        let (found, records) = (writer.found, writer.records);
        for sql in &rebuilt {
            tx.execute_batch(sql)?;
        }
        tx.commit()?;
        inner.remember(found);
        if inner.search_index {
            inner.unindexed = inner.unindexed.saturating_add(records);
        }
        Ok(result)
    }
}

/// Writes rows in a transaction ([`SqliteStore::transaction_of`]), keeping what the commit
/// needs to know.
struct RowWriter<'t, 'c> {
    tx: &'t Transaction<'c>,
    /// The GUID keys known before the transaction.
    cached: &'t HashMap<Uuid, i64>,
    /// The GUID keys looked up or added by the transaction.
    found: HashMap<Uuid, i64>,
    /// Client records written (new or renamed ones wait for the search index).
    records: u64,
}

impl RowWriter<'_, '_> {
    fn write(
        &mut self,
        records: &[ClientRecord],
        events: &[ActivationEvent],
    ) -> Result<(), StoreError> {
        self.found
            .extend(write_rows(self.tx, self.cached, records, events)?);
        self.records += records.len() as u64;
        Ok(())
    }
}

/// Writes `records` (upserted) and `events` (appended, and added to the per-day counts) in
/// transaction `tx`; returns the GUID keys it looked up or added (beyond `cached`).
fn write_rows(
    tx: &Transaction<'_>,
    cached: &HashMap<Uuid, i64>,
    records: &[ClientRecord],
    events: &[ActivationEvent],
) -> Result<HashMap<Uuid, i64>, StoreError> {
    let mut keys = Keys::new(tx, cached);
    // The records first: each event is then linked to its record's id (`client_events`).
    let mut ids: HashMap<(Uuid, Uuid), i64> = HashMap::with_capacity(records.len());
    let mut upsert = tx.prepare_cached(UPSERT)?;
    let mut client_id = tx.prepare_cached(CLIENT_ID)?;
    // In key order: neighbouring index entries, fewer pages touched.
    let mut sorted: Vec<&ClientRecord> = records.iter().collect();
    sorted.sort_unstable_by_key(|r| (r.cmid, r.application_id));
    for r in sorted {
        let (app, sku, kms) = (
            keys.key(&r.application_id)?,
            keys.key(&r.sku_id)?,
            keys.key(&r.kms_id)?,
        );
        upsert.execute(params![
                r.cmid.as_bytes().as_slice(),
                app,
                sku,
                kms,
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
            r.last_activated.unwrap_or(NEVER_ACTIVATED),
        ])?;
        let id: i64 = client_id.query_row(params![r.cmid.as_bytes().as_slice(), app], |row| {
            row.get(0)
        })?;
        ids.insert((r.cmid, r.application_id), id);
    }
    let mut days: BTreeMap<(i64, i64, i64, bool), i64> = BTreeMap::new();
    let mut insert = tx.prepare_cached(INSERT_EVENT)?;
    let mut link = tx.prepare_cached(LINK_EVENT)?;
    for e in events {
        let (app, sku, kms) = (
            keys.key(&e.application_id)?,
            keys.key(&e.sku_id)?,
            keys.key(&e.kms_id)?,
        );
        insert.execute(params![
            e.time,
            e.cmid.as_bytes().as_slice(),
            app,
            sku,
            kms,
            e.workstation,
            i64::from(e.license_status),
            e.protocol,
            e.address,
            i64::from(e.hresult),
        ])?;
        // An event written without its record (an import of history alone) is linked to
        // the record when there is one.
        let client = match ids.get(&(e.cmid, e.application_id)) {
            Some(id) => Some(*id),
            None => client_id
                .query_row(params![e.cmid.as_bytes().as_slice(), app], |row| row.get(0))
                .optional()?,
        };
        if let Some(client) = client {
            link.execute(params![client, e.time])?;
        }
        *days
            .entry((day_start(e.time), app, kms, e.succeeded()))
            .or_default() += 1;
    }
    let mut daily = tx.prepare_cached(ADD_DAILY)?;
    for ((day, app, kms, ok), n) in days {
        daily.execute(params![day, app, kms, ok, n])?;
    }
    Ok(keys.found)
}

impl SqliteStore {
    /// One batch of [`ClientStore::upkeep`]: indexes the first `batch` records of
    /// `search_pending` in one transaction; returns whether more are listed.
    fn index_pending(inner: &mut Inner, batch: i64) -> Result<bool, StoreError> {
        let tx = inner
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let last: Option<i64> = tx
            .prepare_cached(
                "SELECT max(id) FROM (SELECT id FROM search_pending ORDER BY id LIMIT ?1)",
            )?
            .query_row(params![batch], |row| row.get(0))?;
        let mut taken_off = 0;
        if let Some(last) = last {
            for sql in schema::INDEX_PENDING_SQL {
                // The last statement takes the batch off the list.
                taken_off = tx.prepare_cached(sql)?.execute(params![last])?;
            }
        }
        // What is left, without counting the list at each batch (the list can be long):
        // records this process listed less those indexed, and at least one if another
        // process listed some.
        let left = if last.is_some() && still_listed(&tx)? {
            inner.unindexed.saturating_sub(taken_off as u64).max(1)
        } else {
            0
        };
        tx.commit()?;
        inner.unindexed = left;
        Ok(left > 0)
    }

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
        self.read_events(&sql, args)
    }

    fn read_events(&self, sql: &str, args: Vec<Value>) -> Result<Vec<ActivationEvent>, StoreError> {
        let mut inner = self.inner();
        let raw = {
            let mut stmt = inner.conn.prepare_cached(sql)?;
            let mut rows = stmt.query(params_from_iter(args))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(RawEvent::read(row)?);
            }
            out
        };
        raw.into_iter().map(|e| e.decode(&mut inner)).collect()
    }
}

/// The page of `filter`, its search answered as `plan` says.
fn list_in(
    inner: &mut Inner,
    filter: &ClientFilter,
    plan: &SearchPlan,
) -> Result<Vec<ClientRecord>, StoreError> {
    let mut args: Vec<Value> = Vec::new();
    let mut condition = where_clause(filter, plan, &mut args);
    if *plan == SearchPlan::Scan && filter.sort == ClientSort::LastSeen && filter.since.is_none() {
        // A range on the sort column: the planner then walks the index newest first and
        // stops at the page instead of sorting the table.
        condition.push_str(" AND c.last_seen >= ?");
        args.push(Value::Integer(i64::MIN));
    }
    if *plan == SearchPlan::Scan && filter.sort == ClientSort::Expiry && filter.state.is_none() {
        // The same for the expiry order and `clients_expiry`.
        condition.push_str(" AND c.last_activated >= ?");
        args.push(Value::Integer(i64::MIN));
    }
    let mut hint = plan.table_hint();
    if *plan == SearchPlan::Scan
        && filter.sort == ClientSort::Workstation
        && (filter.selects_all() || matches_often(&inner.conn, &condition, &args)?)
    {
        // Many records match: walking the name index finds a page of them soon, where
        // the planner would sort every match.
        hint = "INDEXED BY clients_workstation";
    }
    let order = order_clause(filter, &mut args);
    let sql = format!(
        "SELECT {COLUMNS} FROM clients c {hint} WHERE {condition} ORDER BY {order} \
         LIMIT ? OFFSET ?"
    );
    args.push(Value::Integer(filter.limit.map_or(-1, saturating_i64)));
    args.push(Value::Integer(filter.offset.map_or(0, saturating_i64)));
    let raw = plan.with_statement(&inner.conn, &sql, |stmt| {
        let mut rows = stmt.query(params_from_iter(args))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(RawRecord::read(row)?);
        }
        Ok(out)
    })?;
    raw.into_iter().map(|r| r.decode(inner)).collect()
}

/// The count of `filter` (exact when it selects every record, else capped), its search
/// answered as `plan` says.
fn count_in(
    inner: &Inner,
    filter: &ClientFilter,
    plan: &SearchPlan,
) -> Result<MatchCount, StoreError> {
    if filter.selects_all() {
        // Everything: the smallest index counts the records, and the CMIDs are distinct
        // in the order of the key index (no temporary table), counted up to the limit.
        let records: i64 = inner
            .conn
            .prepare_cached("SELECT COUNT(*) FROM clients")?
            .query_row([], |row| row.get(0))?;
        let machines: i64 = inner
            .conn
            .prepare_cached(&format!(
                "SELECT COUNT(*) FROM (SELECT DISTINCT cmid FROM clients \
                 INDEXED BY clients_key LIMIT {})",
                crate::MACHINES_COUNT_LIMIT + 1
            ))?
            .query_row([], |row| row.get(0))?;
        return Ok(MatchCount {
            records: non_negative(records, "count")?,
            machines: non_negative(machines, "count")?,
            records_capped: false,
        });
    }
    // The first MATCH_COUNT_LIMIT + 1 records the condition selects, no more.
    let mut args: Vec<Value> = Vec::new();
    let condition = where_clause(filter, plan, &mut args);
    let sql = format!(
        "SELECT COUNT(*), COUNT(DISTINCT cmid) FROM (SELECT c.cmid FROM clients c {} \
         WHERE {condition} LIMIT {})",
        plan.table_hint(),
        MATCH_COUNT_LIMIT + 1
    );
    let (records, machines): (i64, i64) = plan.with_statement(&inner.conn, &sql, |stmt| {
        Ok(stmt.query_row(params_from_iter(args), |row| Ok((row.get(0)?, row.get(1)?)))?)
    })?;
    Ok(MatchCount::capped(
        non_negative(records, "count")?,
        non_negative(machines, "count")?,
    ))
}

/// `?, ?, …` for `n` parameters.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The `guids` keys of `ids`, as a subquery.
fn keys_of(ids: &[Uuid], args: &mut Vec<Value>) -> String {
    args.extend(ids.iter().map(|u| Value::Blob(u.as_bytes().to_vec())));
    format!(
        "(SELECT id FROM guids WHERE guid IN ({}))",
        placeholders(ids.len())
    )
}

/// The `WHERE` condition of `filter` over table alias `c`, its parameters pushed to `args`.
fn where_clause(filter: &ClientFilter, plan: &SearchPlan, args: &mut Vec<Value>) -> String {
    let mut parts: Vec<String> = vec!["1".into()];
    for (column, value) in [
        ("kms", filter.kms_id),
        ("sku", filter.sku_id),
        ("app", filter.application_id),
    ] {
        if let Some(id) = value {
            parts.push(format!(
                "c.{column} = (SELECT id FROM guids WHERE guid = ?)"
            ));
            args.push(Value::Blob(id.as_bytes().to_vec()));
        }
    }
    if let Some(cmid) = filter.cmid {
        parts.push("c.cmid = ?".into());
        args.push(Value::Blob(cmid.as_bytes().to_vec()));
    }
    if let Some(since) = filter.since {
        parts.push("c.last_seen >= ?".into());
        args.push(Value::Integer(since));
    }
    match filter.activated {
        Some(true) => parts.push("c.last_hresult = 0".into()),
        Some(false) => parts.push("c.last_hresult <> 0".into()),
        None => {}
    }
    for (column, set) in [("app", &filter.applications), ("kms", &filter.kms_ids)] {
        match set {
            IdSet::Any => {}
            IdSet::In(ids) if ids.is_empty() => parts.push("0".into()),
            IdSet::NotIn(ids) if ids.is_empty() => {}
            IdSet::In(ids) => parts.push(format!("c.{column} IN {}", keys_of(ids, args))),
            IdSet::NotIn(ids) => parts.push(format!("c.{column} NOT IN {}", keys_of(ids, args))),
        }
    }
    if let Some((state, thresholds)) = filter.state {
        parts.push(state_condition(state, &thresholds, args));
    }
    if let Some(search) = &filter.search {
        parts.push(search_condition(search, plan, args));
    }
    parts.join(" AND ")
}

/// How a search finds its records.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SearchPlan {
    /// Read the records, testing each (no search, or one that matches many records, names
    /// IDs, or is too short for the trigram index).
    Scan,
    /// Test only these records (`id`s, sorted, distinct), found in the trigram index and the
    /// CMID key index: at most [`SEARCH_CANDIDATE_LIMIT`].
    Ids(Vec<i64>),
}

impl SearchPlan {
    /// Runs `f` on `sql` (a statement holding this plan's search) prepared: from the
    /// connection's statement cache, except with candidates, whose IDs are written into
    /// the statement (a text new each time, which in the cache would only push out the
    /// statements that are used again).
    fn with_statement<T>(
        &self,
        conn: &Connection,
        sql: &str,
        f: impl FnOnce(&mut rusqlite::Statement<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match self {
            Self::Scan => f(&mut *conn.prepare_cached(sql)?),
            Self::Ids(_) => f(&mut conn.prepare(sql)?),
        }
    }

    /// What follows the table in `FROM clients c`: an index search reads its candidates by
    /// rowid (no index walk in the list's order, which would read every record to find them).
    fn table_hint(&self) -> &'static str {
        match self {
            Self::Scan => "",
            Self::Ids(_) => "NOT INDEXED",
        }
    }
}

/// Records indexed in one [`ClientStore::upkeep`] transaction: an activation arriving
/// meanwhile waits for it (a few milliseconds).
const UPKEEP_BATCH: i64 = 256;

/// Records indexed in one transaction by [`ClientStore::catch_up`] (a tool's bulk write).
const CATCH_UP_BATCH: i64 = 100_000;

/// Records waiting for the search index past which the writer indexes a batch after every
/// write even under load (the list, which every indexed search reads whole, stops growing).
const UPKEEP_BACKLOG: u64 = 50_000;

/// For a bulk write of `rows` rows at least as many as the tables hold (an import into a new
/// or small database): drops the secondary indexes of `clients` and `activations` (not the key
/// the upserts need) and returns the statements that create them again, to run once the rows
/// are in. Building an index from a whole table sorts it once; inserting a million rows into
/// it in the order they come reads and rewrites its pages all over (most of an import's time).
/// Nothing is dropped for smaller writes.
fn drop_indexes_for_bulk(tx: &Transaction<'_>, rows: usize) -> Result<Vec<String>, StoreError> {
    if rows <= BULK_ROWS {
        return Ok(Vec::new());
    }
    let held: i64 = tx.query_row(
        "SELECT coalesce((SELECT max(id) FROM clients), 0) \
              + coalesce((SELECT max(rowid) FROM activations), 0)",
        [],
        |row| row.get(0),
    )?;
    if held.unsigned_abs() > rows as u64 {
        return Ok(Vec::new());
    }
    let indexes: Vec<(String, String)> = tx
        .prepare(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL \
             AND tbl_name IN ('clients', 'activations') AND name <> 'clients_key' ORDER BY name",
        )?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (name, _) in &indexes {
        tx.execute_batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))?;
    }
    Ok(indexes.into_iter().map(|(_, sql)| sql).collect())
}

/// Whether any record is listed in `search_pending`.
fn still_listed(conn: &Connection) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM search_pending)")?
        .query_row([], |row| row.get(0))
}

/// The number of records listed in `search_pending`.
fn count_unindexed(conn: &Connection) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT count(*) FROM search_pending")?
        .query_row([], |row| row.get::<_, i64>(0))
        .map(i64::unsigned_abs)
}

/// Most candidates (index matches, which may be more than the records matching) an index
/// search reads; a search with more is a [`SearchPlan::Scan`], which finds a page of them
/// sooner in the list's order.
const SEARCH_CANDIDATE_LIMIT: u64 = 20_000;

/// Records [`matches_often`] samples.
const DENSITY_SAMPLE: u64 = 5_000;

/// Whether at least one record in a hundred of a sample (the first [`DENSITY_SAMPLE`] by
/// rowid) passes `condition` (over alias `c`, parameters `args`).
fn matches_often(conn: &Connection, condition: &str, args: &[Value]) -> Result<bool, StoreError> {
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT * FROM clients LIMIT {DENSITY_SAMPLE}) c WHERE {condition}"
    );
    let n: i64 = conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(args.iter()), |row| row.get(0))?;
    Ok(n.unsigned_abs() * 100 >= DENSITY_SAMPLE)
}

/// Most trigrams of a searched text looked up (a longer text: spread over it).
const MAX_TEXT_TRIGRAMS: usize = 12;

/// Most trigrams the candidates must all hold: the rarest of the text's.
const QUERY_TRIGRAMS: usize = 3;

/// How `filter`'s search is best answered: from the indexes when the store has the search
/// index, the text is long enough for it, no ID matches by name, and the indexes give at most
/// [`SEARCH_CANDIDATE_LIMIT`] candidates.
///
/// The trigram index keeps no positions (`detail = none`: a small index), so it gives the
/// records holding every trigram asked for, a superset of those holding the text, which the
/// test of each candidate narrows. A trigram most records hold (`"pc-"` in `"pc-0123"`)
/// costs a long read and narrows little: each trigram is first counted (stopping past the
/// candidate limit), and only the [`QUERY_TRIGRAMS`] rarest are asked for together.
fn search_plan(inner: &Inner, filter: &ClientFilter) -> Result<SearchPlan, StoreError> {
    let Some(search) = &filter.search else {
        return Ok(SearchPlan::Scan);
    };
    if !inner.search_index {
        return Ok(SearchPlan::Scan);
    }
    let conn = &inner.conn;
    let text = search.text.to_ascii_lowercase();
    if text.chars().count() < SEARCH_INDEX_MIN_LEN
        || !search.sku_ids.is_empty()
        || !search.kms_ids.is_empty()
        || !search.application_ids.is_empty()
    {
        return Ok(SearchPlan::Scan);
    }
    let pieces = trigrams(&text);
    if pieces.is_empty() {
        return Ok(SearchPlan::Scan);
    }
    let limit = saturating_i64(SEARCH_CANDIDATE_LIMIT + 1);
    let mut counted: Vec<(i64, String)> = Vec::new();
    {
        let mut count = conn.prepare_cached(
            "SELECT COUNT(*) FROM (SELECT rowid FROM clients_search \
             WHERE clients_search MATCH ?1 LIMIT ?2)",
        )?;
        for piece in pieces {
            let term = fts_term(&piece);
            let n: i64 = count.query_row(params![term, limit], |row| row.get(0))?;
            counted.push((n, term));
            if n == 0 {
                break;
            }
        }
    }
    counted.sort();
    let query = counted
        .iter()
        .take(QUERY_TRIGRAMS)
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join(" AND ");
    let mut ids: Vec<i64> = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT rowid FROM clients_search WHERE clients_search MATCH ?1 LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![query, limit], |row| row.get(0))?;
        for id in rows {
            ids.push(id?);
        }
    }
    if let Some((from, to)) = search.cmid_range() {
        let mut args = Vec::new();
        let range = cmid_range_condition("cmid", &from, to.as_ref(), &mut args);
        args.push(Value::Integer(limit));
        let mut stmt =
            conn.prepare_cached(&format!("SELECT id FROM clients WHERE {range} LIMIT ?"))?;
        let rows = stmt.query_map(params_from_iter(args), |row| row.get(0))?;
        for id in rows {
            ids.push(id?);
        }
    }
    if ids.len() as u64 > SEARCH_CANDIDATE_LIMIT {
        return Ok(SearchPlan::Scan);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(SearchPlan::Ids(ids))
}

/// The distinct three-character pieces of `text` (none holding a NUL), at most
/// [`MAX_TEXT_TRIGRAMS`] (spread over a longer text).
fn trigrams(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut seen: Vec<String> = Vec::new();
    for w in chars.windows(3) {
        let piece: String = w.iter().collect();
        // FTS5 reads a query as a C string: a NUL would end it (leaving the piece out only
        // widens the candidates).
        if !piece.contains('\0') && !seen.contains(&piece) {
            seen.push(piece);
        }
    }
    let step = seen.len().div_ceil(MAX_TEXT_TRIGRAMS).max(1);
    seen.into_iter().step_by(step).collect()
}

/// One trigram as an FTS5 query term (a quoted string: any character allowed).
fn fts_term(piece: &str) -> String {
    format!("\"{}\"", piece.replace('"', "\"\""))
}

/// The records `search` matches, as an `OR` of conditions over table alias `c`; with
/// [`SearchPlan::Ids`], restricted first to the candidates.
fn search_condition(search: &Search, plan: &SearchPlan, out: &mut Vec<Value>) -> String {
    let mut args = Vec::new();
    let text = search.text.to_ascii_lowercase();
    // LIKE is ASCII case-insensitive, like the search.
    let pattern = crate::record::like_anywhere(&text);
    let mut any = vec![
        "c.workstation LIKE ? ESCAPE '\\'".to_owned(),
        format!(
            "{} LIKE ? ESCAPE '\\'",
            crate::schema::address_host_sql!("instr", "c.")
        ),
        "c.last_epid LIKE ? ESCAPE '\\'".to_owned(),
    ];
    args.extend(std::iter::repeat_n(Value::Text(pattern), 3));
    let range = search.cmid_range();
    if let Some((from, to)) = &range {
        any.push(cmid_range_condition("c.cmid", from, to.as_ref(), &mut args));
    }
    for (column, ids) in [
        ("sku", &search.sku_ids),
        ("kms", &search.kms_ids),
        ("app", &search.application_ids),
    ] {
        if !ids.is_empty() {
            any.push(format!("c.{column} IN {}", keys_of(ids, &mut args)));
        }
    }
    let test = format!("({})", any.join(" OR "));
    match plan {
        SearchPlan::Scan => {
            out.append(&mut args);
            test
        }
        SearchPlan::Ids(ids) => {
            // The candidates are written into the statement (integers: nothing of the
            // search's text). Records not indexed yet (written since the writer last had
            // time) are candidates too.
            out.append(&mut args);
            format!("c.id IN ({}) AND {test}", candidates_sql(ids))
        }
    }
}

/// A query of the `ids` and of the records listed in `search_pending`.
fn candidates_sql(ids: &[i64]) -> String {
    use std::fmt::Write as _;
    let mut sql = String::new();
    for (i, id) in ids.iter().enumerate() {
        let before = if i == 0 { "SELECT column1 FROM (VALUES " } else { ", " };
        // Writing to a String cannot fail.
        let _ = write!(sql, "{before}({id})");
    }
    if !ids.is_empty() {
        // A VALUES list alone in its subquery: SQLite holds a compound SELECT to 500 terms
        // (each row of a VALUES list counts as one), except a VALUES list on its own.
        sql.push_str(") UNION ALL ");
    }
    sql.push_str("SELECT id FROM search_pending");
    sql
}

/// `column` (a 16-byte CMID blob) in `[from, to)`.
fn cmid_range_condition(
    column: &str,
    from: &[u8; 16],
    to: Option<&[u8; 16]>,
    args: &mut Vec<Value>,
) -> String {
    args.push(Value::Blob(from.to_vec()));
    match to {
        Some(to) => {
            args.push(Value::Blob(to.to_vec()));
            format!("({column} >= ? AND {column} < ?)")
        }
        None => format!("{column} >= ?"),
    }
}

/// The condition (over table alias `c`) of the records in `state` at `thresholds`: a range
/// of `last_activated` among those whose latest request succeeded (see
/// [`HealthThresholds::activated_range`]; [`NEVER_ACTIVATED`] is below every lower bound),
/// or the refused ones (HRESULTs are stored as unsigned numbers: refused is `> 0`, a range
/// of the index).
fn state_condition(state: ClientState, t: &HealthThresholds, args: &mut Vec<Value>) -> String {
    let Some(range) = t.activated_range(state) else {
        return "c.last_hresult > 0".into();
    };
    let mut condition = "c.last_hresult = 0".to_owned();
    if let Some(from) = range.from {
        condition.push_str(" AND c.last_activated >= ?");
        args.push(Value::Integer(from));
    }
    if let Some(until) = range.until {
        condition.push_str(" AND c.last_activated < ?");
        args.push(Value::Integer(until));
    }
    format!("({condition})")
}

/// `last_activated` as stored, read back ([`NEVER_ACTIVATED`]: `None`).
fn activated_at(stored: i64) -> Option<i64> {
    (stored != NEVER_ACTIVATED).then_some(stored)
}

/// The `ORDER BY` terms of `filter` (ties: latest first, then CMID, then application ID).
fn order_clause(filter: &ClientFilter, args: &mut Vec<Value>) -> String {
    let primary = match &filter.sort {
        ClientSort::LastSeen => "c.last_seen".to_owned(),
        ClientSort::FirstSeen => "c.first_seen".into(),
        ClientSort::Workstation => "c.workstation COLLATE NOCASE".into(),
        ClientSort::Cmid => "c.cmid".into(),
        ClientSort::Requests => "c.requests".into(),
        ClientSort::Address => "c.last_address".into(),
        ClientSort::Protocol => "c.protocol".into(),
        ClientSort::Status => "(c.last_hresult <> 0)".into(),
        ClientSort::Expiry => "c.last_activated".into(),
        ClientSort::Sku(list) if list.is_empty() => "0".into(),
        ClientSort::Sku(list) => {
            let mut case = "CASE (SELECT guid FROM guids WHERE id = c.sku)".to_owned();
            for (i, sku) in list.iter().enumerate() {
                case.push_str(&format!(" WHEN ? THEN {i}"));
                args.push(Value::Blob(sku.as_bytes().to_vec()));
            }
            case.push_str(&format!(" ELSE {} END", list.len()));
            case
        }
    };
    let direction = if filter.ascending { "ASC" } else { "DESC" };
    format!(
        "{primary} {direction}, c.last_seen DESC, c.cmid, \
         (SELECT guid FROM guids WHERE id = c.app)"
    )
}

/// A record row before its keys are turned into GUIDs.
struct RawRecord {
    keys: [i64; 3],
    record: ClientRecord,
}

impl RawRecord {
    fn read(row: &Row<'_>) -> Result<Self, StoreError> {
        let u32_at = |i: usize, name: &str| u32_at(row, i, name);
        Ok(Self {
            keys: [row.get(1)?, row.get(2)?, row.get(3)?],
            record: ClientRecord {
                cmid: uuid_at(row, 0, "cmid")?,
                application_id: Uuid::nil(),
                sku_id: Uuid::nil(),
                kms_id: Uuid::nil(),
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
                last_activated: activated_at(row.get(15)?),
            },
        })
    }

    fn decode(mut self, inner: &mut Inner) -> Result<ClientRecord, StoreError> {
        self.record.application_id = inner.guid(self.keys[0])?;
        self.record.sku_id = inner.guid(self.keys[1])?;
        self.record.kms_id = inner.guid(self.keys[2])?;
        Ok(self.record)
    }
}

/// An event row before its keys are turned into GUIDs.
struct RawEvent {
    keys: [i64; 3],
    event: ActivationEvent,
}

impl RawEvent {
    fn read(row: &Row<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            keys: [row.get(2)?, row.get(3)?, row.get(4)?],
            event: ActivationEvent {
                time: row.get(0)?,
                cmid: uuid_at(row, 1, "cmid")?,
                application_id: Uuid::nil(),
                sku_id: Uuid::nil(),
                kms_id: Uuid::nil(),
                workstation: row.get(5)?,
                license_status: u32_at(row, 6, "license_status")?,
                protocol: row.get(7)?,
                address: row.get(8)?,
                hresult: u32_at(row, 9, "hresult")?,
            },
        })
    }

    fn decode(mut self, inner: &mut Inner) -> Result<ActivationEvent, StoreError> {
        self.event.application_id = inner.guid(self.keys[0])?;
        self.event.sku_id = inner.guid(self.keys[1])?;
        self.event.kms_id = inner.guid(self.keys[2])?;
        Ok(self.event)
    }
}

/// A GUID stored as a 16-byte blob.
fn uuid_from_blob(blob: &[u8], name: &str) -> Result<Uuid, StoreError> {
    Uuid::from_slice(blob).map_err(|_| {
        StoreError::Corrupt(format!(
            "{name} is {} bytes, not a 16-byte GUID",
            blob.len()
        ))
    })
}

/// The GUID stored as a blob in column `i` of `row`.
fn uuid_at(row: &Row<'_>, i: usize, name: &str) -> Result<Uuid, StoreError> {
    let blob: Vec<u8> = row.get(i)?;
    uuid_from_blob(&blob, name)
}

/// The `u32` stored in column `i` of `row`.
fn u32_at(row: &Row<'_>, i: usize, name: &str) -> Result<u32, StoreError> {
    let n: i64 = row.get(i)?;
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("{name} {n} out of range")))
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

/// The page cache (KiB) of [`SqliteStore::open`] (tools, tests): small, since writes touch
/// a few pages each and the operating system caches the file anyway; a serving host chooses
/// its own ([`SqliteStore::open_with_cache`]).
pub const DEFAULT_PAGE_CACHE_KIB: u64 = 256;

/// Rows from which a write is a bulk write, with a page cache of [`BULK_CACHE_KIB`].
const BULK_ROWS: usize = 20_000;

/// The page cache of a bulk write (64 MiB), given back once it is done.
const BULK_CACHE_KIB: i64 = -65_536;

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

    /// An empty directory of this process named after `name`, in the temporary directory.
    fn fresh_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The bundled SQLite leaves out what rkms does not use (`LIBSQLITE3_FLAGS` in
    /// `.cargo/config.toml`), among it the JSON functions (about 32 kB of code; a search's
    /// candidates are written into its statement instead), while FTS5 (the search index)
    /// stays.
    #[test]
    fn bundled_sqlite_has_fts5_and_no_json_functions() {
        let conn = Connection::open_in_memory().unwrap();
        let err = conn
            .query_row("SELECT json_array(1)", [], |r| r.get::<_, String>(0))
            .unwrap_err();
        assert!(err.to_string().contains("no such function"), "{err}");
        let err = conn
            .query_row("SELECT count(*) FROM json_each('[1]')", [], |r| r.get::<_, i64>(0))
            .unwrap_err();
        assert!(err.to_string().contains("no such table"), "{err}");
        conn.execute_batch("CREATE VIRTUAL TABLE t USING fts5(x, tokenize = 'trigram')")
            .unwrap();
    }

    /// A search's candidates, as many as it may have, and the listed records make one
    /// query (not refused for having more than 500 terms in a compound SELECT).
    #[test]
    fn candidates_query_holds_the_most_candidates_and_the_listed_records() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE search_pending (id INTEGER PRIMARY KEY, indexed INTEGER NOT NULL);
             INSERT INTO search_pending VALUES (-1, 0), (-2, 1);",
        )
        .unwrap();
        let ids: Vec<i64> = (1..=SEARCH_CANDIDATE_LIMIT as i64).map(|i| i * 3).collect();
        let sql = format!(
            "WITH c(id) AS ({}) SELECT count(*), sum(id) FROM c",
            candidates_sql(&ids)
        );
        let (n, sum): (i64, i64) = conn
            .query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(n, ids.len() as i64 + 2);
        assert_eq!(sum, ids.iter().sum::<i64>() - 3);
        let none: i64 = conn
            .query_row(&format!("WITH c(id) AS ({}) SELECT count(*) FROM c", candidates_sql(&[])), [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(none, 2);
    }

    fn cache_size(store: &SqliteStore) -> i64 {
        store
            .inner()
            .conn
            .query_row("PRAGMA cache_size", [], |r| r.get(0))
            .unwrap()
    }

    fn indexes(store: &SqliteStore) -> Vec<(String, String)> {
        let inner = store.inner();
        let mut stmt = inner
            .conn
            .prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn integrity(store: &SqliteStore) -> String {
        store
            .inner()
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap()
    }

    fn activation(n: u128, time: i64) -> Activation {
        Activation {
            cmid: Uuid::from_u128(n.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)),
            application_id: Uuid::from_u128(1 + n % 2),
            sku_id: Uuid::from_u128(2),
            kms_id: Uuid::from_u128(3 + n % 3),
            workstation: format!("PC-{}", n % 7_919),
            license_status: 2,
            grace_minutes: 0,
            is_vm: false,
            protocol: "6.0".into(),
            time,
            address: "192.0.2.1:1".into(),
            epid: String::new(),
            hresult: if n.is_multiple_of(13) { 0xC004_F038 } else { 0 },
        }
    }

    /// A bulk write into a small database drops the secondary indexes and builds them again
    /// from the rows: the same indexes, holding what the tables hold, and the same records as
    /// the same requests written in small batches. Into a larger database nothing is dropped.
    #[test]
    fn a_bulk_write_into_a_small_database_rebuilds_the_same_indexes() {
        let dir = fresh_dir("rkms-rebuild");
        let bulk = SqliteStore::open(&dir.join("bulk.db")).unwrap();
        let small = SqliteStore::open(&dir.join("small.db")).unwrap();
        let before = indexes(&bulk);
        assert!(before.len() >= 7, "{before:?}");
        let requests: Vec<Activation> = (0..(BULK_ROWS as u128 / 2 + 10))
            .map(|n| activation(n, 1_800_000_000 + (n as i64 * 7_919) % 86_400))
            .collect();
        bulk.record_batch(&requests).unwrap();
        for chunk in requests.chunks(500) {
            small.record_batch(chunk).unwrap();
        }
        assert_eq!(indexes(&bulk), before);
        assert_eq!(integrity(&bulk), "ok");
        let all = ClientFilter::default();
        assert_eq!(bulk.list(&all).unwrap(), small.list(&all).unwrap());
        assert_eq!(
            bulk.events_page(0, u64::MAX).unwrap(),
            small.events_page(0, u64::MAX).unwrap()
        );
        // Sorted by name and by state (read through the rebuilt indexes) alike.
        let by_name = ClientFilter {
            sort: ClientSort::Workstation,
            limit: Some(50),
            ..ClientFilter::default()
        };
        assert_eq!(bulk.list(&by_name).unwrap(), small.list(&by_name).unwrap());
        // A smaller write afterwards goes through the indexes, which still match the tables.
        let more: Vec<Activation> = (0..(BULK_ROWS as u128 / 4 + 10))
            .map(|n| activation(1_000_000 + n, 1_800_100_000))
            .collect();
        bulk.record_batch(&more).unwrap();
        assert_eq!(indexes(&bulk), before);
        assert_eq!(integrity(&bulk), "ok");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Indexing the records listed for search costs work proportional to the batch, not to
    /// the table: the join reads the list first (a planner left to itself read every record
    /// up to the batch's last id, that is all of them, for each batch).
    #[test]
    fn indexing_listed_records_reads_the_list_not_the_table() {
        use rusqlite::StatementStatus;
        let dir = fresh_dir("rkms-upkeep");
        let store = SqliteStore::open(&dir.join("clients.db")).unwrap();
        let requests: Vec<Activation> = (0..10_000u128)
            .map(|n| activation(n, 1_800_000_000))
            .collect();
        store.record_batch(&requests).unwrap();
        store.catch_up().unwrap();
        let listed: Vec<Activation> = (0..3u128)
            .map(|n| activation(50_000 + n, 1_800_000_100))
            .collect();
        store.record_batch(&listed).unwrap();
        let mut inner = store.inner();
        let tx = inner.conn.transaction().unwrap();
        let last: i64 = tx
            .query_row("SELECT max(id) FROM search_pending", [], |r| r.get(0))
            .unwrap();
        for sql in schema::INDEX_PENDING_SQL {
            let mut stmt = tx.prepare(sql).unwrap();
            stmt.execute(params![last]).unwrap();
            let steps = stmt.get_status(StatementStatus::VmStep);
            assert!(steps < 1_000, "{steps} steps for 3 listed records: {sql}");
        }
        let listed_after: i64 = tx
            .query_row("SELECT count(*) FROM search_pending", [], |r| r.get(0))
            .unwrap();
        assert_eq!(listed_after, 0);
        drop(tx);
        drop(inner);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Deleting the events of a busy second keeps `client_events` in step with work
    /// proportional to the events deleted: each takes one off its record's count instead of
    /// looking for the record's other events at that second among all of that second's.
    #[test]
    fn pruning_a_busy_second_is_linear() {
        use rusqlite::StatementStatus;
        let dir = fresh_dir("rkms-busy-second");
        let store = SqliteStore::open(&dir.join("clients.db")).unwrap();
        let n = 3_000u128;
        let requests: Vec<Activation> = (0..n).map(|i| activation(i, 1_800_000_000)).collect();
        store.record_batch(&requests).unwrap();
        let mut inner = store.inner();
        let tx = inner.conn.transaction().unwrap();
        let linked: i64 = tx
            .query_row("SELECT sum(events) FROM client_events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(linked, n as i64);
        let mut stmt = tx
            .prepare("DELETE FROM activations WHERE time < 1800000001")
            .unwrap();
        assert_eq!(stmt.execute([]).unwrap(), n as usize);
        let steps = stmt.get_status(StatementStatus::VmStep);
        assert!(steps < 200 * n as i32, "{steps} steps to delete {n} events");
        drop(stmt);
        let left: i64 = tx
            .query_row("SELECT count(*) FROM client_events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
        drop(tx);
        drop(inner);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The writing connection gets the page cache asked for, and keeps it after a bulk write
    /// (which borrows a larger one for its transaction).
    #[test]
    fn the_page_cache_is_the_one_asked_for_and_comes_back_after_a_bulk_write() {
        let dir = std::env::temp_dir().join(format!("rkms-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("clients.db");
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            cache_size(&SqliteStore::open(&path).unwrap()),
            -(DEFAULT_PAGE_CACHE_KIB as i64)
        );
        let store = SqliteStore::open_with_cache(&path, 4096).unwrap();
        assert_eq!(cache_size(&store), -4096);
        let events: Vec<ActivationEvent> = (0..(BULK_ROWS as i64 + 1))
            .map(|n| {
                ActivationEvent::from_activation(&Activation {
                    cmid: Uuid::from_u128(n as u128),
                    application_id: Uuid::from_u128(1),
                    sku_id: Uuid::from_u128(2),
                    kms_id: Uuid::from_u128(3),
                    workstation: "PC".into(),
                    license_status: 2,
                    grace_minutes: 0,
                    is_vm: false,
                    protocol: "6.0".into(),
                    time: 1_800_000_000 + n,
                    address: "192.0.2.1:1".into(),
                    epid: String::new(),
                    hresult: 0,
                })
            })
            .collect();
        store.write(&[], &events).unwrap();
        assert_eq!(cache_size(&store), -4096);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The statements of every recorded activation run without a temporary table: no
    /// `OpenEphemeral` in their programs (a `RETURNING` clause would bring one, and with it a
    /// page cache made and dropped at every execution; see [`UPSERT`]).
    #[test]
    fn recording_builds_no_temporary_table() {
        let dir = fresh_dir("rkms-no-ephemeral");
        let store = SqliteStore::open(&dir.join("clients.db")).unwrap();
        let inner = store.inner();
        for sql in [UPSERT, CLIENT_ID, INSERT_EVENT, LINK_EVENT, ADD_DAILY] {
            let mut stmt = inner.conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
            let unbound = std::iter::repeat_n(Value::Null, stmt.parameter_count());
            let opcodes: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(unbound), |r| r.get(1))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(opcodes.iter().any(|op| op == "Halt"), "{sql}: {opcodes:?}");
            assert!(
                !opcodes.iter().any(|op| op == "OpenEphemeral"),
                "{sql}: {opcodes:?}"
            );
        }
        drop(inner);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

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
