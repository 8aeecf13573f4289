//! Event filter that skips events whose origin node is listed in
//! `skip_origins`, for example to keep a sibling's changes out of a node.
//!
//! Configuration: `{"skip_origins": ["clinic-7"]}`.

use sync_plugin_sdk::{Direction, Event, EventFilter, Verdict};

/// The filter's configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Origin node names whose events are skipped (exact match).
    pub skip_origins: Vec<String>,
}

/// Skips events from the configured origins.
pub struct OriginFilter {
    skip_origins: Vec<String>,
}

impl OriginFilter {
    /// Decides on an event's origin; events without one always pass.
    pub fn decide(&self, origin: Option<&str>) -> Verdict {
        match origin {
            Some(origin) if self.skip_origins.iter().any(|skip| skip == origin) => {
                Verdict::Reject(format!("origin {origin} is listed in skip_origins"))
            }
            _ => Verdict::Accept,
        }
    }
}

impl EventFilter for OriginFilter {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config
            .skip_origins
            .iter()
            .any(|origin| origin.trim().is_empty())
        {
            return Err("skip_origins contains an empty origin name".to_string());
        }
        Ok(OriginFilter {
            skip_origins: config.skip_origins,
        })
    }

    fn accept(&self, _direction: Direction, event: &Event) -> Verdict {
        self.decide(event.origin.as_deref())
    }
}

sync_plugin_sdk::export_event_filter!(OriginFilter);

#[cfg(test)]
mod tests {
    use super::*;
    use sync_plugin_sdk::filter::parse_config;

    fn filter(json: &str) -> Result<OriginFilter, String> {
        OriginFilter::new(parse_config(json)?)
    }

    #[test]
    fn listed_origins_are_rejected_with_the_rule() {
        let f = filter(r#"{"skip_origins":["clinic-7"]}"#).unwrap();
        assert_eq!(
            f.decide(Some("clinic-7")),
            Verdict::Reject("origin clinic-7 is listed in skip_origins".into())
        );
        assert_eq!(f.decide(Some("clinic-8")), Verdict::Accept);
        assert_eq!(f.decide(None), Verdict::Accept);
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert!(filter(r#"{"skip":["x"]}"#).is_err());
        assert!(filter(r#"{"skip_origins":[" "]}"#).is_err());
        assert!(filter("{}").is_err());
    }
}
