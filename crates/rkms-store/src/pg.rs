//! [`PgStore`]: the client store in a PostgreSQL database, shared by any number of rkms hosts.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{Client, Config, Row, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;
use uuid::Uuid;

use crate::pg_schema::{
    MIGRATION_LOCK, PG_MIGRATIONS, SEARCH_TRIGRAM_INDEX, SEARCH_TRIGRAM_INDEX_NAME, VERSION_TABLE,
};
use crate::pg_tls::{self, TlsParams};
use crate::open::redact_url;
use crate::schema::{NEVER_ACTIVATED, SCHEMA_VERSION};
use crate::{
    Activation, ActivationEvent, BatchSource, ClientFilter, ClientRecord, ClientSort, ClientState,
    ClientStore, DailyCount, HealthCount, HealthThresholds, IdSet, MatchCount, Search, StoreError,
    MATCH_COUNT_LIMIT, SEARCH_INDEX_MIN_LEN,
};

/// How long connecting may take when the connection string sets no `connect_timeout`.
pub const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// TCP keep-alive idle time and user timeout when the connection string sets none: a
/// connection to a vanished server fails within about this long instead of hanging.
pub const PG_TCP_TIMEOUT: Duration = Duration::from_secs(30);

/// The record columns every query reads, in the order [`decode`] expects.
const COLUMNS: &str = "cmid, application_id, sku_id, kms_id, workstation, license_status, \
     grace_minutes, is_vm, protocol, first_seen, last_seen, requests, last_address, last_epid, \
     last_hresult, last_activated";

/// The history columns every event query reads, in the order [`decode_event`] expects.
const EVENT_COLUMNS: &str = "time, cmid, application_id, sku_id, kms_id, workstation, \
     license_status, protocol, address, hresult";

/// Appends events given as arrays (one element per event), keeping their order in `id`.
const INSERT_EVENTS: &str = "INSERT INTO activations (time, cmid, application_id, sku_id, kms_id, \
         workstation, license_status, protocol, address, hresult)
     SELECT t, c, a, s, k, w, l, p, ad, h
     FROM unnest($1::bigint[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::text[], \
                 $7::bigint[], $8::text[], $9::text[], $10::bigint[])
          WITH ORDINALITY AS e(t, c, a, s, k, w, l, p, ad, h, ord)
     ORDER BY ord";

/// Folds whole records (given as arrays, at most one per key) into the table, like
/// [`ClientRecord::absorb`]: the upsert behind both `record_batch` (a batch is first folded
/// into one record per key) and `import`.
const UPSERT_RECORDS: &str = "INSERT INTO clients AS c (cmid, application_id, sku_id, kms_id, \
         workstation, license_status, grace_minutes, is_vm, protocol, first_seen, last_seen, \
         requests, last_address, last_epid, last_hresult, last_activated)
     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], \
                          $6::bigint[], $7::bigint[], $8::boolean[], $9::text[], $10::bigint[], \
                          $11::bigint[], $12::bigint[], $13::text[], $14::text[], $15::bigint[], \
                          $16::bigint[])
     ON CONFLICT (cmid, application_id) DO UPDATE SET
         last_activated = GREATEST(c.last_activated, excluded.last_activated),
         requests       = c.requests + excluded.requests,
         first_seen     = LEAST(c.first_seen, excluded.first_seen),
         sku_id         = CASE WHEN excluded.last_seen >= c.last_seen THEN excluded.sku_id ELSE c.sku_id END,
         kms_id         = CASE WHEN excluded.last_seen >= c.last_seen THEN excluded.kms_id ELSE c.kms_id END,
         workstation    = CASE WHEN excluded.last_seen >= c.last_seen THEN excluded.workstation ELSE c.workstation END,
         license_status = CASE WHEN excluded.last_seen >= c.last_seen THEN excluded.license_status ELSE c.license_status END,
         grace_minutes  = CASE WHEN excluded.last_seen >= c.last_seen THEN excluded.grace_minutes ELSE c.grace_minutes END,
         is_vm          = CASE WHEN excluded.last_seen >= c.last_seen THEN excluded.is_vm ELSE c.is_vm END,
         protocol       = CASE WHEN excluded.last_seen >= c.last_seen THEN excluded.protocol ELSE c.protocol END,
         last_address   = CASE WHEN excluded.last_seen >= c.last_seen THEN excluded.last_address ELSE c.last_address END,
         last_epid      = CASE WHEN excluded.last_seen >= c.last_seen THEN excluded.last_epid ELSE c.last_epid END,
         last_hresult   = CASE WHEN excluded.last_seen >= c.last_seen THEN excluded.last_hresult ELSE c.last_hresult END,
         last_seen      = GREATEST(c.last_seen, excluded.last_seen)";

/// Adds requests to the per-day counts (given as arrays, one row per key).
const ADD_DAILY: &str = "INSERT INTO activation_days AS d (day, application_id, kms_id, ok, count)
     SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::uuid[], $4::boolean[], $5::bigint[])
     ON CONFLICT (day, application_id, kms_id, ok) DO UPDATE SET count = d.count + excluded.count";

/// The KMS IDs of clients whose latest request succeeded, one index seek each (a skip scan
/// of `clients_active`): the `WITH` clause of the queries reading per-KMS ID counts.
const ACTIVE_KMS_IDS: &str = "WITH RECURSIVE k(kms_id) AS (
         (SELECT kms_id FROM clients WHERE last_hresult = 0 ORDER BY kms_id LIMIT 1)
         UNION ALL
         SELECT (SELECT c.kms_id FROM clients c WHERE c.last_hresult = 0 AND c.kms_id > k.kms_id
                 ORDER BY c.kms_id LIMIT 1)
         FROM k WHERE k.kms_id IS NOT NULL)";

/// A parameter of a query built at run time.
#[derive(Debug)]
enum Param {
    Uuid(Uuid),
    Uuids(Vec<Uuid>),
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
}

impl Param {
    fn sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Self::Uuid(u) => u,
            Self::Uuids(u) => u,
            Self::Int(n) => n,
            Self::OptInt(n) => n,
            Self::Text(t) => t,
        }
    }
}

/// Appends `p` to `args` and returns its placeholder (`$n`).
fn arg(args: &mut Vec<Param>, p: Param) -> String {
    args.push(p);
    format!("${}", args.len())
}

/// The `WHERE` condition of `filter`, its parameters pushed to `args`.
fn where_clause(filter: &ClientFilter, plan: &SearchPlan, args: &mut Vec<Param>) -> String {
    let mut parts: Vec<String> = vec!["true".into()];
    for (column, value) in [
        ("kms_id", filter.kms_id),
        ("sku_id", filter.sku_id),
        ("application_id", filter.application_id),
        ("cmid", filter.cmid),
    ] {
        if let Some(id) = value {
            parts.push(format!("{column} = {}", arg(args, Param::Uuid(id))));
        }
    }
    if let Some(since) = filter.since {
        parts.push(format!("last_seen >= {}", arg(args, Param::Int(since))));
    }
    match filter.activated {
        Some(true) => parts.push("last_hresult = 0".into()),
        Some(false) => parts.push("last_hresult <> 0".into()),
        None => {}
    }
    for (column, set) in [
        ("application_id", &filter.applications),
        ("kms_id", &filter.kms_ids),
    ] {
        match set {
            IdSet::Any => {}
            IdSet::In(ids) if ids.is_empty() => parts.push("false".into()),
            IdSet::NotIn(ids) if ids.is_empty() => {}
            IdSet::In(ids) => parts.push(format!(
                "{column} = ANY({})",
                arg(args, Param::Uuids(ids.clone()))
            )),
            IdSet::NotIn(ids) => parts.push(format!(
                "NOT ({column} = ANY({}))",
                arg(args, Param::Uuids(ids.clone()))
            )),
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
    /// IDs, is too short for the trigram index, or there is no trigram index).
    Scan,
    /// Test only these (CMID, application ID) keys, found in the trigram index and the
    /// CMID key index: at most [`SEARCH_CANDIDATE_LIMIT`].
    Keys(Vec<Uuid>, Vec<Uuid>),
}

/// Most candidates (index matches) an index search reads; a search with more is a
/// [`SearchPlan::Scan`], which finds a page of them sooner in the list's order.
const SEARCH_CANDIDATE_LIMIT: i64 = 20_000;


/// `cmid` in the range of CMIDs `search` names the beginning of, if it does.
fn cmid_range_condition(search: &Search, args: &mut Vec<Param>) -> Option<String> {
    let (from, to) = search.cmid_range()?;
    let from = arg(args, Param::Uuid(Uuid::from_bytes(from)));
    Some(match to {
        Some(to) => format!(
            "(cmid >= {from} AND cmid < {})",
            arg(args, Param::Uuid(Uuid::from_bytes(to)))
        ),
        None => format!("cmid >= {from}"),
    })
}

/// The records `search` matches, as an `OR` of conditions; with [`SearchPlan::Keys`],
/// restricted first to those keys.
fn search_condition(search: &Search, plan: &SearchPlan, args: &mut Vec<Param>) -> String {
    let text = search.text.to_ascii_lowercase();
    // PostgreSQL's text holds no NUL: such a text is in no record (and cannot be sent).
    let mut any = vec!["false".to_owned()];
    if !text.contains('\0') {
        let t = arg(args, Param::Text(text));
        any = vec![
            format!("strpos(lower(workstation), {t}) > 0"),
            format!("strpos(lower(rkms_address_host(last_address)), {t}) > 0"),
            format!("strpos(lower(last_epid), {t}) > 0"),
        ];
    }
    if let Some(range) = cmid_range_condition(search, args) {
        any.push(range);
    }
    for (column, ids) in [
        ("sku_id", &search.sku_ids),
        ("kms_id", &search.kms_ids),
        ("application_id", &search.application_ids),
    ] {
        if !ids.is_empty() {
            any.push(format!(
                "{column} = ANY({})",
                arg(args, Param::Uuids(ids.clone()))
            ));
        }
    }
    let test = format!("({})", any.join(" OR "));
    match plan {
        SearchPlan::Scan => test,
        SearchPlan::Keys(cmids, apps) => format!(
            "(cmid, application_id) IN (SELECT * FROM unnest({}::uuid[], {}::uuid[])) AND {test}",
            arg(args, Param::Uuids(cmids.clone())),
            arg(args, Param::Uuids(apps.clone()))
        ),
    }
}

/// The condition of the records in `state` at `thresholds`: a range of `last_activated`
/// among those whose latest request succeeded (see [`HealthThresholds::activated_range`]), or
/// the refused ones.
fn state_condition(state: ClientState, t: &HealthThresholds, args: &mut Vec<Param>) -> String {
    // NEVER_ACTIVATED is below every lower bound; HRESULTs are stored unsigned.
    let Some(range) = t.activated_range(state) else {
        return "last_hresult > 0".into();
    };
    let mut condition = "last_hresult = 0".to_owned();
    if let Some(from) = range.from {
        condition.push_str(&format!(
            " AND last_activated >= {}",
            arg(args, Param::Int(from))
        ));
    }
    if let Some(until) = range.until {
        condition.push_str(&format!(
            " AND last_activated < {}",
            arg(args, Param::Int(until))
        ));
    }
    format!("({condition})")
}

/// The `ORDER BY` terms of `filter` (ties: latest first, then CMID, then application ID).
/// Text sorts bytewise (`COLLATE "C"`), like the other backends.
fn order_clause(filter: &ClientFilter, args: &mut Vec<Param>) -> String {
    let primary = match &filter.sort {
        ClientSort::LastSeen => "last_seen".to_owned(),
        ClientSort::FirstSeen => "first_seen".into(),
        ClientSort::Workstation => "(lower(workstation) COLLATE \"C\")".into(),
        ClientSort::Cmid => "cmid".into(),
        ClientSort::Requests => "requests".into(),
        ClientSort::Address => "last_address COLLATE \"C\"".into(),
        ClientSort::Protocol => "protocol COLLATE \"C\"".into(),
        ClientSort::Status => "(last_hresult <> 0)".into(),
        ClientSort::Expiry => "last_activated".into(),
        ClientSort::Sku(list) => {
            let n = i64::try_from(list.len()).unwrap_or(i64::MAX);
            format!(
                "COALESCE(array_position({}::uuid[], sku_id), {}::bigint)",
                arg(args, Param::Uuids(list.clone())),
                arg(args, Param::Int(n.saturating_add(1)))
            )
        }
    };
    let direction = if filter.ascending { "ASC" } else { "DESC" };
    format!("{primary} {direction}, last_seen DESC, cmid, application_id")
}

/// Which of the store's two connections an operation uses: writes never queue behind a slow
/// dashboard read, and the other way round.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Write = 0,
    Read = 1,
}

/// One open connection and the statements prepared on it.
struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl Conn {
    /// The statement for `sql`, prepared once per connection.
    fn prepare(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

/// Why an operation on a connection failed: the driver's error, or the store's own (a row
/// that does not decode, a refused schema).
enum Failure {
    Pg(postgres::Error),
    Store(StoreError),
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Self {
        Self::Pg(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

type PgResult<T> = Result<T, Failure>;

/// The client store in a PostgreSQL database, which any number of rkms hosts may share.
///
/// Open it with a connection string, `postgres://user:password@host:port/database` (also
/// `postgresql://…`, or libpq's `key=value` form), with libpq's parameters, e.g.
/// `?options=-csearch_path%3Drkms` to keep the tables in schema `rkms`, or
/// `connect_timeout=5`. Connections are TCP or a Unix socket (`host=/run/postgresql`); over TCP
/// they use TLS as libpq's `sslmode` (`disable`, `prefer` — the default —, `require`,
/// `verify-ca`, `verify-full`), `sslrootcert`, `sslcert` and `sslkey` parameters say (see
/// [`crate::pg_tls`]). The schema is migrated at open exactly once however many hosts start
/// together (see [`crate::pg_schema`]).
///
/// The store holds two connections (one for writes, one for reads), made when first needed. A
/// call whose connection has been lost (server restarted, backend terminated) reconnects and
/// runs once more; when the server cannot be reached, the call fails with
/// [`StoreError::Unavailable`] and the next one tries to connect again. A write whose
/// connection broke while it committed may therefore, rarely, be applied twice (its request
/// counted twice).
///
/// The calls block; they may be made from inside a Tokio runtime (they then run on a
/// short-lived thread of their own, since the driver runs a runtime of its own).
pub struct PgStore {
    config: Config,
    tls: MakeRustlsConnect,
    tls_params: TlsParams,
    target: String,
    read_only: bool,
    conns: [Mutex<Option<Conn>>; 2],
    version: u32,
    migrated_from: u32,
    /// Whether the trigram index of the search exists (checked at open).
    search_indexed: bool,
    /// What [`ClientStore::notices`] reports (found at open).
    notices: Vec<String>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .field("read_only", &self.read_only)
            .field("version", &self.version)
            .field("migrated_from", &self.migrated_from)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database `url` names and migrates its schema to [`SCHEMA_VERSION`]
    /// (creating the tables in an empty database).
    ///
    /// A connection string that does not parse gives [`StoreError::Open`]; a server that
    /// cannot be reached (or refuses the login) [`StoreError::Unavailable`]; a newer schema
    /// [`StoreError::TooNew`]; a schema holding other tables but no rkms version
    /// [`StoreError::Open`]. Error messages name the database without the password.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let mut store = Self::new(url, false)?;
        let target = store.target.clone();
        let migrated_from = store.run(Slot::Write, &|conn| migrate(conn, &target))?;
        store.version = SCHEMA_VERSION;
        store.migrated_from = migrated_from;
        match store.run(Slot::Write, &|conn| create_search_index(conn))? {
            Ok(()) => store.search_indexed = true,
            Err(reason) => store.notices.push(format!(
                "the search index of {target} could not be created ({reason}): searches \
                 read every client record; install PostgreSQL's contrib extensions (pg_trgm) \
                 or have a superuser run CREATE EXTENSION pg_trgm in the database, then \
                 restart rkms"
            )),
        }
        Ok(store)
    }

    /// Connects for reading only (reporting tools): nothing is created or migrated, and every
    /// transaction is read-only, so writes fail with [`StoreError::Postgres`]. An older schema
    /// gives [`StoreError::NeedsMigration`], a newer one [`StoreError::TooNew`].
    pub fn open_read_only(url: &str) -> Result<Self, StoreError> {
        let mut store = Self::new(url, true)?;
        let target = store.target.clone();
        let found = store.run(Slot::Read, &|conn| {
            let found = read_version(&mut conn.client, &target)?;
            Ok(found)
        })?;
        if found < SCHEMA_VERSION {
            return Err(StoreError::NeedsMigration {
                path: PathBuf::from(&store.target),
                found,
                required: SCHEMA_VERSION,
            });
        }
        store.version = found;
        store.migrated_from = found;
        store.search_indexed = store.run(Slot::Read, &|conn| search_index_exists(conn))?;
        Ok(store)
    }

    /// Checks `url` as [`Self::open`] would, without connecting: the connection string parses
    /// and the TLS files it names are readable and usable ([`StoreError::Open`] otherwise).
    pub fn check(url: &str) -> Result<(), StoreError> {
        Self::new(url, true).map(|_| ())
    }

    fn new(url: &str, read_only: bool) -> Result<Self, StoreError> {
        let (conninfo, tls_params) = pg_tls::split(url).map_err(|message| StoreError::Open {
            path: PathBuf::from(redact_url(url)),
            message: format!("invalid PostgreSQL connection string: {message}"),
        })?;
        let mut config = Config::from_str(&conninfo).map_err(|e| StoreError::Open {
            path: PathBuf::from(redact_url(url)),
            message: format!("invalid PostgreSQL connection string: {}", pg_message(&e)),
        })?;
        config.ssl_mode(tls_params.mode().ssl_mode());
        let target = format!("{}{}", describe(&config), tls_params.describe_suffix());
        let tls = tls_params.connector().map_err(|message| StoreError::Open {
            path: PathBuf::from(&target),
            message,
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(PG_CONNECT_TIMEOUT);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(PG_TCP_TIMEOUT);
        }
        if !url.contains("keepalives_idle") {
            config.keepalives_idle(PG_TCP_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("rkms");
        }
        Ok(Self {
            target,
            config,
            tls,
            tls_params,
            read_only,
            conns: [Mutex::new(None), Mutex::new(None)],
            version: 0,
            migrated_from: 0,
            search_indexed: false,
            notices: Vec::new(),
        })
    }

    /// The schema version of the database (always [`SCHEMA_VERSION`] once opened read-write).
    pub fn schema_version(&self) -> u32 {
        self.version
    }

    /// The schema version the database had before this open migrated it (0 for an empty
    /// database; equal to [`Self::schema_version`] when nothing was migrated, e.g. because
    /// another host did it first).
    pub fn migrated_from(&self) -> u32 {
        self.migrated_from
    }

    /// The database, as `postgres://user@host:port/database` (without the password), followed
    /// by the TLS parameters given (`?sslmode=verify-full&sslrootcert=/etc/rkms/ca.pem`).
    pub fn target(&self) -> &str {
        &self.target
    }

    fn slot(&self, slot: Slot) -> MutexGuard<'_, Option<Conn>> {
        // A panic while holding the lock leaves at worst a broken connection, which the next
        // call notices and replaces.
        self.conns[slot as usize]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn connect(&self) -> Result<Conn, StoreError> {
        let mut client = self.config.connect(self.tls.clone()).map_err(|e| {
            match self.tls_params.explain(&e) {
                Some(why) => StoreError::Unavailable {
                    target: self.target.clone(),
                    message: format!("{why} ({})", pg_message(&e)),
                },
                None => self.unavailable(&e),
            }
        })?;
        if self.read_only {
            client
                .batch_execute("SET default_transaction_read_only = on")
                .map_err(|e| self.unavailable(&e))?;
        }
        Ok(Conn {
            client,
            statements: HashMap::new(),
        })
    }

    fn unavailable(&self, e: &postgres::Error) -> StoreError {
        StoreError::Unavailable {
            target: self.target.clone(),
            message: pg_message(e),
        }
    }

    /// Runs `op` on connection `slot`, connecting first if there is none (or it was closed).
    /// When the connection turns out to be lost, it is dropped and, if it was not just made,
    /// `op` runs once more on a new one.
    fn run<R: Send>(
        &self,
        slot: Slot,
        op: &(dyn Fn(&mut Conn) -> PgResult<R> + Sync),
    ) -> Result<R, StoreError> {
        off_runtime(|| {
            let mut guard = self.slot(slot);
            loop {
                let (conn, fresh) = self.connection(&mut guard)?;
                match op(conn) {
                    Ok(r) => return Ok(r),
                    Err(Failure::Store(e)) => return Err(e),
                    Err(Failure::Pg(e)) => {
                        let (error, lost) = self.driver_failure(&mut guard, &e);
                        if !lost || fresh {
                            return Err(error);
                        }
                    }
                }
            }
        })
    }

    /// The connection `slot` holds, made first when there is none or it was closed; and
    /// whether it was just made.
    fn connection<'g>(
        &self,
        slot: &'g mut Option<Conn>,
    ) -> Result<(&'g mut Conn, bool), StoreError> {
        let fresh = !matches!(slot.as_ref(), Some(conn) if !conn.client.is_closed());
        if fresh {
            *slot = None;
            *slot = Some(self.connect()?);
        }
        Ok((slot.as_mut().expect("connected above"), fresh))
    }

    /// The error to report for a driver error `e` on the connection `slot` holds, and whether
    /// the connection was lost (then it is dropped; a new one may be tried). Otherwise its
    /// prepared statements are forgotten: they may be what broke (tables recreated under
    /// them), and are prepared again next time.
    fn driver_failure(&self, slot: &mut Option<Conn>, e: &postgres::Error) -> (StoreError, bool) {
        match slot.as_mut() {
            Some(conn) if !connection_lost(e, &conn.client) => {
                conn.statements.clear();
                (statement_error(e), false)
            }
            _ => {
                *slot = None;
                (self.unavailable(e), true)
            }
        }
    }

    /// History events matching `condition` (a `WHERE` clause over `$1`… or empty), newest
    /// first, at most `limit`.
    fn events(
        &self,
        condition: &str,
        args: &[&(dyn ToSql + Sync)],
        limit: u64,
    ) -> Result<Vec<ActivationEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM activations {condition} \
             ORDER BY time DESC, id DESC LIMIT ${}",
            args.len() + 1
        );
        let limit = saturating_i64(limit);
        self.run(Slot::Read, &|conn| {
            let stmt = conn.prepare(&sql)?;
            let mut params = args.to_vec();
            params.push(&limit);
            let rows = conn.client.query(&stmt, &params)?;
            rows.iter().map(decode_event).collect()
        })
    }

    /// How `filter`'s search is best answered: from the indexes (reading the candidates'
    /// keys, at most [`SEARCH_CANDIDATE_LIMIT`]) when the trigram index exists, the text is
    /// long enough for it, no ID matches by name and the indexes give few enough candidates.
    fn search_plan(&self, filter: &ClientFilter) -> Result<SearchPlan, StoreError> {
        let Some(search) = &filter.search else {
            return Ok(SearchPlan::Scan);
        };
        let text = search.text.to_ascii_lowercase();
        if !self.search_indexed
            || text.contains('\0')
            || text.chars().count() < SEARCH_INDEX_MIN_LEN
            || !search.sku_ids.is_empty()
            || !search.kms_ids.is_empty()
            || !search.application_ids.is_empty()
        {
            return Ok(SearchPlan::Scan);
        }
        let mut args = Vec::new();
        let pattern = arg(&mut args, Param::Text(crate::record::like_anywhere(&text)));
        let mut sql =
            format!("SELECT cmid, application_id FROM client_search WHERE text LIKE {pattern}");
        if let Some(range) = cmid_range_condition(search, &mut args) {
            sql.push_str(&format!(
                " UNION SELECT cmid, application_id FROM clients WHERE {range}"
            ));
        }
        sql.push_str(&format!(" LIMIT {}", SEARCH_CANDIDATE_LIMIT + 1));
        let keys: Vec<(Uuid, Uuid)> = self.run(Slot::Read, &|conn| {
            let stmt = conn.prepare(&sql)?;
            let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(Param::sql).collect();
            let rows = conn.client.query(&stmt, &params)?;
            rows.iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect()
        })?;
        if keys.len() as i64 > SEARCH_CANDIDATE_LIMIT {
            return Ok(SearchPlan::Scan);
        }
        Ok(SearchPlan::Keys(
            keys.iter().map(|k| k.0).collect(),
            keys.iter().map(|k| k.1).collect(),
        ))
    }

    /// The page of `filter`, its search answered as `plan` says.
    fn list_with(
        &self,
        filter: &ClientFilter,
        plan: &SearchPlan,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        let mut args = Vec::new();
        let condition = where_clause(filter, plan, &mut args);
        let order = order_clause(filter, &mut args);
        let limit = arg(&mut args, Param::OptInt(filter.limit.map(saturating_i64)));
        let offset = arg(
            &mut args,
            Param::Int(filter.offset.map_or(0, saturating_i64)),
        );
        let sql = format!(
            "SELECT {COLUMNS} FROM clients WHERE {condition} ORDER BY {order} \
             LIMIT {limit} OFFSET {offset}"
        );
        self.run(Slot::Read, &|conn| {
            let stmt = conn.prepare(&sql)?;
            let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(Param::sql).collect();
            let rows = conn.client.query(&stmt, &params)?;
            rows.iter().map(decode).collect()
        })
    }

    /// The count of every record: kept in `client_totals`; the distinct CMIDs read from the
    /// key index, up to the limit.
    fn count_all(&self) -> Result<MatchCount, StoreError> {
        let sql = format!(
            "SELECT (SELECT records FROM client_totals), \
                    (SELECT COUNT(*) FROM (SELECT DISTINCT cmid FROM clients LIMIT {}) m)",
            crate::MACHINES_COUNT_LIMIT + 1
        );
        self.run(Slot::Read, &|conn| {
            let stmt = conn.prepare(&sql)?;
            let row = conn.client.query_one(&stmt, &[])?;
            Ok(MatchCount {
                records: non_negative(row.try_get(0)?, "count")?,
                machines: non_negative(row.try_get(1)?, "count")?,
                records_capped: false,
            })
        })
    }

    /// The capped count of `filter` (not selecting every record), its search answered as
    /// `plan` says.
    fn count_with(
        &self,
        filter: &ClientFilter,
        plan: &SearchPlan,
    ) -> Result<MatchCount, StoreError> {
        let mut args = Vec::new();
        let condition = where_clause(filter, plan, &mut args);
        let sql = format!(
            "SELECT COUNT(*), COUNT(DISTINCT cmid) FROM \
             (SELECT cmid FROM clients WHERE {condition} LIMIT {}) s",
            MATCH_COUNT_LIMIT + 1
        );
        self.run(Slot::Read, &|conn| {
            let stmt = conn.prepare(&sql)?;
            let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(Param::sql).collect();
            let row = conn.client.query_one(&stmt, &params)?;
            Ok(MatchCount::capped(
                non_negative(row.try_get(0)?, "count")?,
                non_negative(row.try_get(1)?, "count")?,
            ))
        })
    }

    fn count_query(&self, sql: &str, args: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        self.run(Slot::Read, &|conn| {
            let stmt = conn.prepare(sql)?;
            let n: i64 = conn.client.query_one(&stmt, args)?.try_get(0)?;
            Ok(non_negative(n, "count")?)
        })
    }

    /// Upserts `records` (at most one per key) and appends `events`, in one transaction.
    fn write(
        &self,
        records: &[ClientRecord],
        events: &[ActivationEvent],
    ) -> Result<(), StoreError> {
        if records.is_empty() && events.is_empty() {
            return Ok(());
        }
        self.run(Slot::Write, &|conn| {
            let statements = WriteStatements::prepare(conn)?;
            let mut tx = conn.client.transaction()?;
            statements.write(&mut tx, records, events)?;
            tx.commit()?;
            Ok(())
        })
    }

    /// [`ClientStore::record_all`]'s writing side, on a thread of its own: writes each batch
    /// received as it comes, in one transaction, committed when `None` arrives. Returns how
    /// many requests were recorded, or `None` when the sending side hung up without `None`
    /// (its source failed: the transaction is rolled back).
    fn write_stream(
        &self,
        received: &Receiver<Option<Vec<Activation>>>,
    ) -> Result<Option<u64>, StoreError> {
        let mut guard = self.slot(Slot::Write);
        let (conn, _) = self.connection(&mut guard)?;
        let written = (|| -> Result<Option<u64>, Failure> {
            let statements = WriteStatements::prepare(conn)?;
            let mut tx = conn.client.transaction()?;
            let mut recorded = 0u64;
            loop {
                match received.recv() {
                    Ok(Some(batch)) => {
                        let (records, events) = crate::record::fold_batch(&batch);
                        statements.write(&mut tx, &records, &events)?;
                        recorded += batch.len() as u64;
                    }
                    Ok(None) => {
                        tx.commit()?;
                        return Ok(Some(recorded));
                    }
                    Err(_) => return Ok(None),
                }
            }
        })();
        match written {
            Ok(r) => Ok(r),
            Err(Failure::Store(e)) => Err(e),
            // Not retried: the batches already written went with the transaction.
            Err(Failure::Pg(e)) => Err(self.driver_failure(&mut guard, &e).0),
        }
    }
}

/// The statements that write a batch of client records and history events.
struct WriteStatements {
    insert: Statement,
    upsert: Statement,
    daily: Statement,
}

impl WriteStatements {
    fn prepare(conn: &mut Conn) -> Result<Self, postgres::Error> {
        Ok(Self {
            insert: conn.prepare(INSERT_EVENTS)?,
            upsert: conn.prepare(UPSERT_RECORDS)?,
            daily: conn.prepare(ADD_DAILY)?,
        })
    }

    /// Upserts `records` (at most one per key) and appends `events` in transaction `tx`.
    fn write(
        &self,
        tx: &mut postgres::Transaction<'_>,
        records: &[ClientRecord],
        events: &[ActivationEvent],
    ) -> Result<(), postgres::Error> {
        let days = DayArrays::new(events);
        let records = RecordArrays::new(records);
        let events = EventArrays::new(events);
        if !events.time.is_empty() {
            tx.execute(&self.insert, &events.params())?;
            tx.execute(&self.daily, &days.params())?;
        }
        if !records.cmid.is_empty() {
            tx.execute(&self.upsert, &records.params())?;
        }
        Ok(())
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Closing a connection runs the driver's runtime, which must not happen on a thread
        // driving another runtime.
        let conns: Vec<Conn> = self
            .conns
            .iter_mut()
            .filter_map(|m| m.get_mut().unwrap_or_else(PoisonError::into_inner).take())
            .collect();
        if !conns.is_empty() {
            off_runtime(move || drop(conns));
        }
    }
}

impl ClientStore for PgStore {
    fn record(&self, a: &Activation) -> Result<(), StoreError> {
        self.record_batch(std::slice::from_ref(a))
    }

    fn record_batch(&self, batch: &[Activation]) -> Result<(), StoreError> {
        // Keys in order, so that hosts lock rows in the same order.
        let (records, events) = crate::record::fold_batch(batch);
        self.write(&records, &events)
    }

    /// Each batch is written as it comes, by a thread holding the transaction (the driver
    /// must not run on a runtime's thread, and the source, reading a file, stays on this
    /// one): only the batch in hand and the one being written are in memory.
    fn record_all(&self, source: BatchSource<'_>, expected: u64) -> Result<u64, StoreError> {
        let _ = expected;
        let (batches, received) = sync_channel::<Option<Vec<Activation>>>(1);
        std::thread::scope(|s| {
            let writer = s.spawn(move || self.write_stream(&received));
            let fed = source(&mut |batch| {
                batches.send(Some(batch)).map_err(|_| {
                    // The writer stopped on an error, which it returns below.
                    StoreError::Unsupported("the database write stopped")
                })
            });
            if fed.is_ok() {
                let _ = batches.send(None);
            }
            drop(batches);
            let written = writer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            match (written?, fed) {
                (Some(n), _) => Ok(n),
                (None, Err(e)) => Err(e),
                (None, Ok(())) => Err(StoreError::Unsupported(
                    "the database write stopped before the last batch",
                )),
            }
        })
    }

    fn distinct_clients_since(&self, kms_id: &Uuid, since: i64) -> Result<u64, StoreError> {
        self.count_query(
            "SELECT COUNT(DISTINCT cmid) FROM clients \
             WHERE kms_id = $1 AND last_seen >= $2 AND last_hresult = 0",
            &[kms_id, &since],
        )
    }

    fn list(&self, filter: &ClientFilter) -> Result<Vec<ClientRecord>, StoreError> {
        let plan = self.search_plan(filter)?;
        self.list_with(filter, &plan)
    }

    fn list_and_count(
        &self,
        filter: &ClientFilter,
    ) -> Result<(Vec<ClientRecord>, MatchCount), StoreError> {
        let plan = self.search_plan(filter)?;
        let records = self.list_with(filter, &plan)?;
        let count = if filter.selects_all() {
            self.count_all()?
        } else {
            self.count_with(filter, &plan)?
        };
        Ok((records, count))
    }

    fn count_matching(&self, filter: &ClientFilter) -> Result<MatchCount, StoreError> {
        if filter.selects_all() {
            return self.count_all();
        }
        let plan = self.search_plan(filter)?;
        self.count_with(filter, &plan)
    }

    fn notices(&self) -> Vec<String> {
        self.notices.clone()
    }

    fn prune_history(&self, cutoff: i64, batch: u64) -> Result<u64, StoreError> {
        let batch = saturating_i64(batch);
        self.run(Slot::Write, &|conn| {
            let stmt = conn.prepare(
                "DELETE FROM activations WHERE id IN \
                 (SELECT id FROM activations WHERE time < $1 ORDER BY time LIMIT $2)",
            )?;
            Ok(conn.client.execute(&stmt, &[&cutoff, &batch])?)
        })
    }

    fn prune_clients(&self, cutoff: i64, batch: u64) -> Result<u64, StoreError> {
        let batch = saturating_i64(batch);
        self.run(Slot::Write, &|conn| {
            let stmt = conn.prepare(
                "DELETE FROM clients WHERE (cmid, application_id) IN \
                 (SELECT cmid, application_id FROM clients WHERE last_seen < $1 \
                  ORDER BY last_seen LIMIT $2)",
            )?;
            Ok(conn.client.execute(&stmt, &[&cutoff, &batch])?)
        })
    }

    fn prune_workstation(&self, name: &str) -> Result<(u64, u64), StoreError> {
        let name = name.to_ascii_lowercase();
        self.run(Slot::Write, &|conn| {
            let clients = conn.prepare("DELETE FROM clients WHERE lower(workstation) = $1")?;
            let events = conn.prepare("DELETE FROM activations WHERE lower(workstation) = $1")?;
            let mut tx = conn.client.transaction()?;
            let records = tx.execute(&clients, &[&name])?;
            let events = tx.execute(&events, &[&name])?;
            tx.commit()?;
            Ok((records, events))
        })
    }

    fn client_counts_capped(&self, since: i64, cap: u64) -> Result<Vec<(Uuid, u64)>, StoreError> {
        let cap = saturating_i64(cap);
        self.run(Slot::Read, &|conn| {
            let stmt = conn.prepare(&format!(
                "{ACTIVE_KMS_IDS} SELECT kms_id, n FROM (SELECT k.kms_id, \
                     (SELECT COUNT(DISTINCT cmid) FROM (SELECT cmid FROM clients c \
                      WHERE c.kms_id = k.kms_id AND c.last_seen >= $1 AND c.last_hresult = 0 \
                      LIMIT $2) s) AS n \
                 FROM k WHERE k.kms_id IS NOT NULL) counts WHERE n > 0 ORDER BY kms_id"
            ))?;
            let rows = conn.client.query(&stmt, &[&since, &cap])?;
            rows.iter()
                .map(|row| Ok((row.try_get(0)?, non_negative(row.try_get(1)?, "count")?)))
                .collect()
        })
    }

    fn active_clients(
        &self,
        since: i64,
        per_kms: u64,
    ) -> Result<Vec<(Uuid, Uuid, i64)>, StoreError> {
        let per_kms = saturating_i64(per_kms);
        self.run(Slot::Read, &|conn| {
            let stmt = conn.prepare(&format!(
                "{ACTIVE_KMS_IDS} SELECT k.kms_id, r.cmid, r.last_seen FROM k \
                 CROSS JOIN LATERAL (SELECT cmid, last_seen FROM clients c \
                     WHERE c.kms_id = k.kms_id AND c.last_seen >= $1 AND c.last_hresult = 0 \
                     ORDER BY c.last_seen DESC LIMIT $2) r \
                 WHERE k.kms_id IS NOT NULL"
            ))?;
            let rows = conn.client.query(&stmt, &[&since, &per_kms])?;
            rows.iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
                .collect()
        })
    }

    fn prune_older_than(&self, cutoff: i64) -> Result<u64, StoreError> {
        self.run(Slot::Write, &|conn| {
            let clients = conn.prepare("DELETE FROM clients WHERE last_seen < $1")?;
            let events = conn.prepare("DELETE FROM activations WHERE time < $1")?;
            let mut tx = conn.client.transaction()?;
            let n = tx.execute(&clients, &[&cutoff])?;
            tx.execute(&events, &[&cutoff])?;
            tx.commit()?;
            Ok(n)
        })
    }

    fn count(&self) -> Result<u64, StoreError> {
        self.count_query("SELECT records FROM client_totals", &[])
    }

    fn history(&self, cmid: &Uuid, limit: u64) -> Result<Vec<ActivationEvent>, StoreError> {
        self.events("WHERE cmid = $1", &[cmid], limit)
    }

    fn recent_activations(&self, limit: u64) -> Result<Vec<ActivationEvent>, StoreError> {
        self.events("", &[], limit)
    }

    fn activations_since(&self, since: i64) -> Result<u64, StoreError> {
        self.count_query(
            "SELECT COUNT(*) FROM activations WHERE time >= $1",
            &[&since],
        )
    }

    fn daily_counts(&self, since: i64) -> Result<Vec<DailyCount>, StoreError> {
        let since = since.saturating_sub(since.rem_euclid(crate::SECONDS_PER_DAY));
        self.run(Slot::Read, &|conn| {
            // The day is the Euclidean floor, like `day_start`, also for times before 1970 (and
            // clamped like it, so that no time overflows).
            let stmt = conn.prepare(
                "SELECT day, application_id, kms_id, ok, count FROM activation_days \
                 WHERE day >= $1 ORDER BY day, application_id, kms_id, ok",
            )?;
            let rows = conn.client.query(&stmt, &[&since])?;
            rows.iter()
                .map(|row| {
                    Ok(DailyCount {
                        day: row.try_get(0)?,
                        application_id: row.try_get(1)?,
                        kms_id: row.try_get(2)?,
                        succeeded: row.try_get(3)?,
                        count: non_negative(row.try_get(4)?, "count")?,
                    })
                })
                .collect()
        })
    }

    fn probe_writable(&self) -> Result<(), StoreError> {
        self.run(Slot::Write, &|conn| {
            let stmt = conn.prepare("DELETE FROM activations WHERE false")?;
            let mut tx = conn.client.transaction()?;
            // A write statement that changes nothing: fails in a read-only transaction, on a
            // standby, or without the privilege.
            tx.execute(&stmt, &[])?;
            tx.rollback()?;
            Ok(())
        })
    }

    fn client_counts_since(&self, since: i64) -> Result<Vec<(Uuid, u64)>, StoreError> {
        self.run(Slot::Read, &|conn| {
            let stmt = conn.prepare(
                "SELECT kms_id, COUNT(DISTINCT cmid) FROM clients \
                 WHERE last_seen >= $1 AND last_hresult = 0 GROUP BY kms_id ORDER BY kms_id",
            )?;
            let rows = conn.client.query(&stmt, &[&since])?;
            rows.iter()
                .map(|row| Ok((row.try_get(0)?, non_negative(row.try_get(1)?, "count")?)))
                .collect()
        })
    }

    fn health_counts(&self, thresholds: &HealthThresholds) -> Result<Vec<HealthCount>, StoreError> {
        let mut args = Vec::new();
        let counts: Vec<String> = ClientState::ALL
            .iter()
            .map(|s| {
                format!(
                    "COUNT(*) FILTER (WHERE {})",
                    state_condition(*s, thresholds, &mut args)
                )
            })
            .collect();
        let sql = format!(
            "SELECT application_id, kms_id, {} FROM clients GROUP BY application_id, kms_id",
            counts.join(", ")
        );
        self.run(Slot::Read, &|conn| {
            let stmt = conn.prepare(&sql)?;
            let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(Param::sql).collect();
            let rows = conn.client.query(&stmt, &params)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut n = [0u64; 5];
                for (i, slot) in n.iter_mut().enumerate() {
                    *slot = non_negative(row.try_get(i + 2)?, "count")?;
                }
                out.push((row.try_get(0)?, row.try_get(1)?, n));
            }
            Ok(crate::health::counts_from_rows(out))
        })
    }

    fn events_page(&self, offset: u64, limit: u64) -> Result<Vec<ActivationEvent>, StoreError> {
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM activations ORDER BY time, id LIMIT $1 OFFSET $2");
        let (limit, offset) = (saturating_i64(limit), saturating_i64(offset));
        self.run(Slot::Read, &|conn| {
            let stmt = conn.prepare(&sql)?;
            let rows = conn.client.query(&stmt, &[&limit, &offset])?;
            rows.iter().map(decode_event).collect()
        })
    }

    fn import(
        &self,
        records: &[ClientRecord],
        events: &[ActivationEvent],
    ) -> Result<(), StoreError> {
        // The upsert takes one row per key: fold duplicates first.
        let mut folded: BTreeMap<(Uuid, Uuid), ClientRecord> = BTreeMap::new();
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

/// Records as one array per column, the parameters of [`UPSERT_RECORDS`]. The text columns
/// borrow the records' strings (copied only to replace a NUL, see [`text`]).
struct RecordArrays<'a> {
    cmid: Vec<Uuid>,
    application_id: Vec<Uuid>,
    sku_id: Vec<Uuid>,
    kms_id: Vec<Uuid>,
    workstation: Vec<Cow<'a, str>>,
    license_status: Vec<i64>,
    grace_minutes: Vec<i64>,
    is_vm: Vec<bool>,
    protocol: Vec<Cow<'a, str>>,
    first_seen: Vec<i64>,
    last_seen: Vec<i64>,
    requests: Vec<i64>,
    last_address: Vec<Cow<'a, str>>,
    last_epid: Vec<Cow<'a, str>>,
    last_hresult: Vec<i64>,
    last_activated: Vec<i64>,
}

impl<'a> RecordArrays<'a> {
    fn new(records: &'a [ClientRecord]) -> Self {
        Self {
            cmid: records.iter().map(|r| r.cmid).collect(),
            application_id: records.iter().map(|r| r.application_id).collect(),
            sku_id: records.iter().map(|r| r.sku_id).collect(),
            kms_id: records.iter().map(|r| r.kms_id).collect(),
            workstation: records.iter().map(|r| text(&r.workstation)).collect(),
            license_status: records
                .iter()
                .map(|r| i64::from(r.license_status))
                .collect(),
            grace_minutes: records.iter().map(|r| i64::from(r.grace_minutes)).collect(),
            is_vm: records.iter().map(|r| r.is_vm).collect(),
            protocol: records.iter().map(|r| text(&r.protocol)).collect(),
            first_seen: records.iter().map(|r| r.first_seen).collect(),
            last_seen: records.iter().map(|r| r.last_seen).collect(),
            requests: records.iter().map(|r| saturating_i64(r.requests)).collect(),
            last_address: records.iter().map(|r| text(&r.last_address)).collect(),
            last_epid: records.iter().map(|r| text(&r.last_epid)).collect(),
            last_hresult: records.iter().map(|r| i64::from(r.last_hresult)).collect(),
            last_activated: records
                .iter()
                .map(|r| r.last_activated.unwrap_or(NEVER_ACTIVATED))
                .collect(),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 16] {
        [
            &self.cmid,
            &self.application_id,
            &self.sku_id,
            &self.kms_id,
            &self.workstation,
            &self.license_status,
            &self.grace_minutes,
            &self.is_vm,
            &self.protocol,
            &self.first_seen,
            &self.last_seen,
            &self.requests,
            &self.last_address,
            &self.last_epid,
            &self.last_hresult,
            &self.last_activated,
        ]
    }
}

/// Events as one array per column, the parameters of [`INSERT_EVENTS`]. The text columns
/// borrow the events' strings (copied only to replace a NUL, see [`text`]).
struct EventArrays<'a> {
    time: Vec<i64>,
    cmid: Vec<Uuid>,
    application_id: Vec<Uuid>,
    sku_id: Vec<Uuid>,
    kms_id: Vec<Uuid>,
    workstation: Vec<Cow<'a, str>>,
    license_status: Vec<i64>,
    protocol: Vec<Cow<'a, str>>,
    address: Vec<Cow<'a, str>>,
    hresult: Vec<i64>,
}

impl<'a> EventArrays<'a> {
    fn new(events: &'a [ActivationEvent]) -> Self {
        Self {
            time: events.iter().map(|e| e.time).collect(),
            cmid: events.iter().map(|e| e.cmid).collect(),
            application_id: events.iter().map(|e| e.application_id).collect(),
            sku_id: events.iter().map(|e| e.sku_id).collect(),
            kms_id: events.iter().map(|e| e.kms_id).collect(),
            workstation: events.iter().map(|e| text(&e.workstation)).collect(),
            license_status: events.iter().map(|e| i64::from(e.license_status)).collect(),
            protocol: events.iter().map(|e| text(&e.protocol)).collect(),
            address: events.iter().map(|e| text(&e.address)).collect(),
            hresult: events.iter().map(|e| i64::from(e.hresult)).collect(),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 10] {
        [
            &self.time,
            &self.cmid,
            &self.application_id,
            &self.sku_id,
            &self.kms_id,
            &self.workstation,
            &self.license_status,
            &self.protocol,
            &self.address,
            &self.hresult,
        ]
    }
}

/// The per-day counts of some events, as one array per column: the parameters of
/// [`ADD_DAILY`].
struct DayArrays {
    day: Vec<i64>,
    application_id: Vec<Uuid>,
    kms_id: Vec<Uuid>,
    ok: Vec<bool>,
    count: Vec<i64>,
}

impl DayArrays {
    fn new(events: &[ActivationEvent]) -> Self {
        let mut days: BTreeMap<(i64, Uuid, Uuid, bool), i64> = BTreeMap::new();
        for e in events {
            *days
                .entry((
                    crate::day_start(e.time),
                    e.application_id,
                    e.kms_id,
                    e.succeeded(),
                ))
                .or_default() += 1;
        }
        let mut out = Self {
            day: Vec::new(),
            application_id: Vec::new(),
            kms_id: Vec::new(),
            ok: Vec::new(),
            count: Vec::new(),
        };
        for ((day, app, kms, ok), n) in days {
            out.day.push(day);
            out.application_id.push(app);
            out.kms_id.push(kms);
            out.ok.push(ok);
            out.count.push(n);
        }
        out
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 5] {
        [
            &self.day,
            &self.application_id,
            &self.kms_id,
            &self.ok,
            &self.count,
        ]
    }
}

/// PostgreSQL text cannot hold NUL: a client-sent name containing one is stored with U+FFFD in
/// its place. Any other string is passed on as it is, without a copy.
fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Reads the schema version (0 when the version table does not exist), refusing versions
/// newer than [`SCHEMA_VERSION`].
fn read_version(client: &mut impl postgres::GenericClient, target: &str) -> PgResult<u32> {
    let exists: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = $1)",
            &[&VERSION_TABLE],
        )?
        .try_get(0)?;
    if !exists {
        return Ok(0);
    }
    let raw: Option<i32> = client
        .query_one(&format!("SELECT max(version) FROM {VERSION_TABLE}"), &[])?
        .try_get(0)?;
    let raw = raw.unwrap_or(0);
    let found = u32::try_from(raw).map_err(|_| StoreError::Open {
        path: PathBuf::from(target),
        message: format!("invalid schema version {raw} ({VERSION_TABLE})"),
    })?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found,
            supported: SCHEMA_VERSION,
        }
        .into());
    }
    Ok(found)
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction holding the migration lock;
/// returns the version it had.
fn migrate(conn: &mut Conn, target: &str) -> PgResult<u32> {
    let open_error = |message: String| StoreError::Open {
        path: PathBuf::from(target),
        message,
    };
    let mut tx = conn.client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    let schema: Option<String> = tx.query_one("SELECT current_schema()", &[])?.try_get(0)?;
    if schema.is_none() {
        let path: String = tx.query_one("SHOW search_path", &[])?.try_get(0)?;
        return Err(open_error(format!(
            "no schema to keep the tables in: search_path ({path}) names no existing schema"
        ))
        .into());
    }
    // Read inside the lock: another host may have migrated meanwhile.
    let found = read_version(&mut tx, target)?;
    if found == SCHEMA_VERSION {
        tx.commit()?;
        return Ok(found);
    }
    if found == 0 {
        let tables: Vec<String> = tx
            .query(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() ORDER BY 1",
                &[],
            )?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?;
        if tables.iter().any(|t| t != VERSION_TABLE) {
            return Err(open_error(format!(
                "not an rkms client database (no {VERSION_TABLE} table, but schema {} holds \
                 tables: {}); use an empty database or schema",
                schema.unwrap_or_default(),
                tables.join(", ")
            ))
            .into());
        }
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
                 version     integer     PRIMARY KEY,
                 description text        NOT NULL,
                 applied_at  timestamptz NOT NULL DEFAULT now()
             )"
        ))?;
    }
    let insert = format!("INSERT INTO {VERSION_TABLE} (version, description) VALUES ($1, $2)");
    for m in PG_MIGRATIONS.iter().filter(|m| m.version > found) {
        let version = i32::try_from(m.version).expect("small version number");
        tx.batch_execute(m.sql)
            .and_then(|()| tx.execute(&insert, &[&version, &m.description]).map(drop))
            .map_err(|e| StoreError::Migration {
                path: PathBuf::from(target),
                version: m.version,
                message: pg_message(&e),
            })?;
    }
    tx.commit().map_err(|e| StoreError::Migration {
        path: PathBuf::from(target),
        version: SCHEMA_VERSION,
        message: pg_message(&e),
    })?;
    Ok(found)
}

/// Creates the search's trigram index unless it exists ([`SEARCH_TRIGRAM_INDEX`]), holding the
/// migration lock; `Err` (the server's reason) when it cannot, the database left as it was.
fn create_search_index(conn: &mut Conn) -> PgResult<Result<(), String>> {
    if search_index_exists(conn)? {
        return Ok(Ok(()));
    }
    let mut tx = conn.client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    match tx.batch_execute(SEARCH_TRIGRAM_INDEX) {
        Ok(()) => {
            tx.commit()?;
            Ok(Ok(()))
        }
        Err(e) if e.as_db_error().is_some() => {
            tx.rollback()?;
            Ok(Err(pg_message(&e)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether the search's trigram index exists (in the tables' schema).
fn search_index_exists(conn: &mut Conn) -> PgResult<bool> {
    Ok(conn
        .client
        .query_one(
            "SELECT to_regclass($1::text) IS NOT NULL",
            &[&SEARCH_TRIGRAM_INDEX_NAME],
        )?
        .try_get(0)?)
}

/// Whether `e` means the connection is gone (rather than one statement failing).
fn connection_lost(e: &postgres::Error, client: &Client) -> bool {
    if e.is_closed() || client.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let code = code.code();
        return code.starts_with("08") || code.starts_with("57P0");
    }
    // No server error: the socket failed (or the driver did, which a new connection cures too).
    e.as_db_error().is_none()
        && std::error::Error::source(e)
            .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
}

/// [`StoreError::Postgres`] for a statement the server refused.
fn statement_error(e: &postgres::Error) -> StoreError {
    StoreError::Postgres {
        message: pg_message(e),
        code: e.code().map(|c| c.code().to_string()),
    }
}

/// The driver's error with its cause: the server's severity, message, detail and hint, or the
/// I/O error.
fn pg_message(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut m = format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
        if let Some(detail) = db.detail() {
            m.push_str(&format!("; {detail}"));
        }
        if let Some(hint) = db.hint() {
            m.push_str(&format!("; hint: {hint}"));
        }
        return m;
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// `postgres://user@host:port/database` for messages (the password left out).
fn describe(config: &Config) -> String {
    use postgres::config::Host;
    let user = config.get_user().unwrap_or("");
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]"),
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let db = config.get_dbname().unwrap_or(user);
    let at = if user.is_empty() { "" } else { "@" };
    format!("postgres://{user}{at}{}/{db}", hosts.join(","))
}

/// The database `url` names, without the password: `postgres://user@host:port/db` and the TLS
/// parameters given, if any (or `url` with the password masked when it does not parse).
pub(crate) fn describe_url(url: &str) -> String {
    let Ok((conninfo, tls)) = pg_tls::split(url) else {
        return redact_url(url);
    };
    match Config::from_str(&conninfo) {
        Ok(config) => format!("{}{}", describe(&config), tls.describe_suffix()),
        Err(_) => redact_url(url),
    }
}

/// Runs `f` here, or, when this thread is inside a Tokio runtime (where the driver's own
/// runtime must not block), on a scoped thread of its own.
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Turns a row of [`EVENT_COLUMNS`] into a history event.
fn decode_event(row: &Row) -> PgResult<ActivationEvent> {
    Ok(ActivationEvent {
        time: row.try_get(0)?,
        cmid: row.try_get(1)?,
        application_id: row.try_get(2)?,
        sku_id: row.try_get(3)?,
        kms_id: row.try_get(4)?,
        workstation: row.try_get(5)?,
        license_status: u32_at(row, 6, "license_status")?,
        protocol: row.try_get(7)?,
        address: row.try_get(8)?,
        hresult: u32_at(row, 9, "hresult")?,
    })
}

/// Turns a row of [`COLUMNS`] into a record.
fn decode(row: &Row) -> PgResult<ClientRecord> {
    Ok(ClientRecord {
        cmid: row.try_get(0)?,
        application_id: row.try_get(1)?,
        sku_id: row.try_get(2)?,
        kms_id: row.try_get(3)?,
        workstation: row.try_get(4)?,
        license_status: u32_at(row, 5, "license_status")?,
        grace_minutes: u32_at(row, 6, "grace_minutes")?,
        is_vm: row.try_get(7)?,
        protocol: row.try_get(8)?,
        first_seen: row.try_get(9)?,
        last_seen: row.try_get(10)?,
        requests: non_negative(row.try_get(11)?, "requests")?,
        last_address: row.try_get(12)?,
        last_epid: row.try_get(13)?,
        last_hresult: u32_at(row, 14, "last_hresult")?,
        last_activated: {
            let stored: i64 = row.try_get(15)?;
            (stored != NEVER_ACTIVATED).then_some(stored)
        },
    })
}

fn u32_at(row: &Row, i: usize, name: &str) -> PgResult<u32> {
    let n: i64 = row.try_get(i)?;
    Ok(u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("{name} {n} out of range")))?)
}

fn non_negative(n: i64, name: &str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{name} {n} is negative")))
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://rkms:s3cr:et@db.example:5432/rkms"),
            "postgres://rkms:***@db.example:5432/rkms"
        );
        assert_eq!(
            redact_url("postgresql://rkms@db/rkms?password=s3cret&sslmode=disable"),
            "postgresql://rkms@db/rkms?password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("host=db password=x user=u"),
            "host=db password=*** user=u"
        );
        let config = Config::from_str("postgres://rkms:s3cret@db.example:6543/clients").unwrap();
        assert_eq!(describe(&config), "postgres://rkms@db.example:6543/clients");
        let config = Config::from_str("postgres://u:p@[2001:db8::1]/d").unwrap();
        assert_eq!(describe(&config), "postgres://u@[2001:db8::1]:5432/d");
    }

    #[test]
    fn nul_is_replaced() {
        assert_eq!(text("a\0b"), "a\u{FFFD}b");
        assert_eq!(text("plain"), "plain");
    }
}
