//! Text for people: times, ages, durations, licence statuses and HRESULTs as the pages show them.

use time::macros::format_description;
use time::OffsetDateTime;

/// `2026-05-01 12:34:56 UTC` (pages turn it into local time with JavaScript).
pub fn datetime(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// RFC 3339 in UTC, for `<time datetime>` and JSON: `2026-05-01T12:34:56Z`.
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// `2026-05-01`: the UTC date.
pub fn date(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(format_description!("[year]-[month]-[day]")).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// `05-01`: month and day, for chart labels.
pub fn month_day(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(format_description!("[month]-[day]")).ok())
        .unwrap_or_default()
}

/// `12s ago`, `3m ago`, `5h ago`, `2d ago`.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86_399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// `3d 4h 5m`, `4h 5m`, `5m 6s`, `6s`.
pub fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {sec}s")
    } else {
        format!("{sec}s")
    }
}

/// The name of a client licence status (as `slmgr /dlv` words it).
pub fn license_status(status: u32) -> &'static str {
    match status {
        0 => "Unlicensed",
        1 => "Licensed",
        2 => "Initial grace period",
        3 => "Out-of-tolerance grace period",
        4 => "Non-genuine grace period",
        5 => "Notification",
        6 => "Extended grace period",
        _ => "Unknown",
    }
}

/// `0xC004F042`.
pub fn hresult(code: u32) -> String {
    format!("0x{code:08X}")
}

/// The display name of a product family key (see [`crate::policy::family_of`]).
pub fn family_name(family: &str) -> &'static str {
    match family {
        "windows-client" => "Windows client",
        "windows-server" => "Windows Server",
        "office" => "Office",
        _ => "Other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        assert_eq!(datetime(1_800_000_000), "2027-01-15 08:00:00 UTC");
        assert_eq!(rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(date(1_800_000_000), "2027-01-15");
        assert_eq!(month_day(1_800_000_000), "01-15");
        assert_eq!(age(30), "30s ago");
        assert_eq!(age(7200), "2h ago");
        assert_eq!(duration(90_061), "1d 1h 1m");
        assert_eq!(duration(61), "1m 1s");
        assert_eq!(license_status(2), "Initial grace period");
        assert_eq!(hresult(0xC004_F042), "0xC004F042");
        assert_eq!(family_name("office"), "Office");
    }
}
