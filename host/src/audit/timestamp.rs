//! Wall-clock instants as milliseconds since the Unix epoch, written as RFC 3339 in JSON.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A point in time with millisecond precision. Ordered, cheap to copy, and encodable as an
/// 8-byte big-endian key prefix so sled sorts records by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

/// A timestamp string that is not RFC 3339 or lies before 1970.
#[derive(Debug, thiserror::Error)]
#[error("`{input}` is not an RFC 3339 time at or after 1970-01-01")]
pub struct TimestampParseError {
    /// The rejected text.
    pub input: String,
}

impl Timestamp {
    /// The last instant that still formats and parses as RFC 3339 (9999-12-31T23:59:59.999Z):
    /// a due time no clock reaches, kept in records that must read back.
    pub const FAR_FUTURE: Timestamp = Timestamp(253_402_300_799_999);

    /// The current wall-clock time (the epoch if the clock is set before 1970).
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }

    /// From milliseconds since the Unix epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating at the far future.
    pub fn saturating_add(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// `self - d`, saturating at the epoch.
    pub fn saturating_sub(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// Parses an RFC 3339 time such as FHIR's `meta.lastUpdated`.
    pub fn parse_rfc3339(input: &str) -> Result<Self, TimestampParseError> {
        let error = || TimestampParseError {
            input: input.to_owned(),
        };
        let parsed = OffsetDateTime::parse(input, &Rfc3339).map_err(|_| error())?;
        let millis = parsed.unix_timestamp_nanos() / 1_000_000;
        u64::try_from(millis).map(Self).map_err(|_| error())
    }

    /// Formats as RFC 3339 in UTC with milliseconds.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            // Only instants beyond year 9999 fail to format; show the raw figure for those.
            .unwrap_or_else(|| format!("@{}ms", self.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_millis() {
        let t = Timestamp::parse_rfc3339("2024-03-01T10:20:30.123+02:00").expect("parses");
        assert_eq!(t.to_rfc3339(), "2024-03-01T08:20:30.123Z");
        assert_eq!(
            Timestamp::parse_rfc3339(&t.to_rfc3339()).expect("parses"),
            t
        );
    }

    #[test]
    fn the_far_future_reads_back() {
        let text = Timestamp::FAR_FUTURE.to_rfc3339();
        assert_eq!(text, "9999-12-31T23:59:59.999Z");
        assert_eq!(
            Timestamp::parse_rfc3339(&text).unwrap(),
            Timestamp::FAR_FUTURE
        );
    }

    #[test]
    fn rejects_garbage_and_pre_epoch() {
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
        assert!(Timestamp::parse_rfc3339("1969-12-31T23:59:59Z").is_err());
    }

    #[test]
    fn serde_uses_text() {
        let t = Timestamp::from_millis(1_500);
        let json = serde_json::to_string(&t).expect("serialises");
        assert_eq!(json, "\"1970-01-01T00:00:01.5Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).expect("parses"), t);
    }
}
