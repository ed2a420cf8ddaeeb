//! Test helpers shared by the integration tests: temporary directories and activation builders.
#![allow(dead_code, unused_macros, unused_imports)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rkms_store::{Activation, ClientFilter, ClientStore};
use uuid::Uuid;

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<tmp>/rkms-store-<label>-<pid>-<n>-<nanos>`.
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            "rkms-store-{label}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A file name inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A deterministic UUID from a small number (tests read better than random ones).
pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x1111_0000_0000_4000_8000_0000_0000_0000 | n)
}

/// Application IDs.
pub fn windows_app() -> Uuid {
    Uuid::parse_str("55c92734-d682-4d71-983e-d6ec3f16059f").unwrap()
}
/// Office 2013+ application ID.
pub fn office_app() -> Uuid {
    Uuid::parse_str("0ff1ce15-a989-479d-af46-f275c6370663").unwrap()
}

/// A successful Windows activation of client `cmid` at `time` for KMS ID `kms`.
pub fn activation(cmid: Uuid, kms: Uuid, time: i64) -> Activation {
    Activation {
        cmid,
        application_id: windows_app(),
        sku_id: id(0x5c),
        kms_id: kms,
        workstation: format!("PC-{}", &cmid.to_string()[..8]),
        license_status: 2,
        grace_minutes: 43200,
        is_vm: false,
        protocol: "6.0".into(),
        time,
        address: "192.0.2.10:50000".into(),
        epid: "06401-00206-551-000000-03-1033-9200.0000-3652017".into(),
        hresult: 0,
    }
}

/// What the PostgreSQL tests print (once per test binary, past the output capture) when
/// `RKMS_TEST_POSTGRES` is not set.
pub const PG_SKIPPED: &str = "RKMS_TEST_POSTGRES not set: PostgreSQL tests skipped";

/// The PostgreSQL database the tests may use (`RKMS_TEST_POSTGRES`, a connection URL to a
/// database in which they create schemas), or `None` after saying the tests are skipped.
pub fn postgres_url() -> Option<String> {
    match std::env::var("RKMS_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write;
                // Straight to stderr: the test harness captures only print!/eprintln!.
                let _ = writeln!(std::io::stderr(), "{PG_SKIPPED}");
            });
            None
        }
    }
}

/// `url` with `search_path` set to `schema` through the `options` parameter.
pub fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{schema}")
}

/// A fresh schema in the `RKMS_TEST_POSTGRES` database, dropped (with its tables) on drop, so
/// that every test has an empty database of its own.
pub struct PgSchema {
    base: String,
    name: String,
    url: String,
}

impl PgSchema {
    /// Creates `t_<label>_<pid>_<n>_<nanos>`; `None` when `RKMS_TEST_POSTGRES` is not set.
    pub fn new(label: &str) -> Option<Self> {
        let base = postgres_url()?;
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let label: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(30)
            .collect();
        let name = format!(
            "t_{label}_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = postgres::Client::connect(&base, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to RKMS_TEST_POSTGRES: {e:?}"));
        admin
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .unwrap();
        let url = with_search_path(&base, &name);
        Some(Self { base, name, url })
    }

    /// The connection URL whose tables live in this schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's URL without the schema (for other connections: administration).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A plain connection working in this schema.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

/// A store with some of everything: repeated, out-of-order, refused and Office requests,
/// several KMS IDs, same-second ties, unusual text.
pub fn fill(store: &dyn ClientStore) {
    let day = 1_799_971_200;
    for n in 0..300u128 {
        let kms = id(0xa + n % 3);
        store
            .record(&activation(id(n), kms, day + (n as i64 % 50) * 60))
            .unwrap();
    }
    let mut batch = Vec::new();
    for n in 0..100u128 {
        batch.push(Activation {
            application_id: office_app(),
            workstation: format!("ОФИС-{n} 🖥"),
            is_vm: n % 2 == 0,
            hresult: if n % 7 == 0 { 0xC004_F038 } else { 0 },
            ..activation(id(n), id(0xd), day + 86_400 + n as i64 / 10)
        });
        // Out of order: earlier than what the record holds.
        batch.push(Activation {
            workstation: "EARLIER".into(),
            ..activation(id(n), id(0xa + n % 3), day - 100)
        });
    }
    store.record_batch(&batch).unwrap();
}

pub fn assert_same(a: &dyn ClientStore, b: &dyn ClientStore) {
    assert_eq!(
        a.list(&ClientFilter::default()).unwrap(),
        b.list(&ClientFilter::default()).unwrap()
    );
    assert_eq!(
        a.recent_activations(u64::MAX).unwrap(),
        b.recent_activations(u64::MAX).unwrap()
    );
    assert_eq!(
        a.daily_counts(i64::MIN).unwrap(),
        b.daily_counts(i64::MIN).unwrap()
    );
    assert_eq!(
        a.client_counts_since(i64::MIN).unwrap(),
        b.client_counts_since(i64::MIN).unwrap()
    );
    for n in [0u128, 7, 99, 250] {
        assert_eq!(
            a.history(&id(n), 100).unwrap(),
            b.history(&id(n), 100).unwrap()
        );
    }
}

/// The `ClientStore` methods other than `record` and `record_batch`, for a test store that
/// changes how it writes and passes everything else to the store in field `$inner`.
macro_rules! pass_reads_to {
    ($inner:tt) => {
        fn distinct_clients_since(
            &self,
            kms_id: &uuid::Uuid,
            since: i64,
        ) -> Result<u64, rkms_store::StoreError> {
            self.$inner.distinct_clients_since(kms_id, since)
        }
        fn list(
            &self,
            filter: &rkms_store::ClientFilter,
        ) -> Result<Vec<rkms_store::ClientRecord>, rkms_store::StoreError> {
            self.$inner.list(filter)
        }
        fn prune_older_than(&self, cutoff: i64) -> Result<u64, rkms_store::StoreError> {
            self.$inner.prune_older_than(cutoff)
        }
        fn count(&self) -> Result<u64, rkms_store::StoreError> {
            self.$inner.count()
        }
        fn history(
            &self,
            cmid: &uuid::Uuid,
            limit: u64,
        ) -> Result<Vec<rkms_store::ActivationEvent>, rkms_store::StoreError> {
            self.$inner.history(cmid, limit)
        }
        fn recent_activations(
            &self,
            limit: u64,
        ) -> Result<Vec<rkms_store::ActivationEvent>, rkms_store::StoreError> {
            self.$inner.recent_activations(limit)
        }
        fn activations_since(&self, since: i64) -> Result<u64, rkms_store::StoreError> {
            self.$inner.activations_since(since)
        }
        fn daily_counts(
            &self,
            since: i64,
        ) -> Result<Vec<rkms_store::DailyCount>, rkms_store::StoreError> {
            self.$inner.daily_counts(since)
        }
        fn probe_writable(&self) -> Result<(), rkms_store::StoreError> {
            self.$inner.probe_writable()
        }
    };
}
pub(crate) use pass_reads_to;

/// Inserts `r` into the `clients` table of a PostgreSQL schema at version 3 or 4 (GUIDs as
/// `uuid`, before `last_activated`), as rkms of that schema wrote it.
pub fn insert_v3_client(c: &mut postgres::Client, r: &rkms_store::ClientRecord) {
    c.execute(
        "INSERT INTO clients (cmid, application_id, sku_id, kms_id, workstation, \
         license_status, protocol, first_seen, last_seen, requests, last_address, last_epid, \
         is_vm, grace_minutes, last_hresult) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        &[
            &r.cmid,
            &r.application_id,
            &r.sku_id,
            &r.kms_id,
            &r.workstation,
            &i64::from(r.license_status),
            &r.protocol,
            &r.first_seen,
            &r.last_seen,
            &(r.requests as i64),
            &r.last_address,
            &r.last_epid,
            &r.is_vm,
            &i64::from(r.grace_minutes),
            &i64::from(r.last_hresult),
        ],
    )
    .unwrap();
}
