//! Parsing FHIR search and history parameters (`_id`, `_lastUpdated`, `_count`, `_since`, and
//! the opaque paging cursor) into plain values. Pure, no I/O.

use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, Month, OffsetDateTime, Time};

use super::validate::check_id;
use crate::api::error::ApiError;
use crate::config::MAX_COUNT;

/// Name of the parameter carrying the paging cursor in `next` links.
pub const CURSOR_PARAM: &str = "_cursor";

/// A parsed search over one resource type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchQuery {
    /// `_id` values (sorted, without duplicates), when given.
    pub ids: Option<Vec<String>>,
    /// Every `_lastUpdated` condition; all must hold.
    pub last_updated: Vec<DateCondition>,
    /// Page size.
    pub count: usize,
    /// Resume after this id (from a `next` link).
    pub after_id: Option<String>,
}

/// One `_lastUpdated` condition: the value denotes the instants in `[start, end)` (a day, a
/// month or a year for partial dates; a single instant otherwise) and `prefix` compares to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateCondition {
    /// The comparison.
    pub prefix: Prefix,
    /// First instant the value denotes.
    pub start: OffsetDateTime,
    /// First instant after the value.
    pub end: OffsetDateTime,
}

/// A FHIR search prefix for dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// `eq` (or no prefix): within the value.
    Eq,
    /// `gt`: after the value.
    Gt,
    /// `ge`: within or after the value.
    Ge,
    /// `lt`: before the value.
    Lt,
    /// `le`: before or within the value.
    Le,
}

impl DateCondition {
    /// Whether `at` satisfies the condition.
    pub fn holds(&self, at: OffsetDateTime) -> bool {
        match self.prefix {
            Prefix::Eq => at >= self.start && at < self.end,
            Prefix::Gt => at >= self.end,
            Prefix::Ge => at >= self.start,
            Prefix::Lt => at < self.start,
            Prefix::Le => at < self.end,
        }
    }
}

impl SearchQuery {
    /// Whether a resource last updated at `at` passes the `_lastUpdated` conditions.
    pub fn date_matches(&self, at: OffsetDateTime) -> bool {
        self.last_updated
            .iter()
            .all(|condition| condition.holds(at))
    }
}

/// Parses the parameters of a search; unknown parameters are refused rather than ignored so a
/// client never mistakes an unfiltered answer for a filtered one.
pub fn parse_search(
    pairs: &[(String, String)],
    default_count: usize,
) -> Result<SearchQuery, ApiError> {
    let mut query = SearchQuery {
        count: default_count.min(MAX_COUNT),
        ..SearchQuery::default()
    };
    for (name, value) in pairs {
        match name.as_str() {
            "_id" => query.ids = Some(parse_ids(query.ids.take(), value)?),
            "_lastUpdated" => query.last_updated.push(parse_date_condition(value)?),
            "_count" => query.count = parse_count(value)?,
            CURSOR_PARAM => query.after_id = Some(decode_cursor(value)?),
            "_format" => check_format(value)?,
            other => {
                return Err(ApiError::Invalid(format!(
                    "unsupported search parameter {other:?}; supported: _id, _lastUpdated, _count"
                )));
            }
        }
    }
    Ok(query)
}

/// The `_since` and `_count` of a history request.
pub fn parse_history(
    pairs: &[(String, String)],
    default_count: usize,
) -> Result<(Option<OffsetDateTime>, usize), ApiError> {
    let mut since = None;
    let mut count = default_count.min(MAX_COUNT);
    for (name, value) in pairs {
        match name.as_str() {
            "_since" => since = Some(parse_date_condition(value)?.start),
            "_count" => count = parse_count(value)?,
            "_format" => check_format(value)?,
            other => {
                return Err(ApiError::Invalid(format!(
                    "unsupported history parameter {other:?}; supported: _since, _count"
                )));
            }
        }
    }
    Ok((since, count))
}

fn parse_ids(previous: Option<Vec<String>>, value: &str) -> Result<Vec<String>, ApiError> {
    let mut ids = previous.unwrap_or_default();
    for id in value.split(',').map(str::trim) {
        check_id(id)?;
        ids.push(id.to_owned());
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

fn parse_count(value: &str) -> Result<usize, ApiError> {
    let count: usize = value
        .parse()
        .map_err(|_| ApiError::Invalid(format!("_count {value:?} is not a whole number")))?;
    if count == 0 {
        return Err(ApiError::Invalid("_count must be at least 1".into()));
    }
    Ok(count.min(MAX_COUNT))
}

fn check_format(value: &str) -> Result<(), ApiError> {
    match value {
        "json" | "application/json" | "application/fhir+json" => Ok(()),
        other => Err(ApiError::Invalid(format!(
            "_format {other:?} is not supported; this server speaks JSON only"
        ))),
    }
}

/// Parses `[prefix]value` where value is an instant (RFC 3339) or a date `YYYY[-MM[-DD]]`.
pub fn parse_date_condition(value: &str) -> Result<DateCondition, ApiError> {
    let (prefix, rest) = split_prefix(value);
    let (start, end) = parse_date_range(rest).ok_or_else(|| {
        ApiError::Invalid(format!(
            "date {value:?} is not [gt|ge|lt|le|eq]YYYY[-MM[-DD]] or an RFC 3339 instant"
        ))
    })?;
    Ok(DateCondition { prefix, start, end })
}

fn split_prefix(value: &str) -> (Prefix, &str) {
    let prefixes = [
        ("eq", Prefix::Eq),
        ("gt", Prefix::Gt),
        ("ge", Prefix::Ge),
        ("lt", Prefix::Lt),
        ("le", Prefix::Le),
    ];
    for (text, prefix) in prefixes {
        if let Some(rest) = value.strip_prefix(text) {
            return (prefix, rest);
        }
    }
    (Prefix::Eq, value)
}

fn parse_date_range(text: &str) -> Option<(OffsetDateTime, OffsetDateTime)> {
    if text.contains('T') {
        let instant = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        return Some((instant, instant + Duration::nanoseconds(1)));
    }
    let mut parts = text.split('-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month = parts.next().map(str::parse::<u8>);
    let day = parts.next().map(str::parse::<u8>);
    if parts.next().is_some() {
        return None;
    }
    let at = |year: i32, month: u8, day: u8| -> Option<OffsetDateTime> {
        let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
        Some(date.with_time(Time::MIDNIGHT).assume_utc())
    };
    match (month, day) {
        (None, _) => Some((at(year, 1, 1)?, at(year + 1, 1, 1)?)),
        (Some(month), None) => {
            let month = month.ok()?;
            let start = at(year, month, 1)?;
            let end = if month == 12 {
                at(year + 1, 1, 1)?
            } else {
                at(year, month + 1, 1)?
            };
            Some((start, end))
        }
        (Some(month), Some(day)) => {
            let start = at(year, month.ok()?, day.ok()?)?;
            Some((start, start + Duration::days(1)))
        }
    }
}

/// The opaque cursor for "continue after `id`".
pub fn encode_cursor(id: &str) -> String {
    hex::encode(id.as_bytes())
}

/// The id a cursor continues after.
pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::Invalid(format!("paging cursor {cursor:?} is not valid"));
    let bytes = hex::decode(cursor).map_err(|_| invalid())?;
    let id = String::from_utf8(bytes).map_err(|_| invalid())?;
    check_id(&id).map_err(|_| invalid())?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn parses_ids_count_and_cursor() {
        let query = parse_search(
            &pairs(&[
                ("_id", "b,a"),
                ("_id", "c,a"),
                ("_count", "5000"),
                ("_cursor", &encode_cursor("a")),
            ]),
            100,
        )
        .unwrap();
        assert_eq!(query.ids, Some(vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(query.count, MAX_COUNT);
        assert_eq!(query.after_id.as_deref(), Some("a"));
    }

    #[test]
    fn unknown_parameters_are_refused() {
        let error = parse_search(&pairs(&[("name", "x")]), 10).unwrap_err();
        assert!(error.to_string().contains("\"name\""));
        assert!(parse_search(&pairs(&[("_count", "0")]), 10).is_err());
        assert!(decode_cursor("zz").is_err());
    }

    #[test]
    fn date_prefixes_compare_against_the_value_range() {
        let day = parse_date_condition("gt2024-03-01").unwrap();
        assert!(!day.holds(datetime!(2024-03-01 23:59 UTC)));
        assert!(day.holds(datetime!(2024-03-02 00:00 UTC)));
        let le = parse_date_condition("le2024-03").unwrap();
        assert!(le.holds(datetime!(2024-03-31 23:59 UTC)));
        assert!(!le.holds(datetime!(2024-04-01 00:00 UTC)));
        let instant = parse_date_condition("ge2024-03-01T10:00:00.5Z").unwrap();
        assert!(instant.holds(datetime!(2024-03-01 10:00:00.5 UTC)));
        assert!(!instant.holds(datetime!(2024-03-01 10:00:00.4 UTC)));
        let gt = parse_date_condition("gt2024-03-01T10:00:00Z").unwrap();
        assert!(!gt.holds(datetime!(2024-03-01 10:00:00 UTC)));
        assert!(gt.holds(datetime!(2024-03-01 10:00:00.001 UTC)));
        assert!(parse_date_condition("ne2024").is_err());
        assert!(parse_date_condition("2024-13").is_err());
    }
}
