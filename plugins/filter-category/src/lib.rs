//! Event filter that allows or denies events by feed category or resource
//! type, compared case-insensitively.
//!
//! Configuration: `{"allow": ["patient", "Encounter"]}` (only these pass) or
//! `{"deny": ["concept"]}` (all but these pass).

use sync_plugin_sdk::{Direction, Event, EventFilter, Resource, Verdict};

/// The filter's configuration: exactly one of `allow` and `deny`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Categories or resource types that pass; everything else is rejected.
    pub allow: Option<Vec<String>>,
    /// Categories or resource types that are rejected.
    pub deny: Option<Vec<String>>,
}

/// The configured rule.
#[derive(Debug)]
pub enum CategoryFilter {
    /// Only these (lower-cased) names pass.
    Allow(Vec<String>),
    /// These (lower-cased) names are rejected.
    Deny(Vec<String>),
}

impl CategoryFilter {
    /// Decides on the names an item is known by (its category and type).
    pub fn decide(&self, names: &[&str]) -> Verdict {
        match self {
            CategoryFilter::Allow(allowed) => match names.iter().find(|n| listed(allowed, n)) {
                Some(_) => Verdict::Accept,
                None => Verdict::Reject(format!(
                    "{} is not in the allow list [{}]",
                    names.join("/"),
                    allowed.join(", ")
                )),
            },
            CategoryFilter::Deny(denied) => match names.iter().find(|n| listed(denied, n)) {
                Some(name) => Verdict::Reject(format!("{name} is in the deny list")),
                None => Verdict::Accept,
            },
        }
    }
}

fn listed(list: &[String], name: &str) -> bool {
    !name.is_empty() && list.iter().any(|entry| entry.eq_ignore_ascii_case(name))
}

fn lower(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .map(|s| s.trim().to_ascii_lowercase())
        .collect()
}

impl EventFilter for CategoryFilter {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        match (config.allow, config.deny) {
            (Some(allow), None) => Ok(CategoryFilter::Allow(lower(allow))),
            (None, Some(deny)) => Ok(CategoryFilter::Deny(lower(deny))),
            (Some(_), Some(_)) => Err("set either allow or deny, not both".to_string()),
            (None, None) => Err("set allow or deny to a list of categories".to_string()),
        }
    }

    fn accept(&self, _direction: Direction, event: &Event) -> Verdict {
        self.decide(&[&event.category, &event.resource_type])
    }

    fn check(&self, _direction: Direction, resource: &Resource) -> Verdict {
        self.decide(&[&resource.resource_type])
    }
}

sync_plugin_sdk::export_event_filter!(CategoryFilter);

#[cfg(test)]
mod tests {
    use super::*;
    use sync_plugin_sdk::filter::parse_config;

    fn filter(json: &str) -> Result<CategoryFilter, String> {
        CategoryFilter::new(parse_config(json)?)
    }

    #[test]
    fn allow_list_passes_only_listed_names_ignoring_case() {
        let f = filter(r#"{"allow":["Patient","encounter"]}"#).unwrap();
        assert_eq!(f.decide(&["patient", "Patient"]), Verdict::Accept);
        assert_eq!(f.decide(&["", "Encounter"]), Verdict::Accept);
        let Verdict::Reject(reason) = f.decide(&["concept", "concept"]) else {
            panic!("concept passed an allow list without it");
        };
        assert!(reason.contains("allow list"), "{reason}");
    }

    #[test]
    fn deny_list_names_the_rule() {
        let f = filter(r#"{"deny":["CONCEPT"]}"#).unwrap();
        assert_eq!(
            f.decide(&["concept", "concept"]),
            Verdict::Reject("concept is in the deny list".into())
        );
        assert_eq!(f.decide(&["patient", "Patient"]), Verdict::Accept);
    }

    #[test]
    fn configuration_needs_exactly_one_list() {
        assert!(filter("{}").is_err());
        assert!(filter(r#"{"allow":[],"deny":[]}"#).is_err());
        assert!(filter(r#"{"allowed":["x"]}"#).is_err());
    }
}
