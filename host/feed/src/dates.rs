//! Conversions between `time` (our API) and the chrono dates `atom_syndication` speaks.

use atom_syndication::FixedDateTime;
use chrono::{DateTime, Utc};
use time::OffsetDateTime;

/// The chrono form of `date`, written in UTC (feeds are compared as
/// instants, and UTC keeps the text independent of the writer's offset).
///
/// Returns `None` only for instants chrono cannot hold; its range (about
/// ±262 000 years) is wider than `time`'s default (±9999), so it does not
/// happen in practice.
pub(crate) fn to_atom(date: OffsetDateTime) -> Option<FixedDateTime> {
    let nanos = date.unix_timestamp_nanos();
    let seconds = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
    let subsec = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
    DateTime::<Utc>::from_timestamp(seconds, subsec).map(|utc| utc.fixed_offset())
}

/// The `time` form of an Atom date, keeping its offset. `None` when the
/// instant is outside `time`'s range.
pub(crate) fn from_atom(date: &FixedDateTime) -> Option<OffsetDateTime> {
    let nanos =
        i128::from(date.timestamp()) * 1_000_000_000 + i128::from(date.timestamp_subsec_nanos());
    let utc = OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?;
    let offset = time::UtcOffset::from_whole_seconds(date.offset().local_minus_utc()).ok()?;
    Some(utc.to_offset(offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn round_trip_keeps_nanoseconds() {
        let date = datetime!(2019-02-18 10:00:05.123456789 +03:00);
        let atom = to_atom(date).unwrap();
        assert_eq!(atom.to_rfc3339(), "2019-02-18T07:00:05.123456789+00:00");
        assert_eq!(from_atom(&atom), Some(date));
    }

    #[test]
    fn reading_keeps_the_offset() {
        let atom = FixedDateTime::parse_from_rfc3339("2018-01-17T19:44:40+05:30").unwrap();
        let date = from_atom(&atom).unwrap();
        assert_eq!(date, datetime!(2018-01-17 19:44:40 +05:30));
        assert_eq!(date.offset().whole_minutes(), 330);
    }

    #[test]
    fn before_the_epoch_works() {
        let date = datetime!(1969-12-31 23:59:59.5 UTC);
        assert_eq!(from_atom(&to_atom(date).unwrap()), Some(date));
    }
}
