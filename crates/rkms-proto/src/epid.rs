//! ePIDs (PROTOCOL.md §8): the [`Epid`] value with its text form, strict parsing, random
//! generation by vlmcsd's algorithm (§8.4), and the UTC calendar arithmetic it needs.
//!
//! Everything here is pure: the caller passes the current time and a random number generator.
//!
//! ```
//! use rkms_proto::epid::Epid;
//!
//! let text = "03612-04919-018-914043-03-1033-20348.0000-1162026";
//! let epid = Epid::parse(text).unwrap();
//! assert_eq!(epid.key_id, 18_914_043);
//! assert_eq!(epid.activation_date(), Some((2026, 4, 26)));
//! assert_eq!(epid.to_string(), text);
//! ```

use std::fmt;
use std::str::FromStr;

use rand_core::RngCore;

/// The licence channel of a volume licence key (ePID field 5); every generated ePID uses it.
pub const CHANNEL_VOLUME: u8 = 3;

/// vlmcsd's "build time" floor for the newest generated activation date (PROTOCOL.md §8.4):
/// 2018-10-07 14:33:31 UTC.
pub const VLMCSD_BUILD_TIME: i64 = 1_538_922_811;

/// `u32::MAX` as a `u64`, the bound of most numeric fields.
const U32_MAX: u64 = u32::MAX as u64;

/// Seconds in a day.
const DAY: i64 = 86_400;

/// An ePID ("extended product ID") split into its fields (PROTOCOL.md §8.1).
///
/// The text form (via [`fmt::Display`]) is
/// `format!("{:05}-{:05}-{:03}-{:06}-{:02}-{}-{}.0000-{:03}{:04}", platform_id, group_id,
/// key_id / 1_000_000, key_id % 1_000_000, channel, lcid, build, day_of_year, year)`, e.g.
/// `03612-04919-018-914043-03-1033-20348.0000-1162026`.
///
/// [`Epid::parse`] accepts exactly the strings this formatting produces for a valid date, so
/// `Epid::parse(&e.to_string()) == Ok(e)` whenever `day_of_year` is a day of `year`
/// (1..=365, or 1..=366 in leap years), and `Epid::parse(s).unwrap().to_string() == s` for
/// every string `parse` accepts. An `Epid` with an impossible date can be built (the fields
/// are public) and displayed, but its text does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Epid {
    /// Platform ID of the host OS (field 1), e.g. 3612 for builds from 10240 on.
    pub platform_id: u32,
    /// Group ID of the CSVLK (field 2).
    pub group_id: u32,
    /// Product key ID inside the CSVLK's range (fields 3 and 4: `key_id / 1_000_000` and
    /// `key_id % 1_000_000`).
    pub key_id: u32,
    /// Licence channel (field 5): 3 = volume ([`CHANNEL_VOLUME`]), always 3 when generated.
    pub channel: u8,
    /// Locale ID of the host (field 6), e.g. 1033.
    pub lcid: u32,
    /// Host OS build number (field 7, written with a `.0000` suffix).
    pub build: u32,
    /// Day of the year the host activated its CSVLK, 1-based (field 8, first three digits).
    pub day_of_year: u16,
    /// Year the host activated its CSVLK (field 8, last four digits).
    pub year: u16,
}

/// One field of the ePID text, numbered as in PROTOCOL.md §8.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EpidField {
    /// Field 1, platform ID (`PPPPP`).
    Platform,
    /// Field 2, group ID (`GGGGG`).
    Group,
    /// Field 3, product key ID ÷ 1 000 000 (`KKK`).
    KeyIdHigh,
    /// Field 4, product key ID mod 1 000 000 (`KKKKKK`).
    KeyIdLow,
    /// Field 5, licence channel (`03`).
    Channel,
    /// Field 6, LCID (`LLLL`).
    Lcid,
    /// Field 7, host build with the literal `.0000` suffix (`BBBBB.0000`).
    Build,
    /// Field 8, activation date: day of year then year (`DDDYYYY`).
    Date,
}

impl EpidField {
    /// The field's number in PROTOCOL.md §8.1 (1..=8).
    pub fn number(self) -> u8 {
        match self {
            EpidField::Platform => 1,
            EpidField::Group => 2,
            EpidField::KeyIdHigh => 3,
            EpidField::KeyIdLow => 4,
            EpidField::Channel => 5,
            EpidField::Lcid => 6,
            EpidField::Build => 7,
            EpidField::Date => 8,
        }
    }

    /// A short human-readable name, e.g. `key ID ÷ 1000000 (KKK)`.
    pub fn name(self) -> &'static str {
        match self {
            EpidField::Platform => "platform ID (PPPPP)",
            EpidField::Group => "group ID (GGGGG)",
            EpidField::KeyIdHigh => "key ID ÷ 1000000 (KKK)",
            EpidField::KeyIdLow => "key ID mod 1000000 (KKKKKK)",
            EpidField::Channel => "licence channel (03)",
            EpidField::Lcid => "LCID (LLLL)",
            EpidField::Build => "host build (BBBBB.0000)",
            EpidField::Date => "activation date (DDDYYYY)",
        }
    }
}

impl fmt::Display for EpidField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field {}, {}", self.number(), self.name())
    }
}

/// Why a string is not an ePID of the form `PPPPP-GGGGG-KKK-KKKKKK-CC-LLLL-BBBBB.0000-DDDYYYY`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpidParseError {
    /// The text does not have eight `-`-separated fields.
    #[error(
        "an ePID has 8 fields separated by '-' (PPPPP-GGGGG-KKK-KKKKKK-03-LLLL-BBBBB.0000-DDDYYYY), found {found}"
    )]
    FieldCount {
        /// How many fields the text has.
        found: usize,
    },
    /// One field is malformed or out of range.
    #[error("ePID {field} is invalid: {reason} (found {})", quote(text))]
    Field {
        /// The offending field.
        field: EpidField,
        /// The field's text as found (between its `-` separators).
        text: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl EpidParseError {
    /// The offending field, if the error is about one.
    pub fn field(&self) -> Option<EpidField> {
        match self {
            EpidParseError::FieldCount { .. } => None,
            EpidParseError::Field { field, .. } => Some(*field),
        }
    }
}

/// Quotes a field's text for an error message, shortened if long.
fn quote(text: &str) -> String {
    const MAX: usize = 24;
    if text.chars().count() > MAX {
        let head: String = text.chars().take(MAX).collect();
        format!("{head:?}…")
    } else {
        format!("{text:?}")
    }
}

impl fmt::Display for Epid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:05}-{:05}-{:03}-{:06}-{:02}-{}-{}.0000-{:03}{:04}",
            self.platform_id,
            self.group_id,
            self.key_id / 1_000_000,
            self.key_id % 1_000_000,
            self.channel,
            self.lcid,
            self.build,
            self.day_of_year,
            self.year
        )
    }
}

impl FromStr for Epid {
    type Err = EpidParseError;

    fn from_str(s: &str) -> Result<Epid, EpidParseError> {
        Epid::parse(s)
    }
}

impl Epid {
    /// Parses the text form (see [`Epid`]), strictly.
    ///
    /// The text must be exactly eight fields separated by `-`, with no surrounding spaces:
    ///
    /// 1. platform ID, 2. group ID: decimal, zero-padded to 5 digits (more digits only without
    ///    a leading zero), at most `u32::MAX`;
    /// 3. key ID ÷ 1 000 000: zero-padded to 3 digits; 4. key ID mod 1 000 000: exactly 6
    ///    digits; together at most `u32::MAX`;
    /// 5. channel: zero-padded to 2 digits, at most 255 (any channel is accepted, not only 03);
    /// 6. LCID: decimal without leading zeros, at most `u32::MAX`;
    /// 7. build: decimal without leading zeros, at most `u32::MAX`, followed by `.0000`;
    /// 8. date: 3-digit day of year followed by the year zero-padded to 4 digits (at most
    ///    65535); the day must exist in that year (001..=365, or 366 in leap years).
    ///
    /// Never panics; the error names the first offending field (in text order).
    pub fn parse(s: &str) -> Result<Epid, EpidParseError> {
        let parts: Vec<&str> = s.split('-').collect();
        let [platform, group, key_hi_text, key_lo, channel, lcid, build, date] = parts[..] else {
            return Err(EpidParseError::FieldCount { found: parts.len() });
        };

        let platform_id = field(EpidField::Platform, platform, |t| padded(t, 5, U32_MAX))?;
        let group_id = field(EpidField::Group, group, |t| padded(t, 5, U32_MAX))?;
        let key_hi = field(EpidField::KeyIdHigh, key_hi_text, |t| {
            padded(t, 3, U32_MAX / 1_000_000)
        })?;
        let key_lo = field(EpidField::KeyIdLow, key_lo, |t| exact(t, 6))?;
        let key_id = u32::try_from(key_hi * 1_000_000 + key_lo).map_err(|_| {
            error(
                EpidField::KeyIdHigh,
                key_hi_text,
                format!("the key ID {key_hi:03}{key_lo:06} exceeds {}", u32::MAX),
            )
        })?;
        let channel = field(EpidField::Channel, channel, |t| {
            padded(t, 2, u8::MAX.into())
        })?;
        let lcid = field(EpidField::Lcid, lcid, |t| plain(t, U32_MAX))?;
        let build = field(EpidField::Build, build, |t| match t.strip_suffix(".0000") {
            Some(b) => plain(b, U32_MAX),
            None => Err("must be the build number followed by \".0000\"".to_owned()),
        })?;
        let (day_of_year, year) = field(EpidField::Date, date, parse_date)?;

        // The range checks above make these conversions lossless.
        Ok(Epid {
            platform_id: platform_id as u32,
            group_id: group_id as u32,
            key_id,
            channel: channel as u8,
            lcid: lcid as u32,
            build: build as u32,
            day_of_year,
            year,
        })
    }

    /// The activation date as `(year, month, day)`, or `None` if `day_of_year` is not a day of
    /// `year`.
    pub fn activation_date(&self) -> Option<(i32, u32, u32)> {
        let (month, day) = ordinal_to_month_day(self.year.into(), self.day_of_year)?;
        Some((self.year.into(), month, day))
    }
}

/// Runs `parse` on a field's text, wrapping its complaint in an [`EpidParseError::Field`].
fn field<T>(
    which: EpidField,
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, EpidParseError> {
    parse(text).map_err(|reason| error(which, text, reason))
}

fn error(field: EpidField, text: &str, reason: String) -> EpidParseError {
    EpidParseError::Field {
        field,
        text: text.to_owned(),
        reason,
    }
}

/// Parses a non-empty run of ASCII digits of at most 19 digits (fits `u64`).
fn digits(t: &str) -> Result<u64, String> {
    if t.is_empty() {
        return Err("is empty".to_owned());
    }
    if !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must contain only the digits 0-9".to_owned());
    }
    if t.len() > 19 {
        return Err("is too large".to_owned());
    }
    Ok(t.bytes().fold(0, |n, b| n * 10 + u64::from(b - b'0')))
}

fn at_most(n: u64, max: u64) -> Result<u64, String> {
    if n > max {
        Err(format!("is larger than {max}"))
    } else {
        Ok(n)
    }
}

/// A number zero-padded to `width` digits: exactly `width` digits, or more without a leading
/// zero (what `{:0width$}` prints), at most `max`.
fn padded(t: &str, width: usize, max: u64) -> Result<u64, String> {
    let n = digits(t)?;
    if t.len() < width {
        return Err(format!("must have {width} digits (zero-padded)"));
    }
    if t.len() > width && t.starts_with('0') {
        return Err(format!("must have {width} digits (zero-padded)"));
    }
    at_most(n, max)
}

/// A number of exactly `width` digits.
fn exact(t: &str, width: usize) -> Result<u64, String> {
    let n = digits(t)?;
    if t.len() != width {
        return Err(format!("must have exactly {width} digits"));
    }
    Ok(n)
}

/// A number without padding (what `{}` prints): no leading zero unless it is `0`.
fn plain(t: &str, max: u64) -> Result<u64, String> {
    let n = digits(t)?;
    if t.len() > 1 && t.starts_with('0') {
        return Err("must not have leading zeros".to_owned());
    }
    at_most(n, max)
}

/// `DDDYYYY`: a 3-digit day of year, then a year zero-padded to 4 digits.
fn parse_date(t: &str) -> Result<(u16, u16), String> {
    digits(t)?;
    if t.len() < 7 {
        return Err("must be a 3-digit day of year followed by a 4-digit year".to_owned());
    }
    // All ASCII digits, so byte 3 is a char boundary.
    let (day, year) = t.split_at(3);
    let day = day.bytes().fold(0u16, |n, b| n * 10 + u16::from(b - b'0'));
    let year = padded(year, 4, u16::MAX.into()).map_err(|r| format!("the year {r}"))? as u16;
    let days = days_in_year(year.into());
    if day == 0 || day > days {
        return Err(format!(
            "day {day:03} is not a day of {year} (001..={days})"
        ));
    }
    Ok((day, year))
}

/// Inputs of [`generate`]: one ePID profile (PROTOCOL.md §8.3), the chosen host and the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpidParams {
    /// Platform ID of the host build (`platform_id(build)`, §8.2).
    pub platform_id: u32,
    /// Group ID of the profile's CSVLK.
    pub group_id: u32,
    /// Lowest key ID of the CSVLK.
    pub min_key_id: u32,
    /// Highest key ID of the CSVLK; like vlmcsd, generation treats it as exclusive.
    pub max_key_id: u32,
    /// LCID of the host.
    pub lcid: u32,
    /// Host build number.
    pub build: u32,
    /// Earliest activation time: 00:00 UTC of the later of the profile's release date and
    /// the build's release date, in Unix seconds.
    pub min_date_unix: i64,
    /// The current time in Unix seconds.
    pub now_unix: i64,
}

/// Generates a random ePID exactly as PROTOCOL.md §8.4 (vlmcsd's algorithm).
///
/// Draws exactly two `u32`s from `rng`, first `r1` then `r2`, whatever the parameters:
///
/// * `key_id = min_key_id + r1 % (max_key_id - min_key_id)` (max exclusive), or `min_key_id`
///   if `max_key_id <= min_key_id`;
/// * `max_t = max(now_unix, VLMCSD_BUILD_TIME)`, `t = min_date_unix + r2 % (max_t -
///   min_date_unix)` (modulo in `u64`), or `min_date_unix` if `max_t <= min_date_unix`;
/// * the date is the UTC calendar date of `t` (clamped to years 1..=9999 so it always has
///   four digits; real parameters never come near), the day of year 1-based;
/// * channel 3, the other fields from `params`.
///
/// Use a cryptographically secure `rng` for real hosts.
pub fn generate(params: &EpidParams, rng: &mut dyn RngCore) -> Epid {
    let r1 = rng.next_u32();
    let r2 = rng.next_u32();

    let (min_k, max_k) = (params.min_key_id, params.max_key_id);
    let key_id = if max_k > min_k {
        min_k + r1 % (max_k - min_k)
    } else {
        min_k
    };

    let min_t = params.min_date_unix;
    let max_t = params.now_unix.max(VLMCSD_BUILD_TIME);
    let t = if max_t > min_t {
        // `off < span` and `off < 2^32`, so `min_t + off <= max_t` cannot overflow.
        let off = u64::from(r2) % max_t.abs_diff(min_t);
        min_t + off as i64
    } else {
        min_t
    };
    let t = t.clamp(FIRST_YEAR_1_UNIX, LAST_YEAR_9999_UNIX);
    let (year, day_of_year) = unix_to_year_ordinal(t);

    Epid {
        platform_id: params.platform_id,
        group_id: params.group_id,
        key_id,
        channel: CHANNEL_VOLUME,
        lcid: params.lcid,
        build: params.build,
        day_of_year,
        // The clamp keeps the year in 1..=9999.
        year: year as u16,
    }
}

/// 0001-01-01 00:00:00 UTC in Unix seconds.
const FIRST_YEAR_1_UNIX: i64 = -62_135_596_800;
/// 9999-12-31 23:59:59 UTC in Unix seconds.
const LAST_YEAR_9999_UNIX: i64 = 253_402_300_799;

/// Whether `year` is a leap year of the proleptic Gregorian calendar.
pub fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `year`: 365 or 366.
pub fn days_in_year(year: i64) -> u16 {
    if is_leap_year(year) {
        366
    } else {
        365
    }
}

/// Days before the first of each month in a common year.
const DAYS_BEFORE_MONTH: [u16; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];

/// Day of the year (1-based) of a date; `None` if `month`/`day` do not exist in `year`.
pub fn ordinal(year: i64, month: u32, day: u32) -> Option<u16> {
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let leap = u16::from(month > 2 && is_leap_year(year));
    Some(DAYS_BEFORE_MONTH[month as usize - 1] + leap + day as u16)
}

/// `(month, day)` of the `ordinal`-th day (1-based) of `year`; `None` if the year has no
/// such day.
pub fn ordinal_to_month_day(year: i64, ordinal: u16) -> Option<(u32, u32)> {
    if ordinal == 0 || ordinal > days_in_year(year) {
        return None;
    }
    let mut left = u32::from(ordinal);
    for month in 1..=12 {
        let len = days_in_month(year, month);
        if left <= len {
            return Some((month, left));
        }
        left -= len;
    }
    None
}

/// Days in `month` (1..=12) of `year`; 0 for other months.
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to the given date of the proleptic Gregorian calendar (negative before
/// 1970). `month` must be 1..=12 and `day` 1..=31 for a meaningful result (other values give
/// an unspecified number, never a panic).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    // Count years from March so that the leap day is the last day of a year.
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400); // 0..=399
    let m = i64::from(month);
    let month_from_march = if m > 2 { m - 3 } else { m + 9 }; // 0..=11
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1; // 0..=365
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719_468 = days from 0000-03-01 to 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date `(year, month, day)` that is `days` after 1970-01-01; the
/// inverse of [`days_from_civil`].
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01; an era is 400 years = 146 097 days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // 0..=146_096
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153; // 0..=11
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

/// Unix seconds of 00:00:00 UTC on the given date (see [`days_from_civil`] for the ranges).
pub fn ymd_to_unix(year: i32, month: u32, day: u32) -> i64 {
    days_from_civil(year, month, day) * DAY
}

/// The UTC calendar date `(year, month, day)` of the Unix time `t`.
///
/// Exact for every `t` whose year fits an `i32` (about ±6.7 · 10^16 s); beyond that the year
/// saturates at `i32::MIN`/`i32::MAX`.
pub fn unix_to_ymd(t: i64) -> (i32, u32, u32) {
    let (year, month, day) = civil_from_days(t.div_euclid(DAY));
    let year = i32::try_from(year).unwrap_or(if year < 0 { i32::MIN } else { i32::MAX });
    (year, month, day)
}

/// The UTC `(year, day of year)` of the Unix time `t`, the day 1-based (1..=366); the year
/// saturates as in [`unix_to_ymd`].
pub fn unix_to_year_ordinal(t: i64) -> (i32, u16) {
    let (year, month, day) = civil_from_days(t.div_euclid(DAY));
    let ordinal = ordinal(year, month, day).unwrap_or(1);
    let year = i32::try_from(year).unwrap_or(if year < 0 { i32::MIN } else { i32::MAX });
    (year, ordinal)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every built-in ePID of products.json (`default_epid`, `vlmcsd_default_epid`,
    /// `pykms_default_epid`).
    const BUILTIN: &[&str] = &[
        "03612-04919-018-914043-03-1033-20348.0000-1162026",
        "03612-00096-199-326347-03-1033-20348.0000-3082022",
        "03612-00206-241-516956-03-1033-20348.0000-3072022",
        "03612-00206-457-171699-03-1033-20348.0000-3572022",
        "03612-03858-061-836175-03-1033-20348.0000-3172023",
        "03612-00206-674-359196-03-1033-20348.0000-2382022",
        "03612-00206-574-305361-03-1033-20348.0000-2932026",
        "03612-00206-606-131950-03-1033-20348.0000-2882026",
        "03612-00206-556-123727-03-1033-17763.0000-2972018",
        "03612-00096-199-799188-03-1033-17763.0000-2972018",
        "03612-00206-240-719639-03-1033-17763.0000-2972018",
        "03612-00206-438-004532-03-1033-17763.0000-2972018",
        "03612-03858-053-089516-03-1033-17763.0000-2972018",
        "03612-00206-684-137669-03-1033-17763.0000-2972018",
        "06401-00206-566-174993-03-1033-9600.0000-2802018",
        "06401-00096-208-497764-03-1033-9600.0000-2802018",
        "06401-00206-243-662026-03-1033-9600.0000-2802018",
        "06401-00206-456-865118-03-1033-9600.0000-2802018",
        "06401-03858-320-801028-03-1033-9600.0000-2802018",
        "06401-00206-678-008369-03-1033-9600.0000-2802018",
        "05426-00206-586-025264-03-1033-9200.0000-2602021",
    ];

    #[test]
    fn builtin_epids_round_trip() {
        for &s in BUILTIN {
            let e = Epid::parse(s).unwrap_or_else(|err| panic!("{s}: {err}"));
            assert_eq!(e.to_string(), s);
            assert_eq!(s.parse::<Epid>(), Ok(e));
            assert_eq!(e.channel, CHANNEL_VOLUME);
        }
    }

    #[test]
    fn worked_decomposition_section_8_7() {
        let e = Epid::parse("03612-04919-018-914043-03-1033-20348.0000-1162026").unwrap();
        assert_eq!(
            e,
            Epid {
                platform_id: 3612,
                group_id: 4919,
                key_id: 18_914_043,
                channel: 3,
                lcid: 1033,
                build: 20348,
                day_of_year: 116,
                year: 2026,
            }
        );
        assert_eq!(e.activation_date(), Some((2026, 4, 26)));
        // 49 characters + NUL in UTF-16LE = PIDSize 100.
        assert_eq!((e.to_string().encode_utf16().count() + 1) * 2, 100);

        let v = Epid::parse("03612-00206-556-123727-03-1033-17763.0000-2972018").unwrap();
        assert_eq!((v.group_id, v.key_id, v.build), (206, 556_123_727, 17763));
        assert_eq!(v.activation_date(), Some((2018, 10, 24)));

        let p = Epid::parse("05426-00206-586-025264-03-1033-9200.0000-2602021").unwrap();
        assert_eq!(
            (p.platform_id, p.key_id, p.build),
            (5426, 586_025_264, 9200)
        );
        assert_eq!(p.activation_date(), Some((2021, 9, 17)));

        let w = Epid::parse("06401-00206-566-174993-03-1033-9600.0000-2802018").unwrap();
        assert_eq!(
            (w.platform_id, w.key_id, w.build),
            (6401, 566_174_993, 9600)
        );
        assert_eq!((w.day_of_year, w.year), (280, 2018));
    }

    /// Parses `s` and returns the field the error names.
    fn bad_field(s: &str) -> EpidField {
        match Epid::parse(s) {
            Ok(e) => panic!("{s:?} was accepted as {e:?}"),
            Err(err) => {
                let f = err.field().unwrap_or_else(|| panic!("{s:?}: {err}"));
                let msg = err.to_string();
                assert!(
                    msg.contains(&format!("field {}", f.number())),
                    "{msg} lacks the field number"
                );
                f
            }
        }
    }

    #[test]
    fn errors_name_the_field() {
        use EpidField::*;
        let cases: &[(&str, EpidField)] = &[
            ("3612-04919-018-914043-03-1033-20348.0000-1162026", Platform),
            (
                "0a612-04919-018-914043-03-1033-20348.0000-1162026",
                Platform,
            ),
            (
                "003612-04919-018-914043-03-1033-20348.0000-1162026",
                Platform,
            ),
            (
                " 03612-04919-018-914043-03-1033-20348.0000-1162026",
                Platform,
            ),
            ("03612--018-914043-03-1033-20348.0000-1162026", Group),
            ("03612-4919-018-914043-03-1033-20348.0000-1162026", Group),
            (
                "03612-04919-18-914043-03-1033-20348.0000-1162026",
                KeyIdHigh,
            ),
            (
                "03612-04919-0018-914043-03-1033-20348.0000-1162026",
                KeyIdHigh,
            ),
            (
                "03612-04919-4295-000000-03-1033-20348.0000-1162026",
                KeyIdHigh,
            ),
            (
                "03612-04919-4294-967296-03-1033-20348.0000-1162026",
                KeyIdHigh,
            ),
            ("03612-04919-018-91404-03-1033-20348.0000-1162026", KeyIdLow),
            (
                "03612-04919-018-9140430-03-1033-20348.0000-1162026",
                KeyIdLow,
            ),
            ("03612-04919-018-914043-3-1033-20348.0000-1162026", Channel),
            (
                "03612-04919-018-914043-256-1033-20348.0000-1162026",
                Channel,
            ),
            ("03612-04919-018-914043-03-01033-20348.0000-1162026", Lcid),
            ("03612-04919-018-914043-03--20348.0000-1162026", Lcid),
            ("03612-04919-018-914043-03-+1033-20348.0000-1162026", Lcid),
            (
                "03612-04919-018-914043-03-4294967296-20348.0000-1162026",
                Lcid,
            ),
            ("03612-04919-018-914043-03-1033-20348-1162026", Build),
            ("03612-04919-018-914043-03-1033-20348.000-1162026", Build),
            ("03612-04919-018-914043-03-1033-20348.0001-1162026", Build),
            ("03612-04919-018-914043-03-1033-020348.0000-1162026", Build),
            ("03612-04919-018-914043-03-1033-.0000-1162026", Build),
            ("03612-04919-018-914043-03-1033-20348.0000-116202", Date),
            ("03612-04919-018-914043-03-1033-20348.0000-0002026", Date),
            ("03612-04919-018-914043-03-1033-20348.0000-3662025", Date),
            ("03612-04919-018-914043-03-1033-20348.0000-3672024", Date),
            ("03612-04919-018-914043-03-1033-20348.0000-11602026", Date),
            ("03612-04919-018-914043-03-1033-20348.0000-11665536", Date),
            ("03612-04919-018-914043-03-1033-20348.0000-1162026 ", Date),
            ("03612-04919-018-914043-03-1033-20348.0000-116２026", Date),
        ];
        for &(s, want) in cases {
            assert_eq!(bad_field(s), want, "{s:?}");
        }
        let err = Epid::parse("03612-04919-018-914043-03-1033-20348.0000-3662025").unwrap_err();
        assert_eq!(
            err.to_string(),
            "ePID field 8, activation date (DDDYYYY) is invalid: day 366 is not a day of 2025 \
             (001..=365) (found \"3662025\")"
        );
    }

    #[test]
    fn wrong_field_count() {
        for (s, n) in [
            ("", 1),
            ("03612-04919-018-914043-03-1033-20348.0000", 7),
            ("03612-04919-018-914043-03-1033-20348.0000-1162026-", 9),
        ] {
            assert_eq!(
                Epid::parse(s),
                Err(EpidParseError::FieldCount { found: n }),
                "{s:?}"
            );
        }
    }

    #[test]
    fn leap_day_366_and_wide_fields_are_accepted() {
        for s in [
            "03612-04919-018-914043-03-1033-20348.0000-3662024",
            "03612-04919-018-914043-03-1033-20348.0000-3662000",
            "00000-00000-000-000000-00-0-0.0000-0010000",
            "123456-4294967295-4294-967295-255-4294967295-4294967295.0000-36565535",
            "03612-04919-018-914043-03-1033-20348.0000-06010000",
        ] {
            let e = Epid::parse(s).unwrap_or_else(|err| panic!("{s}: {err}"));
            assert_eq!(e.to_string(), s);
        }
        for s in [
            "03612-04919-018-914043-03-1033-20348.0000-3661900",
            "03612-04919-018-914043-03-1033-20348.0000-36665535",
        ] {
            assert_eq!(bad_field(s), EpidField::Date, "{s}");
        }
    }

    /// A tiny deterministic RNG (xorshift64*) for tests.
    struct XorShift(u64);

    impl RngCore for XorShift {
        fn next_u32(&mut self) -> u32 {
            (self.next_u64() >> 32) as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            rand_core::impls::fill_bytes_via_next(self, dest)
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    #[test]
    fn parse_never_panics_on_mangled_text() {
        let seeds = BUILTIN.iter().map(|s| s.to_string()).chain([
            "123456-4294967295-4294-967295-255-4294967295-4294967295.0000-36565535".into(),
        ]);
        let alphabet: Vec<char> = "0123456789-.. aé٣\u{0}9999".chars().collect();
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut accepted = 0;
        for seed in seeds {
            for _ in 0..5_000 {
                let mut chars: Vec<char> = seed.chars().collect();
                for _ in 0..=(rng.next_u32() % 4) {
                    let pos = rng.next_u32() as usize % (chars.len() + 1);
                    let c = alphabet[rng.next_u32() as usize % alphabet.len()];
                    match rng.next_u32() % 4 {
                        0 if pos < chars.len() => chars[pos] = c,
                        1 if pos < chars.len() => {
                            chars.remove(pos);
                        }
                        2 => chars.truncate(pos),
                        _ => chars.insert(pos, c),
                    }
                }
                let s: String = chars.into_iter().collect();
                if let Ok(e) = Epid::parse(&s) {
                    accepted += 1;
                    assert_eq!(e.to_string(), s, "accepted text must be canonical");
                }
            }
        }
        assert!(accepted > 0);
        // Prefixes and byte-level slices of valid text.
        for s in BUILTIN {
            for i in 0..s.len() {
                let _ = Epid::parse(&s[..i]);
                let _ = Epid::parse(&s[i..]);
            }
        }
        for s in [
            "-------",
            "--------",
            "9".repeat(200).as_str(),
            "é-é-é-é-é-é-é-é",
        ] {
            assert!(Epid::parse(s).is_err());
        }
    }

    #[test]
    fn random_fields_round_trip() {
        let mut rng = XorShift(42);
        for _ in 0..10_000 {
            let year = (rng.next_u32() % 65_536) as u16;
            let e = Epid {
                platform_id: rng.next_u32() >> (rng.next_u32() % 32),
                group_id: rng.next_u32() >> (rng.next_u32() % 32),
                key_id: rng.next_u32() >> (rng.next_u32() % 32),
                channel: rng.next_u32() as u8,
                lcid: rng.next_u32() >> (rng.next_u32() % 32),
                build: rng.next_u32() >> (rng.next_u32() % 32),
                day_of_year: (1 + rng.next_u32() % u32::from(days_in_year(year.into()))) as u16,
                year,
            };
            assert_eq!(Epid::parse(&e.to_string()), Ok(e), "{e}");
        }
    }

    #[test]
    fn calendar_known_dates() {
        assert_eq!(unix_to_ymd(0), (1970, 1, 1));
        assert_eq!(unix_to_ymd(-1), (1969, 12, 31));
        assert_eq!(unix_to_ymd(1_730_419_200), (2024, 11, 1));
        assert_eq!(ymd_to_unix(2024, 11, 1), 1_730_419_200);
        assert_eq!(unix_to_ymd(VLMCSD_BUILD_TIME), (2018, 10, 7));
        assert_eq!(unix_to_ymd(951_782_400), (2000, 2, 29));
        assert_eq!(unix_to_ymd(FIRST_YEAR_1_UNIX), (1, 1, 1));
        assert_eq!(unix_to_ymd(LAST_YEAR_9999_UNIX), (9999, 12, 31));
        assert_eq!(ymd_to_unix(1, 1, 1), FIRST_YEAR_1_UNIX);
        assert_eq!(ymd_to_unix(10000, 1, 1) - 1, LAST_YEAR_9999_UNIX);
        assert_eq!(ordinal(2026, 4, 26), Some(116));
        assert_eq!(ordinal(2024, 12, 31), Some(366));
        assert_eq!(ordinal(2025, 12, 31), Some(365));
        assert_eq!(ordinal(2025, 2, 29), None);
        assert_eq!(ordinal(2024, 2, 29), Some(60));
        assert_eq!(ordinal(2024, 13, 1), None);
        assert_eq!(ordinal_to_month_day(2026, 116), Some((4, 26)));
        assert_eq!(ordinal_to_month_day(2024, 366), Some((12, 31)));
        assert_eq!(ordinal_to_month_day(2025, 366), None);
        assert_eq!(ordinal_to_month_day(2025, 0), None);
        assert_eq!(
            unix_to_year_ordinal(ymd_to_unix(2026, 4, 26) + 86_399),
            (2026, 116)
        );
        assert_eq!(unix_to_year_ordinal(ymd_to_unix(2024, 12, 31)), (2024, 366));
        assert!(is_leap_year(2000) && !is_leap_year(1900) && is_leap_year(2024));
        // Extremes do not panic.
        for t in [i64::MIN, i64::MAX, i64::MIN + 1, i64::MAX - 1] {
            let _ = unix_to_ymd(t);
            let _ = unix_to_year_ordinal(t);
        }
        assert_eq!(unix_to_ymd(i64::MAX).0, i32::MAX);
        assert_eq!(unix_to_ymd(i64::MIN).0, i32::MIN);
        for (y, m, d) in [(i32::MIN, 1, 1), (i32::MAX, 12, 31), (0, 0, 0), (5, 99, 99)] {
            let _ = days_from_civil(y, m, d);
        }
    }

    #[test]
    fn calendar_agrees_day_by_day() {
        // Walk 1600-01-01 .. 2400-12-31 one day at a time against a naive counter.
        let mut days = days_from_civil(1600, 1, 1);
        for year in 1600..=2400i64 {
            for ord in 1..=days_in_year(year) {
                let (m, d) = ordinal_to_month_day(year, ord).unwrap();
                assert_eq!(civil_from_days(days), (year, m, d));
                assert_eq!(days_from_civil(year as i32, m, d), days);
                assert_eq!(ordinal(year, m, d), Some(ord));
                assert_eq!(
                    unix_to_year_ordinal(days * DAY + 43_200),
                    (year as i32, ord)
                );
                days += 1;
            }
        }
    }

    /// An RNG that returns scripted values.
    struct Script(Vec<u32>);

    impl RngCore for Script {
        fn next_u32(&mut self) -> u32 {
            self.0.remove(0)
        }
        fn next_u64(&mut self) -> u64 {
            unimplemented!("generate draws u32s only")
        }
        fn fill_bytes(&mut self, _: &mut [u8]) {
            unimplemented!("generate draws u32s only")
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), rand_core::Error> {
            unimplemented!("generate draws u32s only")
        }
    }

    /// The Windows profile (Server 2025 CSVLK) on build 20348.
    fn windows_params(now_unix: i64) -> EpidParams {
        EpidParams {
            platform_id: 3612,
            group_id: 4919,
            min_key_id: 0,
            max_key_id: 20_019_999,
            lcid: 1033,
            build: 20348,
            min_date_unix: ymd_to_unix(2024, 11, 1),
            now_unix,
        }
    }

    #[test]
    fn generate_with_scripted_rng() {
        let now = ymd_to_unix(2026, 11, 28) + 3_600;
        let min = ymd_to_unix(2024, 11, 1);
        let span = (now - min) as u64;
        // r2 chosen so that t = 2026-04-26 12:00 UTC.
        let target = ymd_to_unix(2026, 4, 26) + 43_200 - min;
        let r2 = target as u32;
        assert!((target as u64) < span);
        let mut rng = Script(vec![18_914_043, r2]);
        let e = generate(&windows_params(now), &mut rng);
        assert!(rng.0.is_empty());
        assert_eq!(
            e.to_string(),
            "03612-04919-018-914043-03-1033-20348.0000-1162026"
        );

        // Wrap-around: key ID modulo (max - min), date modulo the span.
        let mut rng = Script(vec![20_019_999 + 5, u32::MAX]);
        let e = generate(&windows_params(now), &mut rng);
        assert_eq!(e.key_id, 5);
        let t = min + (u64::from(u32::MAX) % span) as i64;
        assert_eq!((i32::from(e.year), e.day_of_year), unix_to_year_ordinal(t));

        // Empty key range and a clock before the floor whose window is still open.
        let mut p = windows_params(0);
        p.min_key_id = 7;
        p.max_key_id = 7;
        p.min_date_unix = ymd_to_unix(2018, 1, 1);
        let mut rng = Script(vec![123, 0]);
        let e = generate(&p, &mut rng);
        assert!(rng.0.is_empty(), "two draws even for an empty key range");
        assert_eq!(e.key_id, 7);
        assert_eq!((e.day_of_year, e.year), (1, 2018));
        // max_t = VLMCSD_BUILD_TIME because now is earlier.
        let mut rng = Script(vec![0, u32::MAX]);
        let e = generate(&p, &mut rng);
        let span = (VLMCSD_BUILD_TIME - p.min_date_unix) as u64;
        let t = p.min_date_unix + (u64::from(u32::MAX) % span) as i64;
        assert_eq!((i32::from(e.year), e.day_of_year), unix_to_year_ordinal(t));

        // Closed window (min date after max(now, floor)): the min date is used.
        let mut p = windows_params(ymd_to_unix(2024, 1, 1));
        p.min_date_unix = ymd_to_unix(2024, 11, 1);
        let e = generate(&p, &mut Script(vec![1, 999_999]));
        assert_eq!((e.day_of_year, e.year), (306, 2024));

        // Insane parameters do not panic and still give a four-digit year.
        let mut p = windows_params(i64::MAX);
        p.min_date_unix = i64::MIN;
        p.min_key_id = u32::MAX;
        p.max_key_id = 0;
        let e = generate(&p, &mut Script(vec![u32::MAX, u32::MAX]));
        assert_eq!((e.key_id, e.year), (u32::MAX, 1));
        let mut p = windows_params(i64::MAX);
        p.min_date_unix = i64::MAX;
        let e = generate(&p, &mut Script(vec![0, 0]));
        assert_eq!(e.year, 9999);
    }

    #[test]
    fn ten_thousand_generations_stay_in_range() {
        let mut rng = XorShift(0x0123_4567_89ab_cdef);
        let profiles = [
            // (group, min key, max key, min date)
            (4919, 0, 20_019_999, ymd_to_unix(2024, 11, 1)),
            (206, 591_000_000, 610_999_999, ymd_to_unix(2024, 9, 16)),
            (96, 199_000_000, 217_999_999, ymd_to_unix(2021, 8, 18)),
            (3858, 15_000_000, 999_999_999, ymd_to_unix(2017, 4, 5)),
        ];
        let nows = [
            ymd_to_unix(2026, 11, 28),
            ymd_to_unix(2030, 2, 28) + 12_345,
            0,
            VLMCSD_BUILD_TIME + 1,
        ];
        for i in 0..10_000 {
            let (group, min_k, max_k, min_date) = profiles[i % profiles.len()];
            let now = nows[(i / profiles.len()) % nows.len()];
            let p = EpidParams {
                platform_id: 3612,
                group_id: group,
                min_key_id: min_k,
                max_key_id: max_k,
                lcid: [1033, 2052, 20490][i % 3],
                build: [17763, 20348, 26100][i % 3],
                min_date_unix: min_date,
                now_unix: now,
            };
            let e = generate(&p, &mut rng);
            assert!((min_k..max_k).contains(&e.key_id), "{e}");
            assert_eq!(e.channel, 3);
            let (y, m, d) = e.activation_date().expect("valid date");
            let day = ymd_to_unix(y, m, d);
            // The activation day lies in [min date, max(now, floor)], or is the min date when
            // that window is empty.
            let max_t = now.max(VLMCSD_BUILD_TIME).max(min_date);
            assert!(day >= min_date && day <= max_t, "{e}");
            let text = e.to_string();
            assert_eq!(Epid::parse(&text), Ok(e), "{text}");
            assert!((48..=55).contains(&text.len()), "{text}");
        }
    }
}
