//! OpenMRS location paths: `%`-separated tags such as `Kenya%Nairobi%null%Kibera%null`, bare or
//! inside a `<feedFilter>` tag, matched segment by segment against configured patterns.

/// The location path a tag carries: the `<filter>` of a feed-filter XML tag, or the tag itself.
pub fn location_of(tag: &str) -> &str {
    let inner = tag
        .split_once("<filter>")
        .and_then(|(_, rest)| rest.split_once("</filter>"))
        .map(|(filter, _)| filter);
    inner.unwrap_or(tag).trim()
}

/// Whether a tag is a location path rather than a scope key (`Organization/x`).
pub fn is_location(tag: &str) -> bool {
    tag.contains('%') || tag.contains("<filter>")
}

/// True when `location` matches `pattern`, segment by segment: `*` matches any one segment,
/// other segments compare ignoring ASCII case, and the number of segments must be equal.
pub fn matches(pattern: &[String], location: &str) -> bool {
    let segments: Vec<&str> = location.split('%').collect();
    segments.len() == pattern.len()
        && pattern
            .iter()
            .zip(segments)
            .all(|(want, got)| want == "*" || want.eq_ignore_ascii_case(got))
}

/// Splits configured patterns into their segments.
pub fn split_patterns(patterns: &[String]) -> Vec<Vec<String>> {
    patterns
        .iter()
        .map(|p| p.split('%').map(|s| s.trim().to_string()).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FEED_FILTER: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><feedFilter><beanName>atomfeed.locationFeedFilterStrategy</beanName><filter>Kenya%Nairobi%null%Kibera%null</filter></feedFilter>"#;

    #[test]
    fn openmrs_feed_filter_tags_are_unwrapped() {
        assert_eq!(location_of(FEED_FILTER), "Kenya%Nairobi%null%Kibera%null");
        assert_eq!(location_of("Kenya%Mombasa"), "Kenya%Mombasa");
        assert!(is_location(FEED_FILTER) && is_location("Kenya%Mombasa"));
        assert!(!is_location("Organization/kibera-hc"));
    }

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
