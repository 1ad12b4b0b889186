//! UTC calendar conversion for timestamps in the event log and file names, without a date crate.
//!
//! Uses the days-from-civil algorithm (H. Hinnant), valid for the proleptic Gregorian calendar.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECONDS_PER_DAY: i64 = 86_400;

/// The current time as RFC 3339 UTC with milliseconds, e.g. `2026-11-21T05:34:28.123Z`.
pub fn utc_now_rfc3339() -> String {
    format_rfc3339(SystemTime::now())
}

/// `time` as RFC 3339 UTC with milliseconds, e.g. `2026-11-21T05:34:28.123Z`.
pub fn format_rfc3339(time: SystemTime) -> String {
    let (year, month, day, hour, minute, second, millis) = utc_date_parts(time);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

/// `time` as RFC 3339 UTC to the second, e.g. `2024-05-01T12:00:00Z`: the `timestamp` of the
/// API's Kazoo envelopes.
pub fn format_rfc3339_seconds(time: SystemTime) -> String {
    let (year, month, day, hour, minute, second, _) = utc_date_parts(time);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// Splits `time` into UTC (year, month 1-12, day 1-31, hour, minute, second, millisecond).
/// Times before 1970 are handled too.
pub fn utc_date_parts(time: SystemTime) -> (i32, u32, u32, u32, u32, u32, u32) {
    let millis_since_epoch = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => duration_millis(after),
        Err(before) => duration_millis(before.duration()).saturating_neg(),
    };
    let total_seconds = millis_since_epoch.div_euclid(1000);
    let millis = millis_since_epoch.rem_euclid(1000);
    let days = total_seconds.div_euclid(SECONDS_PER_DAY);
    let second_of_day = total_seconds.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    // Every remainder below is bounded (< 86400, < 1000), so the conversions cannot fail.
    let narrow = |value: i64| u32::try_from(value).unwrap_or(0);
    (
        i32::try_from(year).unwrap_or(if year < 0 { i32::MIN } else { i32::MAX }),
        month,
        day,
        narrow(second_of_day / 3600),
        narrow(second_of_day % 3600 / 60),
        narrow(second_of_day % 60),
        narrow(millis),
    )
}

fn duration_millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Converts days since 1970-01-01 into (year, month, day) of the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days.saturating_add(719_468);
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let narrow = |value: i64| u32::try_from(value).unwrap_or(0);
    (year, narrow(month), narrow(day))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64, millis: u64) -> SystemTime {
        let whole = Duration::from_secs(seconds.unsigned_abs());
        let base = if seconds >= 0 {
            UNIX_EPOCH + whole
        } else {
            UNIX_EPOCH - whole
        };
        base + Duration::from_millis(millis)
    }

    #[test]
    fn epoch_is_1970_01_01() {
        assert_eq!(utc_date_parts(UNIX_EPOCH), (1970, 1, 1, 0, 0, 0, 0));
        assert_eq!(format_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn known_timestamps_match_date_utility() {
        // Reference values from `date -u -d @SECONDS`.
        assert_eq!(
            format_rfc3339(at(1_795_239_268, 123)),
            "2026-11-21T05:34:28.123Z"
        );
        assert_eq!(
            format_rfc3339(at(951_825_600, 999)),
            "2000-02-29T12:00:00.999Z"
        );
        assert_eq!(
            format_rfc3339(at(4_107_542_400, 0)),
            "2100-03-01T00:00:00.000Z"
        );
        assert_eq!(
            format_rfc3339(at(1_700_000_000, 5)),
            "2023-11-14T22:13:20.005Z"
        );
    }

    #[test]
    fn seconds_format_drops_the_fraction() {
        assert_eq!(format_rfc3339_seconds(at(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339_seconds(at(951_782_400, 0)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            format_rfc3339_seconds(at(1_709_251_199, 999)),
            "2024-02-29T23:59:59Z"
        );
    }

    #[test]
    fn times_before_the_epoch_count_backwards() {
        assert_eq!(utc_date_parts(at(-1, 0)), (1969, 12, 31, 23, 59, 59, 0));
        assert_eq!(
            utc_date_parts(UNIX_EPOCH - Duration::from_millis(1)),
            (1969, 12, 31, 23, 59, 59, 999)
        );
    }

    #[test]
    fn every_day_follows_the_previous_one() {
        let mut previous = civil_from_days(-1);
        for days in 0..(400 * 366) {
            let current = civil_from_days(days);
            let next_in_month = (previous.0, previous.1, previous.2 + 1);
            let next_month = (previous.0, previous.1 + 1, 1);
            let next_year = (previous.0 + 1, 1, 1);
            assert!(
                current == next_in_month || current == next_month || current == next_year,
                "{previous:?} -> {current:?}"
            );
            previous = current;
        }
    }

    #[test]
    fn now_is_well_formed() {
        let now = utc_now_rfc3339();
        assert_eq!(now.len(), 24, "{now}");
        assert!(
            now.ends_with('Z') && now.as_bytes().get(10) == Some(&b'T'),
            "{now}"
        );
    }
}
