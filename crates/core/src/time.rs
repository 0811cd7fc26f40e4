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
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Self((nanos / 1_000_000) as i64)
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

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
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
