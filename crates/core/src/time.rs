//! Timestamps: milliseconds since the Unix epoch inside, RFC 3339 (UTC) on the wire.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A point in time with millisecond precision.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        // Read straight from the system clock: every published event takes the time.
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => Self(i64::try_from(since.as_millis()).unwrap_or(i64::MAX)),
            // A clock set before 1970.
            Err(before) => Self(-i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX)),
        }
    }

    /// A timestamp from milliseconds since the epoch (as stored).
    pub fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the epoch.
    /// This time plus `secs` seconds.
    pub fn plus_secs(self, secs: u64) -> Self {
        let millis = i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        Self::from_millis(self.as_millis().saturating_add(millis))
    }

    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 timestamp such as `2026-11-22T10:00:00Z`.
    pub fn parse_rfc3339(value: &str) -> Option<Self> {
        let parsed = OffsetDateTime::parse(value, &Rfc3339).ok()?;
        Some(Self((parsed.unix_timestamp_nanos() / 1_000_000) as i64))
    }

    /// The calendar month (UTC) as `YYYY-MM`: the period of monthly quotas.
    pub fn month_key(self) -> String {
        match OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000) {
            Ok(at) => format!("{:04}-{:02}", at.year(), at.month() as u8),
            Err(_) => "0000-00".to_owned(),
        }
    }

    /// The first moment of this calendar month (UTC).
    pub fn month_start(self) -> Timestamp {
        let Ok(at) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
        else {
            return self;
        };
        match time::Date::from_calendar_date(at.year(), at.month(), 1) {
            Ok(day) => Timestamp(day.midnight().assume_utc().unix_timestamp() * 1000),
            Err(_) => self,
        }
    }

    /// Seconds from this moment to the start of the next calendar month (UTC).
    pub fn secs_to_next_month(self) -> u64 {
        let Ok(at) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
        else {
            return 0;
        };
        let (year, month) = if at.month() as u8 == 12 {
            (at.year() + 1, 1)
        } else {
            (at.year(), at.month() as u8 + 1)
        };
        let next = time::Date::from_calendar_date(
            year,
            time::Month::try_from(month).unwrap_or(time::Month::January),
            1,
        )
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .unwrap_or(0);
        u64::try_from(next - at.unix_timestamp()).unwrap_or(0)
    }

    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-22T10:00:00.123Z`.
    pub fn to_rfc3339(self) -> String {
        self.with_rfc3339(str::to_owned)
    }

    /// Hands the RFC 3339 text to `f`: from the stack for years 0 to 9999, else made by
    /// [`Self::to_rfc3339_slow`].
    fn with_rfc3339<R>(self, f: impl FnOnce(&str) -> R) -> R {
        let bytes = self.rfc3339_bytes();
        match bytes.as_ref().and_then(|b| std::str::from_utf8(b).ok()) {
            Some(text) => f(text),
            None => f(&self.to_rfc3339_slow()),
        }
    }

    /// The RFC 3339 text for years 0 to 9999, made without allocating: every stored event
    /// carries a timestamp, so a run's record formats dozens of them.
    fn rfc3339_bytes(self) -> Option<[u8; 24]> {
        const DAY_MS: i64 = 86_400_000;
        let (year, month, day) = civil_date(self.0.div_euclid(DAY_MS));
        if !(0..=9999).contains(&year) {
            return None;
        }
        let in_day = self.0.rem_euclid(DAY_MS);
        let (hour, minute) = (in_day / 3_600_000, in_day / 60_000 % 60);
        let (second, millis) = (in_day / 1000 % 60, in_day % 1000);
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut value: i64| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, hour);
        put(14, 2, minute);
        put(17, 2, second);
        put(20, 3, millis);
        Some(out)
    }

    /// Any year, through the `time` crate (or the raw milliseconds past its range).
    fn to_rfc3339_slow(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(at) => {
                let (year, month, day) = (at.year(), at.month() as u8, at.day());
                let (hour, minute, second) = (at.hour(), at.minute(), at.second());
                let millis = at.millisecond();
                format!(
                    "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z"
                )
            }
            Err(_) => self.0.to_string(),
        }
    }
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01.
///
/// Counts in 400-year eras starting on March 1st, so that the leap day falls at the end of
/// a year: each era has the same 146,097 days, and within one the year, then the day of the
/// year, then the month follow by integer arithmetic.
fn civil_date(days: i64) -> (i64, i64, i64) {
    // 0000-03-01 is 719,468 days before the epoch.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March: 153 days in every five.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_rfc3339(|text| f.write_str(text))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_rfc3339(|text| f.write_str(text))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.with_rfc3339(|text| serializer.serialize_str(text))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse_rfc3339(&raw).ok_or_else(|| {
            serde::de::Error::custom(format!("`{raw}` is not an RFC 3339 timestamp"))
        })
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast text agrees with the `time` crate's on every kind of day: leap days, the
    /// ends of months and years, before the epoch, and the edges of its range.
    #[test]
    fn the_fast_text_matches_the_slow_one() {
        const DAY_MS: i64 = 86_400_000;
        let edges = [
            0,
            -1,
            951_782_400_000,     // 2000-02-29
            4_107_542_399_999,   // 2100-02-28T23:59:59.999
            -62_167_219_200_000, // 0000-01-01
            253_402_300_799_999, // 9999-12-31T23:59:59.999
        ];
        // Every day from 1600 to 2500 at a time of day that moves, and the edges.
        let days =
            (-135_140_i64..193_000).map(|day| day * DAY_MS + (day * 7_919_993).rem_euclid(DAY_MS));
        for millis in days.chain(edges) {
            let at = Timestamp::from_millis(millis);
            assert_eq!(
                at.rfc3339_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned()),
                Some(at.to_rfc3339_slow()),
                "{millis}"
            );
        }
        // Outside years 0-9999 the slow path answers.
        for millis in [-62_167_219_200_001, 253_402_300_800_000] {
            let at = Timestamp::from_millis(millis);
            assert_eq!(at.rfc3339_bytes(), None);
            assert_eq!(at.to_rfc3339(), at.to_rfc3339_slow());
        }
        assert_eq!(
            serde_json::to_string(&Timestamp::from_millis(951_782_400_123)).ok(),
            Some("\"2000-02-29T00:00:00.123Z\"".to_owned())
        );
    }

    #[test]
    fn now_agrees_with_the_time_crate() {
        let theirs = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        let ours = Timestamp::now().as_millis();
        assert!((ours - theirs).abs() < 1_000, "{ours} vs {theirs}");
    }

    #[test]
    fn round_trips_through_rfc3339() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_795_000_000_123, "2026-11-18T11:06:40.123Z"),
        ];
        for (millis, text) in cases {
            assert_eq!(Timestamp::from_millis(millis).to_rfc3339(), text);
            assert_eq!(
                Timestamp::parse_rfc3339(text),
                Some(Timestamp::from_millis(millis))
            );
        }
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-18T12:06:40.123+01:00"),
            Some(Timestamp::from_millis(1_795_000_000_123))
        );
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
        let late_december =
            Timestamp::parse_rfc3339("2026-12-31T23:59:00Z").unwrap_or(Timestamp(0));
        assert_eq!(late_december.month_key(), "2026-12");
        assert_eq!(late_december.secs_to_next_month(), 60);
        assert_eq!(
            late_december.month_start().to_rfc3339(),
            "2026-12-01T00:00:00.000Z"
        );
    }
}
