//! The time stamp of a log line, written exactly as tracing-subscriber's `SystemTime` writes
//! it (RFC 3339 in UTC with microseconds, `2026-12-06T16:07:05.123456Z`), with the date and
//! time of day formatted once per second instead of once per line.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// [`FormatTime`] giving the same text as `tracing_subscriber::fmt::time::SystemTime`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CachedSystemTime;

/// 10000-01-01T00:00:00Z: from then on (and before 1970) the stamp is left to
/// tracing-subscriber, which writes such years its own way.
const LAST_SECOND: u64 = 253_402_300_799;

thread_local! {
    /// The second last formatted by this thread and its text, up to and with the `.`.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

impl FormatTime for CachedSystemTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let since = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) if d.as_secs() <= LAST_SECOND => d,
            _ => return tracing_subscriber::fmt::time::SystemTime.format_time(w),
        };
        let secs = since.as_secs();
        SECOND.with(|cell| {
            let Ok(mut second) = cell.try_borrow_mut() else {
                return tracing_subscriber::fmt::time::SystemTime.format_time(w);
            };
            if second.0 != secs {
                second.1.clear();
                write_second(&mut second.1, secs);
                second.0 = secs;
            }
            if second.1.is_empty() {
                return tracing_subscriber::fmt::time::SystemTime.format_time(w);
            }
            w.write_str(&second.1)?;
            let mut micros = since.subsec_micros();
            let mut digits = *b"000000Z";
            for d in digits[..6].iter_mut().rev() {
                *d = b'0' + (micros % 10) as u8;
                micros /= 10;
            }
            w.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
        })
    }
}

/// Appends `YYYY-MM-DDTHH:MM:SS.` for `secs` seconds after 1970 (at most [`LAST_SECOND`];
/// nothing for a time the `time` crate cannot represent).
fn write_second(out: &mut String, secs: u64) {
    let Some(t) = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
    else {
        return;
    };
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(secs: u64) -> String {
        let mut s = String::new();
        write_second(&mut s, secs);
        s
    }

    #[test]
    fn dates_and_times_of_day() {
        assert_eq!(second(0), "1970-01-01T00:00:00.");
        assert_eq!(second(951_782_400), "2000-02-29T00:00:00.");
        assert_eq!(second(951_868_799), "2000-02-29T23:59:59.");
        assert_eq!(second(1_765_000_000), "2025-12-06T05:46:40.");
        assert_eq!(second(1_796_601_599), "2026-12-06T23:59:59.");
        assert_eq!(second(4_107_542_400), "2100-03-01T00:00:00.");
        assert_eq!(second(LAST_SECOND), "9999-12-31T23:59:59.");
    }

    fn stamp(timer: impl FormatTime) -> String {
        let mut s = String::new();
        timer.format_time(&mut Writer::new(&mut s)).unwrap();
        s
    }

    /// The stamp is the one tracing-subscriber writes (read in the same second).
    #[test]
    fn same_text_as_tracing_subscriber() {
        for _ in 0..1000 {
            let ours = stamp(CachedSystemTime);
            let theirs = stamp(tracing_subscriber::fmt::time::SystemTime);
            if ours[..20] != theirs[..20] {
                continue; // a second passed between the two
            }
            assert_eq!(ours.len(), theirs.len(), "{ours} / {theirs}");
            assert_eq!(ours.len(), "2026-12-06T16:07:05.123456Z".len());
            assert!(ours.ends_with('Z') && ours[20..26].bytes().all(|b| b.is_ascii_digit()));
            assert!(ours[20..26] <= theirs[20..26], "{ours} after {theirs}");
            return;
        }
        panic!("never read both stamps within one second");
    }
}
