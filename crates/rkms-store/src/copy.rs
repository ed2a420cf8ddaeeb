//! [`copy_all`]: copies one client store into another (`rkms clients migrate`).

use serde::{Deserialize, Serialize};

use crate::{ClientFilter, ClientStore, StoreError};

/// Records and events moved per [`ClientStore::import`] call (one transaction each).
pub const COPY_CHUNK: usize = 5_000;

/// Records and events read from the source per call: pages are taken by offset, so larger
/// pages mean fewer rows skipped again (a few megabytes in memory at a time).
const READ_PAGE: u64 = 50_000;

/// What [`copy_all`] copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyReport {
    /// Client records copied.
    pub records: u64,
    /// History events copied.
    pub events: u64,
}

/// Copies every client record and every history event of `from` into `to`, faithfully: each
/// record as it is (`first_seen`, `last_seen`, `requests` and every field), the events in the
/// order they were recorded, so that [`ClientStore::list`], [`ClientStore::history`],
/// [`ClientStore::daily_counts`] … of `to` answer what those of `from` did.
///
/// `to` must be empty (no record, no event; [`StoreError::Copy`] otherwise): copying twice
/// would count every request twice. The copy is made in transactions of [`COPY_CHUNK`] rows:
/// after a failure part of it may be in `to`, which must then be emptied before trying again.
/// `from` should not be written meanwhile (stop the hosts using it). Once done, the numbers
/// of records and events in `to` are checked against those copied.
pub fn copy_all(from: &dyn ClientStore, to: &dyn ClientStore) -> Result<CopyReport, StoreError> {
    to.catch_up()?;
    let (records, events) = (to.count()?, to.activations_since(i64::MIN)?);
    if records > 0 || events > 0 {
        return Err(StoreError::Copy(format!(
            "the target already holds {records} client records and {events} history events; \
             copy into an empty database"
        )));
    }
    let mut report = CopyReport::default();
    // Page by page (never the whole table in memory), in the store's default order.
    loop {
        let page = from.list(&ClientFilter {
            offset: Some(report.records),
            limit: Some(READ_PAGE),
            ..ClientFilter::default()
        })?;
        if page.is_empty() {
            break;
        }
        for chunk in page.chunks(COPY_CHUNK) {
            to.import(chunk, &[])?;
            report.records += chunk.len() as u64;
        }
    }
    loop {
        let page = from.events_page(report.events, READ_PAGE)?;
        if page.is_empty() {
            break;
        }
        for chunk in page.chunks(COPY_CHUNK) {
            to.import(&[], chunk)?;
            report.events += chunk.len() as u64;
        }
    }
    let (records, events) = (to.count()?, to.activations_since(i64::MIN)?);
    if (records, events) != (report.records, report.events) {
        return Err(StoreError::Copy(format!(
            "copied {} client records and {} history events, but the target holds {records} \
             and {events}",
            report.records, report.events
        )));
    }
    Ok(report)
}
