//! Event filter that keeps the events of a catchment area: an event passes
//! when one of its location tags matches a pattern.
//!
//! Configuration: `{"patterns": ["Kenya%Nairobi%*%*%*"], "untagged": "accept"}`.
//! Tags are `%`-separated location paths, either bare or inside an OpenMRS
//! `<feedFilter>...<filter>Kenya%Nairobi%null%Kibera%null</filter>` tag. In a
//! pattern `*` matches any one segment; other segments compare ignoring ASCII
//! case, and the number of segments must be equal.

use sync_plugin_sdk::{Direction, Event, EventFilter, Verdict};

/// What to do with an event that carries no location tag.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Untagged {
    /// Let it through (metadata such as concepts is rarely tagged).
    #[default]
    Accept,
    /// Skip it.
    Reject,
}

/// The filter's configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Location patterns; an event passes when any tag matches any pattern.
    pub patterns: Vec<String>,
    /// What to do with events without a location tag.
    #[serde(default)]
    pub untagged: Untagged,
}

/// The configured catchment.
#[derive(Debug)]
pub struct CatchmentFilter {
    patterns: Vec<Vec<String>>,
    untagged: Untagged,
}

/// The location path a tag carries: the `<filter>` of a feed-filter XML tag,
/// or the tag itself.
pub fn location_of(tag: &str) -> &str {
    let inner = tag
        .split_once("<filter>")
        .and_then(|(_, rest)| rest.split_once("</filter>"))
        .map(|(filter, _)| filter);
    inner.unwrap_or(tag).trim()
}

/// True when `location` matches `pattern`, segment by segment.
pub fn matches(pattern: &[String], location: &str) -> bool {
    let segments: Vec<&str> = location.split('%').collect();
    segments.len() == pattern.len()
        && pattern
            .iter()
            .zip(segments)
            .all(|(want, got)| want == "*" || want.eq_ignore_ascii_case(got))
}

impl CatchmentFilter {
    /// Decides on an event's tags.
    pub fn decide(&self, tags: &[String]) -> Verdict {
        let locations: Vec<&str> = tags
            .iter()
            .map(|t| location_of(t))
            .filter(|l| !l.is_empty())
            .collect();
        if locations.is_empty() {
            return match self.untagged {
                Untagged::Accept => Verdict::Accept,
                Untagged::Reject => Verdict::Reject(
                    "the event has no location tag and untagged is \"reject\"".into(),
                ),
            };
        }
        let hit = locations
            .iter()
            .any(|location| self.patterns.iter().any(|p| matches(p, location)));
        if hit {
            Verdict::Accept
        } else {
            Verdict::Reject(format!(
                "location {} matches no catchment pattern",
                locations.join(", ")
            ))
        }
    }
}

impl EventFilter for CatchmentFilter {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.patterns.is_empty() {
            return Err("patterns is empty: list at least one location pattern".to_string());
        }
        let patterns = config
            .patterns
            .iter()
            .map(|p| p.split('%').map(|s| s.trim().to_string()).collect())
            .collect();
        Ok(CatchmentFilter {
            patterns,
            untagged: config.untagged,
        })
    }

    fn accept(&self, _direction: Direction, event: &Event) -> Verdict {
        self.decide(&event.tags)
    }
}

sync_plugin_sdk::export_event_filter!(CatchmentFilter);

#[cfg(test)]
mod tests {
    use super::*;
    use sync_plugin_sdk::filter::parse_config;

    const FEED_FILTER: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><feedFilter><beanName>atomfeed.locationFeedFilterStrategy</beanName><filter>Kenya%Nairobi%null%Kibera%null</filter></feedFilter>"#;

    fn filter(json: &str) -> CatchmentFilter {
        CatchmentFilter::new(parse_config(json).unwrap()).unwrap()
    }

    #[test]
    fn openmrs_feed_filter_tags_are_unwrapped() {
        assert_eq!(location_of(FEED_FILTER), "Kenya%Nairobi%null%Kibera%null");
        assert_eq!(location_of("Kenya%Mombasa"), "Kenya%Mombasa");
    }

    #[test]
    fn wildcards_match_one_segment_each() {
        let f = filter(r#"{"patterns":["Kenya%Nairobi%*%*%*"]}"#);
        assert_eq!(f.decide(&[FEED_FILTER.to_string()]), Verdict::Accept);
        assert_eq!(f.decide(&["kenya%nairobi%a%b%c".into()]), Verdict::Accept);
        let other = f.decide(&["Kenya%Mombasa%null%Likoni%null".into()]);
        assert!(matches!(other, Verdict::Reject(reason) if reason.contains("Mombasa")));
        assert!(matches!(
            f.decide(&["Kenya%Nairobi".into()]),
            Verdict::Reject(_)
        ));
    }

    #[test]
    fn untagged_events_follow_the_option() {
        assert_eq!(filter(r#"{"patterns":["*"]}"#).decide(&[]), Verdict::Accept);
        let strict = filter(r#"{"patterns":["*"],"untagged":"reject"}"#);
        assert!(matches!(strict.decide(&[]), Verdict::Reject(_)));
    }

    #[test]
    fn configuration_errors_are_reported() {
        assert!(parse_config::<Config>(r#"{"patterns":["x"],"untagged":"maybe"}"#).is_err());
        assert!(CatchmentFilter::new(parse_config(r#"{"patterns":[]}"#).unwrap()).is_err());
    }

    mod properties {
        use super::super::matches;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn a_location_matches_itself_and_all_wildcards(
                segments in proptest::collection::vec("[A-Za-z ]{1,10}", 1..6),
                wild in proptest::collection::vec(any::<bool>(), 6),
            ) {
                let location = segments.join("%");
                let exact: Vec<String> = segments.iter().map(|s| s.to_uppercase()).collect();
                prop_assert!(matches(&exact, &location));
                let mixed: Vec<String> = segments
                    .iter()
                    .zip(&wild)
                    .map(|(s, w)| if *w { "*".to_string() } else { s.clone() })
                    .collect();
                prop_assert!(matches(&mixed, &location));
                let longer: Vec<String> = mixed.iter().cloned().chain(["*".to_string()]).collect();
                prop_assert!(!matches(&longer, &location));
            }
        }
    }
}
