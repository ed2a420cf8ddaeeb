//! The persistent record of KMS clients: one [`ClientRecord`] per (CMID, application), kept in
//! an SQLite file ([`SqliteStore`]: WAL, `synchronous=NORMAL`, versioned schema migrated at
//! open), in a PostgreSQL database shared by several hosts ([`PgStore`]: same schema and
//! migrations, run once however many hosts start together), or in memory ([`MemoryStore`],
//! `--db none`), all behind the [`ClientStore`] trait; [`open_store`] picks one from the `--db`
//! value.
//!
//! The server reports every request as an [`Activation`] to a [`Writer`], which writes them in
//! batches on its own thread so a request never waits on the disk or the database, and keeps
//! them in a bounded retry buffer while the store is unreachable. Each request is also kept
//! as an [`ActivationEvent`] in the activation history (per-client history, per-day counts). [`count::active_clients`]
//! gives a host's 30-day distinct-client count (PROTOCOL.md §9.1) and
//! [`ClientStore::client_counts_since`] those of every KMS ID at once (of every host sharing
//! the store); [`health`] gives every record a fleet-health state (current, overdue, at-risk,
//! lapsed, failing) from its last successful activation, which the backends filter and count
//! in SQL ([`ClientStore::health_counts`]); [`import_pykms`] brings in a py-kms database and [`copy_all`] copies one store
//! into another.
//!
//! Cargo features choose the database backends built (both by default): `sqlite`
//! ([`SqliteStore`], the py-kms import) and `postgres` ([`PgStore`]). The memory store is
//! always there; [`open_store`] refuses a `--db` value naming a backend left out
//! ([`StoreError::NotBuilt`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod copy;
pub mod count;
mod error;
pub mod health;
pub mod history;
mod memory;
mod open;
pub mod pykms;
mod record;
pub mod schema;
mod store;
mod writer;

/// The modules of one optional backend, each behind its feature (the one place they are
/// gated; [`open`] is the one place a `--db` value is dispatched to them).
macro_rules! backend {
    ($feature:literal: $($item:item)*) => { $( #[cfg(feature = $feature)] $item )* };
}

backend! { "sqlite":
    pub mod checkpoint;
    mod search_index;
    mod sqlite;
    pub use sqlite::{SqliteStore, BUSY_TIMEOUT, DEFAULT_PAGE_CACHE_KIB};
}

backend! { "postgres":
    mod pg;
    pub mod pg_schema;
    mod pg_tls;
    pub use pg::{PgStore, PG_CONNECT_TIMEOUT, PG_TCP_TIMEOUT};
}

pub use copy::{copy_all, CopyReport, COPY_CHUNK};
pub use error::StoreError;
pub use health::{
    expires_at, ClientState, HealthCount, HealthThresholds, ACTIVATION_VALIDITY_SECS,
    AT_RISK_WITHIN_SECS,
};
pub use history::{day_start, ActivationEvent, DailyCount, SECONDS_PER_DAY};
pub use memory::{MemoryStore, MEMORY_CLIENT_LIMIT, MEMORY_HISTORY_LIMIT};
pub use open::{
    check_spec, describe_spec, open_store, open_store_read_only, open_store_with,
    open_store_with_mode, StoreKind, DB_MODE, NO_DATABASE,
};
pub use pykms::{
    import_pykms, import_pykms_in_batches, read_pykms, read_pykms_batches, ImportReport,
    IMPORT_BATCH_ROWS,
};
pub use record::{
    address_host, Activation, ClientFilter, ClientRecord, ClientSort, IdSet, MatchCount, Search,
    MACHINES_COUNT_LIMIT, MATCH_COUNT_LIMIT, SEARCH_INDEX_MIN_LEN,
};
pub use schema::SCHEMA_VERSION;
pub use store::{BatchSink, BatchSource, ClientStore};
pub use writer::{
    Ack, AfterAcks, ErrorCallback, ResumeCallback, Resumed, WriteStatus, Writer, WriterOptions,
    DEFAULT_BUFFER_CAPACITY, DEFAULT_QUEUE_CAPACITY, DEFAULT_RETRY_INITIAL, DEFAULT_RETRY_MAX,
    MAX_BATCH,
};
