//! Parsing clamd's VERSION reply: engine version, signature database version and build date.
//!
//! clamd prints `"ClamAV %s/%u/%s"` (`print_ver()` in clamd/session.c): the engine, the version
//! of the loaded `daily` container, and that container's build time in `ctime()` form
//! (`Fri Nov  7 08:11:31 2026`, day space-padded). With only custom signature files there is no
//! `daily` container and the reply is just `ClamAV 1.4.6`. ctime prints the clamd host's local
//! time with no zone; relgate reads it as UTC (the zone of most servers), so on a clamd host in
//! another zone the age is off by that zone's offset. See docs/virus-scan.md.

use serde::{Deserialize, Serialize};
use time::{Date, Month, PrimitiveDateTime, Time, Weekday};

/// The parts of a VERSION reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClamdVersion {
    /// e.g. `1.4.6`.
    pub engine: String,
    pub db_version: Option<u64>,
    /// Database build time, Unix seconds (ctime read as UTC).
    pub db_date: Option<i64>,
}

/// Why a VERSION reply could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("reply does not start with \"ClamAV \": {0}")]
    NotClamav(String),
    #[error("database version {0:?} is not a number")]
    BadDbVersion(String),
    #[error("database date {0:?} is not a ctime() date")]
    BadDate(String),
}

/// Parse a VERSION reply (with or without its NUL terminator or a trailing newline).
pub fn parse_version(raw: &str) -> Result<ClamdVersion, VersionError> {
    let body = raw
        .strip_suffix('\0')
        .or_else(|| raw.strip_suffix('\n'))
        .unwrap_or(raw);
    let rest = body
        .strip_prefix("ClamAV ")
        .ok_or_else(|| VersionError::NotClamav(super::reply::shown(body)))?;
    let mut parts = rest.splitn(3, '/');
    let engine = parts.next().unwrap_or_default().to_string();
    if engine.is_empty() || !engine.chars().all(|c| c.is_ascii_graphic()) {
        return Err(VersionError::NotClamav(super::reply::shown(body)));
    }
    let db_version = match parts.next() {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| VersionError::BadDbVersion(v.to_string()))?,
        ),
    };
    let db_date = match parts.next() {
        None => None,
        Some(d) => Some(parse_ctime(d).ok_or_else(|| VersionError::BadDate(d.to_string()))?),
    };
    Ok(ClamdVersion {
        engine,
        db_version,
        db_date,
    })
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parse `Www Mmm dd hh:mm:ss yyyy` strictly (the text must be exactly what ctime would print,
/// weekday included) and read it as UTC. Returns Unix seconds.
pub fn parse_ctime(s: &str) -> Option<i64> {
    let f: Vec<&str> = s.split_whitespace().collect();
    let [_, mon, day, hms, year] = f.as_slice() else {
        return None;
    };
    let month_idx = MONTHS.iter().position(|m| m == mon)?;
    let month = Month::try_from(u8::try_from(month_idx + 1).ok()?).ok()?;
    let day: u8 = day.parse().ok()?;
    let year: i32 = year.parse().ok()?;
    let mut t = hms.split(':');
    let (h, m, sec): (u8, u8, u8) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    if t.next().is_some() {
        return None;
    }
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(h, m, sec).ok()?;
    let wd = DAYS[weekday_index(date.weekday())];
    // Re-render and compare, so that only the exact ctime layout is accepted.
    let canonical = format!("{wd} {mon} {day:>2} {h:02}:{m:02}:{sec:02} {year}");
    if canonical != s {
        return None;
    }
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp(),
    )
}

fn weekday_index(w: Weekday) -> usize {
    usize::from(w.number_days_from_monday())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_reply_has_db_version_and_date() {
        let v = parse_version("ClamAV 1.4.6/27777/Fri Nov 27 08:11:31 2026\0").unwrap();
        assert_eq!(v.engine, "1.4.6");
        assert_eq!(v.db_version, Some(27777));
        // 2026-11-27T08:11:31Z
        assert_eq!(v.db_date, Some(1_795_767_091));
    }

    #[test]
    fn bare_engine_has_no_db() {
        let v = parse_version("ClamAV 1.4.6\0").unwrap();
        assert_eq!(v.engine, "1.4.6");
        assert_eq!(v.db_version, None);
        assert_eq!(v.db_date, None);
    }

    #[test]
    fn single_digit_days_are_space_padded() {
        assert_eq!(parse_ctime("Sat Nov  7 08:11:31 2026"), Some(1_794_039_091));
        assert_eq!(parse_ctime("Sat Nov 7 08:11:31 2026"), None);
        assert_eq!(parse_ctime("Sat Nov 07 08:11:31 2026"), None);
    }

    #[test]
    fn wrong_weekday_or_garbage_is_refused() {
        assert_eq!(parse_ctime("Mon Nov 27 08:11:31 2026"), None);
        assert_eq!(parse_ctime("Fri Nov 27 08:11:61 2026"), None);
        assert!(parse_version("ClamAV 1.4.6/x/Fri Nov 27 08:11:31 2026").is_err());
        assert!(parse_version("ClamAV 1.4.6/27777/yesterday").is_err());
        assert!(parse_version("PONG\0").is_err());
        assert!(parse_version("").is_err());
    }
}
