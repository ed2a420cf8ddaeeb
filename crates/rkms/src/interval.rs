//! Parsing of interval options: minutes by default, or a number with a unit (`90s`, `2h`, `7d`).

/// Parses an interval into whole minutes: bare numbers are minutes; units s, m, h, d, w.
/// Seconds are rounded down to minutes (as vlmcsd does); the result must be 1..=u32::MAX.
pub fn parse_minutes(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!("'{text}' is not an interval: expected a number of minutes or a number with s, m, h, d or w"));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{text}': number too large"))?;
    let seconds_per = match unit.to_ascii_lowercase().as_str() {
        "" | "m" | "min" => 60,
        "s" => 1,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        other => {
            return Err(format!(
                "'{text}': unknown unit '{other}' (use s, m, h, d or w)"
            ))
        }
    };
    let minutes = n
        .checked_mul(seconds_per)
        .ok_or_else(|| format!("'{text}': interval too large"))?
        / 60;
    if minutes == 0 {
        return Err(format!("'{text}': interval must be at least one minute"));
    }
    u32::try_from(minutes).map_err(|_| {
        format!(
            "'{text}': interval too large (at most {} minutes)",
            u32::MAX
        )
    })
}

/// `n` and the noun, plural unless `n` is 1: "1 client", "2 clients".
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A number of minutes for people: "1 day", "2 hours 30 minutes", "3 weeks".
pub fn describe_minutes(minutes: u32) -> String {
    let mut parts = Vec::new();
    let mut rest = minutes;
    for (unit, size) in [
        ("week", 10_080),
        ("day", 1_440),
        ("hour", 60),
        ("minute", 1),
    ] {
        if rest >= size {
            parts.push(count(rest / size, unit));
            rest %= size;
        }
    }
    if parts.is_empty() {
        "0 minutes".into()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::{count, describe_minutes, parse_minutes};

    #[test]
    fn minutes_described() {
        assert_eq!(describe_minutes(1440), "1 day");
        assert_eq!(describe_minutes(43_200), "4 weeks 2 days");
        assert_eq!(describe_minutes(150), "2 hours 30 minutes");
        assert_eq!(describe_minutes(1), "1 minute");
        assert_eq!(describe_minutes(0), "0 minutes");
        assert_eq!(count(1u32, "client"), "1 client");
        assert_eq!(count(0u32, "client"), "0 clients");
    }

    #[test]
    fn units() {
        assert_eq!(parse_minutes("120"), Ok(120));
        assert_eq!(parse_minutes("2h"), Ok(120));
        assert_eq!(parse_minutes("7d"), Ok(10080));
        assert_eq!(parse_minutes("1w"), Ok(10080));
        assert_eq!(parse_minutes("90s"), Ok(1));
        assert_eq!(parse_minutes("45m"), Ok(45));
    }

    #[test]
    fn errors_are_explained() {
        assert!(parse_minutes("").unwrap_err().contains("not an interval"));
        assert!(parse_minutes("h").unwrap_err().contains("not an interval"));
        assert!(parse_minutes("5y").unwrap_err().contains("unknown unit"));
        assert!(parse_minutes("30s")
            .unwrap_err()
            .contains("at least one minute"));
        assert!(parse_minutes("99999999999999999999").is_err());
        assert!(parse_minutes("9999999999w")
            .unwrap_err()
            .contains("too large"));
    }
}
