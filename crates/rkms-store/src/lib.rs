//! The persistent record of KMS clients: one [`ClientRecord`] per (CMID, application), kept in
//! an SQLite file ([`SqliteStore`]: WAL, `synchronous=NORMAL`, versioned schema migrated at
//! open) or in memory ([`MemoryStore`], `--db none`), both behind the [`ClientStore`] trait.
//!
//! The server reports every request as an [`Activation`] to a [`Writer`], which writes them in
//! batches on its own thread so a request never waits on the disk. Each request is also kept
//! as an [`ActivationEvent`] in the activation history (per-client history, per-day counts). [`count::active_clients`]
//! gives a host's 30-day distinct-client count (PROTOCOL.md §9.1) and [`import_pykms`] brings
//! in a py-kms database.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod count;
mod error;
pub mod history;
mod memory;
mod open;
pub mod pykms;
mod record;
pub mod schema;
mod sqlite;
mod store;
mod writer;

pub use error::StoreError;
pub use history::{day_start, ActivationEvent, DailyCount, SECONDS_PER_DAY};
pub use memory::{MemoryStore, MEMORY_CLIENT_LIMIT, MEMORY_HISTORY_LIMIT};
pub use open::{open_store, NO_DATABASE};
pub use pykms::{import_pykms, read_pykms, ImportReport};
pub use record::{Activation, ClientFilter, ClientRecord};
pub use schema::SCHEMA_VERSION;
pub use sqlite::{SqliteStore, BUSY_TIMEOUT};
pub use store::ClientStore;
pub use writer::{Ack, ErrorCallback, Writer, DEFAULT_QUEUE_CAPACITY, MAX_BATCH};
