//! Import of a py-kms client database (`pykms_database.db`) into a client store.
//!
//! py-kms (`pykms_Sql.py`) keeps one table:
//!
//! ```sql
//! CREATE TABLE clients(clientMachineId TEXT, machineName TEXT, applicationId TEXT, skuId TEXT,
//!     licenseStatus TEXT, lastRequestTime INTEGER, kmsEpid TEXT, requestCount INTEGER)
//! ```
//!
//! Later forks add `machineIp TEXT` and a `PRIMARY KEY(clientMachineId, applicationId)`.
//! `applicationId` and `skuId` hold display names ("Windows", "Windows 10 Professional"), or
//! the GUID as text when py-kms did not know it; `licenseStatus` holds py-kms' wording
//! ("Activated", "Grace Period", …); `lastRequestTime` is unix seconds.

use std::path::Path;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Activation, BatchSink, ClientStore, StoreError};
// Reading the file needs SQLite; a build without the `sqlite` feature refuses it by name.
#[cfg(feature = "sqlite")]
use {
    crate::sqlite::{check_directory, open_error},
    rusqlite::types::Value,
    rusqlite::{Connection, OpenFlags},
    std::collections::HashMap,
};

/// The columns of py-kms' `clients` table the import needs; a database lacking one is refused.
pub const PYKMS_COLUMNS: &[&str] = &[
    "clientMachineId",
    "machineName",
    "applicationId",
    "skuId",
    "licenseStatus",
    "lastRequestTime",
    "kmsEpid",
    "requestCount",
];

/// Distinct product names whose resolution [`read_pykms`] remembers.
#[cfg(feature = "sqlite")]
const RESOLVED_NAMES_LIMIT: usize = 10_000;

/// The client address column later py-kms versions add; used for `last_address` when present.
pub const PYKMS_ADDRESS_COLUMN: &str = "machineIp";

/// Maps a py-kms `skuId` text (normally the SKU's display name) to
/// (application ID, SKU ID, KMS counted ID after alias resolution), or `None` when unknown.
pub type SkuResolver<'a> = &'a dyn Fn(&str) -> Option<(Uuid, Uuid, Uuid)>;

/// The outcome of reading or importing a py-kms database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Rows turned into activations (and written, for [`import_pykms`]).
    pub imported: u64,
    /// Rows whose `skuId` the resolver did not know: (CMID, `skuId` text). Not imported.
    pub unmapped: Vec<(Uuid, String)>,
    /// Rows that could not be read at all (bad CMID or time), each described. Not imported.
    pub invalid: Vec<String>,
    /// Of `invalid`, the rows whose `lastRequestTime` is not a possible time for a KMS
    /// request (see [`possible_time`]).
    #[serde(default)]
    pub impossible_times: u64,
}

/// 2006-01-01T00:00:00Z: no KMS request is older (KMS came with Windows Vista).
pub const EARLIEST_KMS_TIME: i64 = 1_136_073_600;

/// Whether `time` (unix seconds) can be the time of a KMS request seen at `now`: from
/// [`EARLIEST_KMS_TIME`] to a day after `now` (clocks differ a little).
pub fn possible_time(time: i64, now: i64) -> bool {
    (EARLIEST_KMS_TIME..=now.saturating_add(86_400)).contains(&time)
}

/// Reads a py-kms database (opened read-only, never modified) into activations, one per row.
///
/// Each row becomes an activation at `lastRequestTime` with `hresult` 0 (py-kms recorded
/// served requests), `protocol` and `address` empty (`address` is `machineIp` when the column
/// exists), `is_vm` false, `grace_minutes` 0 and `license_status` from py-kms' wording (see
/// [`pykms_license_status`]). py-kms' `requestCount` is not kept: an imported record starts at
/// one request (importing the same file twice counts two).
pub fn read_pykms(
    path: &Path,
    resolve: SkuResolver<'_>,
) -> Result<(Vec<Activation>, ImportReport), StoreError> {
    let mut all = Vec::new();
    let report = read_pykms_batches(path, resolve, usize::MAX, &mut |batch| {
        all.extend(batch);
        Ok(())
    })?;
    Ok((all, report))
}

/// [`read_pykms`], the activations passed to `sink` `batch_rows` at a time (the last batch
/// may be shorter) instead of returned: a large database is never held in memory whole.
/// Stops at the first error of `sink`, which it returns.
pub fn read_pykms_batches(
    path: &Path,
    resolve: SkuResolver<'_>,
    batch_rows: usize,
    sink: &mut BatchSink<'_>,
) -> Result<ImportReport, StoreError> {
    #[cfg(feature = "sqlite")]
    return PykmsFile::open(path)?.read(resolve, batch_rows, sink);
    #[cfg(not(feature = "sqlite"))]
    {
        let _ = (resolve, batch_rows, sink);
        Err(not_built(path))
    }
}

#[cfg(not(feature = "sqlite"))]
fn not_built(path: &Path) -> StoreError {
    StoreError::NotBuilt {
        feature: "sqlite",
        what: format!("the py-kms database {} (a SQLite file)", path.display()),
    }
}

/// A py-kms database opened read-only, its `clients` table checked.
#[cfg(feature = "sqlite")]
struct PykmsFile {
    conn: Connection,
    /// The address column to read (`machineIp`, or `NULL` when the table has none).
    address: &'static str,
}

#[cfg(feature = "sqlite")]
impl PykmsFile {
    fn open(path: &Path) -> Result<Self, StoreError> {
        check_directory(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, &e))?;
        let columns = table_columns(&conn, path)?;
        if columns.is_empty() {
            return Err(import_error(
                path,
                "no `clients` table: not a py-kms database".into(),
            ));
        }
        if let Some(missing) = PYKMS_COLUMNS
            .iter()
            .find(|c| !columns.iter().any(|k| k == *c))
        {
            return Err(import_error(
                path,
                format!("the `clients` table has no `{missing}` column"),
            ));
        }
        let address = if columns.iter().any(|c| c == PYKMS_ADDRESS_COLUMN) {
            PYKMS_ADDRESS_COLUMN
        } else {
            "NULL"
        };
        Ok(Self { conn, address })
    }

    /// The number of rows of the `clients` table.
    fn rows(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM clients", [], |row| row.get(0))?;
        Ok(n.unsigned_abs())
    }

    /// Reads the rows into activations (see [`read_pykms`]), passed to `sink` `batch_rows`
    /// at a time.
    fn read(
        &self,
        resolve: SkuResolver<'_>,
        batch_rows: usize,
        sink: &mut BatchSink<'_>,
    ) -> Result<ImportReport, StoreError> {
        let batch_rows = batch_rows.max(1);
        let sql = format!(
            "SELECT clientMachineId, machineName, skuId, licenseStatus, lastRequestTime, \
             kmsEpid, {} FROM clients ORDER BY rowid",
            self.address
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        let mut activations = Vec::new();
        let mut report = ImportReport::default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let mut resolved_names: HashMap<String, Option<(Uuid, Uuid, Uuid)>> = HashMap::new();
        while let Some(row) = rows.next()? {
            let cmid_text = text(row.get(0)?);
            let Ok(cmid) = Uuid::parse_str(cmid_text.trim()) else {
                report
                    .invalid
                    .push(format!("clientMachineId {cmid_text:?} is not a GUID"));
                continue;
            };
            let Some(time) = unix_time(row.get(4)?) else {
                report
                    .invalid
                    .push(format!("{cmid}: lastRequestTime is not a unix time"));
                continue;
            };
            // An impossible time would stay in the record and its history for ever (and
            // once broke the dashboard's statistics): the row is refused.
            if !possible_time(time, now) {
                report.impossible_times += 1;
                report.invalid.push(format!(
                    "{cmid}: lastRequestTime {time} is not a possible time (before 2006 or in \
                     the future)"
                ));
                continue;
            }
            let sku_name = text(row.get(2)?);
            // A database holds few distinct product names: resolve each once.
            let resolved = match resolved_names.get(&sku_name) {
                Some(r) => *r,
                None => {
                    let r = resolve(&sku_name);
                    if resolved_names.len() < RESOLVED_NAMES_LIMIT {
                        resolved_names.insert(sku_name.clone(), r);
                    }
                    r
                }
            };
            let Some((application_id, sku_id, kms_id)) = resolved else {
                report.unmapped.push((cmid, sku_name));
                continue;
            };
            activations.push(Activation {
                cmid,
                application_id,
                sku_id,
                kms_id,
                workstation: text(row.get(1)?),
                license_status: pykms_license_status(&text(row.get(3)?)),
                grace_minutes: 0,
                is_vm: false,
                protocol: String::new(),
                time,
                address: text(row.get(6)?),
                epid: text(row.get(5)?),
                hresult: 0,
            });
            if activations.len() >= batch_rows {
                report.imported += activations.len() as u64;
                sink(std::mem::take(&mut activations))?;
            }
        }
        if !activations.is_empty() {
            report.imported += activations.len() as u64;
            sink(activations)?;
        }
        Ok(report)
    }
}

/// Rows of a py-kms database [`import_pykms`] reads and writes at a time.
pub const IMPORT_BATCH_ROWS: usize = 10_000;

/// Reads a py-kms database with [`read_pykms`] and writes its rows into `store` in one
/// transaction (all or nothing: [`ClientStore::record_all`]), [`IMPORT_BATCH_ROWS`] at a time,
/// then brings the store's deferred work up to date ([`ClientStore::catch_up`]: the imported
/// records are indexed for search).
pub fn import_pykms(
    store: &dyn ClientStore,
    path: &Path,
    resolve: SkuResolver<'_>,
) -> Result<ImportReport, StoreError> {
    import_pykms_in_batches(store, path, resolve, IMPORT_BATCH_ROWS)
}

/// [`import_pykms`], `batch_rows` rows at a time: the SQLite store then holds one batch in
/// memory, however large the database.
pub fn import_pykms_in_batches(
    store: &dyn ClientStore,
    path: &Path,
    resolve: SkuResolver<'_>,
    batch_rows: usize,
) -> Result<ImportReport, StoreError> {
    #[cfg(feature = "sqlite")]
    {
        let file = PykmsFile::open(path)?;
        let expected = file.rows()?;
        let mut report = ImportReport::default();
        store.record_all(
            &mut |sink| {
                report = file.read(resolve, batch_rows, sink)?;
                Ok(())
            },
            expected,
        )?;
        store.catch_up()?;
        Ok(report)
    }
    #[cfg(not(feature = "sqlite"))]
    {
        let _ = (store, resolve, batch_rows);
        Err(not_built(path))
    }
}

/// The licence status number for py-kms' wording: "Unlicensed" 0, "Activated"/"Licensed" 1,
/// "Grace Period"/"Initial grace period"/"Out-of-Box Grace Period" 2,
/// "Out-of-Tolerance Grace Period" 3, "Non-Genuine Grace Period" 4, "Notifications Mode" 5,
/// "Extended Grace Period" 6, a decimal number as is; anything else ("Unknown") 0. Case,
/// spaces and hyphens are ignored.
pub fn pykms_license_status(text: &str) -> u32 {
    let key: String = text
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    match key.as_str() {
        "activated" | "licensed" => 1,
        "graceperiod" | "initialgraceperiod" | "outofboxgraceperiod" | "oobgrace" => 2,
        "outoftolerancegraceperiod" | "ootgrace" => 3,
        "nongenuinegraceperiod" | "nongenuinegrace" => 4,
        "notificationsmode" | "notification" | "notifications" => 5,
        "extendedgraceperiod" | "extendedgrace" => 6,
        _ => key.parse().unwrap_or(0),
    }
}

/// The column names of the `clients` table (empty when there is no such table).
#[cfg(feature = "sqlite")]
fn table_columns(conn: &Connection, path: &Path) -> Result<Vec<String>, StoreError> {
    conn.prepare("SELECT name FROM pragma_table_info('clients')")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
        .map_err(|e| open_error(path, &e))
}

#[cfg(feature = "sqlite")]
fn import_error(path: &Path, message: String) -> StoreError {
    StoreError::Import {
        path: path.to_path_buf(),
        message,
    }
}

/// A text cell as a string: NULL is empty, numbers are printed.
#[cfg(feature = "sqlite")]
fn text(value: Value) -> String {
    match value {
        Value::Null | Value::Blob(_) => String::new(),
        Value::Integer(n) => n.to_string(),
        Value::Real(x) => x.to_string(),
        Value::Text(s) => s,
    }
}

/// A time cell as unix seconds: integers, reals (truncated) and decimal text are accepted.
#[cfg(feature = "sqlite")]
fn unix_time(value: Value) -> Option<i64> {
    match value {
        Value::Integer(n) => Some(n),
        // `as` saturates; py-kms never stores fractional or huge times.
        Value::Real(x) if x.is_finite() => Some(x as i64),
        Value::Text(s) => s.trim().parse().ok(),
        _ => None,
    }
}
